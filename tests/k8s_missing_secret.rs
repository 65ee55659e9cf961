//! A pool whose SQL credentials Secret does not exist yet is Stalled naming the Secret (then
//! the missing key), sends no SQL, and converges once the Secret is complete; a Secret deleted
//! later stalls it again, naming it, until it returns. The operator reads the Secret by name
//! with the chart's `get` right alone. The password never reaches the log, which is JSON, one
//! object per line.

mod support;

use pchat_core::api::{PersistentChatPoolStatus, Phase};
use pchat_sql::testing::admin_client;
use support::k8s::{LONG, NAMESPACE, Operator, World, condition, eventually, has, secret_manifest};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_deleted_secret_stalls_the_pool_naming_it_and_it_converges_once_the_secret_exists()
 {
    let world = World::start("secret").await;
    world.apply_crd().await;
    let op = world.operator_with("op-a", 15, &["--log-format", "json"]);
    world.wait_ready(&op).await;
    world.apply("pool.yaml", &world.pool_manifest(|_| {})).await;
    let stalled = stalled_on_secret_not_found(&world, &op, "the missing Secret").await;
    assert_eq!(stalled.phase, Some(Phase::Blocked));
    let c = condition(&stalled, "Stalled").unwrap();
    assert_eq!(c.status, "True");
    assert!(
        c.message.contains(&format!("Secret {NAMESPACE}/pchat-sql")),
        "{}",
        c.message
    );
    assert!(
        c.message.contains("spec.sqlCredentialsSecret"),
        "{}",
        c.message
    );
    assert_eq!(
        world.operator_statements(),
        0,
        "SQL was sent without credentials"
    );

    // A Secret without the password key: the key is named.
    world
        .apply(
            "partial-secret.yaml",
            &format!(
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: pchat-sql\n  namespace: {NAMESPACE}\ndata:\n  username: c2E=\n"
            ),
        )
        .await;
    let partial = eventually(
        LONG,
        "the pool is Stalled on the missing key",
        async || {
            world
                .status()
                .await
                .filter(|s| condition(s, "Stalled").is_some_and(|c| c.reason == "SecretKeyMissing"))
        },
        async || format!("{:#?}\n{}", world.status().await, op.log()),
    )
    .await;
    assert!(
        condition(&partial, "Stalled")
            .unwrap()
            .message
            .contains("key `password`"),
        "{partial:#?}"
    );
    assert_eq!(world.operator_statements(), 0);

    world.apply_secret().await;
    eventually(
        LONG,
        "the pool converges once the Secret is complete",
        async || {
            world.status().await.filter(|s| {
                s.phase == Some(Phase::Protected)
                    && has(s, "Ready", "True")
                    && has(s, "Stalled", "False")
            })
        },
        async || format!("{:#?}\n{}", world.status().await, op.log()),
    )
    .await;
    let events = world.events().await;
    let reasons: Vec<&str> = events.iter().map(|(_, r, _)| r.as_str()).collect();
    for r in ["SecretNotFound", "SecretKeyMissing", "StallCleared"] {
        assert!(reasons.contains(&r), "{r} missing: {events:#?}");
    }
    // The stall lasted several one-second passes; it was reported once.
    assert_eq!(
        world.event_count("SecretNotFound").await,
        1,
        "one event per stall, not one per pass: {events:#?}"
    );
    deleting_the_secret_stalls_the_pool_until_it_returns(&world, &op).await;
    let log = op.log();
    assert!(
        !log.contains(pchat_sql::testing::PASSWORD),
        "the password was logged"
    );
    // `--log-format json`: every line is one JSON object with a level and a message.
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() > 5, "{log}");
    for line in lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["level"].is_string(), "{line}");
        assert!(v["fields"]["message"].is_string(), "{line}");
    }
}

