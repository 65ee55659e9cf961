//! Status assembly: from one pass's observation, assessment and step outcome to the
//! `PersistentChatPoolStatus` that is written. Reporting only: the planner never reads it.
//!
//! Conditions follow kstatus: `Ready`, `Reconciling`, `Stalled`, plus the pool's own `Protected`
//! and `Degraded` ([`ConditionType`]). Every pass writes all five, whatever path it took: a pass
//! that observed nothing carries `Protected` and `Degraded` over from the last status, so that
//! neither vanishes nor restarts its `lastTransitionTime` (an alert on `Protected` keeps its
//! state). A condition's `lastTransitionTime` is kept while its status stays the same.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::{StepError, StepRun};
use pchat_core::api::{
    ConditionReason, ConditionType, DatabaseStatus, InstanceStatus, PersistentChatPoolSpec,
    PersistentChatPoolStatus, Phase, Protection, SalvageBackup, StepStatus, Transition,
};
use pchat_core::observe::{Observation, Reachability};
use pchat_core::plan::{Assessment, Decision, Step, WaitReason};

/// Everything one pass knows, for status.
pub(super) struct Inputs<'a> {
    pub spec: &'a PersistentChatPoolSpec,
    pub generation: Option<i64>,
    pub obs: &'a Observation,
    pub assessment: &'a Assessment,
    /// Steps left in the plan, counting the decided one (0 when the decision is not a step).
    pub remaining_steps: usize,
    pub step_ran: Option<(&'a Step, &'a Result<StepRun, StepError>)>,
    pub previous: Option<&'a PersistentChatPoolStatus>,
    pub now: Timestamp,
}

/// One condition as this pass sees it, before times and generation are filled in.
struct Cond {
    type_: ConditionType,
    status: ConditionStatus,
    reason: String,
    message: String,
}

/// A condition's status as Kubernetes spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ConditionStatus {
    True,
    False,
    Unknown,
}

impl ConditionStatus {
    fn as_str(self) -> &'static str {
        match self {
            ConditionStatus::True => "True",
            ConditionStatus::False => "False",
            ConditionStatus::Unknown => "Unknown",
        }
    }
}

impl From<bool> for ConditionStatus {
    fn from(value: bool) -> Self {
        if value {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        }
    }
}

/// The status when the spec cannot be used, for the reason given (violations, or a manifest
/// that does not parse).
pub(super) fn invalid_because(
    reason: &str,
    generation: Option<i64>,
    previous: Option<&PersistentChatPoolStatus>,
    now: Timestamp,
) -> PersistentChatPoolStatus {
    let message = format!("the spec is invalid, no SQL is sent until it is fixed: {reason}");
    let reason = ConditionReason::InvalidSpec;
    let conds = vec![
        cond(ConditionType::Ready, false, reason, &message),
        cond(
            ConditionType::Reconciling,
            false,
            reason,
            "nothing is done until the spec is fixed",
        ),
        cond(ConditionType::Stalled, true, reason, &message),
    ];
    carried_over(previous, generation, Phase::Invalid, None, conds, now)
}

/// The status when something a person must provide is missing before anything can be observed
/// (a Secret or one of its keys): phase Blocked, Stalled with `reason` and `message` (which
/// names the object and the key), and everything observed before carried over untouched.
pub(super) fn stalled_because(
    reason: ConditionReason,
    message: &str,
    generation: Option<i64>,
    previous: Option<&PersistentChatPoolStatus>,
    now: Timestamp,
) -> PersistentChatPoolStatus {
    let conds = vec![
        cond(ConditionType::Ready, false, reason, message),
        cond(
            ConditionType::Reconciling,
            false,
            reason,
            "nothing is observed or sent until this is fixed",
        ),
        cond(ConditionType::Stalled, true, reason, message),
    ];
    carried_over(previous, generation, Phase::Blocked, None, conds, now)
}

