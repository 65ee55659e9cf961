//! A PersistentChatPool as the API server stores it, decoded one object at a time.
//!
//! The controller watches pools as untyped objects and decodes each one here, in its own pass,
//! rather than letting the watch decode them: a typed watch fails its whole list (and so stops
//! every pool) on one object it cannot read, and the API server can hold such objects: pools
//! stored under an earlier, looser version of the CRD are not checked again when the CRD is
//! tightened. A pool whose spec cannot be decoded gets its own Stalled status naming the field,
//! through the engine's path for a manifest that cannot be used; the others go on.

use std::sync::Arc;

use kube::ResourceExt;
use kube::api::{ApiResource, DynamicObject};
use kube::core::Resource;
use serde_json::json;

use pchat_core::api::{PersistentChatPool, PersistentChatPoolSpec, PersistentChatPoolStatus};

/// The pool's type for the untyped API (group, version, kind, plural).
pub fn api_resource() -> ApiResource {
    ApiResource::erase::<PersistentChatPool>(&())
}

/// One stored pool, decoded as far as it can be.
#[derive(Debug)]
pub struct StoredPool {
    /// The object as stored: metadata for names, uid, generation and references (shared with
    /// the watch's cache, not copied per pass).
    pub object: Arc<DynamicObject>,
    /// The spec, or why it cannot be used (the loader's message, naming the field).
    pub spec: Result<PersistentChatPoolSpec, String>,
    /// The status the last pass wrote; `None` when there is none or it cannot be read (the
    /// next status is then built afresh).
    pub status: Option<PersistentChatPoolStatus>,
}

/// Decode `object`'s spec with the manifest loader (see [`StoredPool::decode`]).
fn decode_spec(object: &DynamicObject) -> Result<PersistentChatPoolSpec, String> {
    let Some(spec) = object.data.get("spec") else {
        return Err("the stored object has no spec".to_string());
    };
    let manifest = json!({
        "apiVersion": PersistentChatPool::api_version(&()),
        "kind": PersistentChatPool::kind(&()),
        "metadata": {},
        "spec": spec,
    });
    // YAML is a superset of JSON: the manifest loader reads it as it is.
    pchat_core::api::load_pool_yaml(&manifest.to_string())
        .map(|pool| pool.spec)
        .map_err(|e| e.to_string().replace('\n', "; "))
}

/// One pool's spec as last decoded, with the generation it was decoded at. The API server
/// raises `metadata.generation` on every change to a custom resource's spec, so an object of
/// the same generation has the same spec: a pass reuses the decoding instead of running the
/// loader (the JSON text through the YAML parser and the schema walk) again, which was a
/// twentieth of the operator's CPU in a storm of switches.
#[derive(Debug, Default)]
pub struct SpecMemory(Option<(i64, Result<PersistentChatPoolSpec, String>)>);

impl SpecMemory {
    /// `object` with its spec decoded as [`StoredPool::decode`] does, and with `status` known
    /// otherwise (the one the operator last wrote): the stored one is not read. The spec comes
    /// from memory when `object` has the generation it was decoded at.
    pub fn pool(
        &mut self,
        object: Arc<DynamicObject>,
        status: Option<PersistentChatPoolStatus>,
    ) -> StoredPool {
        if let (Some((seen, spec)), Some(generation)) = (&self.0, object.metadata.generation)
            && *seen == generation
        {
            return StoredPool {
                spec: spec.clone(),
                object,
                status,
            };
        }
        let pool = StoredPool {
            spec: decode_spec(&object),
            object,
            status,
        };
        self.remember(&pool);
        pool
    }

    /// Remember the spec `pool` was decoded with in full (the first pass since this replica
    /// gained the lead reads the stored pool whole), so the passes after it do not decode the
    /// same generation again.
    pub fn remember(&mut self, pool: &StoredPool) {
        self.0 = pool
            .generation()
            .map(|generation| (generation, pool.spec.clone()));
    }
}

impl StoredPool {
    /// Decode `object` with the same loader as a manifest file (unknown fields, durations
    /// the CRD's pattern refuses and values of the wrong type are named by their path),
    /// reading the status on its own so that a spec problem does not hide it. The loader is
    /// given the type and the spec alone (the metadata stays in `object`; the type is the
    /// watched resource's, as items of a list may carry none).
    pub fn decode(object: DynamicObject) -> StoredPool {
        let status = object.data.get("status").cloned().and_then(|value| {
            serde_json::from_value(value)
                .inspect_err(|e| {
                    tracing::warn!(pool = %object.name_any(), error = %e, "the stored status cannot be read: building it afresh");
                })
                .ok()
        });
        StoredPool {
            spec: decode_spec(&object),
            object: Arc::new(object),
            status,
        }
    }

    pub fn name(&self) -> String {
        self.object.name_any()
    }

    pub fn namespace(&self) -> String {
        self.object.namespace().unwrap_or_default()
    }

    pub fn uid(&self) -> Option<String> {
        self.object.uid()
    }

