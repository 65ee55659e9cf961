//! The observer against a live simulator: what it reports and what it costs.

use std::time::Duration;

use pchat_core::observe::{DatabaseState, LocationKind, Reachability};
use pchat_core::plan::{self, Decision};
use pchat_sim::faults::{Fault, FaultInjector};
use pchat_sql::testing::*;

#[tokio::test]
async fn installer_state_shows_both_databases_online_on_atl_sql1_in_one_round_trip_per_instance() {
    let mut live = start("installer").await;
    let obs = live.observe().await;
    assert_eq!(obs.instances.len(), 4);
    for i in &obs.instances {
        assert!(
            i.is_reachable(),
            "{} unreachable: {:?}",
            i.name,
            i.reachability
        );
    }
    let atl1 = obs.instance("atl-sql1").unwrap();
    assert_eq!(atl1.server_name.as_deref(), Some("atl-sql1"));
    for db in ["mgc", "mgccomp"] {
        let d = atl1.database(db).unwrap_or_else(|| panic!("{db} missing"));
        assert_eq!(d.state, DatabaseState::Online);
        assert!(d.mirroring.is_none());
        assert!(
            d.lsn.end_of_log.is_some(),
            "an ONLINE copy has an end of log"
        );
        assert!(d.lsn.redo_start.is_none());
    }
    for other in ["atl-sql2", "dal-sql1", "dal-sql2"] {
        assert!(obs.instance(other).unwrap().databases.is_empty(), "{other}");
    }
    assert_eq!(live.observer.round_trips(), 4, "one batch per instance");
    assert_eq!(live.observer.last_pass().round_trips(), 4);
    assert!(matches!(
        obs.instance("dal-sql1").unwrap().reachability,
        Reachability::Reachable
    ));
}

#[tokio::test]
async fn an_instance_down_is_unreachable_with_a_reason_and_keeps_its_first_since() {
    let mut live = start("down").await;
    live.sim
        .sim
        .inject(Fault::InstanceDown {
            instance: "dal-sql2".into(),
        })
        .unwrap();
    let first = live.observe().await;
    let Reachability::Unreachable { reason, since } =
        first.instance("dal-sql2").unwrap().reachability.clone()
    else {
        panic!("dal-sql2 must be unreachable");
    };
    assert!(
        reason.contains("dal-sql2"),
        "the reason names the instance: {reason}"
    );
    assert_eq!(since, first.taken_at);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = live.observe().await;
    assert!(second.taken_at > first.taken_at);
    match &second.instance("dal-sql2").unwrap().reachability {
        Reachability::Unreachable { since: again, .. } => {
            assert_eq!(
                *again, since,
                "since is the first failure, kept across passes"
            )
        }
        Reachability::Reachable => panic!("still down"),
    }
    assert!(second.instance("dal-sql1").unwrap().is_reachable());
    // Back up, then down again: a new outage starts a new since.
    live.sim
        .sim
        .inject(Fault::InstanceUp {
            instance: "dal-sql2".into(),
        })
        .unwrap();
    let up = live.observe().await;
    assert!(up.instance("dal-sql2").unwrap().is_reachable());
    live.sim
        .sim
        .inject(Fault::InstanceDown {
            instance: "dal-sql2".into(),
        })
        .unwrap();
    let down = live.observe().await;
    match &down.instance("dal-sql2").unwrap().reachability {
        Reachability::Unreachable { since: s, .. } => assert_eq!(*s, down.taken_at),
        Reachability::Reachable => panic!("down again"),
    }
}

#[tokio::test]
async fn a_share_that_is_down_is_unreadable_with_the_reason() {
    let mut live = start("share-down").await;
    live.sim
        .sim
        .inject(Fault::ShareDown {
            host: "dal-fs".into(),
        })
        .unwrap();
    let obs = live.observe().await;
    let dallas = obs
        .backup_locations
        .iter()
        .find(|l| {
            l.kind
                == LocationKind::Share {
                    site: "dallas".into(),
                }
        })
        .unwrap();
    assert!(!dallas.readable);
    let reason = dallas.reason.clone().unwrap_or_default();
    assert!(reason.contains("cannot be listed"), "{reason}");
    let atlanta = obs
        .backup_locations
        .iter()
        .find(|l| {
            l.kind
                == LocationKind::Share {
                    site: "atlanta".into(),
                }
        })
        .unwrap();
    assert!(atlanta.readable, "the other share is unaffected");
    assert!(obs.instances.iter().all(|i| i.is_reachable()));
}

