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

/// Whether writing `next` may wait for a later pass of the same turn, `written` being the
/// status the API server has (or will have once the turn's deferred write is made): true when
/// the two differ only in what moves from step to step (the step under way, what is waited
/// for, each instance's observed state, the protection figures, the conditions' messages).
///
/// A switch runs a dozen steps in one turn, each a few milliseconds of SQL; writing the status
/// after each was, in a storm of switches, most of the API server's work. What a status
/// records for good is written at once: the transition and its tail LSN and data-loss
/// estimate (seen before the failover, not derivable after it), the salvage backups, the
/// serving site, the published list and pool state, the phase, and each condition's status
/// and reason. A step that runs long still shows through its progress writes. The planner
/// decides from what it observes of the instances, never from a status: a replica that takes
/// over after a deferred write was lost starts from the last written one and loses nothing
/// but the report of a few steps.
pub fn deferrable(written: &PersistentChatPoolStatus, next: &PersistentChatPoolStatus) -> bool {
    fn condition_states(
        s: &PersistentChatPoolStatus,
    ) -> impl Iterator<Item = (&String, &String, &String, Option<i64>)> {
        s.conditions
            .iter()
            .map(|c| (&c.type_, &c.status, &c.reason, c.observed_generation))
    }
    written.observed_generation == next.observed_generation
        && written.pool_state == next.pool_state
        && written.serving_site == next.serving_site
        && written.phase == next.phase
        && written.active_servers == next.active_servers
        && written.transition == next.transition
        && written.salvage_backups == next.salvage_backups
        && condition_states(written).eq(condition_states(next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
    use pchat_core::api::{Phase, StepStatus, Transition, TransitionKind};

    fn switching() -> PersistentChatPoolStatus {
        PersistentChatPoolStatus {
            phase: Some(Phase::Switching),
            observed_generation: Some(2),
            serving_site: Some("atlanta".into()),
            transition: Some(Transition {
                from: "atlanta".into(),
                to: "dallas".into(),
                kind: TransitionKind::Planned,
                started_at: "2026-12-04T12:00:00Z".parse().unwrap(),
                completed_at: None,
                tail_lsn: None,
                data_loss: None,
            }),
            conditions: vec![Condition {
                type_: "Ready".into(),
                status: "False".into(),
                reason: "Switching".into(),
                message: "step 2 of 12: remove database mirroring".into(),
                observed_generation: Some(2),
                last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    "2026-12-04T12:00:00Z".parse().unwrap(),
                ),
            }],
            ..PersistentChatPoolStatus::default()
        }
    }

    #[test]
    fn a_status_that_only_moves_to_the_next_step_may_wait_but_a_recorded_fact_may_not() {
        let written = switching();
        let mut next = written.clone();
        next.step = Some(StepStatus {
            name: "RemoveMirroring".into(),
            site: Some("atlanta".into()),
            index: 2,
            total: 12,
            started_at: None,
            detail: "remove database mirroring of mgc".into(),
            progress: None,
        });
        next.waiting_for = Some("sessions to drain".into());
        next.conditions[0].message = "step 3 of 12: take the tail-log backup".into();
        assert!(deferrable(&written, &next));

        let mut tail = next.clone();
        tail.transition.as_mut().unwrap().tail_lsn = Some("34000000001000016".into());
        assert!(
            !deferrable(&written, &tail),
            "the tail LSN is written at once"
        );
        let mut serving = next.clone();
        serving.serving_site = Some("dallas".into());
        assert!(!deferrable(&written, &serving));
        let mut published = next.clone();
        published.active_servers = vec!["dal-pc1.litwareinc.com".into()];
        assert!(!deferrable(&written, &published));
        let mut ready = next;
        ready.conditions[0].status = "True".into();
        assert!(!deferrable(&written, &ready));
    }

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
