//! Writing a pool's status: server-side apply of the whole status on the status subresource,
//! under the operator's field manager, forced (the operator is the only author of status; a
//! conflict could only come from a hand edit, which the next pass would contradict anyway).

use kube::Api;
use kube::api::{DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

use super::FIELD_MANAGER;
use pchat_core::api::PersistentChatPoolStatus;

/// The apply body: type, name and the status, nothing of the spec (so the operator never takes
/// ownership of a spec field).
pub fn body(name: &str, status: &PersistentChatPoolStatus) -> Value {
    json!({
        "apiVersion": "persistentchat.io/v1alpha1",
        "kind": "PersistentChatPool",
        "metadata": { "name": name },
        "status": status,
    })
}

/// Apply `status` to the pool `name` (through the untyped API: the answer is the stored
/// object, which need not decode as a typed pool).
pub async fn apply(
    api: &Api<DynamicObject>,
    name: &str,
    status: &PersistentChatPoolStatus,
) -> Result<DynamicObject, kube::Error> {
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch_status(name, &params, &Patch::Apply(body(name, status)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use pchat_core::api::Phase;

    #[test]
    fn the_apply_body_carries_type_and_status_and_no_spec() {
        let status = PersistentChatPoolStatus {
            phase: Some(Phase::Protected),
            observed_generation: Some(3),
            ..PersistentChatPoolStatus::default()
        };
        let b = body("atl-cs-001", &status);
        assert_eq!(b["apiVersion"], "persistentchat.io/v1alpha1");
        assert_eq!(b["kind"], "PersistentChatPool");
        assert_eq!(b["status"]["phase"], "Protected");
        assert_eq!(b["status"]["observedGeneration"], 3);
        assert!(b.get("spec").is_none());
        assert_eq!(b["metadata"], json!({"name": "atl-cs-001"}));
    }
}