#[tokio::test]
async fn a_share_whose_site_is_down_is_listed_through_an_instance_of_the_other_site() {
    let mut live = start("share-other").await;
    for i in ["dal-sql1", "dal-sql2"] {
        live.sim
            .sim
            .inject(Fault::InstanceDown { instance: i.into() })
            .unwrap();
    }
    let before = live.observer.round_trips();
    let obs = live.observe().await;
    let dallas = obs
        .backup_locations
        .iter()
        .find(|l| {
            l.kind
                == LocationKind::Share {
                    site: "dallas".into(),
                }
        })
        .unwrap();
    assert!(dallas.readable, "{:?}", dallas.reason);
    // Two atlanta batches plus one listing of the dallas share through atlanta.
    assert_eq!(live.observer.round_trips() - before, 3);
}

#[tokio::test]
async fn a_broken_kept_connection_is_replaced_within_the_same_pass() {
    let mut live = start("broken").await;
    live.observe().await;
    // Someone ends the operator's session on atl-sql1 between passes.
    let addr = live.sim.addr("atl-sql1").unwrap();
    let mut admin = admin_client(addr).await;
    let row = admin
        .simple_query(
            "SELECT session_id FROM sys.dm_exec_sessions \
             WHERE program_name = N'pchat-operator' AND session_id <> @@SPID",
        )
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .expect("the operator's session is kept");
    let spid: i16 = row.get(0).unwrap();
    admin
        .simple_query(format!("KILL {spid}"))
        .await
        .unwrap()
        .into_results()
        .await
        .unwrap();
    let before = live.observer.round_trips();
    let obs = live.observe().await;
    assert!(obs.instance("atl-sql1").unwrap().is_reachable());
    assert_eq!(
        live.observer.round_trips() - before,
        5,
        "four batches and the one resent on a fresh connection"
    );
}

#[tokio::test]
async fn a_converged_pass_costs_one_round_trip_per_reachable_instance_and_plans_nothing() {
    let mut live = start("converged").await;
    live.converge(Duration::from_secs(60)).await;
    // Two passes in a row; when no backup file appeared between them, the second reads no
    // header: exactly one batch per instance.
    for _ in 0..10 {
        let a = live.observe().await;
        let before = live.observer.round_trips();
        let b = live.observe().await;
        let sent = live.observer.round_trips() - before;
        if a.backup_locations != b.backup_locations {
            continue;
        }
        assert_eq!(sent, 4, "one round trip per reachable instance");
        let stats = live.observer.last_pass();
        assert_eq!((stats.instance_batches, stats.header_batches), (4, 0));
        assert_eq!(
            plan::next(&live.spec, &b, jiff::Timestamp::now()),
            Decision::Converged
        );
        return;
    }
    panic!("backup files changed between every pair of passes");
}

#[tokio::test]
async fn planning_against_live_instances_changes_nothing() {
    let mut live = start("plan-only").await;
    let first = live.observe().await;
    let described = live.sim.sim.describe();
    for _ in 0..3 {
        let obs = live.observe().await;
        let projection = plan::project(&live.spec, &obs, jiff::Timestamp::now());
        assert!(
            !projection.steps.is_empty(),
            "the installer state has work to plan"
        );
        assert_eq!(
            obs.instances, first.instances,
            "no LSN, state or msdb row moved"
        );
        assert_eq!(
            obs.backup_locations, first.backup_locations,
            "no file written"
        );
    }
    assert_eq!(live.sim.sim.describe(), described);
}

#[tokio::test]
async fn observe_and_run_step_can_run_on_spawned_tasks() {
    fn assert_send<T: Send>(_: &T) {}
    let mut live = start("send").await;
    let spec = live.spec.clone();
    let settings = live.settings.clone();
    let observe = live
        .observer
        .observe(&spec, &settings, None, jiff::Timestamp::now());
    assert_send(&observe);
    let obs = observe.await;
    let Decision::Step(step) = plan::next(&spec, &obs, jiff::Timestamp::now()) else {
        panic!("the installer state has a step to run");
    };
    let ctx = pchat_sql::statements::StatementContext::from_observation(&obs);
    let options = opts();
    let run = pchat_sql::execute::run_step(
        live.observer.connections(),
        &settings,
        &spec,
        &step,
        &ctx,
        &options,
        &pchat_sql::execute::AlwaysWrite,
    );
    assert_send(&run);
    run.await.unwrap();
}

#[tokio::test]
async fn instances_are_observed_concurrently() {
    let mut live = start("concurrent").await;
    live.observe().await; // connections opened
    live.sim
        .sim
        .inject(Fault::Latency {
            statement: pchat_sim::server::StatementKind::Select,
            millis: 100,
        })
        .unwrap();
    let started = std::time::Instant::now();
    let obs = live.observe().await;
    let took = started.elapsed();
    assert!(obs.instances.iter().all(|i| i.is_reachable()));
    // Each batch runs its seven SELECTs one after the other (at least 700 ms); four
    // instances one after another would take at least 2.8 s.
    assert!(took >= Duration::from_millis(700), "{took:?}");
    assert!(took < Duration::from_millis(2500), "{took:?}");
}