/// The status of a pass that stopped on something that may clear by itself (the published
/// state or the Secrets could not be read): Reconciling with `reason`, nothing observed.
pub(super) fn retrying(
    reason: ConditionReason,
    message: &str,
    generation: Option<i64>,
    previous: Option<&PersistentChatPoolStatus>,
    now: Timestamp,
) -> PersistentChatPoolStatus {
    let conds = vec![
        cond(ConditionType::Ready, false, reason, message),
        cond(ConditionType::Reconciling, true, reason, message),
        cond(ConditionType::Stalled, false, reason, ""),
    ];
    carried_over(
        previous,
        generation,
        Phase::Waiting,
        Some((reason, message.to_string())),
        conds,
        now,
    )
}

/// The status of a pass that observed nothing: what the previous status said of the world,
/// carried over untouched, with this pass's generation, phase, wait and kstatus conditions;
/// `Protected` and `Degraded` say what the last observation said (Unknown when there was none).
fn carried_over(
    previous: Option<&PersistentChatPoolStatus>,
    generation: Option<i64>,
    phase: Phase,
    waiting_for: Option<(ConditionReason, String)>,
    mut conds: Vec<Cond>,
    now: Timestamp,
) -> PersistentChatPoolStatus {
    let mut status = previous.cloned().unwrap_or_default();
    for type_ in [ConditionType::Protected, ConditionType::Degraded] {
        conds.push(last_observed(&status.conditions, type_));
    }
    status.observed_generation = generation;
    status.phase = Some(phase);
    let kind = waiting_for.as_ref().map(|(kind, _)| kind.as_str());
    (status.waiting_kind, status.waiting_since) = wait_dates(previous, kind, now);
    status.waiting_for = waiting_for.map(|(_, message)| message);
    status.conditions = merge_conditions(&status.conditions, conds, generation, now);
    status
}

/// The kind of wait and since when: the date is kept from the previous status while the kind
/// stays the same, so that a wait's length can be told.
fn wait_dates(
    previous: Option<&PersistentChatPoolStatus>,
    kind: Option<&str>,
    now: Timestamp,
) -> (Option<String>, Option<Timestamp>) {
    let Some(kind) = kind else {
        return (None, None);
    };
    let since = previous
        .filter(|p| p.waiting_kind.as_deref() == Some(kind))
        .and_then(|p| p.waiting_since)
        .unwrap_or(now);
    (Some(kind.to_string()), Some(since))
}

/// The condition of `type_` as the last observation left it, or Unknown when there is none.
fn last_observed(previous: &[Condition], type_: ConditionType) -> Cond {
    match pchat_core::api::conditions::find(previous, type_) {
        Some(c) => Cond {
            type_,
            status: match c.status.as_str() {
                "True" => ConditionStatus::True,
                "False" => ConditionStatus::False,
                _ => ConditionStatus::Unknown,
            },
            reason: c.reason.clone(),
            message: c.message.clone(),
        },
        None => Cond {
            type_,
            status: ConditionStatus::Unknown,
            reason: ConditionReason::NotObserved.to_string(),
            message: "the pool has not been observed yet".to_string(),
        },
    }
}

