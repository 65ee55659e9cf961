//! One reconcile pass, over the model-executor double: one step per pass, status and
//! conditions at each phase, transition facts, requeue intervals.

mod support;

use std::time::Duration;

use jiff::Timestamp;
use pchat_core::api::{
    PersistentChatPoolSpec, PersistentChatPoolStatus, Phase, PoolState, TransitionKind,
};
use pchat_core::plan::{self, Decision, Step};
use pchat_operator::engine::requeue;
use pchat_operator::engine::{
    MemoryPublisher, PassInput, PassReport, StepError, WriteGate, reconcile_once,
};
use support::engine::{ModelPort, at, observed, spec};

fn cond<'a>(
    s: &'a PersistentChatPoolStatus,
    t: &str,
) -> &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    s.conditions
        .iter()
        .find(|c| c.type_ == t)
        .unwrap_or_else(|| panic!("no {t} condition in {:?}", s.conditions))
}

fn is_true(s: &PersistentChatPoolStatus, t: &str) -> bool {
    cond(s, t).status == "True"
}

fn pass(
    spec: &PersistentChatPoolSpec,
    port: &mut ModelPort,
    publisher: &mut MemoryPublisher,
    now: Timestamp,
    previous: Option<&PersistentChatPoolStatus>,
) -> PassReport {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(reconcile_once(
        PassInput::new("engine-test", spec, Some(3), previous, now),
        port,
        publisher,
    ))
}

/// The engine's world from a fixture: its time, the SQL model seeded with it, and a publisher
/// holding what it says is published.
fn world(fixture: &str) -> (Timestamp, ModelPort, MemoryPublisher) {
    let obs = observed(fixture);
    let now = obs.taken_at;
    let publisher = MemoryPublisher::new(obs.published.clone());
    (now, ModelPort::new(obs), publisher)
}

/// Passes until the decision is no longer a step; every clock tick is `tick` seconds.
fn run_until_idle(
    spec: &PersistentChatPoolSpec,
    port: &mut ModelPort,
    publisher: &mut MemoryPublisher,
    mut now: Timestamp,
    tick: i64,
    mut previous: Option<PersistentChatPoolStatus>,
) -> Vec<PassReport> {
    let mut reports = Vec::new();
    for _ in 0..80 {
        let runs_before = port.run_calls;
        let r = pass(spec, port, publisher, now, previous.as_ref());
        assert!(
            port.run_calls - runs_before <= 1,
            "a pass ran more than one SQL step"
        );
        previous = Some(r.status.clone());
        let idle = !matches!(
            r.decision,
            Some(Decision::Step(_)) | Some(Decision::Wait(plan::WaitReason::Draining { .. }))
        );
        reports.push(r);
        if idle {
            return reports;
        }
        now = now
            .checked_add(jiff::SignedDuration::from_secs(tick))
            .unwrap();
    }
    panic!("no end after 80 passes");
}

