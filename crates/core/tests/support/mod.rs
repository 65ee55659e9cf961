//! Fixtures shared by the validation and CRD tests: the example pool as JSON, ready to mutate.

#![allow(dead_code)] // each test crate uses a different subset

use pchat_core::api::{PersistentChatPoolSpec, load_pool_yaml};
use serde_json::Value;

/// The seed's pool (`examples/pool.yaml`) as a JSON manifest.
pub fn pool() -> Value {
    let pool = load_pool_yaml(include_str!("../../../../examples/pool.yaml"))
        .unwrap_or_else(|e| panic!("examples/pool.yaml does not load: {e}"));
    serde_json::to_value(&pool).expect("a pool serializes to JSON")
}

/// The seed's pool with one change applied.
pub fn pool_with(change: impl FnOnce(&mut Value)) -> Value {
    let mut p = pool();
    change(&mut p);
    p
}

/// The typed spec of a JSON manifest.
pub fn spec_of(manifest: &Value) -> PersistentChatPoolSpec {
    serde_json::from_value(manifest["spec"].clone())
        .unwrap_or_else(|e| panic!("test fixture spec does not deserialize: {e}"))
}

/// The CRD's `openAPIV3Schema` as JSON, generated from the Rust types.
pub fn crd_schema() -> Value {
    use kube::CustomResourceExt;
    let crd = pchat_core::api::PersistentChatPool::crd();
    let schema = crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .expect("the generated CRD has an openAPIV3Schema");
    serde_json::to_value(schema).expect("the schema serializes to JSON")
}
