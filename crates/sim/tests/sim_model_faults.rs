//! Fault injection through the Rust API: instance loss, statement failures, latency, damaged
//! databases, and the JSON form of faults for the control endpoint.

mod support;

use std::time::{Duration, Instant};

use pchat_sim::backend::LoginRequest;
use pchat_sim::faults::{Fault, FaultInjector};
use pchat_sim::server::StatementKind;
use support::model::*;

#[tokio::test]
async fn instance_down_refuses_logins_drops_sessions_and_flips_the_watch() {
    let w = world("down");
    let c = w.connect("atl-sql1");
    let mut watch = w.sim.watch_up("atl-sql1").unwrap();
    assert!(*watch.borrow());
    w.sim
        .inject(Fault::InstanceDown {
            instance: "atl-sql1".into(),
        })
        .unwrap();
    assert!(c.session.killed.is_cancelled());
    assert!(!w.sim.is_up("atl-sql1"));
    watch.changed().await.unwrap();
    assert!(!*watch.borrow());
    let e = w
        .sim
        .backend("atl-sql1")
        .unwrap()
        .login(LoginRequest {
            user: "sa".into(),
            password: "Pchat-Sim-1".into(),
            host_name: "h".into(),
            app_name: "a".into(),
            database: String::new(),
            client_addr: "127.0.0.1:1".into(),
            encrypted: false,
        })
        .unwrap_err();
    assert_eq!(e.number, 17187);
    w.sim
        .inject(Fault::InstanceUp {
            instance: "atl-sql1".into(),
        })
        .unwrap();
    // Data survives a restart.
    let c = w.connect("atl-sql1");
    c.ok("SELECT 1").await;
    assert_eq!(w.sim.database_state("atl-sql1", "mgc").unwrap(), "ONLINE");
}

#[tokio::test]
async fn fail_next_fails_only_the_next_matching_statement_with_the_given_number() {
    let w = world("failnext");
    let c = w.connect("atl-sql1");
    w.sim
        .inject(Fault::FailNext {
            instance: Some("atl-sql1".into()),
            pattern: "backup log".into(),
            regex: false,
            error: 3201,
        })
        .unwrap();
    c.ok("SELECT 1").await;
    c.ok("BACKUP DATABASE mgc TO DISK = N'\\\\atl-fs\\pchat-ls\\a.bak'")
        .await;
    assert_eq!(
        c.err("BACKUP LOG mgc TO DISK = N'\\\\atl-fs\\pchat-ls\\a.trn'")
            .await,
        [3201]
    );
    c.ok("BACKUP LOG mgc TO DISK = N'\\\\atl-fs\\pchat-ls\\a.trn'")
        .await;
}

#[tokio::test]
async fn fail_next_with_a_regex_matches_case_insensitively() {
    let w = world("failregex");
    let c = w.connect("dal-sql1");
    w.sim
        .inject(Fault::FailNext {
            instance: None,
            pattern: r"^alter\s+database\s+\[?mgc".into(),
            regex: true,
            error: 5061,
        })
        .unwrap();
    assert_eq!(c.err("ALTER DATABASE [mgc] SET ONLINE").await, [5061]);
    assert!(
        w.sim
            .inject(Fault::FailNext {
                instance: None,
                pattern: "(".into(),
                regex: true,
                error: 1
            })
            .unwrap_err()
            .contains("regex")
    );
}

#[tokio::test]
async fn latency_delays_statements_of_that_kind_only() {
    let w = world("latency");
    let c = w.connect("atl-sql1");
    w.sim
        .inject(Fault::Latency {
            statement: StatementKind::Backup,
            millis: 200,
        })
        .unwrap();
    let t = Instant::now();
    c.ok("SELECT 1").await;
    assert!(t.elapsed() < Duration::from_millis(150));
    let t = Instant::now();
    c.ok("BACKUP DATABASE mgc TO DISK = N'\\\\atl-fs\\pchat-ls\\l.bak'")
        .await;
    assert!(t.elapsed() >= Duration::from_millis(200));
    w.sim
        .inject(Fault::Latency {
            statement: StatementKind::Backup,
            millis: 0,
        })
        .unwrap();
    assert_eq!(w.sim.describe()["latency"], serde_json::json!({}));
}

