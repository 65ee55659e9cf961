//! When the next pass of a pool comes: every requeue the operator makes is decided here, from
//! what the pass did, so that the controller and local mode only carry the answer out.

use std::time::Duration;

use jiff::Timestamp;

use pchat_core::api::{ConditionType, PersistentChatPoolStatus, StepStatus};
use pchat_core::plan::{Decision, Step, WaitReason};

use super::{StepError, StepRun};

/// The next step of a transition follows at once, because every pause between steps is time
/// the pool spends half-switched (and, between the drain and the publish, time no chat server
/// can write).
pub const NEXT_STEP: Duration = Duration::ZERO;
/// After a step that also ran, the same way, in the pass before: the observation did not show
/// what it did, so coming back at once could send it in a tight loop.
pub const ACTIVE: Duration = Duration::from_secs(1);
/// While chat-server sessions drain: the drain is the chat outage of a planned switch, so the
/// engine looks again often. One look is one catalog batch per instance.
pub const DRAIN: Duration = Duration::from_millis(250);
/// The first look after the drain itself, when chat servers were connected. At the instant the
/// empty list is written none of them has read it, so a look at once only sees them all still
/// there, a pass spent inside the outage; a server told of the change (a watch, a notification)
/// has closed its sessions a few milliseconds later, so waiting the whole [`DRAIN`] would keep
/// the outage going for nothing.
pub const DRAIN_FIRST: Duration = Duration::from_millis(50);
/// When converged, blocked, invalid or suspended: nothing moves until the world or the spec
/// changes.
pub const IDLE: Duration = Duration::from_secs(30);
/// While waiting on something outside the operator outside a transition.
pub const WAIT: Duration = Duration::from_secs(5);
/// Bounds of the backoff after a retryable step error.
pub const BACKOFF_MIN: Duration = Duration::from_secs(2);
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// The intervals a mode may tune (the `run` command's flags); the rest are fixed above.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// While stalled before anything can be observed (a missing Secret or key: Secrets are not
    /// watched, the operator only reads the ones pools name).
    pub stalled_retry: Duration,
    /// A replica that does not lead looks again this often (and at once when it gains the
    /// lead).
    pub not_leader_retry: Duration,
    /// After a Kubernetes API failure outside a pass (reading the pool, writing status).
    pub error_retry: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            stalled_retry: Duration::from_secs(10),
            not_leader_retry: Duration::from_secs(10),
            error_retry: Duration::from_secs(5),
        }
    }
}

/// What the pass saw, besides its decision and step, that decides when to come back.
#[derive(Clone, Copy, Debug, Default)]
pub struct Seen {
    /// The assessment found the pool protected (mirrored and log shipped).
    pub protected: bool,
    /// A chat server had a session on the pool's databases.
    pub chat_servers_connected: bool,
}

/// When to come back after a pass that planned. A retryable error backs off by as long as the
/// same step has been failing (so the interval roughly doubles each time, between
/// [`BACKOFF_MIN`] and [`BACKOFF_MAX`]), measured from the step's `startedAt` in the previous
/// status: the engine keeps no memory of its own. The backoff is jittered per pool
/// ([`jittered`]), so pools failing together (a shared instance down) do not retry together.
pub fn after_plan(
    pool: &str,
    decision: &Decision,
    seen: Seen,
    step_ran: Option<&(Step, Result<StepRun, StepError>)>,
    previous: Option<&PersistentChatPoolStatus>,
    now: Timestamp,
) -> Duration {
    match (decision, step_ran) {
        (_, Some((step, Ok(_)))) if step.is_drain() && seen.chat_servers_connected => DRAIN_FIRST,
        (_, Some((step, Ok(_)))) if same_step_before(step, previous).is_some() => ACTIVE,
        (_, Some((_, Ok(_)))) => NEXT_STEP,
        (_, Some((step, Err(e)))) if e.retryable => {
            let failing_for = same_step_before(step, previous)
                .and_then(|s| s.started_at)
                .and_then(|t| now.duration_since(t).try_into().ok())
                .unwrap_or(Duration::ZERO);
            jittered(failing_for.clamp(BACKOFF_MIN, BACKOFF_MAX), pool, now)
        }
        (_, Some((_, Err(_)))) => IDLE,
        (Decision::Wait(WaitReason::Suspended), None) => IDLE,
        (Decision::Wait(WaitReason::Draining { .. }), None) => DRAIN,
        (Decision::Wait(WaitReason::PrimarySiteUnreachable { seconds_left, .. }), None) => {
            Duration::from_secs((*seconds_left).clamp(1, 5) as u64)
        }
        (Decision::Wait(_), None) => WAIT,
        // Converged but degraded: a mirror still synchronizing (seconds, right after a switch
        // or a bootstrap: the pool is Ready the moment it is done), or a secondary site away
        // (minutes or more: looked at as any wait).
        (Decision::Converged, None) if !seen.protected => match since_transition(previous, now) {
            Some(since) => settling(since),
            None => WAIT,
        },
        (Decision::Converged | Decision::Blocked(_), None) => IDLE,
        (Decision::Step(_), None) => ACTIVE,
    }
}

