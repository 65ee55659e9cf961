//! Faults during bootstrap and a planned switch, against the simulator over TDS: sessions that
//! will not leave, a mirror that cannot be reached (1418), the old primary's share down during
//! catch-up, and instances flapping between passes. Each pass is a fresh engine (see
//! `fault_support`), and every observation is checked against the safety rules.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use pchat_core::api::{Phase, TransitionKind};
use pchat_core::observe::MirroringState;
use pchat_core::plan::{Decision, Step};
use pchat_sim::faults::{Fault, FaultInjector};
use pchat_sim::workload::verify;
use support::faults::{Pool, eventually, primary_of};

/// Passes until the status shows `site` serving and Protected, with `between` run before each.
async fn switch_to(
    pool: &mut Pool,
    site: &str,
    limit: Duration,
    between: impl FnMut(&mut Pool, usize),
) {
    pool.set_primary(site);
    let report = pool.converge_with(limit, between).await;
    assert_eq!(
        report.status.serving_site.as_deref(),
        Some(site),
        "steps: {}",
        pool.step_names()
    );
    assert_eq!(report.status.phase, Some(Phase::Protected));
}

fn assert_safe(pool: &Pool) {
    assert!(
        pool.violations.is_empty(),
        "safety rules broken: {:#?}; steps: {}",
        pool.violations,
        pool.step_names()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_the_drain_cannot_remove_is_killed_when_the_tail_backup_answers_3101() {
    let mut pool = support::faults::start("stuck", "2s").await;
    pool.converge(Duration::from_secs(30)).await;
    // A reporting tool on mgc: not a chat server, so the drain neither waits for nor kills it.
    let mut stuck = support::faults::raw_session(&pool, "atl-sql1", "mgc").await;
    stuck.simple_query("SELECT 1").await.unwrap();
    switch_to(&mut pool, "dallas", Duration::from_secs(30), |_, _| {}).await;
    let demotes: Vec<_> = pool
        .steps
        .iter()
        .filter(
            |(s, _)| matches!(s, Step::DemoteOldPrimary { instance, .. } if instance == "atl-sql1"),
        )
        .collect();
    let Some((_, Ok(run))) = demotes.first() else {
        panic!(
            "the tail backup ends the session and retries within its step: {}",
            pool.step_names()
        );
    };
    // Beyond its own statements (each attempt counted as a write) the step sent the session
    // look-up and the KILL: the 3101 path, not the drain, ended the session.
    assert!(
        run.statements_sent >= run.writes + 2 && run.writes >= 2,
        "no KILL round: {run:?}"
    );
    assert!(
        stuck.simple_query("SELECT 1").await.is_err(),
        "the session holding mgc was ended"
    );
    assert_safe(&pool);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_answering_3101_ends_the_sessions_and_retries_within_the_step() {
    let mut pool = support::faults::start("inuse", "2s").await;
    pool.converge(Duration::from_secs(30)).await;
    // The copy being brought online on dallas is "in use" once.
    pool.inject(Fault::FailNext {
        instance: Some("dal-sql1".into()),
        pattern: "RESTORE DATABASE".into(),
        regex: false,
        error: 3101,
    });
    switch_to(&mut pool, "dallas", Duration::from_secs(30), |_, _| {}).await;
    let recovers: Vec<_> = pool
        .steps
        .iter()
        .filter(|(s, _)| matches!(s, Step::Recover { instance, .. } if instance == "dal-sql1"))
        .collect();
    assert!(!recovers.is_empty(), "steps: {}", pool.step_names());
    let Ok(run) = &recovers[0].1 else {
        panic!("3101 is answered inside the step: {:?}", recovers[0].1);
    };
    // The RESTORE was sent twice, with a session look-up between the attempts.
    assert!(
        run.writes >= 2 && run.statements_sent > run.writes,
        "no retry after 3101: {run:?}"
    );
    let faults = pool.sim.sim.describe();
    assert_eq!(faults["failNext"], serde_json::json!([]), "the fault fired");
    assert_safe(&pool);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_mirror_1418_leaves_the_pool_degraded_until_the_partition_heals() {
    let mut pool = support::faults::start("mirror1418", "2s").await;
    pool.inject(Fault::Partition {
        between: (vec!["atl-sql1".into()], vec!["atl-sql2".into()]),
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let refused = loop {
        let mut port = pool.fresh_port();
        let report = pool.pass(&mut port).await;
        if let Some((Step::EstablishMirroring { .. }, Err(e))) = &report.step_ran
            && e.number == Some(1418)
        {
            break report;
        }
        assert!(
            report.decision != Some(Decision::Converged),
            "converged although the mirror is cut off: {}",
            pool.step_names()
        );
        assert!(Instant::now() < deadline, "no 1418: {}", pool.step_names());
        support::faults::pause(&report).await;
    };
    let (_, err) = refused.step_ran.as_ref().unwrap();
    let err = err.as_ref().unwrap_err();
    assert!(err.retryable, "1418 clears when the network does: {err}");
    let degraded = refused
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == "Degraded")
        .expect("a Degraded condition");
    assert_eq!(degraded.status, "True", "{:#?}", refused.status);
    assert_ne!(refused.status.phase, Some(Phase::Protected));
    let text = serde_json::to_string(&refused.status).unwrap();
    assert!(text.contains("1418"), "status says why: {text}");

    pool.inject(Fault::Heal);
    let report = pool.converge(Duration::from_secs(30)).await;
    assert_eq!(report.status.phase, Some(Phase::Protected));
    let obs = report.observation.as_ref().unwrap();
    let m = obs
        .database("atl-sql1", "mgc")
        .and_then(|d| d.mirroring.as_ref())
        .expect("mgc mirrored after the heal");
    assert_eq!(m.state, MirroringState::Synchronized);
    assert_safe(&pool);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_old_primarys_share_down_during_catch_up_makes_the_switch_wait_and_say_why() {
    let mut pool = support::faults::start("sharedown", "2s").await;
    pool.converge(Duration::from_secs(30)).await;
    let workload = pool.workload();
    eventually("writes", 10, || workload.acked().len() >= 10).await;
    pool.set_primary("dallas");
    // Run the switch until catch-up is next, then take the atlanta file server away.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, decision) = pool.look().await;
        if matches!(decision, Decision::Step(Step::CatchUp { .. })) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no catch-up: {}",
            pool.step_names()
        );
        let mut port = pool.fresh_port();
        let report = pool.pass(&mut port).await;
        support::faults::pause(&report).await;
    }
    pool.inject(Fault::ShareDown {
        host: "atl-fs".into(),
    });
    let mut said = None;
    for _ in 0..6 {
        let mut port = pool.fresh_port();
        let report = pool.pass(&mut port).await;
        assert_ne!(report.decision, Some(Decision::Converged));
        assert_ne!(
            report.status.serving_site.as_deref(),
            Some("dallas"),
            "dallas serves without the tail of the log"
        );
        let text = serde_json::to_string(&report.status).unwrap();
        if text.contains("atl-fs") {
            said = Some(report.status.clone());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let said = said.expect("status names the unreachable share");
    let ready = said
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .expect("a Ready condition");
    // The reason names the share and the log backup the catch-up waits for.
    assert_eq!(ready.status, "False");
    assert!(
        ready.message.contains(r"\\atl-fs\pchat-ls") && ready.message.contains(".trn"),
        "{ready:?}"
    );
    assert_ne!(said.phase, Some(Phase::Protected));
    pool.inject(Fault::ShareUp {
        host: "atl-fs".into(),
    });
    let report = pool.converge(Duration::from_secs(30)).await;
    assert_eq!(report.status.serving_site.as_deref(), Some("dallas"));
    eventually("writes on dallas", 10, || {
        workload
            .acked()
            .iter()
            .any(|a| a.server.starts_with("dal-"))
    })
    .await;
    let acked = workload.stop().await;
    let copies = pool.serving_copies("dallas");
    let obs = report.observation.as_ref().unwrap();
    let primary = primary_of(&pool.spec, obs).unwrap();
    let report = verify(&acked, &copies);
    assert!(
        report.missing[&primary].is_empty(),
        "lost on {primary}: {report:?}"
    );
    assert_safe(&pool);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_flapping_between_passes_cause_no_wrong_step_and_the_switch_converges() {
    let mut pool = support::faults::start("flap", "2s").await;
    pool.converge(Duration::from_secs(30)).await;
    let workload = pool.workload();
    eventually("writes", 10, || workload.acked().len() >= 10).await;
    let names = ["atl-sql1", "dal-sql1", "atl-sql2", "dal-sql2"];
    // Before every even pass one instance goes down, before the next it comes back: each
    // instance is seen down by at least one observation, then the flapping stops.
    switch_to(&mut pool, "dallas", Duration::from_secs(60), |pool, n| {
        if n >= 16 {
            return;
        }
        let instance = names[(n / 2) % names.len()].to_string();
        if n % 2 == 0 {
            pool.inject(Fault::InstanceDown { instance });
        } else {
            pool.inject(Fault::InstanceUp { instance });
        }
    })
    .await;
    assert!(
        pool.saw_unreachable >= names.len(),
        "the engine saw each instance down: {} observations",
        pool.saw_unreachable
    );
    for (step, _) in &pool.steps {
        assert!(
            !matches!(
                step,
                Step::FenceStaleCopy { .. } | Step::SalvageStaleCopy { .. } | Step::Reseed { .. }
            ),
            "a planned switch took a forced-failover step: {}",
            pool.step_names()
        );
    }
    let status = pool.status.clone().unwrap();
    let t = status.transition.expect("transition reported");
    assert_eq!(t.kind, TransitionKind::Planned);
    assert_eq!(t.data_loss, None);
    eventually("writes on dallas", 10, || {
        workload
            .acked()
            .iter()
            .any(|a| a.server.starts_with("dal-"))
    })
    .await;
    let acked = workload.stop().await;
    let (obs, _) = pool.look().await;
    let primary = primary_of(&pool.spec, &obs).unwrap();
    let report = verify(&acked, &pool.serving_copies("dallas"));
    assert!(
        report.missing[&primary].is_empty(),
        "lost on {primary}: {report:?}"
    );
    assert_safe(&pool);
}

/// Every log line of this test binary, at every level.
fn captured() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("first subscriber");
        buf
    })
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sql_password_appears_in_no_log_line_at_any_level_across_a_switch() {
    let logs = captured();
    let mut pool = support::faults::start("secret", "2s").await;
    // A failing login and a failing statement log errors too.
    pool.inject(Fault::InstanceDown {
        instance: "dal-sql2".into(),
    });
    let mut port = pool.fresh_port();
    pool.pass(&mut port).await;
    pool.inject(Fault::InstanceUp {
        instance: "dal-sql2".into(),
    });
    pool.inject(Fault::FailNext {
        instance: None,
        pattern: "BACKUP DATABASE".into(),
        regex: false,
        error: 50000,
    });
    pool.converge(Duration::from_secs(30)).await;
    switch_to(&mut pool, "dallas", Duration::from_secs(30), |_, _| {}).await;
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).to_string();
    assert!(
        text.contains("step done") && text.contains("TRACE"),
        "the capture sees the engine's lines at every level"
    );
    assert!(text.contains("step failed"), "errors were logged");
    let hits: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(support::faults::PASSWORD))
        .collect();
    assert!(hits.is_empty(), "password logged: {hits:#?}");
}
