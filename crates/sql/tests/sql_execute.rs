//! Planner steps run through `run_step` against a live simulator.

use std::time::Duration;

use pchat_core::observe::{DatabaseState, LocationKind, MirroringRole, MirroringState};
use pchat_core::plan::{self, Decision, Step};
use pchat_sim::faults::{Fault, FaultInjector};
use pchat_sql::execute::AlwaysWrite;
use pchat_sql::testing::*;

#[tokio::test]
async fn bootstrap_from_the_installer_state_converges_with_mirrors_and_log_shipping() {
    let mut live = start("bootstrap").await;
    let (steps, _) = live.converge(Duration::from_secs(60)).await;
    let names: Vec<&str> = steps.iter().map(|s| s.name()).collect();
    println!("steps: {names:?}");
    let obs = live
        .observe_until(Duration::from_secs(5), mirrors_synchronized)
        .await;
    for db in ["mgc", "mgccomp"] {
        let p = obs.database("atl-sql1", db).unwrap();
        let m = p.mirroring.as_ref().expect("principal mirrored");
        assert_eq!(
            (m.role, m.state),
            (MirroringRole::Principal, MirroringState::Synchronized)
        );
        let mirror = obs.database("atl-sql2", db).unwrap();
        assert_eq!(mirror.state, DatabaseState::Restoring);
        assert_eq!(
            mirror.mirroring.as_ref().unwrap().role,
            MirroringRole::Mirror
        );
    }
    let dal = obs.database("dal-sql1", "mgc").expect("dallas has mgc");
    assert_eq!(dal.state, DatabaseState::Restoring);
    let lss = dal
        .log_shipping_secondary
        .as_ref()
        .expect("log-shipping secondary");
    assert!(lss.primary_server.eq_ignore_ascii_case("atl-sql1"));
    let lsp = obs
        .database("atl-sql1", "mgc")
        .unwrap()
        .log_shipping_primary
        .as_ref()
        .expect("log-shipping primary");
    assert!(
        lsp.secondaries
            .iter()
            .any(|s| s.secondary_server.eq_ignore_ascii_case("dal-sql1"))
    );
    // Each instance keeps its files in folders of its own (the simulator's default, as on
    // servers installed with different drives): every seeded copy was restored WITH MOVE
    // into its own instance's default folders, which a restore keeping atl-sql1's paths
    // cannot do (5133/3156).
    for (instance, db) in [
        ("atl-sql2", "mgc"),
        ("atl-sql2", "mgccomp"),
        ("dal-sql1", "mgc"),
    ] {
        let paths = obs
            .instance(instance)
            .and_then(|i| i.default_paths.clone())
            .expect("the default folders are observed");
        let files = &obs.database(instance, db).unwrap().files;
        assert_eq!(files.len(), 2, "{instance} {db}: {files:?}");
        for f in files {
            let folder = if f.log { &paths.log } else { &paths.data };
            assert!(
                f.physical_name.starts_with(folder.as_str()) && folder.contains(instance),
                "{instance} {db}: {f:?} is not in {folder}"
            );
        }
    }
    assert_eq!(
        plan::next(&live.spec, &obs, jiff::Timestamp::now()),
        Decision::Converged
    );
}