#[tokio::test]
async fn damaged_database_is_recovery_pending_until_set_online() {
    let w = world("pending");
    let c = w.connect("atl-sql1");
    w.sim
        .inject(Fault::DatabaseRecoveryPending {
            instance: "atl-sql1".into(),
            database: "mgccomp".into(),
        })
        .unwrap();
    assert_eq!(
        c.text("SELECT state_desc FROM sys.databases WHERE name = 'mgccomp'")
            .await,
        "RECOVERY_PENDING"
    );
    assert_eq!(c.err("USE mgccomp").await, [945]);
    c.ok("ALTER DATABASE mgccomp SET ONLINE").await;
    c.ok("USE mgccomp").await;
}

#[tokio::test]
async fn unknown_names_in_faults_are_rejected_naming_them() {
    let w = world("badfault");
    let e = w
        .sim
        .inject(Fault::InstanceDown {
            instance: "nope".into(),
        })
        .unwrap_err();
    assert!(e.contains("`nope`"), "{e}");
    let e = w
        .sim
        .inject(Fault::Partition {
            between: (vec!["atlanta".into()], vec!["mars".into()]),
        })
        .unwrap_err();
    assert!(e.contains("`mars`"), "{e}");
}

#[tokio::test]
async fn describe_reports_the_faults_in_force() {
    let w = world("describe");
    w.sim
        .inject(Fault::ShareDown {
            host: "dal-fs".into(),
        })
        .unwrap();
    w.sim
        .inject(Fault::Partition {
            between: (vec!["atlanta".into()], vec!["dallas".into()]),
        })
        .unwrap();
    let d = w.sim.describe();
    assert_eq!(d["sharesDown"], serde_json::json!(["dal-fs"]));
    assert_eq!(d["partitions"][0][1], serde_json::json!(["dallas"]));
}

#[test]
fn faults_round_trip_through_their_json_form() {
    let f: Fault =
        serde_json::from_str(r#"{"kind":"FailNext","pattern":"RESTORE LOG","error":4305}"#)
            .unwrap();
    assert_eq!(
        f,
        Fault::FailNext {
            instance: None,
            pattern: "RESTORE LOG".into(),
            regex: false,
            error: 4305
        }
    );
    let l: Fault =
        serde_json::from_str(r#"{"kind":"Latency","statement":"AlterDatabase","millis":5}"#)
            .unwrap();
    assert_eq!(
        serde_json::to_value(&l).unwrap()["statement"],
        serde_json::json!("alterDatabase")
    );
}

#[tokio::test]
async fn statement_latency_can_come_from_the_topology() {
    let yaml = format!("{}latency: {{insert: 150}}\n", TOPOLOGY);
    let w = world_with("topolatency", &yaml);
    let c = w.connect("atl-sql1");
    let t = Instant::now();
    c.post("mgc", [1]).await;
    assert!(t.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn the_simulator_is_a_shareable_fault_injector_for_the_control_endpoint() {
    let w = world("dyninjector");
    let injector: std::sync::Arc<dyn FaultInjector> = w.sim.clone();
    injector.inject(Fault::Heal).unwrap();
    let state = injector.describe();
    assert_eq!(state["instances"].as_array().unwrap().len(), 4);
    assert_eq!(state["instances"][0]["databases"][0]["name"], "mgc");
    assert_eq!(state["instances"][0]["databases"][0]["state"], "ONLINE");
}

#[tokio::test]
async fn a_running_backup_shows_in_dm_exec_requests_with_its_progress_until_it_ends() {
    let w = world("requests");
    w.sim
        .inject(Fault::Latency {
            statement: StatementKind::Backup,
            millis: 600,
        })
        .unwrap();
    let backup = w.connect("atl-sql1");
    let observer = w.connect("atl-sql1");
    let running = tokio::spawn(async move {
        backup
            .ok("BACKUP DATABASE mgc TO DISK = N'\\\\atl-fs\\pchat-ls\\progress.bak' WITH INIT")
            .await;
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rows = observer
        .rows(
            "SELECT r.command, CAST(r.percent_complete AS int) AS pct, s.program_name
               FROM sys.dm_exec_requests r
               JOIN sys.dm_exec_sessions s ON s.session_id = r.session_id",
        )
        .await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        rows[0][0],
        pchat_sim::backend::Value::NVarChar("BACKUP DATABASE".into())
    );
    let pchat_sim::backend::Value::Int(percent) = rows[0][1] else {
        panic!("{rows:?}");
    };
    assert!((20..=80).contains(&percent), "{percent}");
    running.await.unwrap();
    assert_eq!(
        observer
            .int("SELECT COUNT(*) FROM sys.dm_exec_requests")
            .await,
        0
    );
}
