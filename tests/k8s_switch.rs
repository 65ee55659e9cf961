//! `pchat-operator run` end to end: kubectl applies the CRD, the Secret and a pool to the fake
//! API server; the operator bootstraps the simulated pool to Ready/Protected and publishes the
//! ConfigMap; `kubectl patch` of primarySite moves the pool to the other site, followed through
//! status, conditions, Events, the ConfigMap and the SQL end state.

mod support;

use std::collections::BTreeSet;

use pchat_core::api::{Phase, PoolState, TransitionKind};
use support::k8s::{LONG, NAMESPACE, POOL, World, eventually, has, settled_at};

fn active_servers(cm: &serde_json::Value) -> Vec<String> {
    cm["data"]["activeServers"]
        .as_str()
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_then_patch_primary_site_switches_the_pool_visibly_and_correctly() {
    let world = World::start("switch").await;
    world.apply_crd().await;
    world.apply_secret().await;
    let op = world.operator("op-a", 15);
    world.wait_ready(&op).await;
    assert_eq!(op.http_get("/healthz").await.map(|r| r.0), Some(200));

    world.apply("pool.yaml", &world.pool_manifest(|_| {})).await;
    let home = eventually(
        LONG,
        "the pool is Ready and Protected at atlanta",
        || {
            world.status().filter(|s| {
                s.phase == Some(Phase::Protected)
                    && s.serving_site.as_deref() == Some("atlanta")
                    && has(s, "Ready", "True")
                    && has(s, "Protected", "True")
            })
        },
        || format!("{:#?}\n{}", world.status(), op.log()),
    )
    .await;
    assert_eq!(home.pool_state, Some(PoolState::Normal));
    assert_eq!(home.observed_generation, Some(1));
    for c in &home.conditions {
        assert_eq!(c.observed_generation, Some(1), "{c:?}");
    }
    let cm = world.config_map().expect("the ConfigMap is published");
    assert_eq!(
        active_servers(&cm),
        ["atl-pc1.litwareinc.com", "atl-pc2.litwareinc.com"]
    );
    assert_eq!(cm["data"]["poolState"], "Normal");
    assert!(
        cm["data"]["publishedAt"]
            .as_str()
            .is_some_and(|t| t.parse::<jiff::Timestamp>().is_ok()),
        "{cm}"
    );
    let owner = &cm["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "PersistentChatPool");
    assert_eq!(owner["controller"], true);
    assert_eq!(owner["uid"], world.pool().unwrap()["metadata"]["uid"]);
    assert_eq!(
        cm["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "pchat-operator"
    );

    // Follow the switch as a person running `kubectl get pcpool -w` would: a watch sees every
    // status the operator writes, however quickly the steps follow one another.
    let statuses = world.follow_statuses().await;
    world.set_primary_site("persistentchatpool", "dallas").await;
    let moved = eventually(
        LONG,
        "the pool is Ready and Protected at dallas",
        || world.status().filter(|s| settled_at(s, "dallas")),
        || format!("{:#?}\n{}", world.status(), op.log()),
    )
    .await;
    let seen = eventually(
        LONG,
        "the watch delivers the settled status",
        || {
            let seen = statuses.seen();
            seen.iter().any(|s| settled_at(s, "dallas")).then_some(seen)
        },
        || format!("{:#?}", statuses.seen()),
    )
    .await;
    let phases: BTreeSet<String> = seen
        .iter()
        .filter_map(|s| s.phase.map(|p| format!("{p:?}")))
        .collect();
    let steps: BTreeSet<String> = seen
        .iter()
        .filter_map(|s| s.step.as_ref().map(|st| st.name.clone()))
        .collect();
    assert!(phases.contains("Switching"), "phases seen: {phases:?}");
    for step in ["DemoteOldPrimary", "CatchUp", "Recover"] {
        assert!(
            steps.contains(step),
            "{step} not seen; steps seen: {steps:?}"
        );
    }
    let t = moved.transition.as_ref().unwrap();
    assert_eq!((t.from.as_str(), t.to.as_str()), ("atlanta", "dallas"));
    assert_eq!(t.kind, TransitionKind::Planned);
    assert!(t.tail_lsn.is_some(), "{t:?}");
    assert_eq!(t.data_loss, None);
    assert_eq!(moved.pool_state, Some(PoolState::FailedOver));
    assert_eq!(moved.observed_generation, Some(2));
    for c in &moved.conditions {
        assert_eq!(c.observed_generation, Some(2), "{c:?}");
    }

    let cm = world.config_map().unwrap();
    assert_eq!(
        active_servers(&cm),
        ["dal-pc1.litwareinc.com", "dal-pc2.litwareinc.com"]
    );
    assert_eq!(cm["data"]["poolState"], "FailedOver");

    let events = world.events();
    let started = events
        .iter()
        .find(|(_, r, n)| r == "TransitionStarted" && n.contains("from atlanta to dallas"));
    assert!(started.is_some(), "{events:#?}");
    let completed = events
        .iter()
        .find(|(_, r, n)| r == "TransitionCompleted" && n.contains("from atlanta to dallas"));
    assert!(completed.is_some(), "{events:#?}");
    assert_eq!(
        world.event_count("TransitionStarted"),
        1,
        "a transition starts once: {events:#?}"
    );
    assert_eq!(world.event_count("TransitionCompleted"), 1, "{events:#?}");

    // What a person sees: the Events under `kubectl describe`, the columns of `kubectl get`.
    let described = world
        .kubectl(&["describe", "persistentchatpool", POOL, "-n", NAMESPACE])
        .await;
    assert!(described.contains("TransitionCompleted"), "{described}");
    let listed = world.kubectl(&["get", "pcpool", "-n", NAMESPACE]).await;
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(POOL) && l.contains("dallas") && l.contains("FailedOver")),
        "{listed}"
    );

    // The SQL end state: dallas's first instance serves the chat database, atlanta's copy is
    // the log-shipping secondary, restoring.
    let sim = &world.live.sim.sim;
    assert_eq!(
        sim.database_state("dal-sql1", "mgc").as_deref(),
        Some("ONLINE")
    );
    assert_eq!(
        sim.database_state("atl-sql1", "mgc").as_deref(),
        Some("RESTORING")
    );
    // dallas's second instance holds the mirror copy, which SQL Server shows as RESTORING.
    assert_eq!(
        sim.database_state("dal-sql2", "mgc").as_deref(),
        Some("RESTORING")
    );

    let (code, metrics) = op.http_get("/metrics").await.expect("/metrics answers");
    assert_eq!(code, 200);
    for line in [
        "pchat_serving_site{namespace=\"default\",pool=\"atl-cs-001\",site=\"dallas\"} 1",
        "pchat_pool_state{namespace=\"default\",pool=\"atl-cs-001\",state=\"FailedOver\"} 1",
        "pchat_leader 1",
    ] {
        assert!(metrics.contains(line), "{line} missing:\n{metrics}");
    }
    assert!(
        metrics.contains("pchat_sql_round_trips_total{"),
        "{metrics}"
    );
    assert!(
        !op.log().contains(pchat_sql::testing::PASSWORD),
        "the password was logged"
    );
}
