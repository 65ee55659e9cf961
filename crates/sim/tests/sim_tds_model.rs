//! The TDS front end over the SQL Server model (`sim::server`): tiberius, mssql-tds and the
//! chat workload against a two-site simulator. Needs both the simtds and simmodel branches.

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use pchat_sim::server::{Simulator, Topology};
use pchat_sim::workload::{ChatServer, ChatWorkload, PoolState, Published, WorkloadConfig, verify};
use support::tds::*;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

const TOPOLOGY: &str = r#"
instances:
  - {name: atl-sql1, site: atlanta, listen: "127.0.0.1:14331", logins: [{name: sa, password: Pchat-Sim-1}]}
  - {name: atl-sql2, site: atlanta, listen: "127.0.0.1:14332", logins: [{name: sa, password: Pchat-Sim-1}]}
  - {name: dal-sql1, site: dallas, listen: "127.0.0.1:14333", logins: [{name: sa, password: Pchat-Sim-1}]}
  - {name: dal-sql2, site: dallas, listen: "127.0.0.1:14334", logins: [{name: sa, password: Pchat-Sim-1}]}
shares:
  - {host: atl-fs, share: pchat-ls, site: atlanta}
  - {host: dal-fs, share: pchat-ls, site: dallas}
databases:
  - {name: mgc, instance: atl-sql1}
  - {name: mgccomp, instance: atl-sql1}
jobs: {backup_ms: 150, copy_ms: 150, restore_ms: 150, mirroring_ms: 20}
"#;

struct Running {
    sim: Arc<Simulator>,
    addrs: BTreeMap<String, SocketAddr>,
    shutdown: CancellationToken,
    _dir: tempdir::Dir,
}

mod tempdir {
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Every instance of the topology behind the TDS front end on an ephemeral loopback port.
async fn run(name: &str) -> Running {
    let dir = std::env::temp_dir().join(format!("simtds-model-{name}-{}", std::process::id()));
    let sim = Simulator::new(Topology::from_yaml(TOPOLOGY).unwrap(), &dir).unwrap();
    let shutdown = CancellationToken::new();
    let mut addrs = BTreeMap::new();
    for (instance, _, _) in sim.instances() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        addrs.insert(instance.clone(), listener.local_addr().unwrap());
        tokio::spawn(pchat_sim::tds::serve(
            listener,
            sim.backend(&instance).unwrap(),
            shutdown.clone(),
        ));
    }
    Running {
        sim,
        addrs,
        shutdown,
        _dir: tempdir::Dir(dir),
    }
}

#[tokio::test]
async fn tiberius_reads_catalog_views_and_errors_from_the_model() {
    let r = run("catalog").await;
    let mut client = connect(r.addrs["atl-sql1"]).await;
    let rows = client
        .simple_query("SELECT name, state_desc FROM sys.databases ORDER BY name")
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    let dbs: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r.get::<&str, _>("name").unwrap().to_string(),
                r.get::<&str, _>("state_desc").unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        dbs.contains(&("mgc".to_string(), "ONLINE".to_string())),
        "{dbs:?}"
    );
    // The error arrives before any result set, so `simple_query` itself reports it.
    let err = match client.simple_query("SELECT * FROM dbo.NoSuchTable").await {
        Ok(stream) => stream.into_results().await.unwrap_err(),
        Err(e) => e,
    };
    let tiberius::error::Error::Server(e) = err else {
        panic!("expected a server error, got {err:?}");
    };
    assert_eq!((e.code(), e.class(), e.server()), (208, 16, "atl-sql1"));
    r.shutdown.cancel();
}

#[tokio::test]
async fn bad_password_gets_18456_from_the_model() {
    let r = run("badlogin").await;
    let err = connect_with(config(r.addrs["atl-sql1"], USER, "nope"))
        .await
        .unwrap_err();
    let tiberius::error::Error::Server(e) = err else {
        panic!("{err:?}")
    };
    assert_eq!(e.code(), 18456);
    r.shutdown.cancel();
}

#[tokio::test]
async fn the_chat_workload_writes_to_the_model_and_every_ack_is_stored() {
    let r = run("workload").await;
    let (_tx, rx) = watch::channel(Published {
        active_servers: vec!["pchat1.atl.contoso.com".into()],
        pool_state: PoolState::Normal,
    });
    let workload = ChatWorkload::start(WorkloadConfig {
        servers: vec![ChatServer {
            fqdn: "pchat1.atl.contoso.com".into(),
        }],
        home_site: vec![r.addrs["atl-sql1"], r.addrs["atl-sql2"]],
        other_site: vec![r.addrs["dal-sql1"], r.addrs["dal-sql2"]],
        database: "mgc".into(),
        user: USER.into(),
        password: PASSWORD.into(),
        rate_per_server: 100.0,
        backoff: Duration::from_millis(50),
        published_poll: None,
        request_timeout: Duration::from_secs(5),
        first_id: 1,
        source: Arc::new(rx),
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while workload.acked().len() < 20 {
        assert!(tokio::time::Instant::now() < deadline, "no acks");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut client = connect(r.addrs["atl-sql1"]).await;
    let sessions = client
        .simple_query("SELECT host_name, program_name FROM sys.dm_exec_sessions")
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    let seen: Vec<(Option<String>, Option<String>)> = sessions
        .iter()
        .map(|r| {
            (
                r.get::<&str, _>(0).map(str::to_string),
                r.get::<&str, _>(1).map(str::to_string),
            )
        })
        .collect();
    assert!(
        seen.contains(&(
            Some("pchat1.atl.contoso.com".into()),
            Some("Persistent Chat Server".into())
        )),
        "{seen:?}"
    );
    let acked = workload.stop().await;
    let copies = BTreeMap::from([(
        "atl-sql1".to_string(),
        r.sim.message_ids("atl-sql1", "mgc").unwrap(),
    )]);
    let report = verify(&acked, &copies);
    assert!(report.nothing_lost(), "{report:?}");
    r.shutdown.cancel();
}

#[tokio::test]
async fn mssql_tds_backup_restore_round_trip_through_the_model() {
    let r = run("roundtrip").await;
    let result = support::mssql_roundtrip::backup_restore_round_trip(
        r.addrs["atl-sql1"],
        r.addrs["dal-sql1"],
        USER,
        PASSWORD,
        "mgc",
        r"\\atl-fs\pchat-ls\mgc_roundtrip.bak",
    )
    .await;
    result.unwrap();
    assert_eq!(
        r.sim.database_state("dal-sql1", "mgc").as_deref(),
        Some("ONLINE")
    );
    r.shutdown.cancel();
}
