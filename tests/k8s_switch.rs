//! `pchat-operator run` end to end on a real API server, with the chart's RBAC alone: kubectl
//! applies the CRD, the Secret and a pool; the operator bootstraps the simulated pool to
//! Ready/Protected and publishes the ConfigMap; a client-side `kubectl apply` of a changed
//! `spec.primarySite` moves the pool to the other site, followed as a person would (`kubectl
//! wait`, kstatus, `kubectl get`, `kubectl describe`), through status, conditions, Events, the
//! ConfigMap, managedFields, the audit log and the SQL end state.

mod support;

use std::collections::BTreeSet;

use pchat_core::api::{PersistentChatPoolStatus, Phase, PoolState, TransitionKind};
use pchat_sim::server::StatementKind;
use support::k8s::{
    LONG, NAMESPACE, Operator, POOL, StatusLog, World, eventually, has, operator_user, settled_at,
};

fn active_servers(cm: &serde_json::Value) -> Vec<String> {
    cm["data"]["activeServers"]
        .as_str()
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_of_primary_site_switches_the_pool_visibly_with_the_charts_rights_alone() {
    let world = World::start("switch").await;
    world.apply_crd().await;
    world.apply_secret().await;
    let op = world.operator("op-a", 15);
    world.wait_ready(&op).await;
    assert_eq!(op.http_get("/healthz").await.map(|r| r.0), Some(200));

    world.apply("pool.yaml", &world.pool_manifest(|_| {})).await;
    bootstrapped_at_atlanta(&world, &op).await;

    // Follow the switch as a person running `kubectl get pcpool -w` would: a watch sees every
    // status the operator writes, however quickly the steps follow one another.
    let statuses = world.follow_statuses().await;
    // Backups and restores of a second keep the switch under way long enough for kstatus (a Go
    // program started per question) to be asked while it runs, even on a loaded machine.
    world.slow_down(&[StatementKind::Backup, StatementKind::Restore], 1000);
    world
        .apply(
            "pool.yaml",
            &world.pool_manifest(|p| p.spec.primary_site = "dallas".into()),
        )
        .await;
    // `kubectl wait` compares the condition's observedGeneration with the pool's generation, so
    // the Ready of the old spec does not satisfy it: it returns once the switch is over.
    let wait = format!("pcpool/{POOL}");
    let wait_args = [
        "wait",
        "--for=condition=Ready",
        "--timeout=120s",
        "-n",
        NAMESPACE,
        &wait,
    ];
    let ((waited, out), in_progress) = tokio::join!(
        world.try_kubectl(&wait_args),
        kstatus_while_switching(&world, &op),
    );
    assert!(waited, "kubectl wait failed:\n{out}\n{}", op.log());
    assert_eq!(in_progress, "InProgress");
    let moved = world.status().await.expect("a status");
    assert!(
        settled_at(&moved, "dallas"),
        "kubectl wait returned before the switch was over: {moved:#?}"
    );
    assert_eq!(world.cluster.kstatus(NAMESPACE, &wait).await, "Current");

    switch_seen_step_by_step(&statuses, &moved).await;
    switch_published(&world).await;
    switch_shown_to_a_person(&world).await;
    switch_done_in_sql(&world);
    switch_in_metrics(&op).await;
    assert!(
        !op.log().contains(pchat_sql::testing::PASSWORD),
        "the password was logged"
    );
    operator_owns_status_only(&world).await;
    no_request_of_the_operator_was_refused(&world);
    every_right_the_chart_grants_is_used(&world).await;
}

/// The pool reaches Ready and Protected at atlanta and its ConfigMap is published, owned by
/// the pool.
async fn bootstrapped_at_atlanta(world: &World, op: &Operator) {
    let home = eventually(
        LONG,
        "the pool is Ready and Protected at atlanta",
        async || {
            world.status().await.filter(|s| {
                s.phase == Some(Phase::Protected)
                    && s.serving_site.as_deref() == Some("atlanta")
                    && has(s, "Ready", "True")
                    && has(s, "Protected", "True")
            })
        },
        async || format!("{:#?}\n{}", world.status().await, op.log()),
    )
    .await;
    assert_eq!(home.pool_state, Some(PoolState::Normal));
    assert_eq!(home.observed_generation, Some(1));
    for c in &home.conditions {
        assert_eq!(c.observed_generation, Some(1), "{c:?}");
    }
    let cm = world
        .config_map()
        .await
        .expect("the ConfigMap is published");
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
    assert_eq!(owner["uid"], world.pool().await.unwrap()["metadata"]["uid"]);
    assert_eq!(
        cm["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "pchat-operator"
    );
}

/// What kstatus says while the status shows the switch under way (phase Switching).
async fn kstatus_while_switching(world: &World, op: &Operator) -> String {
    let resource = format!("pcpool/{POOL}");
    eventually(
        LONG,
        "kstatus is asked while the pool is Switching",
        async || {
            let switching = world
                .status()
                .await
                .is_some_and(|s| s.phase == Some(Phase::Switching));
            if !switching {
                return None;
            }
            let said = world.cluster.kstatus(NAMESPACE, &resource).await;
            // Only an answer given while the switch still runs counts.
            let still = world
                .status()
                .await
                .is_some_and(|s| s.phase == Some(Phase::Switching));
            still.then_some(said)
        },
        async || format!("{:#?}\n{}", world.status().await, op.log()),
    )
    .await
}

/// The watch saw the switch's phases and steps, and the transition is recorded as planned.
async fn switch_seen_step_by_step(statuses: &StatusLog, moved: &PersistentChatPoolStatus) {
    let seen = eventually(
        LONG,
        "the watch delivers the settled status",
        async || {
            let seen = statuses.seen();
            seen.iter().any(|s| settled_at(s, "dallas")).then_some(seen)
        },
        async || format!("{:#?}", statuses.seen()),
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
}

/// The ConfigMap lists dallas's servers; one TransitionStarted and one TransitionCompleted Event.
async fn switch_published(world: &World) {
    let cm = world.config_map().await.unwrap();
    assert_eq!(
        active_servers(&cm),
        ["dal-pc1.litwareinc.com", "dal-pc2.litwareinc.com"]
    );
    assert_eq!(cm["data"]["poolState"], "FailedOver");

    let events = world.events().await;
    for reason in ["TransitionStarted", "TransitionCompleted"] {
        assert!(
            events
                .iter()
                .any(|(_, r, n)| r == reason && n.contains("from atlanta to dallas")),
            "{reason}: {events:#?}"
        );
        assert_eq!(
            world.event_count(reason).await,
            1,
            "a transition starts and completes once: {events:#?}"
        );
    }
}

/// What a person sees: the Events under `kubectl describe`, the columns of `kubectl get`.
async fn switch_shown_to_a_person(world: &World) {
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
}

/// The SQL end state: dallas's first instance serves the chat database, atlanta's copy is the
/// log-shipping secondary, restoring; dallas's second instance holds the mirror copy, which SQL
/// Server shows as RESTORING.
fn switch_done_in_sql(world: &World) {
    let sim = &world.live.sim.sim;
    for (instance, state) in [
        ("dal-sql1", "ONLINE"),
        ("atl-sql1", "RESTORING"),
        ("dal-sql2", "RESTORING"),
    ] {
        assert_eq!(
            sim.database_state(instance, "mgc").as_deref(),
            Some(state),
            "{instance}"
        );
    }
}

async fn switch_in_metrics(op: &Operator) {
    let (code, metrics) = op.http_get("/metrics").await.expect("/metrics answers");
    assert_eq!(code, 200);
    for line in [
        format!(
            "pchat_serving_site{{namespace=\"{NAMESPACE}\",pool=\"{POOL}\",site=\"dallas\"}} 1"
        ),
        format!(
            "pchat_pool_state{{namespace=\"{NAMESPACE}\",pool=\"{POOL}\",state=\"FailedOver\"}} 1"
        ),
        "pchat_leader 1".to_string(),
        // The operator's turns: how many there are, and the waits for them (a pass runs in a
        // turn, so there was at least one wait in the ordinary queue).
        "pchat_max_concurrent_pools 16".to_string(),
        "pchat_turn_wait_seconds_count{queue=\"ordinary\"} ".to_string(),
        "pchat_pools_in_turn ".to_string(),
    ] {
        assert!(metrics.contains(&line), "{line} missing:\n{metrics}");
    }
    assert!(
        metrics.contains("pchat_sql_round_trips_total{"),
        "{metrics}"
    );
}

/// `metadata.managedFields` of an object in the test namespace, as `kubectl get
/// --show-managed-fields` shows them.
async fn managed_fields(world: &World, kind: &str, name: &str) -> Vec<serde_json::Value> {
    let out = world
        .kubectl(&[
            "get",
            kind,
            name,
            "-n",
            NAMESPACE,
            "-o",
            "json",
            "--show-managed-fields",
        ])
        .await;
    let object: serde_json::Value = serde_json::from_str(&out).unwrap();
    object["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
        .clone()
}

/// The operator's field manager owns the status subresource's fields and nothing of the spec:
/// the spec stays the user's (kubectl's `last-applied` three-way merge keeps working); and the
/// ConfigMap it publishes is its own.
async fn operator_owns_status_only(world: &World) {
    let managed = managed_fields(world, "pcpool", POOL).await;
    let ours: Vec<&serde_json::Value> = managed
        .iter()
        .filter(|m| m["manager"] == "pchat-operator")
        .collect();
    assert!(!ours.is_empty(), "no entry of pchat-operator: {managed:#?}");
    for m in &ours {
        assert_eq!(m["subresource"], "status", "{m:#}");
        let fields = m["fieldsV1"].as_object().unwrap();
        let keys: Vec<&String> = fields.keys().collect();
        assert_eq!(keys, ["f:status"], "{m:#}");
    }
    let spec_owners: Vec<&str> = managed
        .iter()
        .filter(|m| m["fieldsV1"].get("f:spec").is_some())
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert!(
        !spec_owners.is_empty() && !spec_owners.contains(&"pchat-operator"),
        "{managed:#?}"
    );

    // The pool's ConfigMap is the operator's alone, written by server-side apply: one manager,
    // pchat-operator, owning its data, its labels and its owner reference.
    let managed = managed_fields(world, "configmap", &format!("{POOL}-active-servers")).await;
    let managers: Vec<(&str, &str)> = managed
        .iter()
        .map(|m| {
            (
                m["manager"].as_str().unwrap_or_default(),
                m["operation"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(managers, [("pchat-operator", "Apply")], "{managed:#?}");
    let fields = &managed[0]["fieldsV1"];
    assert!(fields.get("f:data").is_some(), "{fields:#}");
    assert!(fields["f:metadata"].get("f:labels").is_some(), "{fields:#}");
    assert!(
        fields["f:metadata"].get("f:ownerReferences").is_some(),
        "{fields:#}"
    );
}

/// The audit log: the chart's ServiceAccount was never refused (no 403) from start to end.
fn no_request_of_the_operator_was_refused(world: &World) {
    let requests = world.cluster.requests_of(&operator_user());
    assert!(
        requests.len() > 10,
        "the operator's requests are not in the audit log: {requests:#?}"
    );
    let refused: Vec<String> = requests
        .iter()
        .filter(|r| r.code == 403)
        .map(|r| r.to_string())
        .collect();
    assert!(refused.is_empty(), "refused: {refused:#?}");
}

/// Least privilege, read from the audit log: every right the chart grants was used by the
/// operator during bootstrap and a switch, except those kept for paths a switch does not take,
/// each with the reason.
async fn every_right_the_chart_grants_is_used(world: &World) {
    // (verb, api group, resource): why the right is kept although a switch does not use it.
    const KEPT: &[(&str, &str, &str, &str)] = &[
        (
            "create",
            "",
            "configmaps",
            "server-side apply that makes the ConfigMap is authorized as create as well as \
             patch; the audit log records only the patch",
        ),
        (
            "patch",
            "events.k8s.io",
            "events",
            "kube-runtime's Recorder patches the series of an Event that repeats; a switch \
             emits each of its Events once",
        ),
    ];
    let used: BTreeSet<_> = world
        .cluster
        .requests_of(&operator_user())
        .into_iter()
        .map(|r| r.grant)
        .collect();
    let granted = world.cluster.granted_to_release().await;
    let unused: Vec<String> = granted
        .iter()
        .filter(|g| !used.contains(g))
        .filter(|g| {
            !KEPT.iter().any(|(verb, group, resource, _why)| {
                g.verb == *verb && g.api_group == *group && g.resource == *resource
            })
        })
        .map(|g| g.to_string())
        .collect();
    let used: Vec<String> = used.iter().map(|g| g.to_string()).collect();
    assert!(
        unused.is_empty(),
        "granted but never used: {unused:#?}\nused: {used:#?}"
    );
}
