//! No finalizer: `kubectl delete pcpool` stops the pool's management at once. The operator closes
//! its SQL connections to the pool's instances and sends no further statement, even in the middle
//! of a bootstrap that would otherwise go on sending; the garbage collector of the real
//! kube-controller-manager removes the published ConfigMap through its ownerReference.

mod support;

use std::time::Duration;

use pchat_core::api::Phase;
use pchat_sim::server::StatementKind;
use support::k8s::{LONG, NAMESPACE, POOL, World, eventually, has};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_pool_closes_its_sql_connections_and_sends_no_more_sql() {
    let world = World::start("delete").await;
    world.apply_crd().await;
    world.apply_secret().await;
    let op = world.operator("op-a", 15);
    world.wait_ready(&op).await;
    // Backups of a second and a half each keep the bootstrap (its mirror seeding) under way
    // long enough to delete the pool in the middle of it.
    world.slow_down(&[StatementKind::Backup], 1500);
    world.apply("pool.yaml", &world.pool_manifest(|_| {})).await;
    eventually(
        LONG,
        "the bootstrap is under way",
        async || {
            world
                .status()
                .await
                .filter(|s| s.phase == Some(Phase::Bootstrapping))
                .filter(|_| world.operator_writes() > 0)
        },
        async || format!("{:#?}\n{}", world.status().await, op.log()),
    )
    .await;
    assert!(world.operator_sessions("atl-sql1").await > 0);
    world
        .kubectl(&["delete", "pcpool", POOL, "-n", NAMESPACE, "--wait=false"])
        .await;
    let deadline = std::time::Instant::now() + LONG;
    loop {
        let mut open = 0;
        for (_, i) in world.live.spec.instances() {
            open += world.operator_sessions(&i.name).await;
        }
        if open == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{open} operator sessions still open after the delete:\n{}",
            op.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let sent = world.operator_statements();
    // Long enough for several of the bootstrap's one-second passes.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        world.operator_statements(),
        sent,
        "SQL was sent after the delete"
    );
    assert!(
        op.log().contains("no longer managing this pool"),
        "{}",
        op.log()
    );
    // stderr is a file here, as it is a pipe in a pod: plain lines, no terminal colour codes.
    assert!(!op.log().contains('\u{1b}'), "{}", op.log());
    let (_, metrics) = op.http_get("/metrics").await.expect("/metrics answers");
    assert!(
        !metrics.contains(&format!(
            "pchat_pool_phase{{namespace=\"{NAMESPACE}\",pool=\"{POOL}\""
        )),
        "the deleted pool's gauges remain:\n{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_converged_pool_sends_no_sql_and_the_garbage_collector_removes_its_configmap() {
    let world = World::start("delete-gc").await;
    world.apply_crd().await;
    world.apply_secret().await;
    let op = world.operator("op-a", 15);
    world.wait_ready(&op).await;
    world.apply("pool.yaml", &world.pool_manifest(|_| {})).await;
    eventually(
        LONG,
        "the pool is Ready and its ConfigMap published",
        async || {
            let ready = world
                .status()
                .await
                .is_some_and(|s| has(&s, "Ready", "True"));
            if ready {
                world.config_map().await
            } else {
                None
            }
        },
        async || format!("{:#?}\n{}", world.status().await, op.log()),
    )
    .await;
    world
        .kubectl(&["delete", "pcpool", POOL, "-n", NAMESPACE, "--wait=true"])
        .await;
    // Nothing but the garbage collector deletes the ConfigMap: the operator has no delete right
    // on ConfigMaps (chart RBAC) and the pool no finalizer.
    eventually(
        LONG,
        "the garbage collector deletes the pool's ConfigMap",
        async || world.config_map().await.is_none().then_some(()),
        async || format!("{:#?}\n{}", world.config_map().await, op.log()),
    )
    .await;
    // The operator let go of the pool: no session left on any instance, so no statement can
    // follow.
    eventually(
        LONG,
        "the operator closes its sessions",
        async || {
            let mut open = 0;
            for (_, i) in world.live.spec.instances() {
                open += world.operator_sessions(&i.name).await;
            }
            (open == 0).then_some(())
        },
        async || op.log(),
    )
    .await;
    assert!(
        op.log().contains("no longer managing this pool"),
        "{}",
        op.log()
    );
}
