//! Crash and resume: a planned switch atlanta -> dallas under a chat workload, with the engine
//! dropped after every pass (each pass is a fresh engine: a new port, no connection, nothing
//! remembered but the active-servers file and the status it wrote) and killed inside every
//! multi-statement step, after a number of its statements chosen by the seed. The switch must
//! converge, lose no acknowledged message, and break no safety rule at any observed instant.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use pchat_core::api::Phase;
use pchat_core::observe::MirroringState;
use pchat_core::plan::{Decision, invariants};
use pchat_sim::faults::Fault;
use pchat_sim::server::StatementKind;
use pchat_sim::workload::verify;
use support::faults::{eventually, primary_of, statement_count};

/// SplitMix64: a small deterministic generator, so a failing seed replays exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    fn between(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }
}

/// Prints the seed when the test panics inside it, so the failure can be replayed with
/// `PCHAT_CRASH_SEED=<seed>`.
struct SeedGuard(u64);

impl Drop for SeedGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("crash-and-resume failed with seed {}", self.0);
        }
    }
}

/// Added to every BACKUP and ALTER DATABASE during the switch, so that a pass killed at a random
/// time tends to die inside a step's statements rather than after them.
const LATENCY_MS: u64 = 25;

/// Where the engine died inside a multi-statement step.
#[derive(Debug)]
#[allow(dead_code)] // read through Debug in the test's output
enum Interruption {
    /// The first `ran` of the step's `of` statements ran, then the engine died.
    AfterStatements { step: String, of: usize, ran: usize },
    /// The engine's pass was dropped `after_ms` into it (`finished`: it had already ended).
    PassKilled {
        step: String,
        of: usize,
        after_ms: u64,
        finished: bool,
    },
}

impl Interruption {
    fn step(&self) -> &str {
        match self {
            Interruption::AfterStatements { step, .. } | Interruption::PassKilled { step, .. } => {
                step
            }
        }
    }
}

/// What one seeded run did.
struct Run {
    interrupted: Vec<Interruption>,
    acknowledged: usize,
}