#[test]
fn bootstrap_from_the_installer_state_converges_one_step_per_pass_and_ends_ready() {
    let spec = spec("atlanta");
    let obs = observed("observed-installer.yaml");
    let now = obs.taken_at;
    let expected = plan::project(&spec, &obs, now);
    assert_eq!(expected.end, Decision::Converged);
    let n = expected.steps.len();
    let mut port = ModelPort::new(obs);
    let mut publisher = MemoryPublisher::new(None);
    let reports = run_until_idle(&spec, &mut port, &mut publisher, now, 1, None);

    // N steps, then one pass that finds nothing to do.
    assert_eq!(reports.len(), n + 1);
    assert!(port.violations.is_empty(), "{:?}", port.violations);
    for (i, r) in reports[..n].iter().enumerate() {
        let (step, result) = r.step_ran.as_ref().expect("a step each pass");
        // Backup file names carry the pass's clock, so compare what and where.
        assert_eq!(
            (step.name(), step.instances()),
            (expected.steps[i].name(), expected.steps[i].instances())
        );
        assert!(result.is_ok());
        let st = r.status.step.as_ref().expect("step status");
        assert_eq!((st.index, st.total), (i as u32 + 1, n as u32), "{st:?}");
        assert_eq!(st.name, step.name());
        assert_eq!(r.status.phase, Some(Phase::Bootstrapping));
        assert!(is_true(&r.status, "Reconciling"));
        assert!(!is_true(&r.status, "Ready"));
        assert!(!is_true(&r.status, "Stalled"));
        // Each step differs from the one before: the next pass follows at once.
        assert_eq!(r.requeue_after, requeue::NEXT_STEP);
        assert_eq!(r.status.observed_generation, Some(3));
    }
    let last = reports.last().unwrap();
    assert_eq!(last.decision, Some(Decision::Converged));
    assert!(last.step_ran.is_none());
    assert_eq!(last.status.phase, Some(Phase::Protected));
    assert!(is_true(&last.status, "Ready"));
    assert!(is_true(&last.status, "Protected"));
    assert!(!is_true(&last.status, "Reconciling"));
    assert!(!is_true(&last.status, "Stalled"));
    assert!(!is_true(&last.status, "Degraded"));
    assert_eq!(last.requeue_after, requeue::IDLE);
    assert!(last.status.step.is_none());
    assert_eq!(last.status.serving_site.as_deref(), Some("atlanta"));
    assert_eq!(last.status.pool_state, Some(PoolState::Normal));
    assert_eq!(
        last.status.active_servers,
        ["atl-pc1.litwareinc.com", "atl-pc2.litwareinc.com"]
    );
    // Publishing went through the publisher, never through SQL.
    assert!(
        !port
            .steps
            .iter()
            .any(|s| matches!(s, Step::PublishActiveServers { .. }))
    );
    assert_eq!(
        publisher.get().map(|p| p.active_servers),
        Some(last.status.active_servers.clone())
    );
    for c in &last.status.conditions {
        assert_eq!(c.observed_generation, Some(3));
    }
    assert_eq!(last.status.instances.len(), 4);
    assert!(
        last.status.transition.is_none(),
        "a bootstrap is no transition"
    );
}

#[test]
fn an_invalid_spec_is_stalled_listing_every_violation_and_touches_no_sql_at_all() {
    let mut spec = spec("atlanta");
    spec.primary_site = "houston".into();
    spec.pool_fqdn = "not a name".into();
    let mut port = ModelPort::new(observed("observed-installer.yaml"));
    let mut publisher = MemoryPublisher::new(None);
    let r = pass(
        &spec,
        &mut port,
        &mut publisher,
        at("2026-11-26T12:00:00Z"),
        None,
    );
    assert_eq!((port.observe_calls, port.run_calls), (0, 0));
    assert_eq!(publisher.get(), None);
    assert_eq!(r.decision, None);
    assert!(r.step_ran.is_none());
    assert_eq!(r.status.phase, Some(Phase::Invalid));
    let stalled = cond(&r.status, "Stalled");
    assert_eq!(
        (stalled.status.as_str(), stalled.reason.as_str()),
        ("True", "InvalidSpec")
    );
    assert!(
        stalled.message.contains("spec.primarySite") && stalled.message.contains("spec.poolFqdn"),
        "{}",
        stalled.message
    );
    assert!(!is_true(&r.status, "Ready"));
    assert!(!is_true(&r.status, "Reconciling"));
    assert_eq!(r.requeue_after, requeue::IDLE);
}