/// The status after a pass that observed and planned.
pub(super) fn assemble(i: &Inputs) -> PersistentChatPoolStatus {
    let a = i.assessment;
    let fatal = i
        .step_ran
        .and_then(|(_, r)| r.as_ref().err())
        .filter(|e| !e.retryable);
    let phase = if fatal.is_some() {
        Phase::Blocked
    } else {
        a.phase
    };
    let mut active_servers = i
        .obs
        .published
        .as_ref()
        .map(|p| p.active_servers.clone())
        .unwrap_or_default();
    let mut pool_state = a.pool_state;
    if let Some((
        Step::PublishActiveServers {
            servers,
            pool_state: ps,
            ..
        },
        Ok(_),
    )) = i.step_ran
    {
        active_servers = servers.clone();
        pool_state = Some(*ps);
    }
    let mut salvage_backups = i
        .previous
        .map(|p| p.salvage_backups.clone())
        .unwrap_or_default();
    if let Some((
        Step::SalvageStaleCopy {
            site,
            instance,
            database,
            file,
        },
        Ok(_),
    )) = i.step_ran
        && !salvage_backups.iter().any(|s| &s.file == file)
    {
        salvage_backups.push(SalvageBackup {
            site: site.clone(),
            instance: instance.clone(),
            database: database.clone(),
            file: file.clone(),
            taken_at: i.now,
        });
    }
    let wait_kind: Option<&'static str> = match &a.decision {
        Decision::Wait(w) => Some(w.into()),
        _ => None,
    };
    let (waiting_kind, waiting_since) = wait_dates(i.previous, wait_kind, i.now);
    let conds = conditions(i, phase, fatal, waiting_since);
    let previous_conditions = i.previous.map(|p| p.conditions.as_slice()).unwrap_or(&[]);
    PersistentChatPoolStatus {
        observed_generation: i.generation,
        pool_state,
        serving_site: a.serving_site.clone(),
        phase: Some(phase),
        step: step_status(i),
        waiting_for: match &a.decision {
            Decision::Wait(w) => Some(w.to_string()),
            _ => None,
        },
        waiting_since,
        waiting_kind,
        active_servers,
        transition: transition(i),
        protection: protection(i.spec, i.obs),
        instances: instances(i.spec, i.obs),
        salvage_backups,
        conditions: merge_conditions(previous_conditions, conds, i.generation, i.now),
    }
}

/// The step under way, numbered within the plan: the index goes on from the previous status's
/// step while a plan runs, and restarts at 1 when the previous pass had no step.
fn step_status(i: &Inputs) -> Option<StepStatus> {
    let prev = i.previous.and_then(|p| p.step.as_ref());
    let Decision::Step(step) = &i.assessment.decision else {
        // Waiting or blocked mid-plan: the last step stays reported; converged: none.
        return match i.assessment.decision {
            Decision::Converged => None,
            _ => prev.cloned(),
        };
    };
    let remaining = i.remaining_steps.max(1) as u32;
    let detail = step.describe();
    let (index, started_at) = match prev {
        Some(p) if p.name == step.name() && p.detail == detail => {
            (p.index, p.started_at.or(Some(i.now)))
        }
        Some(p) => (p.index + 1, Some(i.now)),
        None => (1, Some(i.now)),
    };
    Some(StepStatus {
        name: step.name().to_string(),
        site: Some(step.site().to_string()),
        index,
        total: index - 1 + remaining,
        started_at,
        detail,
        progress: None,
    })
}

/// The move of the primary: opened when the assessment first sees one towards the declared
/// primary site, its facts (tail LSN, data-loss estimate) kept as they are seen, and completed
/// when the pool has converged or the primary site serves again with no transition under way
/// (a forced failover ends with the old site still down, which is not Converged).
fn transition(i: &Inputs) -> Option<Transition> {
    let a = i.assessment;
    let primary = &i.spec.primary_site;
    let mut t = i.previous.and_then(|p| p.transition.clone());
    if let Some(kind) = a.transition_kind {
        let open = t
            .as_ref()
            .is_some_and(|t| t.completed_at.is_none() && &t.to == primary);
        if !open {
            let from = i
                .spec
                .other_site(primary)
                .map(|s| s.name.clone())
                .unwrap_or_default();
            t = Some(Transition {
                from,
                to: primary.clone(),
                kind,
                started_at: i.now,
                completed_at: None,
                tail_lsn: None,
                data_loss: None,
            });
        }
        if let Some(t) = t.as_mut() {
            // A planned switch whose old site goes down midway becomes a forced failover.
            t.kind = kind;
            if let Some(lsn) = a.tail_lsn {
                t.tail_lsn = Some(lsn.to_string());
            }
            if let Some(loss) = &a.estimated_data_loss {
                t.data_loss = Some(loss.clone());
            }
        }
    }
    let done = a.decision == Decision::Converged
        || (a.transition_kind.is_none() && a.serving_site.as_deref() == Some(primary.as_str()));
    if let Some(t) = t.as_mut()
        && done
        && t.completed_at.is_none()
        && &t.to == primary
    {
        t.completed_at = Some(i.now);
    }
    t
}