#[tokio::test]
async fn planned_switch_to_dallas_converges_and_leaves_the_tail_log_backup_on_the_share() {
    let mut live = start("switch").await;
    live.converge(Duration::from_secs(60)).await;
    // The planner names backups to the second (plan::backup_path): a tail-log backup taken in
    // the same second as the seeding log backup would be appended to that file as its second
    // set, which RESTORE without FILE = never reads. Let the clock move on (reported to the
    // lead: the naming is the planner's).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    live.spec.primary_site = "dallas".into();
    let (trips, sent) = (live.observer.round_trips(), live.sent.clone());
    let started = std::time::Instant::now();
    let (steps, _) = live.converge(Duration::from_secs(90)).await;
    let names: Vec<&str> = steps.iter().map(|s| s.name()).collect();
    println!(
        "switch: {} steps {names:?} in {:?}; {} observation round trips, {} statements ({} writes) taking {:?}",
        steps.len(),
        started.elapsed(),
        live.observer.round_trips() - trips,
        live.sent.statements_sent - sent.statements_sent,
        live.sent.writes - sent.writes,
        live.sent.elapsed - sent.elapsed,
    );
    let obs = live
        .observe_until(Duration::from_secs(5), mirrors_synchronized)
        .await;
    assert!(
        names.contains(&"DemoteOldPrimary") && names.contains(&"Recover"),
        "{names:?}"
    );
    let dal = obs.database("dal-sql1", "mgc").unwrap();
    assert_eq!(dal.state, DatabaseState::Online);
    assert_eq!(
        dal.mirroring.as_ref().map(|m| (m.role, m.state)),
        Some((MirroringRole::Principal, MirroringState::Synchronized))
    );
    assert!(dal.lsn.fork_point.is_some(), "recovered: a new fork began");
    let atl = obs.database("atl-sql1", "mgc").unwrap();
    assert_eq!(atl.state, DatabaseState::Restoring);
    assert!(
        atl.log_shipping_secondary.is_some(),
        "atlanta is now the secondary"
    );
    // The tail-log backup is on atlanta's share, flagged as taken WITH NORECOVERY.
    let share = obs
        .backup_locations
        .iter()
        .find(|l| {
            l.kind
                == LocationKind::Share {
                    site: "atlanta".into(),
                }
        })
        .unwrap();
    assert!(share.readable);
    let tail = share
        .files
        .iter()
        .find(|f| f.force_offline)
        .expect("a force_offline file on the atlanta share");
    assert_eq!(tail.server_name, "atl-sql1");
    assert_eq!(tail.database, "mgc");
}

