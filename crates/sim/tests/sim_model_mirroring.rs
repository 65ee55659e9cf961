//! Database mirroring configured by T-SQL only: seeding rules and their errors, states in
//! sys.database_mirroring, synchronous commit, FAILOVER, FORCE_SERVICE, SUSPEND/RESUME, OFF,
//! partitions and instance loss.

mod support;

use pchat_sim::backend::Value;
use pchat_sim::faults::{Fault, FaultInjector};
use support::model::*;

const SHARE: &str = "\\\\atl-fs\\pchat-ls";

/// Full + log backup on atl-sql1, both restored WITH NORECOVERY on atl-sql2.
async fn seed_mirror(w: &World, db: &str) -> (Conn, Conn) {
    let p = w.connect("atl-sql1");
    let m = w.connect("atl-sql2");
    p.ok(&format!(
        "BACKUP DATABASE [{db}] TO DISK = N'{SHARE}\\{db}.bak' WITH INIT"
    ))
    .await;
    p.ok(&format!(
        "BACKUP LOG [{db}] TO DISK = N'{SHARE}\\{db}.trn' WITH INIT"
    ))
    .await;
    m.ok(&format!(
        "RESTORE DATABASE [{db}] FROM DISK = N'{SHARE}\\{db}.bak' WITH NORECOVERY"
    ))
    .await;
    m.ok(&format!(
        "RESTORE LOG [{db}] FROM DISK = N'{SHARE}\\{db}.trn' WITH NORECOVERY"
    ))
    .await;
    (p, m)
}

async fn mirror(w: &World, db: &str) -> (Conn, Conn) {
    let (p, m) = seed_mirror(w, db).await;
    m.ok(&format!(
        "ALTER DATABASE [{db}] SET PARTNER = N'TCP://atl-sql1.litwareinc.com:5022'"
    ))
    .await;
    p.ok(&format!(
        "ALTER DATABASE [{db}] SET PARTNER = N'TCP://atl-sql2:5022'"
    ))
    .await;
    (p, m)
}

async fn state_of(c: &Conn, db: &str) -> (String, String) {
    let r = c
        .rows(&format!(
            "SELECT m.mirroring_role_desc, m.mirroring_state_desc FROM sys.database_mirroring m JOIN sys.databases d ON d.database_id = m.database_id WHERE d.name = '{db}'"
        ))
        .await
        .remove(0);
    let s = |v: &Value| match v {
        Value::NVarChar(s) => s.clone(),
        Value::Null => "NULL".into(),
        o => format!("{o:?}"),
    };
    (s(&r[0]), s(&r[1]))
}

#[tokio::test]
async fn mirroring_by_tsql_synchronizes_and_commits_reach_the_mirror() {
    let w = world("mirror");
    let (p, m) = mirror(&w, "mgc").await;
    p.post("mgc", 1..6).await;
    // SAFETY FULL: each commit was hardened on the mirror before it returned.
    assert_eq!(w.sim.message_ids("atl-sql2", "mgc").unwrap(), ids(1..6));
    assert_eq!(
        state_of(&p, "mgc").await,
        ("PRINCIPAL".into(), "SYNCHRONIZED".into())
    );
    assert_eq!(
        state_of(&m, "mgc").await,
        ("MIRROR".into(), "SYNCHRONIZED".into())
    );
    let row = p
        .rows("SELECT mirroring_partner_name, mirroring_partner_instance, mirroring_safety_level_desc FROM sys.database_mirroring WHERE database_id = DB_ID('mgc')")
        .await
        .remove(0);
    assert_eq!(
        row,
        [
            Value::NVarChar("TCP://atl-sql2:5022".into()),
            Value::NVarChar("atl-sql2".into()),
            Value::NVarChar("FULL".into())
        ]
    );
    assert_eq!(
        w.sim.database_state("atl-sql2", "mgc").unwrap(),
        "RESTORING"
    );
}

