//! The `PersistentChatPool` resource: its spec and status types, their defaults, and the
//! validation the operator repeats before it sends any SQL.

mod spec;
mod status;

pub use spec::*;
pub use status::*;

/// The CustomResourceDefinition as YAML, exactly as committed in `crds/persistentchatpool.yaml`.
pub fn crd_yaml() -> Result<String, serde_saphyr::ser::Error> {
    use kube::CustomResourceExt;
    serde_saphyr::to_string(&PersistentChatPool::crd())
}
