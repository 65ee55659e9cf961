//! The operator's watches on a real API server that goes away: kube-apiserver stopped in the
//! middle of a switch (etcd and its data kept), etcd's history compacted meanwhile, then the
//! API server started again. The operator's watches come back with a resourceVersion the new
//! API server no longer has: "too old resource version" (410 Gone, Expired), answered by
//! listing again, in the same process. The switch, applied server-side by the user's GitOps
//! field manager, then completes, and the spec stays that manager's alone.

mod support;

use std::time::Duration;

use pchat_sim::server::StatementKind;
use support::k8s::{LONG, World, eventually, operator_user};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_relists_after_an_apiserver_restart_and_a_compaction_and_finishes_the_switch()
{
    let world = World::start("watch").await;
    world.apply_crd().await;
    world.apply_secret().await;
    // A Lease longer than the outage: the same replica leads before and after.
    let mut op = world.operator("op-a", 30);
    world.wait_ready(&op).await;
    // The pool is the user's GitOps tool's: server-side apply under its own field manager,
    // for the pool and, later, for the switch.
    world
        .apply_server_side("gitops", "pool.yaml", &world.pool_manifest(|_| {}))
        .await;
    world.wait_ready_at("atlanta", &op).await;

    world.slow_down(&[StatementKind::Backup, StatementKind::Restore], 1000);
    world
        .apply_server_side(
            "gitops",
            "pool-dallas.yaml",
            &world.pool_manifest(|p| p.spec.primary_site = "dallas".into()),
        )
        .await;
    world.wait_switching(&op).await;
    let requests_before = world.cluster.requests_of(&operator_user()).len();

    world.cluster.stop_apiserver().await;
    let revision = world.cluster.compact_etcd().await;
    assert!(revision > 0);
    // The operator meets a closed port for a while: its watches fail and retry.
    tokio::time::sleep(Duration::from_secs(3)).await;
    world.cluster.start_apiserver().await;

    world.wait_settled_at("dallas", &op).await;
    assert_eq!(
        op.wait_exit(Duration::ZERO).await,
        None,
        "the operator exited:\n{}",
        op.log()
    );
    // The API server answers the resumed watch with an ERROR event in a 200 stream (the audit
    // log records 200), which the operator logs: its resourceVersion is gone. It lists again
    // (after its watcher's backoff, and after any 403 the restarted API server gives while its
    // RBAC cache fills).
    eventually(
        LONG,
        "the operator sees its watch expire and lists the pools again",
        async || {
            let log = op.log();
            let expired = log.contains("too old resource version") && log.contains("Expired");
            let relisted = world.cluster.requests_of(&operator_user())[requests_before..]
                .iter()
                .any(|r| {
                    r.verb == "list" && r.uri.contains("/persistentchatpools") && r.code == 200
                });
            (expired && relisted).then_some(())
        },
        async || {
            let after = world.cluster.requests_of(&operator_user())[requests_before..]
                .iter()
                .map(|r| r.to_string())
                .collect::<Vec<_>>()
                .join("\n");
            format!("{after}\n--- op-a\n{}", op.log())
        },
    )
    .await;
    // The spec is still the GitOps tool's alone: the operator wrote only status.
    let pool = world.pool().await.unwrap();
    let spec_owners: Vec<&str> = pool["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["fieldsV1"].get("f:spec").is_some())
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert_eq!(spec_owners, ["gitops"]);
    // Still one process, still answering.
    assert!(
        op.http_get("/readyz")
            .await
            .is_some_and(|(code, _)| code == 200)
    );
}