#[tokio::test]
async fn unmirrored_databases_show_null_mirroring_columns() {
    let w = world("mirrornull");
    let p = w.connect("atl-sql1");
    assert_eq!(
        state_of(&p, "mgccomp").await,
        ("NULL".into(), "NULL".into())
    );
}

#[tokio::test]
async fn set_partner_on_the_principal_first_is_error_1416() {
    let w = world("e1416");
    let (p, _m) = seed_mirror(&w, "mgc").await;
    assert_eq!(
        p.err("ALTER DATABASE mgc SET PARTNER = N'TCP://atl-sql2:5022'")
            .await,
        [1416]
    );
}

#[tokio::test]
async fn set_partner_on_a_mirror_without_a_restored_log_is_error_1478() {
    let w = world("e1478");
    let p = w.connect("atl-sql1");
    let m = w.connect("atl-sql2");
    p.ok(&format!(
        "BACKUP DATABASE mgc TO DISK = N'{SHARE}\\f.bak' WITH INIT"
    ))
    .await;
    m.ok(&format!(
        "RESTORE DATABASE mgc FROM DISK = N'{SHARE}\\f.bak' WITH NORECOVERY"
    ))
    .await;
    assert_eq!(
        m.err("ALTER DATABASE mgc SET PARTNER = N'TCP://atl-sql1:5022'")
            .await,
        [1478]
    );
}

#[tokio::test]
async fn a_log_backup_not_restored_on_the_mirror_is_error_1478_on_the_principal() {
    let w = world("e1478b");
    let (p, m) = seed_mirror(&w, "mgc").await;
    m.ok("ALTER DATABASE mgc SET PARTNER = N'TCP://atl-sql1:5022'")
        .await;
    p.ok(&format!("BACKUP LOG mgc TO DISK = N'{SHARE}\\later.trn'"))
        .await;
    assert_eq!(
        p.err("ALTER DATABASE mgc SET PARTNER = N'TCP://atl-sql2:5022'")
            .await,
        [1478]
    );
}

#[tokio::test]
async fn set_partner_with_a_simple_recovery_partner_is_error_1465() {
    let w = world("e1465");
    let (p, m) = seed_mirror(&w, "mgc").await;
    p.ok("ALTER DATABASE mgc SET RECOVERY SIMPLE").await;
    assert_eq!(
        m.err("ALTER DATABASE mgc SET PARTNER = N'TCP://atl-sql1:5022'")
            .await,
        [1465]
    );
}

#[tokio::test]
async fn set_partner_to_an_unreachable_address_is_error_1418() {
    let w = world("e1418");
    let (_p, m) = seed_mirror(&w, "mgc").await;
    let o = m
        .exec("ALTER DATABASE mgc SET PARTNER = N'TCP://nowhere:5022'")
        .await;
    assert_eq!(errors(&o), [1418]);
    assert!(error_texts(&o)[0].contains("\"TCP://nowhere:5022\""));
    w.sim
        .inject(Fault::InstanceDown {
            instance: "atl-sql1".into(),
        })
        .unwrap();
    assert_eq!(
        m.err("ALTER DATABASE mgc SET PARTNER = N'TCP://atl-sql1:5022'")
            .await,
        [1418]
    );
}

#[tokio::test]
async fn set_partner_towards_an_online_remote_copy_is_error_1464() {
    let w = world("e1464");
    let p = w.connect("atl-sql1");
    w.connect("dal-sql1").ok("CREATE DATABASE mgc").await;
    assert_eq!(
        p.err("ALTER DATABASE mgc SET PARTNER = N'TCP://dal-sql1:5022'")
            .await,
        [1464]
    );
}