/// Log-shipping figures: the primary side's last backup, the secondary's last restore and
/// latency.
fn protection(spec: &PersistentChatPoolSpec, obs: &Observation) -> Option<Protection> {
    let chat = &spec.databases.chat;
    let mut p = Protection::default();
    for inst in &obs.instances {
        let Some(d) = inst.database(chat) else {
            continue;
        };
        if let Some(lsp) = &d.log_shipping_primary
            && p.last_backup_file.is_none()
        {
            p.last_backup_file = lsp.last_backup_file.clone();
        }
        if let Some(lss) = &d.log_shipping_secondary
            && p.last_restored_file.is_none()
        {
            p.last_restored_file = lss.last_restored_file.clone();
            p.restore_latency_seconds =
                lss.last_restored_latency_minutes.map(|m| u64::from(m) * 60);
        }
    }
    (p != Protection::default()).then_some(p)
}

fn instances(spec: &PersistentChatPoolSpec, obs: &Observation) -> Vec<InstanceStatus> {
    spec.instances()
        .map(|(site, inst)| {
            let o = obs.instance(&inst.name);
            let (reachable, reason) = match o.map(|o| &o.reachability) {
                Some(Reachability::Reachable) => (true, None),
                Some(Reachability::Unreachable { reason, .. }) => (false, Some(reason.clone())),
                None => (false, Some("not observed".to_string())),
            };
            let databases = o
                .map(|o| {
                    o.databases
                        .iter()
                        .map(|d| DatabaseStatus {
                            name: d.name.clone(),
                            state: screaming(&d.state),
                            mirroring_role: d.mirroring.as_ref().map(|m| screaming(&m.role)),
                            mirroring_state: d.mirroring.as_ref().map(|m| screaming(&m.state)),
                        })
                        .collect()
                })
                .unwrap_or_default();
            InstanceStatus {
                name: inst.name.clone(),
                site: site.name.clone(),
                reachable,
                reason,
                databases,
            }
        })
        .collect()
}

/// SQL Server's own spelling of an enum (`ONLINE`, `SYNCHRONIZED`), as the model serializes it.
fn screaming<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// How long a wait that needs a person has lasted past `spec.failover.unreachableAfter`, when
/// it has: an instance that stays unreachable or a share that cannot be read does not come back
/// by itself, so the pool is Stalled (kstatus Failed) rather than Reconciling forever. The
/// engine goes on looking all the same. Drains and the primary site's `unreachableAfter` wait
/// end by themselves and never stall.
fn needs_a_person(
    i: &Inputs,
    waiting_since: Option<Timestamp>,
) -> Option<(&'static str, String, u64)> {
    let Decision::Wait(w) = &i.assessment.decision else {
        return None;
    };
    if !matches!(
        w,
        WaitReason::InstanceUnreachable { .. } | WaitReason::LocationUnreadable { .. }
    ) {
        return None;
    }
    let waited = i.now.duration_since(waiting_since?);
    let limit = std::time::Duration::from(i.spec.failover.unreachable_after);
    let waited_secs = u64::try_from(waited.as_secs()).ok()?;
    (waited_secs >= limit.as_secs()).then(|| (w.into(), w.to_string(), waited_secs))
}

