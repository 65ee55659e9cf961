//! Two `pchat-operator run` replicas on one coordination.k8s.io Lease of a real API server, both
//! with the chart's ServiceAccount: only the leader sends SQL or writes status, ConfigMaps and
//! Events (the audit log tells their requests apart by User-Agent, the simulator's statement
//! log by the sessions' workstation name); when the leader is killed
//! (SIGKILL) in the middle of a switch, the other takes the Lease over and finishes the switch.

mod support;

use pchat_sim::server::StatementKind;
use support::k8s::{
    LONG, NAMESPACE, POOL, RELEASE, World, eventually, operator_user, ready_at, settled_at,
};

/// Writes a replica made to the pool, its ConfigMap or Events (its Lease excluded), from the
/// audit log: both replicas are the same ServiceAccount, told apart by the User-Agent
/// `pchat-operator/<version> (<identity>)`.
fn writes_by(world: &World, identity: &str) -> Vec<String> {
    world
        .cluster
        .requests_of(&operator_user())
        .into_iter()
        .filter(|r| r.user_agent.contains(&format!("({identity})")))
        .filter(|r| !matches!(r.verb.as_str(), "get" | "list" | "watch"))
        .filter(|r| !r.uri.contains("/leases"))
        .map(|r| r.to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_acts_and_the_other_replica_finishes_the_switch_when_it_is_killed() {
    let world = World::start("leader").await;
    world.apply_crd().await;
    world.apply_secret().await;
    let mut a = world.operator("op-a", 4);
    world.wait_lease_held_by(&a).await;
    let b = world.operator("op-b", 4);
    world.wait_ready(&b).await;
    world.apply("pool.yaml", &world.pool_manifest(|_| {})).await;
    eventually(
        LONG,
        "the pool is Ready at atlanta",
        async || world.status().await.filter(|s| ready_at(s, "atlanta")),
        async || {
            format!(
                "{:#?}\n--- op-a\n{}\n--- op-b\n{}",
                world.status().await,
                a.log(),
                b.log()
            )
        },
    )
    .await;
    assert!(
        !writes_by(&world, "op-a").is_empty(),
        "the leader wrote nothing"
    );
    assert_eq!(
        writes_by(&world, "op-b"),
        Vec::<String>::new(),
        "the follower wrote"
    );
    assert!(
        !b.log().contains("planned"),
        "the follower ran an engine pass:\n{}",
        b.log()
    );
    let b_http = b
        .http_get("/metrics")
        .await
        .expect("op-b serves /metrics")
        .1;
    assert!(b_http.contains("pchat_leader 0"), "{b_http}");

    // Backups and restores of a second each keep the switch under way long enough to catch.
    world.slow_down(&[StatementKind::Backup, StatementKind::Restore], 1000);
    world.set_primary_site("pcpool", "dallas").await;
    // Mid-transition: the switch has started and run at least one step past the drain.
    let mid = world.wait_switching(&a).await;
    a.kill();
    let writes_before = writes_by(&world, "op-b").len();
    assert_eq!(writes_before, 0, "op-b wrote while op-a led");
    // The simulator's statement log says the same of SQL (sessions carry the replica's
    // identity as their workstation name).
    assert_eq!(
        world.sql_writes_by("op-b"),
        Vec::<String>::new(),
        "op-b sent SQL writes while op-a led"
    );
    assert!(!world.sql_writes_by("op-a").is_empty());
    world.wait_lease_held_by(&b).await;
    let done = world.wait_settled_at("dallas", &b).await;
    // The transition op-a opened is the one op-b completed (status carries it over).
    let (t_mid, t_done) = (mid.transition.unwrap(), done.transition.unwrap());
    assert_eq!(t_mid.started_at, t_done.started_at);
    assert!(!writes_by(&world, "op-b").is_empty(), "op-b never wrote");
    assert!(
        !world.sql_writes_by("op-b").is_empty(),
        "op-b never sent SQL"
    );
    assert!(b.log().contains("became the leader"), "{}", b.log());
    let sim = &world.live.sim.sim;
    assert_eq!(
        sim.database_state("dal-sql1", "mgc").as_deref(),
        Some("ONLINE")
    );
    assert_eq!(
        sim.database_state("atl-sql1", "mgc").as_deref(),
        Some("RESTORING")
    );
}

/// A replica whose Lease is taken (here the admin writes another holder into it, as a replica
/// that outlived its lease during a pause would find it) stops acting and drops every pool's
/// gauges from its `/metrics` at once, so a dashboard does not read a former leader's stale
/// Protected=True beside the new leader's values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_loses_the_lease_drops_its_pool_gauges_at_once() {
    let world = World::start("lease-lost").await;
    world.apply_crd().await;
    world.apply_secret().await;
    let a = world.operator("op-a", 4);
    world.wait_ready(&a).await;
    world.apply("pool.yaml", &world.pool_manifest(|_| {})).await;
    // The per-pool gauges (counters such as pchat_reconciles_total keep counting what this
    // replica did, as Prometheus counters do).
    let pool_gauges = [
        format!("pchat_condition{{namespace=\"{NAMESPACE}\",pool=\"{POOL}\""),
        format!("pchat_serving_site{{namespace=\"{NAMESPACE}\",pool=\"{POOL}\""),
        format!("pchat_pool_phase{{namespace=\"{NAMESPACE}\",pool=\"{POOL}\""),
    ];
    eventually(
        LONG,
        "op-a exports the pool's gauges",
        async || {
            let (_, metrics) = a.http_get("/metrics").await?;
            (pool_gauges.iter().all(|g| metrics.contains(g)) && metrics.contains("pchat_leader 1"))
                .then_some(())
        },
        async || a.log(),
    )
    .await;

    // A MicroTime: RFC 3339 with exactly six fractional digits.
    let renewed = format!(
        "{}.000000Z",
        jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S")
    );
    let taken = format!(
        r#"{{"spec":{{"holderIdentity":"intruder","renewTime":"{renewed}","leaseDurationSeconds":3600}}}}"#
    );
    world
        .kubectl(&[
            "patch", "lease", RELEASE, "-n", NAMESPACE, "--type", "merge", "-p", &taken,
        ])
        .await;
    eventually(
        LONG,
        "op-a no longer exports the pool's gauges",
        async || {
            let (_, metrics) = a.http_get("/metrics").await?;
            (metrics.contains("pchat_leader 0") && !pool_gauges.iter().any(|g| metrics.contains(g)))
                .then_some(())
        },
        async || {
            let metrics = a.http_get("/metrics").await.map(|(_, m)| m);
            format!("{metrics:?}\n--- op-a\n{}", a.log())
        },
    )
    .await;
    assert!(a.log().contains("lost the leadership"), "{}", a.log());
}

/// A leader frozen (SIGSTOP) in the middle of a switch until its Lease runs out and the other
/// replica has taken over and finished the switch sends, once it runs again (SIGCONT), no SQL
/// write and no API write: the rest of the step it was in asks the Lease before each statement,
/// and the status patch, the ConfigMap and the Events ask it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_paused_past_its_lease_writes_nothing_once_it_runs_again() {
    let world = World::start("paused").await;
    world.apply_crd().await;
    world.apply_secret().await;
    let a = world.operator("op-a", 4);
    world.wait_lease_held_by(&a).await;
    let b = world.operator("op-b", 4);
    world.wait_ready(&b).await;
    world.apply("pool.yaml", &world.pool_manifest(|_| {})).await;
    world.wait_ready_at("atlanta", &a).await;
    // The replica's identity is its workstation name on SQL Server (HOST_NAME()).
    assert!(
        !world.sql_writes_by("op-a").is_empty(),
        "no write from workstation op-a in the simulator's statement log"
    );
    assert_eq!(world.sql_writes_by("op-b"), Vec::<String>::new());

    // The pause falls inside SeedMirror (the new primary's full and log backups in one batch,
    // then RESTORE DATABASE and RESTORE LOG on its mirror), each statement taking 1.5 s: as soon
    // as op-a has sent the backups, two restores of the step are still to come, and sent after
    // the other replica has mirrored that database they would be the damage the Lease exists
    // to prevent.
    world.slow_down(&[StatementKind::Backup, StatementKind::Restore], 1500);
    let sent_before_switch = world.sql_writes_by("op-a").len();
    world.set_primary_site("pcpool", "dallas").await;
    eventually(
        LONG,
        "op-a sends the full backup that seeds the new mirror",
        async || {
            world.sql_writes_by("op-a")[sent_before_switch..]
                .iter()
                .any(|w| w.starts_with("dal-sql1: BACKUP DATABASE"))
                .then_some(())
        },
        async || format!("{:#?}\n{}", world.status().await, a.log()),
    )
    .await;
    a.pause();
    world.wait_lease_held_by(&b).await;
    world.wait_settled_at("dallas", &b).await;
    let (sql_before, api_before) = (world.sql_writes_by("op-a"), writes_by(&world, "op-a"));

    a.resume();
    eventually(
        LONG,
        "op-a, running again, knows it no longer leads",
        async || {
            let (_, metrics) = a.http_get("/metrics").await?;
            metrics.contains("pchat_leader 0").then_some(())
        },
        async || a.log(),
    )
    .await;
    // Several of its requeue periods (1 s when not leading) for anything left to show.
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let sql_after = world.sql_writes_by("op-a");
    assert_eq!(
        sql_after[sql_before.len()..],
        [] as [String; 0],
        "op-a sent SQL writes after it ran again\n--- op-a\n{}",
        a.log()
    );
    assert_eq!(
        writes_by(&world, "op-a")[api_before.len()..],
        [] as [String; 0],
        "op-a wrote to the API after it ran again\n--- op-a\n{}",
        a.log()
    );
    assert_eq!(world.lease_holder().await.as_deref(), Some("op-b"));
    let status = world.status().await.expect("a status");
    assert!(settled_at(&status, "dallas"), "{status:#?}");
}