#[tokio::test]
async fn manual_failover_swaps_roles_and_writes_flow_back() {
    let w = world("failover");
    let (p, m) = mirror(&w, "mgc").await;
    p.post("mgc", 1..4).await;
    let chat = w.connect_as("atl-sql1", "atl-pc1", "Persistent Chat", "mgc");
    p.ok("ALTER DATABASE mgc SET PARTNER FAILOVER").await;
    assert!(
        chat.session.killed.is_cancelled(),
        "users of the old principal are disconnected"
    );
    assert_eq!(state_of(&m, "mgc").await.0, "PRINCIPAL");
    assert_eq!(state_of(&p, "mgc").await.0, "MIRROR");
    assert_eq!(
        w.sim.database_state("atl-sql1", "mgc").unwrap(),
        "RESTORING"
    );
    assert_eq!(w.sim.database_state("atl-sql2", "mgc").unwrap(), "ONLINE");
    m.post("mgc", 4..6).await;
    assert_eq!(w.sim.message_ids("atl-sql1", "mgc").unwrap(), ids(1..6));
}

#[tokio::test]
async fn failover_with_safety_off_is_error_1477() {
    let w = world("e1477");
    let (p, _m) = mirror(&w, "mgc").await;
    p.ok("ALTER DATABASE mgc SET PARTNER SAFETY OFF").await;
    assert_eq!(
        p.err("ALTER DATABASE mgc SET PARTNER FAILOVER").await,
        [1477]
    );
}

#[tokio::test]
async fn safety_off_commits_without_waiting_and_the_pump_catches_the_mirror_up() {
    let w = world("async");
    let (p, m) = mirror(&w, "mgc").await;
    p.ok("ALTER DATABASE mgc SET PARTNER SAFETY OFF").await;
    p.post("mgc", 1..4).await;
    assert!(
        eventually(2000, || w.sim.message_ids("atl-sql2", "mgc").unwrap()
            == ids(1..4))
        .await
    );
    assert_eq!(
        m.text("SELECT mirroring_safety_level_desc FROM sys.database_mirroring WHERE database_id = DB_ID('mgc')")
            .await,
        "OFF"
    );
}

#[tokio::test]
async fn failover_run_on_the_mirror_is_refused() {
    let w = world("failovermirror");
    let (_p, m) = mirror(&w, "mgc").await;
    assert_eq!(
        m.err("ALTER DATABASE mgc SET PARTNER FAILOVER").await,
        [1404]
    );
}

#[tokio::test]
async fn restore_on_a_mirrored_database_is_error_3104() {
    let w = world("e3104");
    let (_p, m) = mirror(&w, "mgc").await;
    assert_eq!(
        m.err(&format!(
            "RESTORE LOG mgc FROM DISK = N'{SHARE}\\mgc.trn' WITH NORECOVERY"
        ))
        .await,
        [3104, 3013]
    );
    assert_eq!(
        m.err("RESTORE DATABASE mgc WITH RECOVERY").await,
        [3104, 3013]
    );
}

#[tokio::test]
async fn tail_log_backup_of_a_mirrored_principal_is_error_1468() {
    let w = world("e1468");
    let (p, _m) = mirror(&w, "mgc").await;
    assert_eq!(
        p.err(&format!(
            "BACKUP LOG mgc TO DISK = N'{SHARE}\\t.trn' WITH NORECOVERY"
        ))
        .await,
        [1468, 3013]
    );
    assert_eq!(p.err("DROP DATABASE mgc").await, [3743]);
}

#[tokio::test]
async fn partition_disconnects_the_partners_commits_run_exposed_and_heal_resynchronizes() {
    let w = world("partition");
    let (p, m) = mirror(&w, "mgc").await;
    w.sim
        .inject(Fault::Partition {
            between: (vec!["atl-sql1".into()], vec!["atl-sql2".into()]),
        })
        .unwrap();
    assert_eq!(state_of(&p, "mgc").await.1, "DISCONNECTED");
    assert_eq!(state_of(&m, "mgc").await.1, "DISCONNECTED");
    p.post("mgc", 1..3).await;
    assert_eq!(
        w.sim.message_ids("atl-sql2", "mgc").unwrap(),
        Vec::<i64>::new()
    );
    w.sim.inject(Fault::Heal).unwrap();
    let st = state_of(&p, "mgc").await.1;
    assert!(st == "SYNCHRONIZING" || st == "SYNCHRONIZED", "{st}");
    assert!(
        eventually(2000, || w.sim.message_ids("atl-sql2", "mgc").unwrap()
            == ids(1..3))
        .await
    );
    assert_eq!(state_of(&p, "mgc").await.1, "SYNCHRONIZED");
}