fn conditions(
    i: &Inputs,
    phase: Phase,
    fatal: Option<&StepError>,
    waiting_since: Option<Timestamp>,
) -> Vec<Cond> {
    let a = i.assessment;
    let in_phase = ConditionReason::InPhase(phase);
    let retry = i
        .step_ran
        .and_then(|(s, r)| r.as_ref().err().map(|e| (s, e)))
        .filter(|(_, e)| e.retryable);

    let ready = a.protected && fatal.is_none();
    let ready_c = if ready {
        cond(
            ConditionType::Ready,
            true,
            ConditionReason::Protected,
            &format!("{} serves and is protected", i.spec.primary_site),
        )
    } else {
        cond(
            ConditionType::Ready,
            false,
            in_phase,
            &a.decision.to_string(),
        )
    };

    let reconciling = match (&a.decision, fatal) {
        (_, Some(_)) => cond(
            ConditionType::Reconciling,
            false,
            ConditionReason::StepFailed,
            "",
        ),
        (Decision::Step(step), None) => match retry {
            Some((_, e)) => cond(
                ConditionType::Reconciling,
                true,
                ConditionReason::StepRetrying,
                &format!("{} failed and will be retried: {e}", step.name()),
            ),
            None => cond(
                ConditionType::Reconciling,
                true,
                in_phase,
                &format!("{}: {}", step.name(), step.describe()),
            ),
        },
        (Decision::Wait(WaitReason::Suspended), None) => cond(
            ConditionType::Reconciling,
            false,
            ConditionReason::Suspended,
            &a.decision.to_string(),
        ),
        (Decision::Wait(w), None) => cond(
            ConditionType::Reconciling,
            true,
            ConditionReason::Waiting(w.into()),
            &w.to_string(),
        ),
        (Decision::Converged | Decision::Blocked(_), None) => {
            cond(ConditionType::Reconciling, false, in_phase, "")
        }
    };

    let stalled = match (&a.decision, fatal) {
        (_, Some(e)) => {
            let step = i.step_ran.map(|(s, _)| s.name()).unwrap_or_default();
            cond(
                ConditionType::Stalled,
                true,
                ConditionReason::StepFailed,
                &format!(
                    "{step} failed with an error that will not clear by itself; repair it, then the step is retried on the next pass: {e}"
                ),
            )
        }
        (Decision::Blocked(b), None) => cond(
            ConditionType::Stalled,
            true,
            ConditionReason::Blocked(b.into()),
            &b.to_string(),
        ),
        (Decision::Wait(_), None) => match needs_a_person(i, waiting_since) {
            Some((kind, what, waited)) => cond(
                ConditionType::Stalled,
                true,
                ConditionReason::Waiting(kind),
                &format!(
                    "{what}; waiting for {waited}s, longer than spec.failover.unreachableAfter: \
                     it will not clear by itself, a person must look (the operator keeps trying)"
                ),
            ),
            None => cond(ConditionType::Stalled, false, in_phase, ""),
        },
        _ => cond(ConditionType::Stalled, false, in_phase, ""),
    };

    let protected = if a.protected {
        cond(
            ConditionType::Protected,
            true,
            ConditionReason::Protected,
            "mirroring synchronized and log shipping within rpoTarget",
        )
    } else if a.degraded_reasons.is_empty() {
        cond(
            ConditionType::Protected,
            false,
            in_phase,
            &a.decision.to_string(),
        )
    } else {
        cond(
            ConditionType::Protected,
            false,
            ConditionReason::Degraded,
            &a.degraded_reasons.join("; "),
        )
    };

    let degraded = if a.degraded_reasons.is_empty() {
        cond(
            ConditionType::Degraded,
            false,
            ConditionReason::AsDesired,
            "",
        )
    } else {
        cond(
            ConditionType::Degraded,
            true,
            ConditionReason::Degraded,
            &a.degraded_reasons.join("; "),
        )
    };

    vec![ready_c, reconciling, stalled, protected, degraded]
}

fn cond(type_: ConditionType, status: bool, reason: ConditionReason, message: &str) -> Cond {
    Cond {
        type_,
        status: status.into(),
        reason: reason.to_string(),
        message: message.to_string(),
    }
}

/// The new conditions, each keeping its previous `lastTransitionTime` when its status did not
/// change.
fn merge_conditions(
    previous: &[Condition],
    new: Vec<Cond>,
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    new.into_iter()
        .map(|c| {
            let status = c.status.as_str().to_string();
            let last_transition_time = previous
                .iter()
                .find(|p| p.type_ == c.type_.as_str() && p.status == status)
                .map(|p| p.last_transition_time.clone())
                // Kubernetes `Time` carries whole seconds: truncating here keeps a status
                // equal to itself after a round trip through YAML or the API server.
                .unwrap_or_else(|| Time(whole_seconds(now)));
            Condition {
                type_: c.type_.as_str().to_string(),
                status,
                reason: c.reason,
                message: c.message,
                observed_generation: generation,
                last_transition_time,
            }
        })
        .collect()
}