#[tokio::test]
async fn every_bootstrap_step_run_twice_still_converges_to_the_same_state() {
    let mut live = start("twice").await;
    let mut steps = Vec::new();
    loop {
        let obs = live.observe().await;
        match plan::next(&live.spec, &obs, jiff::Timestamp::now()) {
            Decision::Converged => break,
            Decision::Step(step) => {
                live.run(&step, &obs).await;
                // The same statements again, as after a lost answer or a crash.
                let again = live.run(&step, &obs).await;
                assert!(again.writes >= 1 || step.instances().is_empty());
                steps.push(step.name());
            }
            Decision::Wait(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            Decision::Blocked(b) => panic!("blocked after {steps:?}: {b}"),
        }
        assert!(steps.len() <= plan::CONVERGENCE_BOUND, "{steps:?}");
    }
    let obs = live
        .observe_until(Duration::from_secs(5), mirrors_synchronized)
        .await;
    assert_eq!(
        plan::next(&live.spec, &obs, jiff::Timestamp::now()),
        Decision::Converged
    );
    for db in ["mgc", "mgccomp"] {
        let m = obs
            .database("atl-sql1", db)
            .unwrap()
            .mirroring
            .clone()
            .unwrap();
        assert_eq!(m.state, MirroringState::Synchronized, "{db}");
    }
    assert_eq!(
        obs.database("dal-sql1", "mgc").map(|d| d.state),
        Some(DatabaseState::Restoring)
    );
    // ConfigureLogShipping run twice leaves each job one schedule (a second one of the same
    // name would run it twice as often: msdb does not refuse it).
    let schedules = job_schedules(&obs);
    assert!(!schedules.is_empty());
    let mut jobs: Vec<_> = schedules.iter().map(|(i, j, _)| (i, j)).collect();
    jobs.dedup();
    assert_eq!(jobs.len(), schedules.len(), "{schedules:#?}");
}

#[tokio::test]
async fn database_in_use_during_the_tail_log_backup_is_answered_by_kill_and_retry() {
    let mut live = start("kill").await;
    // A log chain to back up: the full and log backups that seed dallas.
    let obs = live.observe().await;
    let seed = Step::BootstrapSecondary {
        site: "dallas".into(),
        instance: "dal-sql1".into(),
        database: "mgc".into(),
        source_instance: "atl-sql1".into(),
        full_backup: r"\\atl-fs\pchat-ls\mgc_seed.bak".into(),
        log_backup: r"\\atl-fs\pchat-ls\mgc_seed.trn".into(),
    };
    live.run(&seed, &obs).await;
    // A chat server that does not leave.
    let addr = live.sim.addr("atl-sql1").unwrap();
    let mut chat = chat_client(addr, "atl-pc1.litwareinc.com").await;
    let obs = live.observe().await;
    assert_eq!(
        obs.instance("atl-sql1").unwrap().sessions.len(),
        1,
        "the chat session is observed, the operator's own is not"
    );
    let demote = Step::DemoteOldPrimary {
        site: "atlanta".into(),
        instance: "atl-sql1".into(),
        database: "mgc".into(),
        file: r"\\atl-fs\pchat-ls\mgc_tail.trn".into(),
    };
    let report = live.run(&demote, &obs).await;
    assert_eq!(
        report.writes, 2,
        "the tail-log backup, refused with 3101, then retried"
    );
    assert!(
        report.statements_sent >= 4,
        "plus the session look-up and one KILL"
    );
    assert_eq!(
        live.sim.sim.database_state("atl-sql1", "mgc").as_deref(),
        Some("RESTORING")
    );
    let after = chat.simple_query("SELECT 1").await;
    assert!(after.is_err(), "the chat session was killed");
}

/// The fence holds against the chat service login even when it may do anything (here every
/// login is sysadmin, as chat service logins often are, or db_owner): after FenceStaleCopy no
/// write is accepted (3906), reads go on, and the copy stays ONLINE for its salvage backup.
#[tokio::test]
async fn a_fenced_copy_refuses_writes_from_a_sysadmin_chat_login_and_stays_readable() {
    let mut live = start("fence").await;
    live.converge(Duration::from_secs(60)).await;
    let addr = live.sim.addr("atl-sql1").unwrap();
    let mut chat = chat_client(addr, "atl-pc1").await;
    let insert = "INSERT INTO dbo.Messages (MessageId, ChatServer, Body, PostedAt) \
                  VALUES (@P1, @P2, @P3, @P4)";
    let posted = chrono::Utc::now().naive_utc();
    let message = |id: i64| (id, "atl-pc1", "a chat message");
    let (id, server, body) = message(1);
    chat.execute(insert, &[&id, &server, &body, &posted])
        .await
        .expect("chat writes before the fence");
    // A copy in a mirroring session is not fenced (the planner ends the session first).
    let obs = live.observe().await;
    let unmirror = Step::RemoveMirroring {
        site: "atlanta".into(),
        instance: "atl-sql1".into(),
        databases: vec!["mgc".into()],
    };
    live.run(&unmirror, &obs).await;
    let obs = live.observe().await;
    let fence = Step::FenceStaleCopy {
        site: "atlanta".into(),
        instance: "atl-sql1".into(),
        database: "mgc".into(),
    };
    live.run(&fence, &obs).await;
    // ROLLBACK IMMEDIATE ended the chat session; a new one logs in but cannot write.
    let mut chat = chat_client(addr, "atl-pc1").await;
    let (id, server, body) = message(2);
    let refused = chat
        .execute(insert, &[&id, &server, &body, &posted])
        .await
        .unwrap_err();
    match refused {
        tiberius::error::Error::Server(token) => assert_eq!(token.code(), 3906, "{token:?}"),
        other => panic!("{other}"),
    }
    let rows = chat
        .simple_query("SELECT COUNT(*) FROM dbo.Messages")
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "reads go on");
    let obs = live.observe().await;
    let copy = obs.database("atl-sql1", "mgc").unwrap();
    assert_eq!(copy.state, DatabaseState::Online);
    assert!(copy.read_only);
}

