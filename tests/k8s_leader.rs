//! Two `pchat-operator run` replicas on one coordination.k8s.io Lease of a real API server, both
//! with the chart's ServiceAccount: only the leader sends SQL or writes status, ConfigMaps and
//! Events (the audit log tells their requests apart by User-Agent); when the leader is killed
//! (SIGKILL) in the middle of a switch, the other takes the Lease over and finishes the switch.

mod support;

use pchat_core::api::Phase;
use pchat_sim::server::StatementKind;
use support::k8s::{LONG, World, eventually, has, operator_user, settled_at};

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
    eventually(
        LONG,
        "op-a holds the Lease",
        async || world.lease_holder().await.filter(|h| h == "op-a"),
        async || a.log(),
    )
    .await;
    let b = world.operator("op-b", 4);
    world.wait_ready(&b).await;
    world.apply("pool.yaml", &world.pool_manifest(|_| {})).await;
    eventually(
        LONG,
        "the pool is Ready at atlanta",
        async || {
            world.status().await.filter(|s| {
                s.phase == Some(Phase::Protected)
                    && s.serving_site.as_deref() == Some("atlanta")
                    && has(s, "Ready", "True")
            })
        },
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
    let mid = eventually(
        LONG,
        "the switch is under way",
        async || {
            world.status().await.filter(|s| {
                s.phase == Some(Phase::Switching) && s.step.as_ref().is_some_and(|st| st.index >= 2)
            })
        },
        async || format!("{:#?}\n{}", world.status().await, a.log()),
    )
    .await;
    a.kill();
    let writes_before = writes_by(&world, "op-b").len();
    assert_eq!(writes_before, 0, "op-b wrote while op-a led");
    eventually(
        LONG,
        "op-b takes the Lease over",
        async || world.lease_holder().await.filter(|h| h == "op-b"),
        async || b.log(),
    )
    .await;
    let done = eventually(
        LONG,
        "op-b finishes the switch to dallas",
        async || world.status().await.filter(|s| settled_at(s, "dallas")),
        async || format!("{:#?}\n--- op-b\n{}", world.status().await, b.log()),
    )
    .await;
    // The transition op-a opened is the one op-b completed (status carries it over).
    let (t_mid, t_done) = (mid.transition.unwrap(), done.transition.unwrap());
    assert_eq!(t_mid.started_at, t_done.started_at);
    assert!(!writes_by(&world, "op-b").is_empty(), "op-b never wrote");
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
