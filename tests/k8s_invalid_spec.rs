//! A pool whose `primarySite` names no site. The real API server runs the CRD's CEL rules, so
//! `kubectl apply` of it is refused, naming the field. An object stored before the rules were in
//! force (a CRD upgrade: here a CRD without its `x-kubernetes-validations`, then the real one
//! applied over it) still reaches the operator: it is Stalled naming the field and not one SQL
//! statement is sent for it, while a valid pool in another namespace converges. Fixing the spec
//! lets it converge.

mod support;

use pchat_core::api::{PersistentChatPoolStatus, Phase};
use pchat_sql::testing::Live;
use support::k8s::{
    LONG, NAMESPACE, Operator, POOL, Scope, World, condition, eventually, has, operator_statements,
    pool_manifest,
};

/// The valid pool's namespace: the operator watches every namespace (a ClusterRole).
const OTHER: &str = "chat-b";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_site_naming_no_site_is_refused_by_the_api_server_and_stalls_the_operator_when_stored()
 {
    let world = World::start_with("invalid", Scope::AllNamespaces).await;
    world.apply_crd().await;
    world.apply_secret().await;
    let invalid = world.pool_manifest(|p| p.spec.primary_site = "houston".into());
    let (applied, out) = world.try_apply("pool.yaml", &invalid).await;
    assert!(!applied, "the API server accepted an invalid pool:\n{out}");
    assert!(
        out.contains("spec.primarySite must be the name of one of spec.sites"),
        "{out}"
    );
    assert!(out.contains("spec.primarySite"), "{out}");

    store_past_the_crd_rules(&world, &invalid).await;
    let other = valid_pool_in_another_namespace(&world, "invalid").await;
    let op = world.operator("op-a", 15);
    world.wait_ready(&op).await;

    let stalled = stalled_as_invalid_naming(&world, &op, "spec.primarySite").await;
    let c = condition(&stalled, "Stalled").unwrap();
    assert_eq!(c.observed_generation, Some(1));
    assert!(has(&stalled, "Ready", "False"));
    let events = world.events().await;
    assert!(
        events.iter().any(|(t, r, n)| t == "Warning"
            && r == "InvalidSpec"
            && n.contains("spec.primarySite")),
        "{events:#?}"
    );
    other_pool_converges(&world, &op).await;
    assert!(operator_statements(&other) > 0);
    // Passes of an invalid spec came and went (the metric counts them); none reached SQL.
    let (_, metrics) = op.http_get("/metrics").await.expect("/metrics answers");
    let invalid_passes = format!(
        "pchat_reconciles_total{{namespace=\"{NAMESPACE}\",pool=\"{POOL}\",outcome=\"invalid\"}}"
    );
    assert!(metrics.contains(&invalid_passes), "{metrics}");
    assert_eq!(
        world.operator_statements(),
        0,
        "SQL was sent for an invalid spec"
    );

    // Under the real CRD again, the fix passes the CEL rules and the pool converges.
    world.set_primary_site("pcpool", "atlanta").await;
    let fixed = eventually(
        LONG,
        "the fixed pool converges",
        async || world.status().await.filter(|s| has(s, "Ready", "True")),
        async || format!("{:#?}\n{}", world.status().await, op.log()),
    )
    .await;
    assert_eq!(fixed.observed_generation, Some(2));
    assert!(has(&fixed, "Stalled", "False"));
    assert!(world.operator_statements() > 0);
}