fn whole_seconds(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second()).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stalled_because_names_the_reason_keeps_what_was_observed_and_sets_every_generation() {
        let t0: Timestamp = "2026-11-26T12:00:00Z".parse().unwrap();
        let previous = PersistentChatPoolStatus {
            serving_site: Some("atlanta".into()),
            active_servers: vec!["atl-pc1.litwareinc.com".into()],
            ..PersistentChatPoolStatus::default()
        };
        let msg = "Secret chat/pchat-sql does not exist";
        let s = stalled_because(
            ConditionReason::SecretNotFound,
            msg,
            Some(4),
            Some(&previous),
            t0,
        );
        assert_eq!(s.phase, Some(Phase::Blocked));
        assert_eq!(s.observed_generation, Some(4));
        assert_eq!(s.serving_site.as_deref(), Some("atlanta"));
        assert_eq!(s.active_servers, previous.active_servers);
        let stalled = s.conditions.iter().find(|c| c.type_ == "Stalled").unwrap();
        assert_eq!(
            (
                stalled.status.as_str(),
                stalled.reason.as_str(),
                stalled.message.as_str()
            ),
            ("True", "SecretNotFound", msg)
        );
        assert!(
            s.conditions
                .iter()
                .all(|c| c.observed_generation == Some(4))
        );
        let ready = s.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(ready.status, "False");
        // The time a condition turned true is kept while it stays true.
        let later = stalled_because(
            ConditionReason::SecretNotFound,
            msg,
            Some(4),
            Some(&s),
            t0 + jiff::SignedDuration::from_secs(30),
        );
        let again = later
            .conditions
            .iter()
            .find(|c| c.type_ == "Stalled")
            .unwrap();
        assert_eq!(again.last_transition_time, stalled.last_transition_time);
    }

    #[test]
    fn a_pass_that_observed_nothing_keeps_protected_and_degraded_with_their_times() {
        let t0: Timestamp = "2026-11-26T12:00:00Z".parse().unwrap();
        let protected_since = Time(t0);
        let previous = PersistentChatPoolStatus {
            conditions: vec![
                Condition {
                    type_: "Protected".into(),
                    status: "True".into(),
                    reason: "Protected".into(),
                    message: "mirroring synchronized".into(),
                    observed_generation: Some(3),
                    last_transition_time: protected_since.clone(),
                },
                Condition {
                    type_: "Degraded".into(),
                    status: "False".into(),
                    reason: "AsDesired".into(),
                    message: String::new(),
                    observed_generation: Some(3),
                    last_transition_time: protected_since.clone(),
                },
            ],
            ..PersistentChatPoolStatus::default()
        };
        let later = t0 + jiff::SignedDuration::from_secs(600);
        let stalled = stalled_because(
            ConditionReason::SecretNotFound,
            "Secret chat/pchat-sql does not exist",
            Some(4),
            Some(&previous),
            later,
        );
        let types: Vec<&str> = stalled
            .conditions
            .iter()
            .map(|c| c.type_.as_str())
            .collect();
        assert_eq!(
            types,
            ["Ready", "Reconciling", "Stalled", "Protected", "Degraded"]
        );
        let protected =
            pchat_core::api::conditions::find(&stalled.conditions, ConditionType::Protected)
                .unwrap();
        assert_eq!(protected.status, "True");
        assert_eq!(protected.last_transition_time, protected_since);
        assert_eq!(protected.observed_generation, Some(4));
        // With no earlier observation, Protected is Unknown rather than absent.
        let first = invalid_because("spec.sites: required", Some(1), None, later);
        let unknown =
            pchat_core::api::conditions::find(&first.conditions, ConditionType::Protected).unwrap();
        assert_eq!(
            (unknown.status.as_str(), unknown.reason.as_str()),
            ("Unknown", "NotObserved")
        );
    }
}