#[tokio::test]
async fn an_instance_older_than_sql_server_2016_sp2_is_reported_with_its_version_and_nothing_is_sent()
 {
    let mut live = pchat_sql::testing::start_with("old-version", |topology| {
        let mirror = topology
            .instances
            .iter_mut()
            .find(|i| i.name == "atl-sql2")
            .unwrap();
        mirror.version = Some("12.0.6024.0".into());
    })
    .await;
    let obs = live.observe().await;
    let reason = match &obs.instance("atl-sql2").unwrap().reachability {
        pchat_core::observe::Reachability::Unreachable { reason, .. } => reason.clone(),
        other => panic!("{other:?}"),
    };
    assert!(
        reason.contains("SQL Server 2014 (12.0.6024.0) is not supported")
            && reason.contains("2016 SP2 (13.0.5026) or later"),
        "{reason}"
    );
    // No step is planned on it, and the pool's status says why, with the version.
    let decision = pchat_core::plan::next(&live.spec, &obs, jiff::Timestamp::now());
    if let pchat_core::plan::Decision::Step(step) = &decision {
        assert!(!step.instances().contains(&"atl-sql2"), "{decision}");
    }
    let assessment = pchat_core::plan::assess(&live.spec, &obs, jiff::Timestamp::now());
    assert!(
        assessment
            .degraded_reasons
            .iter()
            .any(|r| r.contains("atl-sql2") && r.contains("12.0.6024.0")),
        "{:?}",
        assessment.degraded_reasons
    );
    assert!(
        live.sim
            .sim
            .statement_log("atl-sql2")
            .iter()
            .all(|s| !s.writes),
        "a write reached the unsupported instance"
    );
}

/// Every backup file atl-sql1 took, as `obs` dates them, against when they were really taken.
fn atlanta_backups_are_dated_within(obs: &pchat_core::observe::Observation, from: jiff::Timestamp) {
    let to = jiff::Timestamp::now();
    let files: Vec<_> = obs
        .backup_locations
        .iter()
        .flat_map(|l| &l.files)
        .filter(|f| f.server_name == "atl-sql1")
        .collect();
    assert!(!files.is_empty(), "no backup of atl-sql1 observed");
    for f in files {
        assert!(
            f.finished_at >= from && f.finished_at <= to,
            "{} dated {} (taken between {from} and {to})",
            f.path,
            f.finished_at
        );
    }
}

#[tokio::test]
async fn backups_are_dated_in_utc_across_time_zones_an_outage_and_a_daylight_saving_switch() {
    // Atlanta on US Eastern standard time, Dallas on Central: SQL Server dates backups in the
    // local time of the server that took them, and RESTORE HEADERONLY says no time zone.
    let mut live = start_with("time-zones", |topology| {
        for instance in &mut topology.instances {
            instance.utc_offset_minutes = Some(if instance.name.starts_with("atl") {
                -300
            } else {
                -360
            });
        }
    })
    .await;
    let from = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(1);
    let (_, obs) = live.converge(Duration::from_secs(60)).await;
    atlanta_backups_are_dated_within(&obs, from);
    let atl = obs.instance("atl-sql1").unwrap().database("mgc").unwrap();
    let last = atl
        .last_log_backup
        .as_ref()
        .expect("msdb's last log backup");
    assert!(last.finished_at >= from, "{last:?}");

    // A daylight-saving switch in Atlanta: a new process reading the old backups dates them
    // with the offset they were taken with, not today's.
    live.sim
        .sim
        .inject(Fault::ClockChange {
            instance: "atl-sql1".into(),
            utc_offset_minutes: -240,
        })
        .unwrap();
    let obs = pchat_sql::observe::Observer::new()
        .observe(&live.spec, &live.settings, None, jiff::Timestamp::now())
        .await;
    atlanta_backups_are_dated_within(&obs, from);

    // Atlanta down, and the operator restarted meanwhile: Dallas reads Atlanta's log backups
    // from its copy folder, and they are still dated right (not with Dallas's offset).
    for instance in ["atl-sql1", "atl-sql2"] {
        live.sim
            .sim
            .inject(Fault::InstanceDown {
                instance: instance.into(),
            })
            .unwrap();
    }
    let obs = pchat_sql::observe::Observer::new()
        .observe(&live.spec, &live.settings, None, jiff::Timestamp::now())
        .await;
    atlanta_backups_are_dated_within(&obs, from);
}