#[test]
fn a_blocked_forced_failover_is_stalled_with_the_reason_and_the_estimate_before_it_happens() {
    let spec = spec("dallas");
    let (now, mut port, mut publisher) = world("observed-atlanta-down.yaml");
    let r = pass(&spec, &mut port, &mut publisher, now, None);
    assert_eq!(port.run_calls, 0);
    assert!(matches!(r.decision, Some(Decision::Blocked(_))));
    assert_eq!(r.status.phase, Some(Phase::Blocked));
    let stalled = cond(&r.status, "Stalled");
    assert_eq!(stalled.status, "True");
    assert_eq!(stalled.reason, "DataLossNotAllowed");
    assert!(
        stalled.message.contains("allowDataLoss"),
        "{}",
        stalled.message
    );
    assert!(!is_true(&r.status, "Reconciling"));
    assert!(is_true(&r.status, "Degraded"));
    let t = r.status.transition.expect("the transition is reported");
    assert_eq!((t.from.as_str(), t.to.as_str()), ("atlanta", "dallas"));
    assert_eq!(t.kind, TransitionKind::Forced);
    assert_eq!(t.data_loss.map(|l| l.estimated_seconds), Some(480));
    assert_eq!(t.completed_at, None);
    assert_eq!(r.requeue_after, requeue::IDLE);
}

#[test]
fn a_forced_failover_keeps_its_data_loss_window_after_it_completes() {
    let mut spec = spec("dallas");
    spec.failover.allow_data_loss = true;
    let (now, mut port, mut publisher) = world("observed-atlanta-down.yaml");
    let reports = run_until_idle(&spec, &mut port, &mut publisher, now, 1, None);
    let first = reports[0].status.transition.as_ref().expect("opened");
    assert_eq!(
        first.data_loss.as_ref().map(|l| l.estimated_seconds),
        Some(480)
    );
    assert_eq!(reports[0].status.phase, Some(Phase::FailingOver));
    let last = reports.last().unwrap();
    let t = last.status.transition.as_ref().expect("still reported");
    assert_eq!(t.kind, TransitionKind::Forced);
    assert_eq!(t.started_at, now);
    assert!(t.completed_at.is_some(), "{t:?}");
    let loss = t.data_loss.as_ref().expect("the window is reported after");
    assert_eq!(loss.estimated_seconds, 480);
    assert_eq!(
        loss.last_restored_file.as_deref(),
        Some(r"D:\pchat-ls-copy\mgc_20261126115000.trn")
    );
    assert_eq!(last.status.serving_site.as_deref(), Some("dallas"));
    assert_eq!(last.status.pool_state, Some(PoolState::FailedOver));
    // Atlanta is still down: the pool serves but is not protected.
    assert!(is_true(&last.status, "Degraded"));
    assert!(!is_true(&last.status, "Ready"));
}