/// A pool stored under an earlier, looser CRD with a duration the operator cannot read
/// (`unreachableAfter: five minutes`, which no pattern refused then) does not stop the others:
/// the operator decodes each stored pool on its own, so the watch of all pools keeps working,
/// that pool is Stalled naming the field, and a valid pool in another namespace converges.
/// Fixed with `kubectl patch`, it converges too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_pool_the_operator_cannot_decode_is_stalled_naming_the_field_and_the_others_converge()
 {
    let world = World::start_with("undecodable", Scope::AllNamespaces).await;
    world.apply_crd().await;
    world.apply_secret().await;
    let mut pool: serde_json::Value = serde_saphyr::from_str(&world.pool_manifest(|_| {})).unwrap();
    pool["spec"]["failover"]["unreachableAfter"] = "five minutes".into();
    let pool = serde_json::to_string(&pool).unwrap();
    let (applied, out) = world.try_apply("pool.json", &pool).await;
    assert!(!applied, "the API server accepted the duration:\n{out}");
    assert!(out.contains("spec.failover.unreachableAfter"), "{out}");

    store_under_a_looser_crd(&world, &pool, &["x-kubernetes-validations", "pattern"]).await;
    let other = valid_pool_in_another_namespace(&world, "undecodable").await;
    let op = world.operator("op-a", 15);
    world.wait_ready(&op).await;

    stalled_as_invalid_naming(&world, &op, "spec.failover.unreachableAfter").await;
    other_pool_converges(&world, &op).await;
    assert!(operator_statements(&other) > 0);
    assert_eq!(
        world.operator_statements(),
        0,
        "SQL was sent for a pool whose spec cannot be read"
    );

    world
        .kubectl(&[
            "patch",
            "pcpool",
            POOL,
            "-n",
            NAMESPACE,
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"failover":{"unreachableAfter":"60s"}}}"#,
        ])
        .await;
    eventually(
        LONG,
        "the fixed pool converges",
        async || world.status().await.filter(|s| has(s, "Ready", "True")),
        async || format!("{:#?}\n{}", world.status().await, op.log()),
    )
    .await;
}

/// Wait until the pool is Stalled as invalid (phase Invalid, reason InvalidSpec) with a message
/// naming `field`; the status.
async fn stalled_as_invalid_naming(
    world: &World,
    op: &Operator,
    field: &str,
) -> PersistentChatPoolStatus {
    let stalled = eventually(
        LONG,
        "the pool is Stalled",
        async || world.status().await.filter(|s| has(s, "Stalled", "True")),
        async || format!("{:#?}\n{}", world.status().await, op.log()),
    )
    .await;
    assert_eq!(stalled.phase, Some(Phase::Invalid));
    let c = condition(&stalled, "Stalled").unwrap();
    assert_eq!(c.reason, "InvalidSpec");
    assert!(c.message.contains(field), "{}", c.message);
    stalled
}

/// Wait until the valid pool in [`OTHER`] is Protected and Ready.
async fn other_pool_converges(world: &World, op: &Operator) {
    eventually(
        LONG,
        "the valid pool in the other namespace converges",
        async || {
            world
                .status_in(OTHER)
                .await
                .filter(|s| s.phase == Some(Phase::Protected) && has(s, "Ready", "True"))
        },
        async || format!("{:#?}\n{}", world.status_in(OTHER).await, op.log()),
    )
    .await;
}

/// Store `pool` as an older CRD without CEL rules would have let it in, then put the real CRD
/// back: the API server does not re-validate stored objects.
async fn store_past_the_crd_rules(world: &World, pool: &str) {
    store_under_a_looser_crd(world, pool, &["x-kubernetes-validations"]).await;
    assert_eq!(
        world.pool().await.unwrap()["spec"]["primarySite"],
        "houston"
    );
}

/// Store `pool` under the CRD with every schema keyword in `loosened` removed, as an earlier
/// version of it would have let the pool in, then apply the real CRD again.
async fn store_under_a_looser_crd(world: &World, pool: &str, loosened: &[&str]) {
    let crd_yaml = include_str!("../crds/persistentchatpool.yaml");
    let mut crd: serde_json::Value = serde_saphyr::from_str(crd_yaml).unwrap();
    for keyword in loosened {
        let removed = strip(&mut crd, keyword);
        assert!(removed > 0, "the CRD has no {keyword}");
    }
    world
        .apply("crd-loose.json", &serde_json::to_string(&crd).unwrap())
        .await;
    world.apply("pool.yaml", pool).await;
    world.apply_crd().await;
}

