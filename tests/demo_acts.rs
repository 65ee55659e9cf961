//! The demo's five acts against the in-process simulator, each as its own test: a shared helper
//! builds the world and plays the acts before it, then the test asserts the act's SQL end state
//! (through the engine's last observation) and its message accounting. Plus the `demo` binary
//! end to end.

use pchat_core::api::{Phase, PoolState};
use pchat_core::observe::{DatabaseState, MirroringRole, MirroringState, Observation};
use pchat_operator::demo::World;
use pchat_operator::demo::acts::{ActOutcome, play};

/// A fresh world with acts 1..=n played; returns the outcome of act n. Every act before n must
/// have done its job.
async fn world_after(n: usize) -> (World, ActOutcome) {
    let mut world = World::start().await.expect("the demo world starts");
    let mut accepted_loss = Vec::new();
    for k in 1..=n {
        let outcome = play(&mut world, k, &accepted_loss).await;
        if k < n {
            assert!(
                outcome.problems.is_empty(),
                "act {k} failed: {:?}",
                outcome.problems
            );
        }
        if k == 4 {
            accepted_loss.extend(outcome.accounting.as_ref().unwrap().lost.clone());
        }
        if k == n {
            return (world, outcome);
        }
    }
    unreachable!("n >= 1")
}

fn last_observation(world: &World) -> Observation {
    world
        .last
        .as_ref()
        .and_then(|r| r.observation.clone())
        .expect("the engine observed the pool")
}

fn state(obs: &Observation, instance: &str) -> DatabaseState {
    obs.database(instance, "mgc")
        .unwrap_or_else(|| panic!("mgc observed on {instance}"))
        .state
}

