//! A pool whose spec breaks a rule reaches the operator (the fake API server does not run the
//! CRD's CEL rules, as an API server without them, or an object stored before a CRD upgrade,
//! would not): it is Stalled naming the field, and not one SQL statement is sent. Fixing the
//! spec lets it converge.

mod support;

use pchat_core::api::Phase;
use support::k8s::{LONG, World, condition, eventually, has};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_site_naming_no_site_stalls_naming_the_field_and_sends_no_sql() {
    let world = World::start("invalid").await;
    world.apply_crd().await;
    world.apply_secret().await;
    let op = world.operator("op-a", 15);
    world.wait_ready(&op).await;
    world
        .apply(
            "pool.yaml",
            &world.pool_manifest(|p| p.spec.primary_site = "houston".into()),
        )
        .await;
    let stalled = eventually(
        LONG,
        "the pool is Stalled",
        || world.status().filter(|s| has(s, "Stalled", "True")),
        || format!("{:#?}\n{}", world.status(), op.log()),
    )
    .await;
    assert_eq!(stalled.phase, Some(Phase::Invalid));
    let c = condition(&stalled, "Stalled").unwrap();
    assert_eq!(c.reason, "InvalidSpec");
    assert!(c.message.contains("spec.primarySite"), "{}", c.message);
    assert_eq!(c.observed_generation, Some(1));
    assert!(has(&stalled, "Ready", "False"));
    let events = world.events();
    assert!(
        events.iter().any(|(t, r, n)| t == "Warning"
            && r == "InvalidSpec"
            && n.contains("spec.primarySite")),
        "{events:#?}"
    );
    // Passes of an invalid spec came and went (the metric counts them); none reached SQL.
    let (_, metrics) = op.http_get("/metrics").await.expect("/metrics answers");
    assert!(
        metrics.contains(
            "pchat_reconciles_total{namespace=\"default\",pool=\"atl-cs-001\",outcome=\"invalid\"}"
        ),
        "{metrics}"
    );
    assert_eq!(
        world.operator_statements(),
        0,
        "SQL was sent for an invalid spec"
    );

    world.set_primary_site("pcpool", "atlanta").await;
    let fixed = eventually(
        LONG,
        "the fixed pool converges",
        || world.status().filter(|s| has(s, "Ready", "True")),
        || format!("{:#?}\n{}", world.status(), op.log()),
    )
    .await;
    assert_eq!(fixed.observed_generation, Some(2));
    assert!(has(&fixed, "Stalled", "False"));
    assert!(world.operator_statements() > 0);
}