#[test]
fn a_planned_switch_reports_the_tail_lsn_loses_nothing_and_requeues_short_until_converged() {
    let spec = spec("dallas");
    let (now, mut port, mut publisher) = world("observed-steady-atlanta.yaml");
    let reports = run_until_idle(&spec, &mut port, &mut publisher, now, 10, None);
    assert!(port.violations.is_empty(), "{:?}", port.violations);
    let demote = port
        .steps
        .iter()
        .position(|s| matches!(s, Step::DemoteOldPrimary { .. }))
        .expect("a tail-log backup");
    assert!(
        reports
            .iter()
            .any(|r| r.status.phase == Some(Phase::Switching))
    );
    // A pass that ran a step is followed at once, but the drain, when chat servers were
    // connected, is looked at again after a moment, and a drain wait within a quarter second;
    // nothing in a transition waits longer than five seconds.
    for r in &reports[..reports.len() - 1] {
        match (&r.step_ran, &r.decision) {
            (Some((step, Ok(_))), _) if step.is_drain() => {
                let obs = r.observation.as_ref().expect("observed");
                let expected = if plan::chat_servers_connected(&spec, obs) {
                    requeue::DRAIN_FIRST
                } else {
                    requeue::NEXT_STEP
                };
                assert_eq!(r.requeue_after, expected);
            }
            (Some((_, Ok(_))), _) => assert_eq!(r.requeue_after, requeue::NEXT_STEP),
            (None, Some(Decision::Wait(plan::WaitReason::Draining { .. }))) => {
                assert_eq!(r.requeue_after, requeue::DRAIN)
            }
            _ => assert!(
                r.requeue_after <= Duration::from_secs(5),
                "{:?}",
                r.decision
            ),
        }
        assert!(is_true(&r.status, "Reconciling"), "{:?}", r.decision);
    }
    let last = reports.last().unwrap();
    assert_eq!(last.decision, Some(Decision::Converged));
    assert_eq!(last.requeue_after, requeue::IDLE);
    assert!(is_true(&last.status, "Ready"));
    let t = last.status.transition.as_ref().expect("transition");
    assert_eq!(t.kind, TransitionKind::Planned);
    assert_eq!((t.from.as_str(), t.to.as_str()), ("atlanta", "dallas"));
    assert!(t.completed_at.is_some());
    assert_eq!(t.data_loss, None, "a planned switch loses nothing");
    let tail = match &port.steps[demote] {
        Step::DemoteOldPrimary { instance, .. } => instance.clone(),
        _ => unreachable!(),
    };
    assert_eq!(tail, "atl-sql1");
    let tail_lsn = t.tail_lsn.as_deref().expect("tail LSN reported");
    let recovered = port
        .world
        .database("dal-sql1", "mgc")
        .and_then(|d| d.lsn.fork_point)
        .expect("dallas recovered");
    assert_eq!(tail_lsn, recovered.to_string());
    // A failback later opens a new transition.
    let prev = last.status.clone();
    let back = run_until_idle(
        &support::engine::spec("atlanta"),
        &mut port,
        &mut publisher,
        now.checked_add(jiff::SignedDuration::from_secs(3600))
            .unwrap(),
        10,
        Some(prev),
    );
    let t2 = back.last().unwrap().status.transition.as_ref().unwrap();
    assert_eq!((t2.from.as_str(), t2.to.as_str()), ("dallas", "atlanta"));
    assert!(t2.completed_at.is_some());
}

#[test]
fn status_says_what_a_waiting_pass_waits_for_and_drops_it_once_a_step_runs() {
    let spec = spec("dallas");
    let (now, mut port, mut publisher) = world("observed-steady-atlanta.yaml");
    // One-second ticks: the chat servers' sessions are still there when the list empties.
    let reports = run_until_idle(&spec, &mut port, &mut publisher, now, 1, None);
    let waits: Vec<_> = reports
        .iter()
        .filter(|r| matches!(r.decision, Some(Decision::Wait(_))))
        .collect();
    assert!(!waits.is_empty(), "the switch never waited for a drain");
    for r in &waits {
        let why = r.status.waiting_for.as_deref().expect("waitingFor set");
        assert!(why.starts_with("draining:"), "{why}");
        assert!(why.contains("failover.drainTimeout"), "{why}");
    }
    for r in reports
        .iter()
        .filter(|r| !matches!(r.decision, Some(Decision::Wait(_))))
    {
        assert_eq!(r.status.waiting_for, None, "{:?}", r.decision);
    }
}