async fn chat_client(
    addr: std::net::SocketAddr,
    host: &str,
) -> tiberius::Client<tokio_util::compat::Compat<tokio::net::TcpStream>> {
    sa_client(addr, "Persistent Chat", |config| {
        config.database("mgc");
        config.client_name(host);
    })
    .await
}

#[tokio::test]
async fn a_statement_refused_with_a_retryable_error_is_retried_and_a_fatal_one_stops_the_step() {
    let mut live = start("retry").await;
    let obs = live.observe().await;
    let seed = Step::BootstrapSecondary {
        site: "dallas".into(),
        instance: "dal-sql1".into(),
        database: "mgc".into(),
        source_instance: "atl-sql1".into(),
        full_backup: r"\\atl-fs\pchat-ls\mgc_seed.bak".into(),
        log_backup: r"\\atl-fs\pchat-ls\mgc_seed.trn".into(),
    };
    // The full restore is refused once with 3101 (in its retry_if), then succeeds.
    live.sim
        .sim
        .inject(Fault::FailNext {
            instance: Some("dal-sql1".into()),
            pattern: "RESTORE DATABASE".into(),
            regex: false,
            error: 3101,
        })
        .unwrap();
    let report = live.run(&seed, &obs).await;
    assert_eq!(report.writes, 4, "backup pair, restore twice, log restore");
    assert_eq!(
        live.sim.sim.database_state("dal-sql1", "mgc").as_deref(),
        Some("RESTORING")
    );

    // A backup of another database (3154) is not retried and nothing after it runs.
    live.sim
        .sim
        .inject(Fault::FailNext {
            instance: Some("dal-sql1".into()),
            pattern: "RESTORE DATABASE".into(),
            regex: false,
            error: 3154,
        })
        .unwrap();
    let reseed = Step::Reseed {
        site: "dallas".into(),
        instance: "dal-sql1".into(),
        database: "mgc".into(),
        source_instance: "atl-sql1".into(),
        full_backup: r"\\atl-fs\pchat-ls\mgc_reseed.bak".into(),
        log_backup: r"\\atl-fs\pchat-ls\mgc_reseed.trn".into(),
        replace: true,
    };
    let err = live
        .try_run(&reseed, &obs, &opts(), &AlwaysWrite)
        .await
        .unwrap_err();
    assert_eq!(err.number(), Some(3154));
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("dal-sql1"), "{err}");
}

#[tokio::test]
async fn a_log_backup_already_restored_counts_as_done_on_its_root_error_not_the_trailing_3013() {
    let mut live = start("done-if").await;
    let obs = live.observe().await;
    let seed = Step::BootstrapSecondary {
        site: "dallas".into(),
        instance: "dal-sql1".into(),
        database: "mgc".into(),
        source_instance: "atl-sql1".into(),
        full_backup: r"\\atl-fs\pchat-ls\mgc_seed.bak".into(),
        log_backup: r"\\atl-fs\pchat-ls\mgc_seed.trn".into(),
    };
    live.run(&seed, &obs).await;
    let obs = live.observe().await;
    let file = obs
        .backup_locations
        .iter()
        .flat_map(|l| &l.files)
        .find(|f| f.path.ends_with("mgc_seed.trn"))
        .expect("the seeding log backup is listed with its header")
        .clone();
    let catch_up = Step::CatchUp {
        site: "dallas".into(),
        instance: "dal-sql1".into(),
        database: "mgc".into(),
        files: vec![plan::LogFile {
            path: file.path.clone(),
            first_lsn: file.first_lsn,
            last_lsn: file.last_lsn,
        }],
    };
    // dal-sql1 already restored it while seeding: 4326, then 3013.
    let report = live.run(&catch_up, &obs).await;
    assert_eq!((report.writes, report.already_done), (1, 1));
}

