//! What a converged pool keeps open on its SQL Server instances between passes: nothing by
//! default (it logs in again at its next pass), one session per instance with
//! `--keep-idle-connections`. Counted on the simulator through `sys.dm_exec_sessions`, against
//! the real kube-apiserver.

mod support;

use std::time::Duration;

use support::k8s::{LONG, World};

/// Sessions the operator holds on each of the pool's instances.
async fn operator_sessions(world: &World) -> Vec<(String, i64)> {
    let mut counts = Vec::new();
    for (_, instance) in world.live.spec.instances() {
        counts.push((
            instance.name.clone(),
            world.operator_sessions(&instance.name).await,
        ));
    }
    counts
}

/// Wait until every instance shows `expected` operator sessions, then check that it stays so
/// for a few seconds (the pool's next pass is 30 s away).
async fn sessions_settle_at(world: &World, expected: i64, log: impl Fn() -> String) {
    let deadline = std::time::Instant::now() + LONG;
    loop {
        let counts = operator_sessions(world).await;
        if counts.iter().all(|(_, n)| *n == expected) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "operator sessions {counts:?}, expected {expected} on each instance\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let counts = operator_sessions(world).await;
    assert!(
        counts.iter().all(|(_, n)| *n == expected),
        "operator sessions {counts:?}, expected {expected} on each instance\n{}",
        log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_converged_pool_closes_its_sql_connections_until_its_next_pass() {
    let (world, op) = World::with_pool_ready("idle-close", &[]).await;
    sessions_settle_at(&world, 0, || op.log()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_keep_idle_connections_a_converged_pool_keeps_one_session_per_instance() {
    let (world, op) = World::with_pool_ready("idle-keep", &["--keep-idle-connections"]).await;
    // The bootstrap's BACKUP and RESTORE connections are closed too: one session each.
    sessions_settle_at(&world, 1, || op.log()).await;
}