#[tokio::test]
async fn force_service_after_principal_loss_then_old_principal_returns_as_suspended_mirror() {
    let w = world("force");
    let (p, m) = mirror(&w, "mgc").await;
    p.post("mgc", 1..3).await;
    w.sim
        .inject(Fault::InstanceDown {
            instance: "atl-sql1".into(),
        })
        .unwrap();
    assert_eq!(
        state_of(&m, "mgc").await,
        ("MIRROR".into(), "DISCONNECTED".into())
    );
    // While the principal is reachable FORCE_SERVICE is refused; here it is gone.
    m.ok("ALTER DATABASE mgc SET PARTNER FORCE_SERVICE_ALLOW_DATA_LOSS")
        .await;
    assert_eq!(
        state_of(&m, "mgc").await,
        ("PRINCIPAL".into(), "SUSPENDED".into())
    );
    assert_eq!(w.sim.database_state("atl-sql2", "mgc").unwrap(), "ONLINE");
    m.post("mgc", 10..12).await;
    w.sim
        .inject(Fault::InstanceUp {
            instance: "atl-sql1".into(),
        })
        .unwrap();
    let p2 = w.connect("atl-sql1");
    assert_eq!(
        state_of(&p2, "mgc").await,
        ("MIRROR".into(), "SUSPENDED".into())
    );
    assert_eq!(
        w.sim.database_state("atl-sql1", "mgc").unwrap(),
        "RESTORING"
    );
    m.ok("ALTER DATABASE mgc SET PARTNER RESUME").await;
    assert!(
        eventually(2000, || w.sim.message_ids("atl-sql1", "mgc").unwrap()
            == [1, 2, 10, 11])
        .await
    );
    drop(p);
}

#[tokio::test]
async fn force_service_while_the_principal_is_connected_is_error_1455() {
    let w = world("e1455");
    let (_p, m) = mirror(&w, "mgc").await;
    assert_eq!(
        m.err("ALTER DATABASE mgc SET PARTNER FORCE_SERVICE_ALLOW_DATA_LOSS")
            .await,
        [1455]
    );
}

#[tokio::test]
async fn suspend_and_resume_change_the_mirroring_state() {
    let w = world("suspend");
    let (p, m) = mirror(&w, "mgc").await;
    m.ok("ALTER DATABASE mgc SET PARTNER SUSPEND").await;
    assert_eq!(state_of(&p, "mgc").await.1, "SUSPENDED");
    p.post("mgc", [1]).await;
    assert!(w.sim.message_ids("atl-sql2", "mgc").unwrap().is_empty());
    p.ok("ALTER DATABASE mgc SET PARTNER RESUME").await;
    assert!(
        eventually(2000, || w.sim.message_ids("atl-sql2", "mgc").unwrap()
            == [1])
        .await
    );
    assert_eq!(state_of(&m, "mgc").await.1, "SYNCHRONIZED");
}

#[tokio::test]
async fn partner_off_removes_mirroring_on_both_and_leaves_the_mirror_restoring() {
    let w = world("off");
    let (p, m) = mirror(&w, "mgc").await;
    m.ok("ALTER DATABASE mgc SET PARTNER OFF").await;
    assert_eq!(state_of(&p, "mgc").await.0, "NULL");
    assert_eq!(state_of(&m, "mgc").await.0, "NULL");
    assert_eq!(
        w.sim.database_state("atl-sql2", "mgc").unwrap(),
        "RESTORING"
    );
    assert_eq!(p.err("ALTER DATABASE mgc SET PARTNER OFF").await, [1416]);
}

