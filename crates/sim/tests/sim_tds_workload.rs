//! The chat workload against the TDS front end with a test backend (tests/support; a test
//! double that stores inserted message ids, standing in for the SQL Server model).

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use pchat_sim::workload::{
    ChatServer, ChatWorkload, FileSource, PROGRAM_NAME, PoolState, Published, WorkloadConfig,
    longest_gap, verify,
};
use support::tds::*;
use tokio::sync::watch;

const PC1: &str = "pchat1.atl.contoso.com";
const PC2: &str = "pchat2.atl.contoso.com";

fn workload_config(
    home: &[&Server],
    other: &[&Server],
    source: Arc<dyn pchat_sim::workload::PublishedSource>,
) -> WorkloadConfig {
    WorkloadConfig {
        servers: vec![
            ChatServer { fqdn: PC1.into() },
            ChatServer { fqdn: PC2.into() },
        ],
        home_site: home.iter().map(|s| s.addr).collect(),
        other_site: other.iter().map(|s| s.addr).collect(),
        database: "mgc".into(),
        user: USER.into(),
        password: PASSWORD.into(),
        rate_per_server: 200.0,
        backoff: Duration::from_millis(50),
        published_poll: None,
        request_timeout: Duration::from_secs(5),
        first_id: 1_000,
        source,
    }
}

/// Waits (bounded) until `f` holds.
async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn published(active: &[&str], state: PoolState) -> Published {
    Published {
        active_servers: active.iter().map(|s| s.to_string()).collect(),
        pool_state: state,
    }
}

#[tokio::test]
async fn chat_servers_write_to_the_home_site_as_chat_servers_and_every_ack_is_stored() {
    let home = start().await;
    let other = start().await;
    let (_tx, rx) = watch::channel(published(&[PC1, PC2], PoolState::Normal));
    let workload = ChatWorkload::start(workload_config(&[&home], &[&other], Arc::new(rx)));
    eventually("acks from both servers", || {
        let acked = workload.acked();
        acked.iter().any(|a| a.server == PC1) && acked.iter().any(|a| a.server == PC2)
    })
    .await;
    let acked = workload.stop().await;
    let copies = BTreeMap::from([("home".to_string(), home.backend.message_ids("mgc"))]);
    let report = verify(&acked, &copies);
    assert!(report.nothing_lost(), "{report:?}");
    assert!(other.backend.message_ids("mgc").is_empty());
    let st = home.backend.state.lock().unwrap();
    assert!(st.logins.iter().all(|l| l.app_name == PROGRAM_NAME));
    assert!(st.logins.iter().any(|l| l.host_name == PC1));
    // Ids are unique across servers.
    let mut ids: Vec<i64> = acked.iter().map(|a| a.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), acked.len());
}

#[tokio::test]
async fn failover_moves_writes_to_the_other_site_and_verify_reports_what_the_old_copy_lacks() {
    let home = start().await;
    let other = start().await;
    let (tx, rx) = watch::channel(published(&[PC1], PoolState::Normal));
    let workload = ChatWorkload::start(workload_config(&[&home], &[&other], Arc::new(rx)));
    eventually("home writes", || {
        !home.backend.message_ids("mgc").is_empty()
    })
    .await;
    tx.send(published(&[PC1], PoolState::FailedOver)).unwrap();
    eventually("dr writes", || other.backend.message_ids("mgc").len() >= 5).await;
    let acked = workload.stop().await;
    let home_ids = home.backend.message_ids("mgc");
    let dr_ids = other.backend.message_ids("mgc");
    let mut both = home_ids.clone();
    both.extend(&dr_ids);
    let copies = BTreeMap::from([("home".to_string(), home_ids), ("both".to_string(), both)]);
    let report = verify(&acked, &copies);
    assert!(report.missing["both"].is_empty(), "{report:?}");
    let mut expected_missing_from_home = dr_ids.clone();
    expected_missing_from_home.sort();
    assert_eq!(report.missing["home"], expected_missing_from_home);
}

