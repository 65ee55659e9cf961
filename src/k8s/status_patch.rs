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
/// status the API server has (or will have once the turn's deferred write is made): true
/// unless `next` records something that cannot be told again later.
///
/// A switch runs a dozen steps in one turn, each a few milliseconds of SQL; writing the status
/// after each was, in a storm of switches, most of the API server's work (a status patch costs
/// it about 10 ms of CPU: server-side apply, the CRD's rules, etcd, the watches). What is
/// written at once: the transition's facts seen before its failover and not derivable after it
/// (the tail LSN and the data-loss estimate), a transition record that goes away or changes
/// its start (a reversed switch), and the salvage backups (where the overwritten data went).
/// Everything else the status says waits for the turn's last pass, which is at most
/// `STEPS_IN_ONE_TURN` plus `DRAIN_IN_ONE_TURN` later and, in a switch, a few hundred
/// milliseconds: the step, what is waited for, the serving site, the published list and pool
/// state, the phase, the conditions, the transition's completion time, and a new
/// `observedGeneration` with the start of the transition it asks for (the drain's pass; the
/// tail LSN, a step or two later, writes both). Until then the stored status shows the old
/// `observedGeneration`, which kstatus readers (Argo CD, Flux, `kubectl wait`) take as "not
/// yet observed", as they do between an apply and any controller's first pass. A step that
/// runs long still shows through its progress writes. The planner decides from what it
/// observes of the instances, never from a status: a replica that takes over after a deferred
/// write was lost starts from the last written one and loses nothing but the report of a few
/// steps (and, for a transition whose start was not yet written, its start time: the new
/// leader stamps its own).
pub fn deferrable(written: &PersistentChatPoolStatus, next: &PersistentChatPoolStatus) -> bool {
    let transition_may_wait = match (&written.transition, &next.transition) {
        (None, None) => true,
        (Some(_), None) => false,
        (Some(old), Some(new))
            if (&old.from, &old.to, old.kind, old.started_at)
                == (&new.from, &new.to, new.kind, new.started_at) =>
        {
            (&old.tail_lsn, &old.data_loss) == (&new.tail_lsn, &new.data_loss)
        }
        // A transition starting: its start may wait, facts already seen may not.
        (_, Some(new)) => new.tail_lsn.is_none() && new.data_loss.is_none(),
    };
    transition_may_wait && written.salvage_backups == next.salvage_backups
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

    /// `status` with its transition's data-loss estimate (a forced failover's) recorded.
    fn with_loss_estimate(mut status: PersistentChatPoolStatus) -> PersistentChatPoolStatus {
        status.transition.as_mut().unwrap().data_loss = Some(pchat_core::api::DataLoss {
            estimated_seconds: 12,
            last_restored_file: None,
        });
        status
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
        let loss = with_loss_estimate(next.clone());
        assert!(
            !deferrable(&written, &loss),
            "the data-loss estimate is written at once"
        );
        let mut salvage = next.clone();
        salvage.salvage_backups = vec![pchat_core::api::SalvageBackup {
            site: "atlanta".into(),
            instance: "atl-sql1".into(),
            database: "mgc".into(),
            file: "\\\\atl-fs\\pchat-ls\\salvage\\mgc.bak".into(),
            taken_at: "2026-12-04T12:00:01Z".parse().unwrap(),
        }];
        assert!(!deferrable(&written, &salvage));
        let mut dropped = next.clone();
        dropped.transition = None;
        assert!(
            !deferrable(&written, &dropped),
            "a transition record that goes away is written at once"
        );
        let mut reversed = next.clone();
        let transition = reversed.transition.as_mut().unwrap();
        (transition.from, transition.to) = ("dallas".into(), "atlanta".into());
        transition.started_at = "2026-12-04T12:00:02Z".parse().unwrap();
        assert!(
            deferrable(&written, &reversed),
            "a reversal's start waits like any start"
        );
        reversed.transition.as_mut().unwrap().tail_lsn = Some("34000000002000016".into());
        assert!(!deferrable(&written, &reversed), "its tail LSN does not");
    }

    #[test]
    fn a_new_generation_and_the_start_of_its_transition_wait_for_the_turns_last_pass() {
        let mut protected = switching();
        protected.phase = Some(Phase::Protected);
        protected.observed_generation = Some(1);
        let earlier = protected.transition.as_mut().unwrap();
        earlier.started_at = "2026-12-04T11:00:00Z".parse().unwrap();
        earlier.completed_at = Some("2026-12-04T11:00:01Z".parse().unwrap());
        earlier.tail_lsn = Some("34000000000900016".into());
        let drained = switching();
        assert!(
            deferrable(&protected, &drained),
            "the drain's status (generation 2, a new transition) waits"
        );
        assert!(
            deferrable(&PersistentChatPoolStatus::default(), &drained),
            "so does the first transition of a pool"
        );
        let forced = with_loss_estimate(drained.clone());
        assert!(
            !deferrable(&protected, &forced),
            "a forced failover's estimate, seen at its start, does not"
        );
    }

    #[test]
    fn what_the_next_pass_observes_again_waits_for_the_turns_last_pass() {
        let written = switching();
        let mut next = written.clone();
        next.serving_site = Some("dallas".into());
        next.active_servers = vec!["dal-pc1.litwareinc.com".into()];
        next.pool_state = Some(pchat_core::api::PoolState::FailedOver);
        next.phase = Some(Phase::Reprotecting);
        next.conditions[0].reason = "Reprotecting".into();
        next.transition.as_mut().unwrap().completed_at =
            Some("2026-12-04T12:00:01Z".parse().unwrap());
        assert!(deferrable(&written, &next));
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