#[test]
fn a_retryable_step_error_backs_off_and_keeps_reconciling_a_fatal_one_stalls() {
    let spec = spec("atlanta");
    let obs = observed("observed-installer.yaml");
    let t0 = obs.taken_at;
    let mut port = ModelPort::new(obs);
    let mut publisher = MemoryPublisher::new(None);
    port.fail_next.push(StepError {
        message: "atl-sql1: SQL Server error 3101 running RESTORE".into(),
        retryable: true,
        number: Some(3101),
    });
    let r1 = pass(&spec, &mut port, &mut publisher, t0, None);
    assert!(matches!(&r1.step_ran, Some((_, Err(_)))));
    assert!(is_true(&r1.status, "Reconciling"));
    assert_eq!(cond(&r1.status, "Reconciling").reason, "StepRetrying");
    assert!(!is_true(&r1.status, "Stalled"));
    // Two seconds, less the pool's jitter (at most a fifth).
    let within = |d: Duration, backoff: Duration| d <= backoff && d >= backoff.mul_f64(0.8);
    assert!(
        within(r1.requeue_after, Duration::from_secs(2)),
        "{:?}",
        r1.requeue_after
    );
    // Still failing 20 s later: the wait grows with how long it has been failing.
    port.fail_next.push(StepError {
        message: "again".into(),
        retryable: true,
        number: Some(3101),
    });
    let t1 = t0.checked_add(jiff::SignedDuration::from_secs(20)).unwrap();
    let r2 = pass(&spec, &mut port, &mut publisher, t1, Some(&r1.status));
    assert!(
        within(r2.requeue_after, Duration::from_secs(20)),
        "{:?}",
        r2.requeue_after
    );
    assert_eq!(
        r2.status.step.as_ref().unwrap().index,
        1,
        "the same step, retried"
    );
    // A fatal error needs a person.
    port.fail_next.push(StepError {
        message: "atl-sql1: SQL Server error 3154".into(),
        retryable: false,
        number: Some(3154),
    });
    let r3 = pass(&spec, &mut port, &mut publisher, t1, Some(&r2.status));
    assert_eq!(r3.status.phase, Some(Phase::Blocked));
    let stalled = cond(&r3.status, "Stalled");
    assert_eq!(
        (stalled.status.as_str(), stalled.reason.as_str()),
        ("True", "StepFailed")
    );
    assert!(stalled.message.contains("3154"), "{}", stalled.message);
    assert!(!is_true(&r3.status, "Reconciling"));
    // Nothing ran in the model while the steps failed.
    assert!(port.steps.is_empty());
}

#[test]
fn condition_transition_times_stay_while_their_status_does_not_change() {
    let spec = spec("atlanta");
    let (t0, mut port, mut publisher) = world("observed-steady-atlanta.yaml");
    let r1 = pass(&spec, &mut port, &mut publisher, t0, None);
    assert_eq!(r1.decision, Some(Decision::Converged));
    let t1 = t0.checked_add(jiff::SignedDuration::from_secs(30)).unwrap();
    let r2 = pass(&spec, &mut port, &mut publisher, t1, Some(&r1.status));
    let ready1 = cond(&r1.status, "Ready");
    let ready2 = cond(&r2.status, "Ready");
    assert_eq!(ready2.status, "True");
    assert_eq!(ready1.last_transition_time, ready2.last_transition_time);
    assert_eq!(ready2.last_transition_time.0, t0);
    // Now invalid: Ready flips, its time moves.
    let mut bad = spec.clone();
    bad.primary_site = "houston".into();
    let r3 = pass(&bad, &mut port, &mut publisher, t1, Some(&r2.status));
    assert_eq!(cond(&r3.status, "Ready").last_transition_time.0, t1);
    // Reporting carried over from before the spec went bad.
    assert_eq!(r3.status.instances, r2.status.instances);
}

#[test]
fn salvage_backups_are_recorded_when_the_salvage_step_succeeds_and_never_dropped() {
    let mut spec = spec("dallas");
    spec.failover.allow_data_loss = true;
    let (now, mut port, mut publisher) = world("observed-atlanta-returns.yaml");
    let reports = run_until_idle(&spec, &mut port, &mut publisher, now, 1, None);
    let last = reports.last().unwrap();
    assert_eq!(last.decision, Some(Decision::Converged));
    let salvaged: Vec<&str> = port
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::SalvageStaleCopy { file, .. } => Some(file.as_str()),
            _ => None,
        })
        .collect();
    assert!(!salvaged.is_empty());
    let files: Vec<&str> = last
        .status
        .salvage_backups
        .iter()
        .map(|s| s.file.as_str())
        .collect();
    assert_eq!(files, salvaged);
    assert!(
        last.status
            .salvage_backups
            .iter()
            .any(|s| s.instance == "atl-sql1" && s.site == "atlanta" && s.database == "mgc")
    );
}