/// The status once the pool is Stalled with reason SecretNotFound.
async fn stalled_on_secret_not_found(
    world: &World,
    op: &Operator,
    what: &str,
) -> PersistentChatPoolStatus {
    eventually(
        LONG,
        &format!("the pool is Stalled on {what}"),
        async || {
            world
                .status()
                .await
                .filter(|s| condition(s, "Stalled").is_some_and(|c| c.reason == "SecretNotFound"))
        },
        async || format!("{:#?}\n{}", world.status().await, op.log()),
    )
    .await
}

/// A converged pool whose Secret is deleted: its next pass (within the idle interval) is Stalled
/// naming the Secret and sends nothing; the Secret back, it converges again.
async fn deleting_the_secret_stalls_the_pool_until_it_returns(world: &World, op: &Operator) {
    world
        .kubectl(&["delete", "secret", "pchat-sql", "-n", NAMESPACE])
        .await;
    let stalled = stalled_on_secret_not_found(world, op, "the deleted Secret").await;
    let c = condition(&stalled, "Stalled").unwrap();
    assert!(
        c.message.contains(&format!("Secret {NAMESPACE}/pchat-sql")),
        "{}",
        c.message
    );
    let sent = world.operator_statements();
    world.apply_secret().await;
    eventually(
        LONG,
        "the pool converges once the Secret is back",
        async || {
            world
                .status()
                .await
                .filter(|s| has(s, "Ready", "True") && has(s, "Stalled", "False"))
        },
        async || format!("{:#?}\n{}", world.status().await, op.log()),
    )
    .await;
    assert!(
        world.operator_statements() > sent,
        "no SQL after the recovery"
    );
}

/// A password rotated on SQL Server (`ALTER LOGIN` on every instance) and then in the Secret is
/// used from the next pass, without a restart: the operator logs in afresh when the Secret's
/// content changes. The operator's sessions of the old password are then ended, as a DBA
/// would, so every later statement needs the new one: a switch to dallas completes. Neither
/// password reaches the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_rotated_in_the_secret_is_used_from_the_next_pass_without_a_restart() {
    const ROTATED: &str = "Rotated-Pchat-2";
    let (world, op) = World::with_pool_ready("rotation", &[]).await;
    let logins_before = op.log().matches("logging in with the credentials").count();

    // Admin sessions opened before the rotation stay logged in after it.
    let sim = &world.live.sim;
    let mut admins = Vec::new();
    for (_, instance) in world.live.spec.instances() {
        admins.push(admin_client(sim.addr(&instance.name).unwrap()).await);
    }
    for admin in &mut admins {
        admin
            .execute(
                format!("ALTER LOGIN [sa] WITH PASSWORD = N'{ROTATED}'"),
                &[],
            )
            .await
            .expect("ALTER LOGIN");
    }
    world
        .apply(
            "secret-rotated.yaml",
            &secret_manifest(NAMESPACE, "pchat-sql", "sa", ROTATED),
        )
        .await;
    for admin in &mut admins {
        let rows = admin
            .simple_query(
                "SELECT session_id FROM sys.dm_exec_sessions WHERE program_name = 'pchat-operator'",
            )
            .await
            .unwrap()
            .into_first_result()
            .await
            .unwrap();
        for row in rows {
            let session: i16 = row.get(0).unwrap();
            // 6106 when it left meanwhile: nothing to end.
            let _ = admin.execute(format!("KILL {session}"), &[]).await;
        }
    }

    world.set_primary_site("pcpool", "dallas").await;
    world.wait_settled_at("dallas", &op).await;
    let log = op.log();
    assert!(
        log.matches("logging in with the credentials").count() > logins_before,
        "the operator did not log in again after the Secret changed:\n{log}"
    );
    assert!(!log.contains(ROTATED), "the rotated password is in the log");
    assert!(
        !log.contains(pchat_sql::testing::PASSWORD),
        "the old password is in the log"
    );
    assert!(
        op.http_get("/readyz")
            .await
            .is_some_and(|(code, _)| code == 200)
    );
}