/// `interval` shortened by up to a fifth, by an amount drawn from the pool's name and `now`
/// (FNV-1a): the same for the same pool at the same moment, so the requeue stays a pure
/// function, but different between pools, so a hundred pools that failed at once come back
/// spread over a fifth of the interval instead of all at the same instant. Never longer than
/// `interval`, so the bounds above hold.
pub fn jittered(interval: Duration, pool: &str, now: Timestamp) -> Duration {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in pool.bytes().chain(now.as_nanosecond().to_le_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let fraction = (hash % 1000) as f64 / 1000.0 * 0.2;
    interval.mul_f64(1.0 - fraction)
}

/// Whether the pass left the pool waiting for its chat servers to leave: it cleared the
/// active-server list while they were connected, or it looked and found them still there. The
/// pool is then inside its chat outage, and the controller waits for the next look within the
/// same turn rather than queue again behind pools that have not drained theirs.
pub fn draining(
    decision: &Decision,
    step_ran: Option<&(Step, Result<StepRun, StepError>)>,
) -> bool {
    matches!(decision, Decision::Wait(WaitReason::Draining { .. }))
        || matches!(step_ran, Some((step, Ok(_))) if step.is_drain())
}

/// Whether the pool, as its last status shows it, is in the middle of a transition: one under
/// way (from its drain to its last step) or one ended less than [`SETTLING`] ago whose pool is
/// not Ready yet (its new mirror synchronizing). Such a pool's passes are short looks or the
/// transition's next steps, and every moment it waits is time half-switched (between the drain
/// and the publish, time no chat server can write): the controller gives it the next turn
/// before pools that have not started.
pub fn finishing_transition(previous: Option<&PersistentChatPoolStatus>, now: Timestamp) -> bool {
    let Some(transition) = previous.and_then(|p| p.transition.as_ref()) else {
        return false;
    };
    let ready = previous.is_some_and(|p| {
        p.conditions
            .iter()
            .any(|c| c.type_ == ConditionType::Ready.as_str() && c.status == "True")
    });
    let recent = match transition.completed_at {
        None => true,
        Some(at) => Duration::try_from(now.duration_since(at)).is_ok_and(|since| since < SETTLING),
    };
    recent && !ready
}

/// How long after a transition a degraded pool is looked at more often than every [`WAIT`]:
/// a new mirroring session reaches SYNCHRONIZED within seconds.
pub const SETTLING: Duration = Duration::from_secs(60);
/// The first look at a mirror synchronizing right after a transition's last step. The pool is
/// Ready the moment its mirrors are SYNCHRONIZED, and the time until it says so is part of
/// every switch a person (or a GitOps pipeline waiting on Ready) sees: a second's wait there
/// was most of a small pool's switch time.
pub const SETTLING_FIRST: Duration = Duration::from_millis(250);

/// While settling, the next look comes a quarter of the time since the transition ended
/// later: [`SETTLING_FIRST`] right after it, [`ACTIVE`] from four seconds on, so a mirror that
/// synchronizes at once is seen at once and one that takes long costs a catalog batch per
/// instance a second, not four.
fn settling(since: Duration) -> Duration {
    (since / 4).clamp(SETTLING_FIRST, ACTIVE)
}

/// How long ago the pool's last transition (or its first steps, when it has had none) ended,
/// when that is within [`SETTLING`]: zero when the previous status ran a step (or there is
/// none: the pool is bootstrapping).
fn since_transition(
    previous: Option<&PersistentChatPoolStatus>,
    now: Timestamp,
) -> Option<Duration> {
    let Some(previous) = previous else {
        return Some(Duration::ZERO);
    };
    if previous.step.is_some() {
        return Some(Duration::ZERO);
    }
    previous
        .transition
        .as_ref()
        .and_then(|t| t.completed_at)
        .and_then(|at| Duration::try_from(now.duration_since(at)).ok())
        .filter(|since| *since < SETTLING)
}

/// The previous pass's step, when it is `step` (same name, same detail). It may have failed
/// there (a retry that now succeeded) or succeeded with no visible effect; either way one
/// second's pause costs little and bounds a loop.
fn same_step_before<'a>(
    step: &Step,
    previous: Option<&'a PersistentChatPoolStatus>,
) -> Option<&'a StepStatus> {
    previous
        .and_then(|p| p.step.as_ref())
        .filter(|s| s.name == step.name() && s.detail == step.describe())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_converged_pool_still_degraded_is_looked_at_again_soon_and_sooner_right_after_a_switch() {
        let now: Timestamp = "2026-12-04T12:00:00Z".parse().unwrap();
        let degraded = |previous: Option<&PersistentChatPoolStatus>| {
            after_plan(
                "ns/pool",
                &Decision::Converged,
                Seen::default(),
                None,
                previous,
                now,
            )
        };
        let seen = Seen {
            protected: true,
            ..Seen::default()
        };
        let protected = after_plan("ns/pool", &Decision::Converged, seen, None, None, now);
        assert_eq!(protected, IDLE);
        assert_eq!(
            degraded(None),
            SETTLING_FIRST,
            "no status yet: the pool is bootstrapping"
        );
        let mut settled = PersistentChatPoolStatus::default();
        assert_eq!(degraded(Some(&settled)), WAIT, "a long-degraded pool");
        let completed = |seconds_ago: i64| {
            let mut status = settled.clone();
            status.transition = Some(pchat_core::api::Transition {
                from: "atlanta".into(),
                to: "dallas".into(),
                kind: pchat_core::api::TransitionKind::Planned,
                started_at: now - jiff::SignedDuration::from_secs(seconds_ago + 10),
                completed_at: Some(now - jiff::SignedDuration::from_secs(seconds_ago)),
                tail_lsn: None,
                data_loss: None,
            });
            status
        };
        assert_eq!(
            degraded(Some(&completed(0))),
            SETTLING_FIRST,
            "a mirror synchronizing right after a switch"
        );
        assert_eq!(degraded(Some(&completed(2))), Duration::from_millis(500));
        assert_eq!(
            degraded(Some(&completed(10))),
            ACTIVE,
            "a mirror still synchronizing seconds after a switch"
        );
        settled = completed(61);
        assert_eq!(degraded(Some(&settled)), WAIT, "a minute after the switch");
    }

    #[test]
    fn after_a_drain_the_first_look_waits_for_connected_chat_servers_to_read_the_list() {
        let now: Timestamp = "2026-12-04T12:00:00Z".parse().unwrap();
        let publish = |servers: Vec<String>| Step::PublishActiveServers {
            site: "dallas".into(),
            servers,
            pool_state: pchat_core::api::PoolState::Normal,
        };
        let ran = |step: Step| {
            (
                step,
                Ok(StepRun {
                    statements_sent: 0,
                    writes: 0,
                    elapsed: Duration::ZERO,
                }),
            )
        };
        let after = |step: Step, chat_servers_connected: bool| {
            let seen = Seen {
                chat_servers_connected,
                ..Seen::default()
            };
            let decision = Decision::Step(step.clone());
            after_plan("ns/pool", &decision, seen, Some(&ran(step)), None, now)
        };
        assert_eq!(after(publish(vec![]), true), DRAIN_FIRST);
        assert_eq!(
            after(publish(vec![]), false),
            NEXT_STEP,
            "no chat server to wait for: the switch goes on at once"
        );
        assert_eq!(
            after(publish(vec!["dal-pc1.litwareinc.com".into()]), true),
            NEXT_STEP,
            "publishing the new site's servers ends the outage; nothing to wait for"
        );
    }

    #[test]
    fn a_pool_drains_after_clearing_its_list_or_finding_sessions_and_not_after_publishing_servers()
    {
        let publish = |servers: Vec<String>| Step::PublishActiveServers {
            site: "dallas".into(),
            servers,
            pool_state: pchat_core::api::PoolState::Normal,
        };
        let ran = |step: Step, ok: bool| {
            let result = if ok {
                Ok(StepRun {
                    statements_sent: 0,
                    writes: 0,
                    elapsed: Duration::ZERO,
                })
            } else {
                Err(StepError {
                    message: "the ConfigMap write failed".into(),
                    retryable: true,
                    number: None,
                })
            };
            (step, result)
        };
        let drain = publish(vec![]);
        let cleared = ran(drain.clone(), true);
        assert!(draining(&Decision::Step(drain.clone()), Some(&cleared)));
        let failed = ran(drain.clone(), false);
        assert!(
            !draining(&Decision::Step(drain), Some(&failed)),
            "a drain that was not written drains no one"
        );
        let sessions_left = Decision::Wait(WaitReason::Draining {
            instance: "atl-sql1".into(),
            sessions: 2,
            seconds_left: 50,
        });
        assert!(draining(&sessions_left, None));
        let servers = publish(vec!["dal-pc1.litwareinc.com".into()]);
        let published = ran(servers.clone(), true);
        assert!(!draining(&Decision::Step(servers), Some(&published)));
        assert!(!draining(&Decision::Converged, None));
    }

    #[test]
    fn a_transition_under_way_or_just_ended_and_not_ready_is_finishing_and_nothing_else_is() {
        let now: Timestamp = "2026-12-04T12:00:00Z".parse().unwrap();
        let status = |completed_seconds_ago: Option<i64>, ready: &str| PersistentChatPoolStatus {
            transition: Some(pchat_core::api::Transition {
                from: "atlanta".into(),
                to: "dallas".into(),
                kind: pchat_core::api::TransitionKind::Planned,
                started_at: now - jiff::SignedDuration::from_secs(120),
                completed_at: completed_seconds_ago
                    .map(|ago| now - jiff::SignedDuration::from_secs(ago)),
                tail_lsn: None,
                data_loss: None,
            }),
            conditions: vec![k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
                type_: "Ready".into(),
                status: ready.into(),
                reason: "Switching".into(),
                message: String::new(),
                observed_generation: Some(2),
                last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now),
            }],
            ..PersistentChatPoolStatus::default()
        };
        assert!(finishing_transition(Some(&status(None, "False")), now));
        assert!(
            finishing_transition(Some(&status(Some(1), "False")), now),
            "its new mirror synchronizing"
        );
        assert!(
            !finishing_transition(Some(&status(Some(1), "True")), now),
            "Ready: nothing left to finish"
        );
        assert!(
            !finishing_transition(Some(&status(Some(120), "False")), now),
            "degraded long after its transition: an ordinary pool"
        );
        assert!(!finishing_transition(
            Some(&PersistentChatPoolStatus::default()),
            now
        ));
        assert!(!finishing_transition(None, now), "bootstrapping");
    }
}
