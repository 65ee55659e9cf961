//! Kubernetes Events for what a person watching `kubectl describe` / `kubectl get events` wants
//! to see: a transition starting and ending, a step failing, the pool stalling (a blocked
//! decision, an invalid spec, a missing Secret) and the stall clearing. Derived purely from the
//! previous status, the new one and the pass's step, so a pass that changes nothing says
//! nothing: a pool blocked for an hour gets one event, not one per pass.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::runtime::events::{Event, EventType, Recorder};

use crate::engine::{StepError, StepRun};
use pchat_core::api::{ConditionType, PersistentChatPoolStatus, Transition, TransitionKind};
use pchat_core::plan::Step;

/// One event to publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolEvent {
    pub warning: bool,
    /// UpperCamelCase, e.g. `TransitionStarted`.
    pub reason: String,
    /// What the operator was doing, UpperCamelCase (a step name, `Transition`, `Reconcile`).
    pub action: String,
    /// A sentence a person can act on.
    pub note: String,
}

fn stalled(status: Option<&PersistentChatPoolStatus>) -> Option<&Condition> {
    pchat_core::api::conditions::find(&status?.conditions, ConditionType::Stalled)
        .filter(|c| c.status == "True")
}

fn kind_word(k: TransitionKind) -> &'static str {
    match k {
        TransitionKind::Planned => "planned switch",
        TransitionKind::Forced => "forced failover",
    }
}

fn same_transition(a: &Transition, b: &Transition) -> bool {
    a.started_at == b.started_at && a.to == b.to
}

/// The events one pass warrants.
pub fn derive(
    previous: Option<&PersistentChatPoolStatus>,
    new: &PersistentChatPoolStatus,
    step_ran: Option<&(Step, Result<StepRun, StepError>)>,
) -> Vec<PoolEvent> {
    let mut out = Vec::new();
    let prev_t = previous.and_then(|p| p.transition.as_ref());
    if let Some(t) = &new.transition {
        let known = prev_t.filter(|p| same_transition(p, t));
        if known.is_none() {
            out.push(PoolEvent {
                warning: t.kind == TransitionKind::Forced,
                reason: "TransitionStarted".into(),
                action: "Transition".into(),
                note: format!(
                    "{} of the primary from {} to {} started; follow status.step and status.transition",
                    kind_word(t.kind),
                    t.from,
                    t.to
                ),
            });
        }
        if t.completed_at.is_some() && known.is_none_or(|p| p.completed_at.is_none()) {
            let mut note = format!(
                "{} of the primary from {} to {} completed: {} serves",
                kind_word(t.kind),
                t.from,
                t.to,
                t.to
            );
            if let Some(lsn) = &t.tail_lsn {
                note.push_str(&format!("; the new primary reached the tail LSN {lsn}"));
            }
            if let Some(loss) = &t.data_loss {
                note.push_str(&format!(
                    "; estimated data loss up to {} s",
                    loss.estimated_seconds
                ));
            }
            out.push(PoolEvent {
                warning: false,
                reason: "TransitionCompleted".into(),
                action: "Transition".into(),
                note,
            });
        }
    }
    if let Some((step, Err(e))) = step_ran {
        let what_next = if e.retryable {
            "it is retried with backoff"
        } else {
            "it will not clear by itself: repair the cause, the step is retried on the next pass"
        };
        out.push(PoolEvent {
            warning: true,
            reason: "StepFailed".into(),
            action: step.name().to_string(),
            note: format!("{} ({}) failed, {what_next}: {e}", step.name(), step.site()),
        });
    }
    let before = stalled(previous);
    match (before, stalled(Some(new))) {
        // A failed step already has its own event.
        (_, Some(now)) if now.reason == "StepFailed" => {}
        (Some(b), Some(now)) if b.reason == now.reason => {}
        (_, Some(now)) => out.push(PoolEvent {
            warning: true,
            reason: now.reason.clone(),
            action: "Reconcile".into(),
            note: now.message.clone(),
        }),
        (Some(b), None) => out.push(PoolEvent {
            warning: false,
            reason: "StallCleared".into(),
            action: "Reconcile".into(),
            note: format!("no longer stalled ({}); reconciling again", b.reason),
        }),
        (None, None) => {}
    }
    out
}

/// Notes are at most 1 kB (the Events API's limit).
fn truncate(note: &str) -> String {
    const MAX: usize = 1024;
    if note.len() <= MAX {
        return note.to_string();
    }
    let mut end = MAX - 3;
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &note[..end])
}