#[test]
fn pools_failing_at_the_same_moment_come_back_spread_over_a_fifth_of_their_backoff() {
    let now: jiff::Timestamp = "2026-12-04T10:00:00Z".parse().unwrap();
    let backoffs: Vec<std::time::Duration> = (0..100)
        .map(|i| requeue::jittered(requeue::BACKOFF_MAX, &format!("tenant-{i}/pchat"), now))
        .collect();
    assert!(
        backoffs
            .iter()
            .all(|b| *b <= requeue::BACKOFF_MAX && *b >= requeue::BACKOFF_MAX.mul_f64(0.8)),
        "{backoffs:?}"
    );
    let distinct: std::collections::BTreeSet<_> = backoffs.iter().collect();
    assert!(distinct.len() > 80, "{} distinct of 100", distinct.len());
    // The same pool at the same moment: the same answer (a pure function of its inputs).
    assert_eq!(
        requeue::jittered(requeue::BACKOFF_MAX, "tenant-1/pchat", now),
        backoffs[1]
    );
}

#[test]
fn the_backoff_of_a_step_that_keeps_failing_stops_growing_at_a_minute() {
    let spec = spec("atlanta");
    let obs = observed("observed-installer.yaml");
    let t0 = obs.taken_at;
    let mut port = ModelPort::new(obs);
    let mut publisher = MemoryPublisher::new(None);
    let retry = || StepError {
        message: "1418".into(),
        retryable: true,
        number: Some(1418),
    };
    port.fail_next.push(retry());
    let r1 = pass(&spec, &mut port, &mut publisher, t0, None);
    port.fail_next.push(retry());
    let later = t0
        .checked_add(jiff::SignedDuration::from_secs(600))
        .unwrap();
    let r2 = pass(&spec, &mut port, &mut publisher, later, Some(&r1.status));
    // A minute at most, less by the pool's jitter (at most a fifth).
    assert!(
        r2.requeue_after <= requeue::BACKOFF_MAX
            && r2.requeue_after >= requeue::BACKOFF_MAX.mul_f64(0.8),
        "{:?}",
        r2.requeue_after
    );
    // Once it succeeds, the next pass comes a second later (the same step ran, and failed, in
    // the pass before); after the next, different, step it comes at once.
    let r3 = pass(&spec, &mut port, &mut publisher, later, Some(&r2.status));
    assert!(matches!(r3.step_ran, Some((_, Ok(_)))));
    assert_eq!(r3.requeue_after, requeue::ACTIVE);
    let r4 = pass(&spec, &mut port, &mut publisher, later, Some(&r3.status));
    assert!(matches!(r4.step_ran, Some((_, Ok(_)))));
    assert_eq!(r4.requeue_after, requeue::NEXT_STEP);
}

#[test]
fn a_step_whose_effect_the_next_observation_does_not_show_is_not_sent_again_at_once() {
    let spec = spec("atlanta");
    let (now, mut port, mut publisher) = world("observed-installer.yaml");
    let untouched = port.world.clone();
    let r1 = pass(&spec, &mut port, &mut publisher, now, None);
    let (first, result) = r1.step_ran.clone().expect("a step");
    assert!(result.is_ok());
    assert_eq!(r1.requeue_after, requeue::NEXT_STEP);
    // The world looks as if the step had done nothing: the planner picks it again, and the
    // engine paces it instead of looping.
    port.world = untouched;
    let r2 = pass(&spec, &mut port, &mut publisher, now, Some(&r1.status));
    let (again, result) = r2.step_ran.clone().expect("a step");
    assert_eq!(again, first);
    assert!(result.is_ok());
    assert_eq!(r2.requeue_after, requeue::ACTIVE);
}