/// Remove every `keyword` from a CRD's schema; how many there were.
fn strip(v: &mut serde_json::Value, keyword: &str) -> usize {
    match v {
        serde_json::Value::Object(map) => {
            let here = usize::from(map.remove(keyword).is_some());
            here + map.values_mut().map(|v| strip(v, keyword)).sum::<usize>()
        }
        serde_json::Value::Array(items) => items.iter_mut().map(|v| strip(v, keyword)).sum(),
        _ => 0,
    }
}

/// A second simulated pool, its Secret and a valid pool pointed at it, in [`OTHER`].
/// `label` names its simulator's state folder.
async fn valid_pool_in_another_namespace(world: &World, label: &str) -> Live {
    let other = pchat_sql::testing::start(&format!("k8s-{label}-other")).await;
    world.kubectl(&["create", "namespace", OTHER]).await;
    world.apply_secret_in(OTHER, &other).await;
    world
        .apply(
            "other-pool.yaml",
            &pool_manifest(&other.spec, OTHER, |_| {}),
        )
        .await;
    other
}

/// The uniqueness rules are written for the schema's shape (two sites, at most two instances
/// each) so that the API server's evaluation of them on every status write stays cheap; the
/// real API server still refuses each duplicate, across the sites and within one, whatever the
/// case of the names, with the rule's message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_server_refuses_a_duplicate_instance_address_or_chat_server_across_or_within_sites()
{
    let world = World::start_with("duplicates", Scope::AllNamespaces).await;
    world.apply_crd().await;
    type Edit = fn(&mut pchat_core::api::PersistentChatPool);
    let cases: [(&str, Edit, &str); 6] = [
        (
            "an instance name in both sites",
            |p| {
                p.spec.sites[1].instances[0].name = p.spec.sites[0].instances[0].name.to_uppercase()
            },
            "spec.sites[*].instances[*].name must be unique across the pool (case-insensitive)",
        ),
        (
            "an instance name twice in a site",
            |p| {
                p.spec.sites[0].instances[1].name = p.spec.sites[0].instances[0].name.to_uppercase()
            },
            "spec.sites[*].instances[*].name must be unique across the pool (case-insensitive)",
        ),
        (
            "a host and port in both sites",
            |p| same_address(p, (0, 0), (1, 0)),
            "spec.sites[*].instances[*] host:port pairs must be unique across the pool (case-insensitive)",
        ),
        (
            "a host and port twice in a site",
            |p| same_address(p, (1, 0), (1, 1)),
            "spec.sites[*].instances[*] host:port pairs must be unique across the pool (case-insensitive)",
        ),
        (
            "a mirroring endpoint twice in a site",
            |p| {
                p.spec.sites[0].instances[1].mirroring_endpoint = p.spec.sites[0].instances[0]
                    .mirroring_endpoint
                    .to_lowercase()
            },
            "spec.sites[*].instances[*].mirroringEndpoint must be unique across the pool (case-insensitive)",
        ),
        (
            "a chat server in both sites",
            |p| p.spec.sites[1].chat_servers = vec![p.spec.sites[0].chat_servers[0].to_uppercase()],
            "spec.sites[*].chatServers: a chat server must not be listed in both sites",
        ),
    ];
    for (what, edit, message) in cases {
        let manifest = world.pool_manifest(|p| {
            assert!(
                p.spec.sites.iter().all(|s| s.instances.len() == 2),
                "the cases need two instances a site"
            );
            edit(p)
        });
        let (applied, out) = world.try_apply("pool.yaml", &manifest).await;
        assert!(!applied, "the API server accepted {what}:\n{out}");
        assert!(out.contains(message), "{what}: {out}");
    }
    let (applied, out) = world
        .try_apply("pool.yaml", &world.pool_manifest(|_| {}))
        .await;
    assert!(applied, "the API server refused the valid pool:\n{out}");
}

/// Give the instance at `to` (site, index) the host (in capitals) and port of the one at `from`.
fn same_address(
    pool: &mut pchat_core::api::PersistentChatPool,
    from: (usize, usize),
    to: (usize, usize),
) {
    let source = pool.spec.sites[from.0].instances[from.1].clone();
    let target = &mut pool.spec.sites[to.0].instances[to.1];
    target.host = source.host.to_uppercase();
    target.port = source.port;
}