#[tokio::test]
async fn a_cancelled_step_sends_nothing_more() {
    let mut live = start("cancel").await;
    let obs = live.observe().await;
    let step = Step::CreateComplianceDatabase {
        site: "dallas".into(),
        instance: "dal-sql1".into(),
        database: "mgccomp".into(),
    };
    let options = opts();
    options.cancel.cancel();
    let report = live
        .try_run(&step, &obs, &options, &AlwaysWrite)
        .await
        .unwrap();
    assert!(report.cancelled);
    assert_eq!(report.statements_sent, 0);
    assert_eq!(live.sim.sim.database_state("dal-sql1", "mgccomp"), None);
}

/// A write gate that lets `allowed` statements through and then says no, as a replica that
/// loses its Lease in the middle of a step.
struct GateClosingAfter {
    allowed: std::sync::atomic::AtomicUsize,
}

impl pchat_sql::execute::WriteGate for GateClosingAfter {
    fn may_write(&self) -> futures::future::BoxFuture<'_, bool> {
        use std::sync::atomic::Ordering;
        let open = self
            .allowed
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        Box::pin(async move { open })
    }
}

#[tokio::test]
async fn a_step_whose_write_gate_closes_sends_no_further_statement_and_says_why() {
    let mut live = start("gate").await;
    live.converge(Duration::from_secs(60)).await;
    let obs = live.observe().await;
    // Three statements: the backups on atl-sql1, then two restores on dal-sql1.
    let reseed = Step::Reseed {
        site: "dallas".into(),
        instance: "dal-sql1".into(),
        database: "mgc".into(),
        source_instance: "atl-sql1".into(),
        full_backup: r"\\atl-fs\pchat-ls\mgc_gate.bak".into(),
        log_backup: r"\\atl-fs\pchat-ls\mgc_gate.trn".into(),
        replace: true,
    };
    let writes_on_dal = |live: &Live| {
        live.sim
            .sim
            .statement_log("dal-sql1")
            .iter()
            .filter(|s| s.program_name == "pchat-operator" && s.writes)
            .count()
    };
    let before = writes_on_dal(&live);
    let gate = GateClosingAfter { allowed: 1.into() };
    let err = live
        .try_run(&reseed, &obs, &opts(), &gate)
        .await
        .unwrap_err();
    assert!(
        matches!(err, pchat_sql::SqlError::Withdrawn { .. }),
        "{err:?}"
    );
    assert!(err.is_retryable());
    let message = err.to_string();
    assert!(
        message.contains("dal-sql1") && message.contains("may no longer write"),
        "{message}"
    );
    assert_eq!(
        writes_on_dal(&live),
        before,
        "a restore was sent past the gate"
    );
}

