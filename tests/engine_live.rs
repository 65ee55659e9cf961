//! The engine and local mode over the real SqlPort (`LivePort`) against the in-process
//! simulator: the product doing its job end to end over TDS.

mod support;

use std::path::{Path, PathBuf};

use pchat_core::api::{PersistentChatPool, PersistentChatPoolStatus, Phase, load_pool_yaml};
use pchat_core::observe::{DatabaseState, MirroringState};
use pchat_core::plan::Decision;
use pchat_operator::engine::sql_port::LivePort;
use pchat_operator::local::{self, Options};
use pchat_sim::faults::FaultInjector;
use pchat_sim::workload::{FileSource, PublishedSource};
use tokio_util::sync::CancellationToken;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pchat-live-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Local mode over the manifest of `live` in `dir`, with its status and active-server files
/// there too; `once` for a single pass.
fn local_options(dir: &Path, live: &pchat_sql::testing::Live, once: bool) -> Options {
    Options {
        pool_file: write_manifest(dir, live),
        once,
        status_file: Some(dir.join("status.yaml")),
        active_servers_file: dir.join("active-servers.yaml"),
    }
}

/// The example local pool, pointed at the running simulator, as a manifest file.
fn write_manifest(dir: &Path, live: &pchat_sql::testing::Live) -> PathBuf {
    let mut pool: PersistentChatPool =
        load_pool_yaml(include_str!("../examples/pool-local.yaml")).unwrap();
    pool.spec = live.spec.clone();
    let path = dir.join("pool.yaml");
    std::fs::write(&path, serde_saphyr::to_string(&pool).unwrap()).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_passes_over_the_live_port_bootstrap_the_simulator_to_ready() {
    let live = pchat_sql::testing::start("engine-bootstrap").await;
    let dir = temp_dir("bootstrap");
    let opts = local_options(&dir, &live, true);
    let mut port = LivePort::with_settings(live.settings.clone(), pchat_sql::testing::opts());
    let mut ran = Vec::new();
    let mut last = None;
    for _ in 0..40 {
        let report = local::run(&opts, &mut port, CancellationToken::new())
            .await
            .unwrap()
            .unwrap();
        if let Some((step, result)) = &report.step_ran {
            assert!(result.is_ok(), "{} failed: {result:?}", step.name());
            ran.push(step.name());
        }
        let done = report.decision == Some(Decision::Converged);
        last = Some(report);
        if done {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let last = last.unwrap();
    assert_eq!(last.decision, Some(Decision::Converged), "steps: {ran:?}");
    let status: PersistentChatPoolStatus =
        serde_saphyr::from_str(&std::fs::read_to_string(dir.join("status.yaml")).unwrap()).unwrap();
    assert_eq!(status.phase, Some(Phase::Protected));
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.status, "True", "{status:#?}");
    let obs = last.observation.as_ref().unwrap();
    let m = obs
        .database("atl-sql1", "mgc")
        .unwrap()
        .mirroring
        .as_ref()
        .unwrap();
    assert_eq!(m.state, MirroringState::Synchronized);
    assert_eq!(
        obs.database("dal-sql1", "mgc").unwrap().state,
        DatabaseState::Restoring
    );
    let published = FileSource::new(opts.active_servers_file.clone())
        .current()
        .unwrap();
    assert_eq!(published.active_servers.len(), 2);
    // Every log-shipping job runs on a SQL Agent schedule of the spec's backupInterval (5m):
    // without one, SQL Agent would never run it. The mirror (atl-sql2) has none: a RESTORING
    // copy cannot be configured as a log-shipping primary until a failover makes it principal.
    for (instance, expected) in [
        ("atl-sql1", vec!["LSBackup_mgc"]),
        ("atl-sql2", vec![]),
        (
            "dal-sql1",
            vec!["LSCopy_atl-sql1_mgc", "LSRestore_atl-sql1_mgc"],
        ),
    ] {
        let mut admin = pchat_sql::testing::admin_client(live.sim.addr(instance).unwrap()).await;
        let rows = admin
            .simple_query(
                "SELECT j.name, s.freq_type, s.freq_subday_type, s.freq_subday_interval, s.enabled
                 FROM msdb.dbo.sysjobs j
                 JOIN msdb.dbo.sysjobschedules js ON js.job_id = j.job_id
                 JOIN msdb.dbo.sysschedules s ON s.schedule_id = js.schedule_id
                 ORDER BY j.name",
            )
            .await
            .unwrap()
            .into_first_result()
            .await
            .unwrap();
        let got: Vec<(String, i32, i32, i32, i32)> = rows
            .iter()
            .map(|r| {
                (
                    r.get::<&str, _>(0).unwrap().to_string(),
                    r.get::<i32, _>(1).unwrap(),
                    r.get::<i32, _>(2).unwrap(),
                    r.get::<i32, _>(3).unwrap(),
                    r.get::<i32, _>(4).unwrap(),
                )
            })
            .collect();
        let want: Vec<_> = expected
            .iter()
            .map(|job| (job.to_string(), 4, 4, 5, 1))
            .collect();
        assert_eq!(got, want, "schedules on {instance}");
    }
    // A converged pass observes once per instance and writes nothing.
    let before = port.round_trips();
    let report = local::run(&opts, &mut port, CancellationToken::new())
        .await
        .unwrap()
        .unwrap();
    assert!(report.step_ran.is_none());
    let per_pass = port.round_trips() - before;
    assert_eq!(per_pass, 4, "one observation batch per instance");
    // The bootstrap wrote (BACKUP/RESTORE/ALTER DATABASE/log-shipping procedures), and the
    // simulator's statement log says so; the converged pass after it wrote nothing.
    let operator_writes = |sim: &pchat_sim::server::Simulator| -> usize {
        ["atl-sql1", "atl-sql2", "dal-sql1", "dal-sql2"]
            .iter()
            .flat_map(|i| sim.statement_log(i))
            .filter(|st| st.program_name == "pchat-operator" && st.writes)
            .count()
    };
    let writes_after_bootstrap = operator_writes(&live.sim.sim);
    assert!(writes_after_bootstrap > 10, "{writes_after_bootstrap}");
    let report = local::run(&opts, &mut port, CancellationToken::new())
        .await
        .unwrap()
        .unwrap();
    assert!(report.step_ran.is_none());
    assert_eq!(
        operator_writes(&live.sim.sim),
        writes_after_bootstrap,
        "a converged pass sent a write"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_against_live_instances_prints_the_plan_and_changes_nothing() {
    let mut live = pchat_sql::testing::start("engine-plan").await;
    let dir = temp_dir("plan");
    let pool = write_manifest(&dir, &live);
    let before = live.observe().await;
    let exe = env!("CARGO_BIN_EXE_pchat-operator");
    let pool_arg = pool.clone();
    let ca_file = live.sim.ca_file.clone().expect("the simulator made a CA");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(exe)
            .args(["plan", "-o", "json", "-f"])
            .arg(&pool_arg)
            .arg("--ca-file")
            .arg(&ca_file)
            .env("PCHAT_SQL_USERNAME", "sa")
            .env("PCHAT_SQL_PASSWORD", pchat_sql::testing::PASSWORD)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("SeedMirror"), "{stdout}");
    let mut after = live.observe().await;
    after.taken_at = before.taken_at;
    // The plan process's own login may still be closing when the test looks again: sessions
    // of the operator's program are observers, not changes.
    let without_observers = |obs: &mut pchat_core::observe::Observation| {
        for i in &mut obs.instances {
            i.sessions.retain(|s| s.program_name != "pchat-operator");
        }
    };
    let mut before = before;
    without_observers(&mut before);
    without_observers(&mut after);
    assert_eq!(
        after.instances, before.instances,
        "plan changed an instance"
    );
    assert!(!dir.join("active-servers.yaml").exists(), "plan published");
    // The simulator's statement log: the plan command's sessions ran statements, none a write.
    let mut sent = 0;
    for instance in ["atl-sql1", "atl-sql2", "dal-sql1", "dal-sql2"] {
        for st in live.sim.sim.statement_log(instance) {
            if st.program_name == "pchat-operator" {
                sent += 1;
                assert!(!st.writes, "plan sent a write to {instance}: {}", st.text);
            }
        }
    }
    assert!(sent > 0, "the statement log saw the observation batches");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Poll the status file until `pred` holds, for at most `secs` seconds.
async fn wait_for(
    path: &Path,
    pred: impl Fn(&PersistentChatPoolStatus) -> bool,
    secs: u64,
) -> Option<PersistentChatPoolStatus> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        let status: Option<PersistentChatPoolStatus> = std::fs::read_to_string(path)
            .ok()
            .and_then(|t| serde_saphyr::from_str(&t).ok());
        if let Some(s) = status.filter(|s| pred(s)) {
            return Some(s);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_primary_site_in_the_file_moves_the_live_pool_with_a_planned_switch() {
    let live = pchat_sql::testing::start("engine-switch").await;
    let dir = temp_dir("switch");
    let opts = local_options(&dir, &live, false);
    let status_path = dir.join("status.yaml");
    let mut port = LivePort::with_settings(live.settings.clone(), pchat_sql::testing::opts());
    let cancel = CancellationToken::new();
    let task = {
        let (opts, cancel) = (opts.clone(), cancel.clone());
        tokio::spawn(async move { local::run(&opts, &mut port, cancel).await })
    };
    let home = wait_for(
        &status_path,
        |s| s.phase == Some(Phase::Protected) && s.serving_site.as_deref() == Some("atlanta"),
        60,
    )
    .await;
    assert!(home.is_some(), "bootstrap did not converge");
    let text = std::fs::read_to_string(&opts.pool_file).unwrap();
    let edited = text.replacen("primarySite: atlanta", "primarySite: dallas", 1);
    assert_ne!(text, edited);
    std::fs::write(&opts.pool_file, edited).unwrap();
    let moved = wait_for(
        &status_path,
        |s| s.phase == Some(Phase::Protected) && s.serving_site.as_deref() == Some("dallas"),
        90,
    )
    .await
    .expect("the switch to dallas converges");
    cancel.cancel();
    task.await.unwrap().unwrap();
    let t = moved.transition.as_ref().expect("transition reported");
    assert_eq!((t.from.as_str(), t.to.as_str()), ("atlanta", "dallas"));
    assert_eq!(t.kind, pchat_core::api::TransitionKind::Planned);
    assert!(t.tail_lsn.is_some() && t.completed_at.is_some(), "{t:?}");
    assert_eq!(t.data_loss, None);
    let published = FileSource::new(opts.active_servers_file.clone())
        .current()
        .unwrap();
    assert!(
        published
            .active_servers
            .iter()
            .all(|s| s.starts_with("dal-")),
        "{published:?}"
    );
    assert_eq!(
        published.pool_state,
        pchat_sim::workload::PoolState::FailedOver
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An instance that answers under another `@@SERVERNAME` than the spec gives it (here the
/// spec calls the simulator's dal-sql2 "dal-sql9") stops the pass before any step: the pool is
/// Stalled with reason ServerNameMismatch naming both names, and no write reaches any instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_under_another_server_name_stalls_the_pool_and_nothing_is_written() {
    let mut live = pchat_sql::testing::start("engine-server-name").await;
    let renamed = live
        .spec
        .sites
        .iter_mut()
        .flat_map(|s| s.instances.iter_mut())
        .find(|i| i.name == "dal-sql2")
        .unwrap();
    renamed.name = "dal-sql9".into();
    let dir = temp_dir("server-name");
    let opts = local_options(&dir, &live, true);
    let mut port = LivePort::with_settings(live.settings.clone(), pchat_sql::testing::opts());
    for _ in 0..2 {
        let report = local::run(&opts, &mut port, CancellationToken::new())
            .await
            .unwrap()
            .unwrap();
        assert!(report.step_ran.is_none(), "{:?}", report.step_ran);
        assert!(
            matches!(
                report.decision,
                Some(Decision::Blocked(
                    pchat_core::plan::BlockReason::ServerNameMismatch { .. }
                ))
            ),
            "{:?}",
            report.decision
        );
    }
    let status: PersistentChatPoolStatus =
        serde_saphyr::from_str(&std::fs::read_to_string(dir.join("status.yaml")).unwrap()).unwrap();
    let stalled = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Stalled")
        .unwrap();
    assert_eq!(
        (stalled.status.as_str(), stalled.reason.as_str()),
        ("True", "ServerNameMismatch")
    );
    assert!(
        stalled.message.contains("dal-sql9") && stalled.message.contains("dal-sql2"),
        "{}",
        stalled.message
    );
    let writes: usize = ["atl-sql1", "atl-sql2", "dal-sql1", "dal-sql2"]
        .iter()
        .flat_map(|i| live.sim.sim.statement_log(i))
        .filter(|s| s.program_name == "pchat-operator" && s.writes)
        .count();
    assert_eq!(writes, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_restore_of_a_step_reports_its_progress_in_the_status_while_it_runs() {
    let live = pchat_sql::testing::start("engine-progress").await;
    // Each RESTORE of the first step (SeedMirror) takes a second and a half.
    live.sim
        .sim
        .inject(pchat_sim::faults::Fault::Latency {
            statement: pchat_sim::server::StatementKind::Restore,
            millis: 1500,
        })
        .unwrap();
    let dir = temp_dir("progress");
    let opts = local_options(&dir, &live, true);
    let status_file = opts.status_file.clone().unwrap();
    let mut port = LivePort::with_settings(live.settings.clone(), pchat_sql::testing::opts())
        .with_progress_every(std::time::Duration::from_millis(100));
    // Read the status file as a dashboard would while the pass runs.
    let done = CancellationToken::new();
    let watcher = {
        let done = done.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            while !done.is_cancelled() {
                if let Some(step) = std::fs::read_to_string(&status_file)
                    .ok()
                    .and_then(|t| serde_saphyr::from_str::<PersistentChatPoolStatus>(&t).ok())
                    .and_then(|s| s.step)
                    && let Some(progress) = step.progress.clone()
                {
                    seen.push((step.name, progress));
                }
                tokio::time::sleep(std::time::Duration::from_millis(30)).await;
            }
            seen
        })
    };
    let report = local::run(&opts, &mut port, CancellationToken::new())
        .await
        .unwrap()
        .unwrap();
    done.cancel();
    let seen = watcher.await.unwrap();
    let (step, result) = report.step_ran.expect("a step ran");
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(step.name(), "SeedMirror");
    assert!(!seen.is_empty(), "no progress was written during the step");
    assert!(
        seen.iter().all(|(name, p)| name == "SeedMirror"
            && p.instance == "atl-sql2"
            && p.command.starts_with("RESTORE")),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|(_, p)| (1..=99).contains(&p.percent_complete)),
        "{seen:?}"
    );
    // The pass's own status, written at its end, has no progress left in it.
    assert_eq!(report.status.step.and_then(|s| s.progress), None);
}