#[test]
fn an_unreadable_published_state_observes_nothing_and_retries_soon() {
    let dir = std::env::temp_dir().join(format!("pchat-engine-pub-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("active-servers.yaml");
    std::fs::write(&path, "activeServers: [x\n").unwrap();
    let mut publisher = pchat_operator::engine::FilePublisher::new(&path);
    let spec = spec("atlanta");
    let mut port = ModelPort::new(observed("observed-installer.yaml"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let r = rt.block_on(reconcile_once(
        PassInput::new(
            "engine-test",
            &spec,
            Some(1),
            None,
            at("2026-11-26T12:00:00Z"),
        ),
        &mut port,
        &mut publisher,
    ));
    assert_eq!((port.observe_calls, port.run_calls), (0, 0));
    assert_eq!(r.status.phase, Some(Phase::Waiting));
    let c = cond(&r.status, "Reconciling");
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("True", "PublishedStateUnreadable")
    );
    assert!(c.message.contains("active-servers.yaml"), "{}", c.message);
    assert!(r.requeue_after <= Duration::from_secs(5));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A gate that says no, as a replica whose Lease another replica has taken.
struct LeaseLost;

impl WriteGate for LeaseLost {
    fn may_write(&self) -> futures::future::BoxFuture<'_, bool> {
        Box::pin(async { false })
    }
}

#[test]
fn a_replica_that_may_no_longer_write_runs_no_step_and_publishes_nothing() {
    let spec = spec("atlanta");
    let (now, mut port, mut publisher) = world("observed-installer.yaml");
    let published_before = publisher.get();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let input = PassInput {
        gate: &LeaseLost,
        ..PassInput::new("engine-test", &spec, Some(3), None, now)
    };
    let report = rt.block_on(reconcile_once(input, &mut port, &mut publisher));
    assert!(
        matches!(report.decision, Some(Decision::Step(_))),
        "{:?}",
        report.decision
    );
    let (_, result) = report.step_ran.expect("the decided step is reported");
    let error = result.expect_err("the step was refused");
    assert!(
        error.retryable && error.message.contains("Lease"),
        "{error}"
    );
    assert_eq!(port.run_calls, 0, "a statement was sent");
    assert_eq!(publisher.get(), published_before);
}

#[test]
fn an_instance_unreachable_longer_than_unreachable_after_stalls_the_pool_naming_it() {
    let spec = spec("dallas");
    let (now, mut port, mut publisher) = world("observed-steady-atlanta.yaml");
    let down = port
        .world
        .instances
        .iter_mut()
        .find(|i| i.name == "dal-sql1")
        .expect("dal-sql1 in the fixture");
    down.reachability = pchat_core::observe::Reachability::Unreachable {
        reason: "connection refused".into(),
        since: now,
    };
    down.databases.clear();
    let first = pass(&spec, &mut port, &mut publisher, now, None);
    assert!(
        matches!(
            first.decision,
            Some(Decision::Wait(plan::WaitReason::InstanceUnreachable { .. }))
        ),
        "{:?}",
        first.decision
    );
    assert!(is_true(&first.status, "Reconciling"));
    assert!(!is_true(&first.status, "Stalled"));

    // Still unreachable once `unreachableAfter` has passed: a person must look.
    let limit = std::time::Duration::from(spec.failover.unreachable_after);
    let later = now
        .checked_add(jiff::SignedDuration::from_secs(limit.as_secs() as i64 + 1))
        .unwrap();
    let second = pass(&spec, &mut port, &mut publisher, later, Some(&first.status));
    assert_eq!(second.status.waiting_since, first.status.waiting_since);
    assert!(is_true(&second.status, "Stalled"), "{:?}", second.status);
    let stalled = cond(&second.status, "Stalled");
    assert_eq!(stalled.reason, "InstanceUnreachable");
    assert!(stalled.message.contains("dal-sql1"), "{}", stalled.message);
    assert!(
        stalled.message.contains("spec.failover.unreachableAfter"),
        "{}",
        stalled.message
    );
}