async fn switch_with_crashes(seed: u64) -> Run {
    let _guard = SeedGuard(seed);
    let mut rng = Rng(seed);
    let mut pool = support::faults::start(&format!("crash{seed}"), "5s").await;
    pool.converge(Duration::from_secs(30)).await;
    let workload = pool.workload();
    eventually("the workload writes to atlanta", 10, || {
        workload.acked().len() >= 10
    })
    .await;
    let before_switch = workload.acked().len();

    // Not RESTORE or EXEC: observation reads backup headers and share listings with those.
    for statement in [StatementKind::Backup, StatementKind::AlterDatabase] {
        pool.inject(Fault::Latency {
            statement,
            millis: LATENCY_MS,
        });
    }
    pool.set_primary("dallas");
    let mut interrupted = Vec::new();
    // Each multi-statement step is interrupted the first time it is planned (the resumed
    // engine may plan it again: then it runs to the end, repeating what already ran).
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        assert!(
            Instant::now() < deadline,
            "seed {seed}: switch not converged; interrupted {interrupted:?}; steps: {}",
            pool.step_names()
        );
        let (obs, decision) = pool.look().await;
        if let Decision::Step(step) = &decision {
            let n = statement_count(step, &obs);
            if n > 1 && seen.insert(format!("{}|{}", step.name(), step.describe())) {
                if rng.next().is_multiple_of(2) {
                    let k = rng.between(1, n - 1);
                    let ran = pool.run_partially(step, &obs, k).await;
                    interrupted.push(Interruption::AfterStatements {
                        step: step.name().to_string(),
                        of: n,
                        ran,
                    });
                } else {
                    // Kill the engine's own pass somewhere inside the step's statements
                    // (each slowed by LATENCY): possibly mid-statement, the answer unread.
                    let observing = pool.look_took();
                    let ms = rng.between(0, n * LATENCY_MS as usize);
                    let cut = observing + Duration::from_millis(ms as u64);
                    let mut port = pool.fresh_port();
                    let finished = pool.pass_cut(&mut port, cut).await.is_some();
                    interrupted.push(Interruption::PassKilled {
                        step: step.name().to_string(),
                        of: n,
                        after_ms: cut.as_millis() as u64,
                        finished,
                    });
                }
                // The engine died: no status written, no connection kept.
                continue;
            }
        }
        let mut port = pool.fresh_port();
        let report = pool.pass(&mut port).await;
        drop(port);
        let status = &report.status;
        if report.decision == Some(Decision::Converged)
            && status.serving_site.as_deref() == Some("dallas")
        {
            assert_eq!(status.phase, Some(Phase::Protected), "{status:#?}");
            break;
        }
        support::faults::pause(&report).await;
    }

    // Chat servers of dallas write again, and the mirror catches up, before the count.
    eventually("the workload writes to dallas", 10, || {
        workload.acked().len() >= before_switch + 10
    })
    .await;
    let acked = workload.stop().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let obs = loop {
        let (obs, _) = pool.look().await;
        let synced = obs
            .instances
            .iter()
            .flat_map(|i| &i.databases)
            .filter_map(|d| d.mirroring.as_ref())
            .all(|m| m.state == MirroringState::Synchronized);
        if synced {
            break obs;
        }
        assert!(Instant::now() < deadline, "mirrors not synchronized");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let unmet = invariants::converged_violations(&pool.spec, &obs);
    assert!(unmet.is_empty(), "seed {seed}: converged but {unmet:?}");
    let primary = primary_of(&pool.spec, &obs).expect("one writable chat copy");
    assert!(
        primary.starts_with("dal-"),
        "seed {seed}: primary {primary}"
    );
    let copies = pool.serving_copies("dallas");
    assert_eq!(copies.len(), 2, "both dallas copies: {:?}", copies.keys());
    let report = verify(&acked, &copies);
    assert!(
        report.nothing_lost(),
        "seed {seed}: acknowledged messages lost: {:?}; steps: {}",
        report.missing,
        pool.step_names()
    );
    assert!(
        pool.violations.is_empty(),
        "seed {seed}: safety rules broken: {:#?}",
        pool.violations
    );
    Run {
        interrupted,
        acknowledged: report.acknowledged,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planned_switch_under_load_resumes_and_loses_nothing_after_a_crash_anywhere() {
    let seeds: Vec<u64> = match std::env::var("PCHAT_CRASH_SEED") {
        Ok(s) => vec![s.parse().expect("PCHAT_CRASH_SEED is a number")],
        Err(_) => (1..=20).collect(),
    };
    let mut steps_interrupted = BTreeSet::new();
    // A few seeds at a time, each with its own simulator: a run mostly waits on the
    // simulator's pumps and the pauses between passes, so this cuts wall time, not coverage.
    for batch in seeds.chunks(4) {
        let runs = futures::future::join_all(batch.iter().map(|&seed| async move {
            let started = Instant::now();
            (seed, switch_with_crashes(seed).await, started.elapsed())
        }))
        .await;
        for (seed, run, took) in runs {
            assert!(
                !run.interrupted.is_empty(),
                "seed {seed}: no multi-statement step was interrupted"
            );
            eprintln!(
                "seed {seed}: {} acknowledged, interrupted {:?} in {took:?}",
                run.acknowledged, run.interrupted,
            );
            steps_interrupted.extend(run.interrupted.iter().map(|i| i.step().to_string()));
        }
    }
    eprintln!("steps interrupted across seeds: {steps_interrupted:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_seed_stopped_between_its_two_restores_is_seeded_again_not_mirrored() {
    let mut pool = support::faults::start("halfseed", "2s").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    // Bootstrap until the first mirror seed, then die after its full-backup restore.
    let (step, obs) = loop {
        let (obs, decision) = pool.look().await;
        if let Decision::Step(step @ pchat_core::plan::Step::SeedMirror { .. }) = decision {
            break (step, obs);
        }
        assert!(
            Instant::now() < deadline,
            "no SeedMirror: {}",
            pool.step_names()
        );
        let mut port = pool.fresh_port();
        let report = pool.pass(&mut port).await;
        support::faults::pause(&report).await;
    };
    assert_eq!(statement_count(&step, &obs), 3);
    assert_eq!(pool.run_partially(&step, &obs, 2).await, 2);
    // The copy is RESTORING at the full backup's end: SET PARTNER would answer 1478 forever.
    let report = pool.converge(Duration::from_secs(20)).await;
    assert_eq!(report.status.phase, Some(Phase::Protected));
    assert!(
        pool.steps.iter().all(|(_, r)| r.is_ok()),
        "no step failed (no EstablishMirroring on a half-seeded copy): {}",
        pool.step_names()
    );
    assert!(pool.violations.is_empty(), "{:#?}", pool.violations);
}