/// `site_primary` serves mgc and mgccomp ONLINE, mirrored (SYNCHRONIZED) to `site_mirror`;
/// `secondary` is a RESTORING log-shipping secondary of it; `chat_servers` are published with
/// `pool_state`; the pool is Protected; nothing was lost; no safety rule broke.
fn assert_protected(
    world: &World,
    act: &ActOutcome,
    primary: &str,
    mirror: &str,
    secondary_candidates: &[&str],
    chat_servers: [&str; 2],
    pool_state: PoolState,
) {
    assert!(act.problems.is_empty(), "{:?}", act.problems);
    assert!(world.violations.is_empty(), "{:?}", world.violations);
    let obs = last_observation(world);
    for db in ["mgc", "mgccomp"] {
        let d = obs.database(primary, db).unwrap();
        assert_eq!(d.state, DatabaseState::Online, "{db} on {primary}");
        let m = d.mirroring.as_ref().expect("mirrored");
        assert_eq!(m.role, MirroringRole::Principal);
        assert_eq!(m.state, MirroringState::Synchronized);
        assert!(m.partner_instance.eq_ignore_ascii_case(mirror), "{m:?}");
        assert_eq!(
            obs.database(mirror, db).unwrap().state,
            DatabaseState::Restoring
        );
    }
    // The log-shipping secondary is whichever candidate the planner chose (after an outage, a
    // copy that can continue the chain is used as it is; otherwise the first is reseeded).
    let secondary = *secondary_candidates
        .iter()
        .find(|c| {
            obs.database(c, "mgc")
                .is_some_and(|d| d.log_shipping_secondary.is_some())
        })
        .unwrap_or_else(|| panic!("no log-shipping secondary among {secondary_candidates:?}"));
    assert_eq!(state(&obs, secondary), DatabaseState::Restoring);
    // Any other candidate's ONLINE copy is fenced from chat servers and was salvaged.
    let status = world.status.as_ref().unwrap();
    for other in secondary_candidates.iter().filter(|c| **c != secondary) {
        if let Some(d) = obs.database(other, "mgc")
            && d.state == DatabaseState::Online
        {
            assert!(d.read_only, "{other} not fenced");
            assert!(
                status.salvage_backups.iter().any(|b| b.instance == *other),
                "{other} was not salvaged: {:?}",
                status.salvage_backups
            );
        }
    }
    let ls = obs
        .database(secondary, "mgc")
        .unwrap()
        .log_shipping_secondary
        .as_ref()
        .expect("log-shipping secondary configured");
    assert!(ls.primary_server.eq_ignore_ascii_case(primary), "{ls:?}");
    let lp = obs
        .database(primary, "mgc")
        .unwrap()
        .log_shipping_primary
        .as_ref()
        .expect("log-shipping primary configured");
    assert!(
        lp.secondaries
            .iter()
            .any(|s| s.secondary_server.eq_ignore_ascii_case(secondary)),
        "{lp:?}"
    );
    let published = obs.published.as_ref().expect("published");
    assert_eq!(published.active_servers, chat_servers.map(String::from));
    assert_eq!(published.pool_state, pool_state);
    assert_eq!(status.phase, Some(Phase::Protected));
    let a = act.accounting.as_ref().unwrap();
    assert!(a.acknowledged > 0, "the workload wrote nothing");
    assert!(
        act.acknowledged_in_act > 0,
        "nothing written during the act"
    );
    assert_eq!(a.lost, Vec::<i64>::new());
    assert_eq!(act.serving.as_deref(), Some(primary));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn act1_bootstrap_mirrors_atlanta_and_ships_logs_to_dallas_losing_nothing() {
    let (world, act) = world_after(1).await;
    assert_protected(
        &world,
        &act,
        "atl-sql1",
        "atl-sql2",
        &["dal-sql1"],
        ["atl-pc1.litwareinc.com", "atl-pc2.litwareinc.com"],
        PoolState::Normal,
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn act2_planned_switch_serves_from_dallas_under_load_losing_nothing() {
    let (world, act) = world_after(2).await;
    assert_protected(
        &world,
        &act,
        "dal-sql1",
        "dal-sql2",
        &["atl-sql1"],
        ["dal-pc1.litwareinc.com", "dal-pc2.litwareinc.com"],
        PoolState::FailedOver,
    );
    let t = world.status.as_ref().unwrap().transition.clone().unwrap();
    assert!(t.tail_lsn.is_some() && t.data_loss.is_none(), "{t:?}");
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn act3_planned_failback_serves_from_atlanta_again_losing_nothing() {
    let (world, act) = world_after(3).await;
    assert_protected(
        &world,
        &act,
        "atl-sql1",
        "atl-sql2",
        &["dal-sql1"],
        ["atl-pc1.litwareinc.com", "atl-pc2.litwareinc.com"],
        PoolState::Normal,
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn act4_forced_failover_reports_the_loss_window_before_and_after_and_loses_only_inside_it() {
    let (world, act) = world_after(4).await;
    assert!(act.problems.is_empty(), "{:?}", act.problems);
    assert!(world.violations.is_empty(), "{:?}", world.violations);
    let before = act
        .loss_before
        .as_ref()
        .expect("estimate before the failover");
    let after = act.loss_after.as_ref().expect("window after the failover");
    assert!(before.last_restored_file.is_some(), "{before:?}");
    assert!(after.last_restored_file.is_some(), "{after:?}");
    let obs = last_observation(&world);
    assert!(!obs.instance("atl-sql1").unwrap().is_reachable());
    assert!(!obs.instance("atl-sql2").unwrap().is_reachable());
    assert_eq!(state(&obs, "dal-sql1"), DatabaseState::Online);
    let published = obs.published.as_ref().unwrap();
    assert_eq!(
        published.active_servers,
        ["dal-pc1.litwareinc.com", "dal-pc2.litwareinc.com"].map(String::from)
    );
    assert_eq!(published.pool_state, PoolState::FailedOver);
    let t = world.status.as_ref().unwrap().transition.clone().unwrap();
    assert_eq!(t.kind, pchat_core::api::TransitionKind::Forced);
    // Every message lost was acknowledged inside the reported window (checked by the act;
    // here: the window exists and the accounting adds up).
    assert!(act.loss_window_start.is_some());
    let a = act.accounting.as_ref().unwrap();
    assert_eq!(a.present + a.lost.len(), a.acknowledged);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn act5_returning_atlanta_is_fenced_salvaged_reseeded_and_the_pool_protected_again() {
    let (world, act) = world_after(5).await;
    assert_protected(
        &world,
        &act,
        "dal-sql1",
        "dal-sql2",
        &["atl-sql1", "atl-sql2"],
        ["dal-pc1.litwareinc.com", "dal-pc2.litwareinc.com"],
        PoolState::FailedOver,
    );
    let steps: Vec<&str> = world
        .steps
        .iter()
        .filter(|s| s.act == 5)
        .map(|s| s.step.name())
        .collect();
    for expected in ["FenceStaleCopy", "SalvageStaleCopy"] {
        assert!(steps.contains(&expected), "{expected} not in {steps:?}");
    }
    // The stale copy is reseeded when it becomes the log-shipping secondary; when atl-sql2's
    // mirror copy could continue the chain from dallas's fork point, that copy is used as it is
    // and atl-sql1's stays fenced (checked by assert_protected).
    let obs = last_observation(&world);
    let stale_is_secondary = obs
        .database("atl-sql1", "mgc")
        .is_some_and(|d| d.log_shipping_secondary.is_some());
    if stale_is_secondary {
        assert!(steps.contains(&"Reseed"), "Reseed not in {steps:?}");
    }
    // The fenced copy's log-shipping backup job is removed before its salvage, so nothing moves
    // it past that salvage: one salvage backup, not one more after each log backup.
    let first = |name: &str| steps.iter().position(|s| *s == name);
    assert!(
        first("RemoveLogShipping") < first("SalvageStaleCopy"),
        "{steps:?}"
    );
    let salvage = &world.status.as_ref().unwrap().salvage_backups;
    let of_stale: Vec<_> = salvage
        .iter()
        .filter(|s| s.instance == "atl-sql1" && s.database == "mgc")
        .collect();
    assert_eq!(of_stale.len(), 1, "{salvage:?}");
    assert!(of_stale[0].file.contains("salvage"), "{salvage:?}");
    world.stop().await;
}

/// The binary's stdout for `args`, without RUST_LOG; panics with both streams unless it
/// exits 0.
fn run_binary_successfully(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pchat-operator"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn demo_binary_runs_five_acts_and_exits_zero_with_the_summary() {
    let stdout = run_binary_successfully(&["demo"]);
    for line in [
        "timeline (one line per step the engine ran)",
        "act 1: bootstrap from the installer's state",
        "act 2: planned switch atlanta -> dallas",
        "act 3: planned failback dallas -> atlanta",
        "act 4: atlanta down: forced failover to dallas",
        "estimated loss window before:",
        "reported loss window after:",
        "act 5: atlanta back: fence, salvage, reseed",
        "salvage backup of mgc on atl-sql1:",
        "converged pass: 4 SQL round trips for 4 reachable instances, 0 writes",
        "result: OK, 5 acts",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    assert!(!stdout.contains("Pchat-Sim-1"), "the password was printed");
}

#[test]
fn bench_binary_runs_the_demo_as_often_as_asked_and_prints_each_figures_spread() {
    let stdout = run_binary_successfully(&["bench", "--runs", "2"]);
    assert!(
        stdout.starts_with("demo figures over 2 runs (fewest / median / most)"),
        "{stdout}"
    );
    // A converged pass is one round trip per reachable instance and no write, in every run.
    let line = |label: &str| {
        stdout
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("no {label:?} line in:\n{stdout}"))
            .to_string()
    };
    assert!(
        line("converged pass: SQL round trips per reachable instance")
            .ends_with("1.00 / 1.00 / 1.00"),
        "{stdout}"
    );
    assert!(
        line("converged pass: writes").ends_with("0.00 / 0.00 / 0.00"),
        "{stdout}"
    );
    for act in [2, 3] {
        let ratio = line(&format!(
            "act {act}: switch from its first SQL statement to publish, wall / simulator latency"
        ));
        assert!(ratio.contains(" of 2)"), "{ratio}");
        for label in ["engine pass between steps", "chat write outage"] {
            let l = line(&format!("act {act}: {label}"));
            assert_eq!(l.matches(" ms").count(), 3, "{l}");
        }
    }
    assert!(
        stdout.contains("result: OK, 2 runs, no acknowledged message lost"),
        "{stdout}"
    );
}

#[test]
fn bench_refuses_zero_runs_naming_the_flag() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pchat-operator"))
        .args(["bench", "--runs", "0"])
        .output()
        .expect("the binary runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--runs"), "{stderr}");
    assert!(out.stdout.is_empty());
}
