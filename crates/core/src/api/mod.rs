//! The `PersistentChatPool` resource: its spec and status types, their defaults, and the
//! validation the operator repeats before it sends any SQL.

pub mod conditions;
mod load;
pub mod patterns;
mod spec;
mod status;
mod validate;

pub use conditions::{ConditionReason, ConditionType};
pub use load::load_pool_yaml;
pub use spec::*;
pub use status::*;
pub use validate::{MIN_AGENT_INTERVAL, ValidationErrors, Violation, validate};

/// The CustomResourceDefinition as YAML, exactly as committed in `crds/persistentchatpool.yaml`.
pub fn crd_yaml() -> Result<String, crate::Error> {
    use kube::CustomResourceExt;
    serde_saphyr::to_string(&PersistentChatPool::crd()).map_err(crate::Error::CrdYaml)
}