#[tokio::test]
async fn witness_is_set_on_the_principal_and_shown_on_both() {
    let w = world("witness");
    let (p, m) = mirror(&w, "mgc").await;
    assert_eq!(
        m.err("ALTER DATABASE mgc SET WITNESS = N'TCP://dal-sql2:5022'")
            .await,
        [1404]
    );
    p.ok("ALTER DATABASE mgc SET WITNESS = N'TCP://dal-sql2:5022'")
        .await;
    assert_eq!(
        m.text("SELECT mirroring_witness_name FROM sys.database_mirroring WHERE database_id = DB_ID('mgc')")
            .await,
        "TCP://dal-sql2:5022"
    );
    p.ok("ALTER DATABASE mgc SET WITNESS OFF").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_across_a_manual_failover_lose_no_acknowledged_message() {
    let w = std::sync::Arc::new(world("failoverload"));
    let (p, _m) = mirror(&w, "mgc").await;
    let mut tasks = Vec::new();
    // The failover comes once every writer has written once: under load, not before it.
    let writing = std::sync::Arc::new(tokio::sync::Barrier::new(5));
    for writer in 0..4i64 {
        let w = w.clone();
        let writing = writing.clone();
        let mut conn = w.connect_as("atl-sql1", "atl-pc1", "Persistent Chat Server", "mgc");
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut on = "atl-sql1";
            for k in 0..60i64 {
                if k == 1 {
                    writing.wait().await;
                }
                let id = writer * 1000 + k;
                let o = conn
                    .exec(&format!(
                        "INSERT INTO dbo.Messages (MessageId, Body) VALUES ({id}, N'x')"
                    ))
                    .await;
                if errors(&o).is_empty() {
                    acked.push(id);
                } else {
                    // Reconnect to whichever partner is principal now.
                    on = if on == "atl-sql1" {
                        "atl-sql2"
                    } else {
                        "atl-sql1"
                    };
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    let login = LoginAs {
                        user: "sa".into(),
                        password: "Pchat-Sim-1".into(),
                        host: "atl-pc1".into(),
                        app: "Persistent Chat Server".into(),
                        database: "mgc".into(),
                    };
                    if let Ok(c) = w.try_login(on, login) {
                        conn = c;
                    }
                }
            }
            acked
        }));
    }
    writing.wait().await;
    p.ok("ALTER DATABASE mgc SET PARTNER FAILOVER").await;
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    assert!(!acked.is_empty());
    let principal = w.sim.message_ids("atl-sql2", "mgc").unwrap();
    let mirror_copy = w.sim.message_ids("atl-sql1", "mgc").unwrap();
    for id in &acked {
        assert!(
            principal.contains(id),
            "acked {id} missing on the new principal"
        );
        assert!(
            mirror_copy.contains(id),
            "acked {id} missing on the new mirror"
        );
    }
}

#[tokio::test]
async fn set_partner_towards_a_copy_of_another_lineage_is_error_1412() {
    let w = world("e1412");
    let other = w.connect("dal-sql1");
    other.ok("CREATE DATABASE mgc").await;
    other
        .ok("BACKUP DATABASE mgc TO DISK = N'\\\\dal-fs\\pchat-ls\\x.bak' WITH INIT")
        .await;
    other
        .ok("BACKUP LOG mgc TO DISK = N'\\\\dal-fs\\pchat-ls\\x.trn' WITH INIT")
        .await;
    let m = w.connect("dal-sql2");
    m.ok("RESTORE DATABASE mgc FROM DISK = N'\\\\dal-fs\\pchat-ls\\x.bak' WITH NORECOVERY")
        .await;
    m.ok("RESTORE LOG mgc FROM DISK = N'\\\\dal-fs\\pchat-ls\\x.trn' WITH NORECOVERY")
        .await;
    m.ok("ALTER DATABASE mgc SET PARTNER = N'TCP://atl-sql1:5022'")
        .await;
    let p = w.connect("atl-sql1");
    assert_eq!(
        p.err("ALTER DATABASE mgc SET PARTNER = N'TCP://dal-sql2:5022'")
            .await,
        [1412]
    );
}