/// Publish `events` about the object `reference`. A failure is logged, not returned: status
/// already carries the same facts, and an Event is not worth a failed pass.
pub async fn publish(recorder: &Recorder, reference: &ObjectReference, events: Vec<PoolEvent>) {
    for e in events {
        let ev = Event {
            type_: if e.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: e.reason.clone(),
            note: Some(truncate(&e.note)),
            action: e.action.clone(),
            secondary: None,
        };
        if let Err(err) = recorder.publish(&ev, reference).await {
            tracing::warn!(reason = %e.reason, error = %err, "cannot publish an Event");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use pchat_core::api::DataLoss;

    fn transition(completed: bool) -> Transition {
        Transition {
            from: "atlanta".into(),
            to: "dallas".into(),
            kind: TransitionKind::Planned,
            started_at: "2026-11-26T12:00:00Z".parse().unwrap(),
            completed_at: completed.then(|| "2026-11-26T12:03:00Z".parse().unwrap()),
            tail_lsn: completed.then(|| "42000000012300001".into()),
            data_loss: None,
        }
    }

    fn with(t: Option<Transition>, stalled: Option<(&str, &str)>) -> PersistentChatPoolStatus {
        let conditions = stalled
            .map(|(reason, message)| Condition {
                type_: ConditionType::Stalled.to_string(),
                status: "True".into(),
                reason: reason.into(),
                message: message.into(),
                observed_generation: Some(1),
                last_transition_time: Time("2026-11-26T12:00:00Z".parse().unwrap()),
            })
            .into_iter()
            .collect();
        PersistentChatPoolStatus {
            transition: t,
            conditions,
            ..PersistentChatPoolStatus::default()
        }
    }

    fn reasons(events: &[PoolEvent]) -> Vec<&str> {
        events.iter().map(|e| e.reason.as_str()).collect()
    }

    #[test]
    fn a_transition_starts_once_and_completes_once() {
        let started = with(Some(transition(false)), None);
        let done = with(Some(transition(true)), None);
        let e = derive(Some(&with(None, None)), &started, None);
        assert_eq!(reasons(&e), ["TransitionStarted"]);
        assert!(
            e[0].note.contains("from atlanta to dallas"),
            "{}",
            e[0].note
        );
        assert!(!e[0].warning);
        assert!(derive(Some(&started), &started, None).is_empty());
        let e = derive(Some(&started), &done, None);
        assert_eq!(reasons(&e), ["TransitionCompleted"]);
        assert!(
            e[0].note.contains("tail LSN 42000000012300001"),
            "{}",
            e[0].note
        );
        assert!(derive(Some(&done), &done, None).is_empty());
    }

    #[test]
    fn a_new_transition_after_a_completed_one_is_a_new_start() {
        let done = with(Some(transition(true)), None);
        let mut back = transition(false);
        back.from = "dallas".into();
        back.to = "atlanta".into();
        back.started_at = "2026-11-26T13:00:00Z".parse().unwrap();
        let e = derive(Some(&done), &with(Some(back), None), None);
        assert_eq!(reasons(&e), ["TransitionStarted"]);
    }

    #[test]
    fn a_forced_failover_start_is_a_warning_and_its_end_reports_the_loss() {
        let mut t = transition(false);
        t.kind = TransitionKind::Forced;
        t.data_loss = Some(DataLoss {
            estimated_seconds: 240,
            last_restored_file: None,
        });
        let e = derive(None, &with(Some(t.clone()), None), None);
        assert!(e[0].warning);
        let mut done = t.clone();
        done.completed_at = Some("2026-11-26T12:09:00Z".parse().unwrap());
        let e = derive(Some(&with(Some(t), None)), &with(Some(done), None), None);
        assert_eq!(reasons(&e), ["TransitionCompleted"]);
        assert!(e[0].note.contains("240 s"), "{}", e[0].note);
    }

    #[test]
    fn a_failed_step_is_a_warning_naming_the_step_and_the_error() {
        let step = Step::CatchUp {
            site: "dallas".into(),
            instance: "dal-sql1".into(),
            database: "mgc".into(),
            files: vec![],
        };
        let err = StepError {
            message: "RESTORE LOG failed on dal-sql1: error 4305".into(),
            retryable: true,
            number: Some(4305),
        };
        let s = with(None, None);
        let e = derive(Some(&s), &s, Some(&(step, Err(err))));
        assert_eq!(reasons(&e), ["StepFailed"]);
        assert!(e[0].warning);
        assert_eq!(e[0].action, "CatchUp");
        assert!(e[0].note.contains("error 4305"), "{}", e[0].note);
        assert!(e[0].note.contains("retried"), "{}", e[0].note);
    }

    #[test]
    fn a_stall_is_reported_when_it_begins_or_changes_reason_and_its_clearing_once() {
        let ok = with(None, None);
        let blocked = with(None, Some(("DataLossNotAllowed", "allowDataLoss is false")));
        let blocked_again = with(
            None,
            Some(("DataLossNotAllowed", "allowDataLoss is false (10 s later)")),
        );
        let secret = with(
            None,
            Some(("SecretNotFound", "Secret chat/pchat-sql does not exist")),
        );
        let e = derive(Some(&ok), &blocked, None);
        assert_eq!(reasons(&e), ["DataLossNotAllowed"]);
        assert!(e[0].warning);
        assert!(derive(Some(&blocked), &blocked_again, None).is_empty());
        let e = derive(Some(&blocked), &secret, None);
        assert_eq!(reasons(&e), ["SecretNotFound"]);
        assert!(e[0].note.contains("chat/pchat-sql"));
        let e = derive(Some(&secret), &ok, None);
        assert_eq!(reasons(&e), ["StallCleared"]);
        assert!(!e[0].warning);
        assert!(derive(Some(&ok), &ok, None).is_empty());
        // A first pass that finds the Secret missing says so.
        assert_eq!(reasons(&derive(None, &secret, None)), ["SecretNotFound"]);
    }

    #[test]
    fn long_notes_are_cut_at_a_character_boundary() {
        let long = "é".repeat(1000);
        let t = truncate(&long);
        assert!(t.len() <= 1024);
        assert!(t.ends_with("..."));
    }
}
