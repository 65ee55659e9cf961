//! SIGTERM: `pchat-operator run` finishes its pass, releases its Lease on the real API server
//! (with the chart's Lease rights alone) and exits 0 promptly, so another replica takes over at
//! once instead of waiting for the Lease to expire.

mod support;

use std::time::{Duration, Instant};

use support::k8s::{LONG, World, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_zero_promptly_and_releases_the_lease() {
    let world = World::start("sigterm").await;
    world.apply_crd().await;
    world.apply_secret().await;
    // A long lease: were it not released, the next replica would wait a minute for it.
    let mut a = world.operator("op-a", 60);
    world.wait_lease_held_by(&a).await;
    world.apply("pool.yaml", &world.pool_manifest(|_| {})).await;
    eventually(
        LONG,
        "a pass has written status",
        async || world.status().await,
        async || a.log(),
    )
    .await;
    a.terminate();
    let code = a.wait_exit(Duration::from_secs(30)).await;
    assert_eq!(code, Some(0), "exit after SIGTERM:\n{}", a.log());
    assert_eq!(
        world.lease_holder().await,
        None,
        "the Lease was not released:\n{}",
        a.log()
    );
    assert!(a.log().contains("lease released"), "{}", a.log());

    let started = Instant::now();
    let b = world.operator("op-b", 60);
    eventually(
        Duration::from_secs(40),
        "op-b takes the released Lease",
        async || world.lease_holder().await.filter(|h| h == "op-b"),
        async || b.log(),
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(40));
}