#[tokio::test]
async fn forced_failover_with_atlanta_down_brings_dallas_online_through_the_executor() {
    let mut live = start("forced").await;
    live.converge(Duration::from_secs(60)).await;
    // One round of log shipping now rather than on the 15 s schedule: a log backup that
    // dallas copied and restored, whose finish time bounds the data loss.
    for (instance, job) in [
        ("atl-sql1", "LSBackup_mgc"),
        ("dal-sql1", "LSCopy_atl-sql1_mgc"),
        ("dal-sql1", "LSRestore_atl-sql1_mgc"),
    ] {
        let mut admin = admin_client(live.sim.addr(instance).unwrap()).await;
        admin
            .execute("EXEC msdb.dbo.sp_start_job @job_name = @P1", &[&job])
            .await
            .unwrap_or_else(|e| panic!("{job}: {e}"));
    }
    let obs = live
        .observe_until(Duration::from_secs(10), |o| {
            o.database("dal-sql1", "mgc")
                .and_then(|d| d.log_shipping_secondary.as_ref())
                .is_some_and(|l| l.last_restored_file.is_some())
        })
        .await;
    let copied = obs
        .backup_locations
        .iter()
        .find(|l| {
            l.kind
                == LocationKind::CopyFolder {
                    instance: "dal-sql1".into(),
                }
        })
        .unwrap();
    assert!(
        copied.files.iter().any(|f| f.server_name == "atl-sql1"),
        "the copy folder lists the copied log backup with its header: {copied:?}"
    );
    live.settings.connect_timeout = Duration::from_millis(500);
    live.spec.failover.allow_data_loss = true;
    live.spec.failover.unreachable_after = "1s".parse().unwrap();
    for i in ["atl-sql1", "atl-sql2"] {
        live.sim
            .sim
            .inject(Fault::InstanceDown { instance: i.into() })
            .unwrap();
    }
    live.sim
        .sim
        .inject(Fault::Partition {
            between: (
                vec!["atlanta".into(), "atl-fs".into()],
                vec!["dallas".into()],
            ),
        })
        .unwrap();
    live.spec.primary_site = "dallas".into();
    // Dallas serves and is mirrored; log shipping back to atlanta waits for atlanta.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut names = Vec::new();
    let obs = loop {
        let obs = live.observe().await;
        match plan::next(&live.spec, &obs, jiff::Timestamp::now()) {
            Decision::Step(step) => {
                live.run(&step, &obs).await;
                names.push(step.name());
            }
            Decision::Wait(w)
                if names.contains(&"EstablishMirroring") && w.to_string().contains("atl-sql1") =>
            {
                break obs;
            }
            Decision::Wait(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            other => panic!("after {names:?}: {other}"),
        }
        assert!(tokio::time::Instant::now() < deadline, "{names:?}");
    };
    println!("forced failover steps: {names:?}");
    assert!(names.contains(&"Recover"), "{names:?}");
    assert_eq!(
        obs.database("dal-sql1", "mgc").map(|d| d.state),
        Some(DatabaseState::Online)
    );
    let atlanta_share = obs
        .backup_locations
        .iter()
        .find(|l| {
            l.kind
                == LocationKind::Share {
                    site: "atlanta".into(),
                }
        })
        .unwrap();
    assert!(!atlanta_share.readable, "cut off from dallas");
    assert!(!obs.instance("atl-sql1").unwrap().is_reachable());
}

#[tokio::test]
async fn a_pool_without_a_compliance_database_observes_and_protects_the_chat_database_only() {
    let mut live = start("no-compliance").await;
    live.spec.databases.compliance = None;
    let (steps, obs) = live.converge(Duration::from_secs(60)).await;
    assert!(
        steps.iter().all(|s| !s.databases().contains(&"mgccomp")),
        "{steps:?}"
    );
    let atl = obs.instance("atl-sql1").unwrap();
    assert_eq!(
        atl.databases
            .iter()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>(),
        ["mgc"],
        "mgccomp exists on atl-sql1 but is not the pool's"
    );
    assert!(
        obs.database("dal-sql1", "mgc")
            .is_some_and(|d| d.log_shipping_secondary.is_some())
    );
}

/// Every log-shipping job schedule the observation shows, as (instance, job, every_seconds).
fn job_schedules(obs: &pchat_core::observe::Observation) -> Vec<(String, String, Option<u64>)> {
    let mut out = Vec::new();
    for i in &obs.instances {
        for d in &i.databases {
            let primary = d.log_shipping_primary.iter().flat_map(|l| &l.job_schedules);
            let secondary = d
                .log_shipping_secondary
                .iter()
                .flat_map(|l| &l.job_schedules);
            for s in primary.chain(secondary) {
                out.push((i.name.clone(), s.job_name.clone(), s.every_seconds));
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn a_changed_backup_interval_reschedules_the_live_log_shipping_jobs() {
    let mut live = start("reschedule").await;
    let (_, obs) = live.converge(Duration::from_secs(60)).await;
    // Configured at the spec's 5 minutes: the backup job on the atlanta principal (its
    // mirror cannot be a log-shipping primary while RESTORING), the copy and restore jobs on
    // dallas.
    let before = job_schedules(&obs);
    let jobs: Vec<(&str, &str)> = before
        .iter()
        .map(|(i, j, _)| (i.as_str(), j.as_str()))
        .collect();
    assert_eq!(jobs.len(), 3, "{before:?}");
    assert_eq!(
        jobs.iter().filter(|(i, _)| *i == "dal-sql1").count(),
        2,
        "{before:?}"
    );
    assert!(before.iter().all(|(_, _, e)| *e == Some(300)), "{before:?}");

    live.spec.log_shipping.backup_interval = Duration::from_secs(120).into();
    let (steps, obs) = live.converge(Duration::from_secs(30)).await;
    let names: Vec<&str> = steps.iter().map(|s| s.name()).collect();
    assert_eq!(names, ["RescheduleLogShippingJobs"]);
    let after = job_schedules(&obs);
    assert_eq!(after.len(), 3, "{after:?}");
    assert!(after.iter().all(|(_, _, e)| *e == Some(120)), "{after:?}");
    // Each job has its one schedule, renamed after the interval: a repeated
    // ConfigureLogShipping would find that name taken (14261) and add nothing.
    for instance in ["atl-sql1", "dal-sql1"] {
        let mut admin = admin_client(live.sim.addr(instance).unwrap()).await;
        let rows = admin
            .simple_query(
                "SELECT j.name, s.name FROM msdb.dbo.sysjobs j
                 JOIN msdb.dbo.sysjobschedules js ON js.job_id = j.job_id
                 JOIN msdb.dbo.sysschedules s ON s.schedule_id = js.schedule_id",
            )
            .await
            .unwrap()
            .into_first_result()
            .await
            .unwrap();
        assert!(!rows.is_empty());
        for r in rows {
            let (job, schedule): (&str, &str) = (r.get(0).unwrap(), r.get(1).unwrap());
            assert_eq!(schedule, format!("{job}_every_120s"), "{instance}");
        }
    }
    // Nothing more to do: a converged pass writes nothing.
    let obs = live.observe().await;
    assert_eq!(
        plan::next(&live.spec, &obs, jiff::Timestamp::now()),
        Decision::Converged
    );
}

#[tokio::test]
async fn a_restore_longer_than_the_command_timeout_completes_and_is_observed_with_its_progress() {
    let mut live = start("long-restore").await;
    // Restores take three times the command timeout.
    live.settings.command_timeout = Some(Duration::from_millis(500));
    live.sim
        .sim
        .inject(Fault::Latency {
            statement: pchat_sim::server::StatementKind::Restore,
            millis: 1500,
        })
        .unwrap();
    let obs = live.observe().await;
    let Decision::Step(step) = plan::next(&live.spec, &obs, jiff::Timestamp::now()) else {
        panic!("the installer state starts with a step");
    };
    let Step::SeedMirror { mirror, .. } = &step else {
        panic!("the installer state starts with SeedMirror, not {step:?}");
    };
    let mirror = mirror.clone();
    // Another observer looks while the step's RESTORE DATABASE runs.
    let (spec, settings) = (live.spec.clone(), live.settings.clone());
    let watcher = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(900)).await;
        pchat_sql::observe::Observer::new()
            .observe(&spec, &settings, None, jiff::Timestamp::now())
            .await
    });
    // Not cut off by the command timeout (the run panics on a failed step).
    live.run(&step, &obs).await;
    let seen = watcher.await.unwrap();
    let running = &seen.instance(&mirror).unwrap().running_operations;
    assert_eq!(running.len(), 1, "{running:?}");
    assert_eq!(running[0].command, "RESTORE DATABASE");
    assert_eq!(running[0].program_name, "pchat-operator");
    assert!(
        (20..=90).contains(&running[0].percent_complete),
        "{running:?}"
    );
    // A pass that saw it (another replica, or this one after a timeout) waits for it instead
    // of resending the step or killing its session.
    assert!(
        matches!(
            plan::next(&live.spec, &seen, jiff::Timestamp::now()),
            Decision::Wait(pchat_core::plan::WaitReason::OperationRunning { .. })
        ),
        "{:?}",
        plan::next(&live.spec, &seen, jiff::Timestamp::now())
    );
}