    pub fn generation(&self) -> Option<i64> {
        self.object.metadata.generation
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn stored(spec_edit: impl FnOnce(&mut Value), status: Option<Value>) -> StoredPool {
        StoredPool::decode(object(3, spec_edit, status))
    }

    fn object(
        generation: i64,
        spec_edit: impl FnOnce(&mut Value),
        status: Option<Value>,
    ) -> DynamicObject {
        let pool = pchat_core::api::load_pool_yaml(include_str!("../../examples/pool.yaml"))
            .expect("the example loads");
        let mut value = serde_json::to_value(&pool).unwrap();
        value["metadata"]["uid"] = json!("b7c2");
        value["metadata"]["generation"] = json!(generation);
        value["metadata"]["resourceVersion"] = json!("812");
        value["metadata"]["managedFields"] = json!([{"manager": "kubectl", "operation": "Apply"}]);
        spec_edit(&mut value["spec"]);
        if let Some(status) = status {
            value["status"] = status;
        }
        let mut object: DynamicObject = serde_json::from_value(value).unwrap();
        // As an item of a list may come: without apiVersion and kind.
        object.types = None;
        object
    }

    #[test]
    fn a_remembered_spec_serves_its_generation_and_a_new_generation_is_decoded_again() {
        let mut memory = SpecMemory::default();
        let site = |pool: &StoredPool| pool.spec.as_ref().ok().map(|s| s.primary_site.clone());
        let first = memory.pool(Arc::new(object(3, |_| {}, None)), None);
        assert_eq!(site(&first).as_deref(), Some("atlanta"));
        // The same generation stands for the same spec: what the object holds is not read
        // again (here it differs, which the API server never stores under one generation).
        let dallas = |spec: &mut Value| spec["primarySite"] = json!("dallas");
        let same = memory.pool(Arc::new(object(3, dallas, None)), None);
        assert_eq!(site(&same).as_deref(), Some("atlanta"));
        let next = memory.pool(Arc::new(object(4, dallas, None)), None);
        assert_eq!(site(&next).as_deref(), Some("dallas"));
        // A spec that cannot be used is remembered as such for its generation; the next
        // generation (a fixed spec) is decoded again.
        let broken = |spec: &mut Value| spec["sites"] = json!("atlanta");
        assert!(
            memory
                .pool(Arc::new(object(5, broken, None)), None)
                .spec
                .is_err()
        );
        assert!(
            memory
                .pool(Arc::new(object(5, |_| {}, None)), None)
                .spec
                .is_err()
        );
        assert!(
            memory
                .pool(Arc::new(object(6, |_| {}, None)), None)
                .spec
                .is_ok()
        );
    }

    #[test]
    fn a_pool_decoded_whole_serves_the_passes_after_it_at_its_generation() {
        let mut memory = SpecMemory::default();
        memory.remember(&stored(|_| {}, None));
        let site = |pool: StoredPool| pool.spec.ok().map(|s| s.primary_site);
        // Generation 3 is remembered: the object's spec is not decoded again (here it
        // differs, which the API server never stores under one generation).
        let dallas = |spec: &mut Value| spec["primarySite"] = json!("dallas");
        let same = memory.pool(Arc::new(object(3, dallas, None)), None);
        assert_eq!(site(same).as_deref(), Some("atlanta"));
        let next = memory.pool(Arc::new(object(4, dallas, None)), None);
        assert_eq!(site(next).as_deref(), Some("dallas"));
    }

    #[test]
    fn a_stored_pool_decodes_with_its_metadata_and_status() {
        let pool = stored(
            |_| {},
            Some(json!({"phase": "Protected", "servingSite": "atlanta"})),
        );
        let spec = pool.spec.as_ref().expect("the example's spec decodes");
        assert_eq!(spec.primary_site, "atlanta");
        assert_eq!(pool.generation(), Some(3));
        assert_eq!(pool.uid().as_deref(), Some("b7c2"));
        assert_eq!(
            pool.status.and_then(|s| s.serving_site).as_deref(),
            Some("atlanta")
        );
    }

    #[test]
    fn a_duration_the_crd_now_refuses_names_its_field_and_keeps_the_status() {
        let pool = stored(
            |spec| spec["failover"]["unreachableAfter"] = json!("five minutes"),
            Some(json!({"phase": "Protected"})),
        );
        let reason = pool.spec.expect_err("the duration cannot be used");
        assert!(
            reason.contains("spec.failover.unreachableAfter"),
            "{reason}"
        );
        assert!(pool.status.is_some());
    }

    #[test]
    fn a_value_of_the_wrong_type_is_refused_not_a_panic() {
        let pool = stored(|spec| spec["sites"] = json!("atlanta"), None);
        let reason = pool.spec.expect_err("sites must be a list");
        assert!(!reason.is_empty());
    }

    #[test]
    fn an_unreadable_status_is_dropped_and_the_spec_still_decodes() {
        let pool = stored(|_| {}, Some(json!({"phase": 7})));
        assert!(pool.spec.is_ok());
        assert!(pool.status.is_none());
    }
}
