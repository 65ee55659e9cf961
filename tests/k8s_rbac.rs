//! The chart's RBAC on a real API server, asked with `kubectl auth can-i` as the chart's
//! ServiceAccount: what the operator needs is allowed (the pool's status subresource, Secrets
//! read by name, ConfigMaps, Events, its Lease) and nothing more: no pods, no Secrets listed
//! anywhere, no Secret of another namespace, no CRDs, no write to a pool's spec. That no request
//! of the operator is refused in a whole switch is shown by the audit log in `k8s_switch.rs`.

mod support;

use support::k8s::{NAMESPACE, World, operator_user};

/// `kubectl auth can-i --as=<the chart's ServiceAccount> ARGS`: yes or no.
async fn can(world: &World, args: &[&str]) -> bool {
    let user = format!("--as={}", operator_user());
    let mut all = vec!["auth", "can-i", user.as_str()];
    all.extend_from_slice(args);
    let (_, out) = world.try_kubectl(&all).await;
    // The answer is a line of its own; warnings (e.g. a cluster-scoped resource asked with a
    // namespace) come on other lines.
    let answer = out
        .lines()
        .map(str::trim)
        .find(|l| *l == "yes" || *l == "no");
    assert!(
        !out.contains("doesn't have a resource type"),
        "kubectl auth can-i {args:?}: {out}"
    );
    match answer {
        Some(a) => a == "yes",
        None => panic!("kubectl auth can-i {args:?}: {out}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_charts_service_account_may_write_pool_status_but_not_specs_pods_crds_or_other_secrets()
{
    let world = World::start("rbac").await;
    world.apply_crd().await;
    world.kubectl(&["create", "namespace", "elsewhere"]).await;
    let ns = ["-n", NAMESPACE];
    let status = ["--subresource=status"];
    let allowed: &[&[&str]] = &[
        &["get", "persistentchatpools"],
        &["watch", "persistentchatpools"],
        &["patch", "persistentchatpools", status[0]],
        &["get", "secrets"],
        &["create", "configmaps"],
        &["patch", "configmaps"],
        &["create", "events.events.k8s.io"],
        &["patch", "leases.coordination.k8s.io"],
    ];
    let refused: &[&[&str]] = &[
        &["delete", "pods"],
        &["create", "pods"],
        &["list", "secrets"],
        &["watch", "secrets"],
        &["patch", "persistentchatpools"],
        &["update", "persistentchatpools"],
        &["delete", "persistentchatpools"],
        &["delete", "configmaps"],
        // Rights the operator does not use (status and ConfigMaps go by server-side apply,
        // Events by events.k8s.io, the Lease by patch).
        &["update", "persistentchatpools", status[0]],
        &["update", "configmaps"],
        &["create", "events"],
        &["update", "leases.coordination.k8s.io"],
    ];
    for args in allowed {
        let args: Vec<&str> = args.iter().chain(&ns).copied().collect();
        assert!(can(&world, &args).await, "refused: {args:?}");
    }
    for args in refused {
        let args: Vec<&str> = args.iter().chain(&ns).copied().collect();
        assert!(!can(&world, &args).await, "allowed: {args:?}");
    }
    // Outside its namespace (the chart was installed for `chat` alone) and cluster-wide.
    for args in [
        &["list", "secrets", "-n", "elsewhere"][..],
        &["get", "secrets", "-n", "elsewhere"],
        &["get", "persistentchatpools", "-n", "elsewhere"],
        &["list", "secrets", "--all-namespaces"],
        &["create", "customresourcedefinitions.apiextensions.k8s.io"],
        &["update", "customresourcedefinitions.apiextensions.k8s.io"],
        &["create", "clusterroles.rbac.authorization.k8s.io"],
    ] {
        assert!(!can(&world, args).await, "allowed: {args:?}");
    }
}