#[tokio::test]
async fn a_server_leaving_the_active_list_disconnects_and_stops_writing() {
    let home = start().await;
    let (tx, rx) = watch::channel(published(&[PC1, PC2], PoolState::Normal));
    let workload = ChatWorkload::start(workload_config(&[&home], &[], Arc::new(rx)));
    eventually("pc2 writes", || {
        workload.acked().iter().any(|a| a.server == PC2)
    })
    .await;
    tx.send(published(&[PC1], PoolState::Normal)).unwrap();
    eventually("pc2 disconnects", || {
        home.backend.state.lock().unwrap().logouts >= 1
    })
    .await;
    let pc2_before = workload.acked().iter().filter(|a| a.server == PC2).count();
    let pc1_before = workload.acked().iter().filter(|a| a.server == PC1).count();
    eventually("pc1 keeps writing", || {
        workload.acked().iter().filter(|a| a.server == PC1).count() > pc1_before + 10
    })
    .await;
    let acked = workload.stop().await;
    assert_eq!(acked.iter().filter(|a| a.server == PC2).count(), pc2_before);
}

#[tokio::test]
async fn a_server_watching_the_published_list_leaves_at_a_drain_before_its_next_write_is_due() {
    let home = start().await;
    let (tx, rx) = watch::channel(published(&[PC1], PoolState::Normal));
    // One write every three seconds, and a look at the list every 10 ms between writes.
    let config = WorkloadConfig {
        servers: vec![ChatServer { fqdn: PC1.into() }],
        rate_per_server: 1.0 / 3.0,
        published_poll: Some(Duration::from_millis(10)),
        ..workload_config(&[&home], &[], Arc::new(rx))
    };
    let workload = ChatWorkload::start(config);
    eventually("a first write", || !workload.acked().is_empty()).await;
    let drained_at = tokio::time::Instant::now();
    tx.send(published(&[], PoolState::Normal)).unwrap();
    eventually("the drained server disconnects", || {
        home.backend.state.lock().unwrap().logouts >= 1
    })
    .await;
    // Without the watch it would hold its session until its next write was due.
    assert!(
        drained_at.elapsed() < Duration::from_secs(2),
        "left after {:?}",
        drained_at.elapsed()
    );
    let acked = workload.stop().await;
    assert_eq!(acked.len(), 1, "no write after the drain");
}

#[tokio::test]
async fn an_instance_refusing_logins_is_skipped_for_the_next_partner_of_the_site() {
    let first = start().await;
    first.backend.refuse_logins.store(true, Ordering::SeqCst);
    let second = start().await;
    let (_tx, rx) = watch::channel(published(&[PC1], PoolState::Normal));
    let workload = ChatWorkload::start(workload_config(&[&first, &second], &[], Arc::new(rx)));
    eventually("writes on the partner", || {
        second.backend.message_ids("mgc").len() >= 3
    })
    .await;
    workload.stop().await;
    assert!(first.backend.message_ids("mgc").is_empty());
}

#[tokio::test]
async fn killed_sessions_are_reconnected_and_the_longest_gap_covers_the_outage() {
    let home = start().await;
    let (_tx, rx) = watch::channel(published(&[PC1], PoolState::Normal));
    let workload = ChatWorkload::start(workload_config(&[&home], &[], Arc::new(rx)));
    eventually("first writes", || workload.acked().len() >= 5).await;
    home.backend.refuse_logins.store(true, Ordering::SeqCst);
    home.backend.kill_all();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let during = workload.acked().len();
    home.backend.refuse_logins.store(false, Ordering::SeqCst);
    eventually("writes after the outage", || {
        workload.acked().len() > during + 5
    })
    .await;
    let acked = workload.stop().await;
    let gap = longest_gap(&acked).unwrap();
    assert!(gap >= jiff::SignedDuration::from_millis(300), "gap {gap:?}");
    let copies = BTreeMap::from([("home".to_string(), home.backend.message_ids("mgc"))]);
    assert!(verify(&acked, &copies).nothing_lost());
}

#[tokio::test]
async fn the_published_state_can_come_from_a_yaml_file() {
    let home = start().await;
    let other = start().await;
    let dir = std::env::temp_dir().join(format!("pchat-workload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("published.yaml");
    std::fs::write(
        &path,
        format!("activeServers: [{PC2}]\npoolState: FailedOver\n"),
    )
    .unwrap();
    let source = Arc::new(FileSource::new(path.clone()));
    let workload = ChatWorkload::start(workload_config(&[&home], &[&other], source));
    eventually("dr writes", || other.backend.message_ids("mgc").len() >= 3).await;
    let acked = workload.stop().await;
    assert!(acked.iter().all(|a| a.server == PC2));
    assert!(home.backend.message_ids("mgc").is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}
