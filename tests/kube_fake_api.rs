//! The fake API server (tests/support/kube_fake) through kube::Client, kube-runtime,
//! kube-lease-manager and raw HTTP: each test proves one behaviour the operator relies on.

mod support;

use std::io::{Read, Write};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::watcher;
use serde_json::{Value, json};
use support::kube_fake::FakeApiServer;

const POOLS: &str = "persistentchat.io/v1alpha1";
/// Generous: the CI machine has 2 cores shared by parallel test binaries.
const DEADLINE: Duration = Duration::from_secs(30);

fn crd() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crds/persistentchatpool.yaml"
    ))
    .unwrap();
    serde_saphyr::from_str(&text).unwrap()
}

fn pool_resource() -> ApiResource {
    let gvk = GroupVersionKind::gvk("persistentchat.io", "v1alpha1", "PersistentChatPool");
    ApiResource::from_gvk_with_plural(&gvk, "persistentchatpools")
}

/// A server with the PersistentChatPool CRD installed, and a namespaced Api for pools.
async fn with_pools() -> (FakeApiServer, Api<DynamicObject>) {
    let server = FakeApiServer::start();
    server.put_object(crd());
    let client = server.client().await;
    let api = Api::namespaced_with(client, "default", &pool_resource());
    (server, api)
}

fn pool(name: &str, primary: &str) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": POOLS, "kind": "PersistentChatPool",
        "metadata": {"name": name},
        "spec": {"primarySite": primary, "homeSite": "atlanta"},
    }))
    .unwrap()
}

fn configmap(name: &str, labels: Value) -> ConfigMap {
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": labels}, "data": {"k": name}}),
    )
    .unwrap()
}

fn api_error(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(status) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn generation(o: &DynamicObject) -> i64 {
    o.metadata.generation.expect("generation set")
}

/// One HTTP/1.1 request over a fresh connection; returns (status, body) with chunked bodies
/// decoded.
fn raw(
    server: &FakeApiServer,
    method: &str,
    path: &str,
    content_type: &str,
    body: &str,
) -> (u16, String) {
    let addr = server.url().trim_start_matches("http://").to_string();
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8(response).unwrap();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut rest = rest;
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap();
            if n == 0 {
                break;
            }
            out.push_str(&tail[..n]);
            rest = &tail[n + 2..];
        }
        out
    } else {
        rest.to_string()
    };
    (status, body)
}

#[tokio::test]
async fn create_get_list_and_delete_through_kube_api() {
    let server = FakeApiServer::start();
    let api: Api<ConfigMap> = Api::default_namespaced(server.client().await);
    let created = api
        .create(&PostParams::default(), &configmap("a", json!({})))
        .await
        .unwrap();
    let meta = &created.metadata;
    assert!(
        meta.uid.is_some() && meta.creation_timestamp.is_some() && meta.resource_version.is_some()
    );
    assert_eq!(api.get("a").await.unwrap().data.unwrap()["k"], "a");
    api.create(&PostParams::default(), &configmap("b", json!({})))
        .await
        .unwrap();
    let list = api.list(&ListParams::default()).await.unwrap();
    let names: Vec<_> = list
        .items
        .iter()
        .map(|c| c.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert!(list.metadata.resource_version.is_some() && list.metadata.continue_.is_none());
    let all: Api<ConfigMap> = Api::all(server.client().await);
    assert_eq!(
        all.list(&ListParams::default()).await.unwrap().items.len(),
        2
    );
    api.delete("a", &DeleteParams::default()).await.unwrap();
    let gone = api_error(api.get("a").await.unwrap_err());
    assert_eq!((gone.code, gone.reason.as_str()), (404, "NotFound"));
    assert!(
        server
            .get("v1", "configmaps", Some("default"), "a")
            .is_none()
    );
}

#[tokio::test]
async fn create_of_an_existing_name_is_409_already_exists_and_generate_name_works() {
    let server = FakeApiServer::start();
    let api: Api<ConfigMap> = Api::default_namespaced(server.client().await);
    api.create(&PostParams::default(), &configmap("a", json!({})))
        .await
        .unwrap();
    let err = api_error(
        api.create(&PostParams::default(), &configmap("a", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "AlreadyExists"));
    let mut generated = configmap("", json!({}));
    generated.metadata.name = None;
    generated.metadata.generate_name = Some("gen-".into());
    let made = api
        .create(&PostParams::default(), &generated)
        .await
        .unwrap();
    let name = made.metadata.name.unwrap();
    assert!(name.starts_with("gen-") && name.len() > 4, "{name}");
}

#[tokio::test]
async fn replace_with_a_stale_resource_version_is_409_conflict() {
    let server = FakeApiServer::start();
    let api: Api<ConfigMap> = Api::default_namespaced(server.client().await);
    let first = api
        .create(&PostParams::default(), &configmap("a", json!({})))
        .await
        .unwrap();
    let mut fresh = first.clone();
    fresh.data = Some([("k".to_string(), "new".to_string())].into());
    let replaced = api
        .replace("a", &PostParams::default(), &fresh)
        .await
        .unwrap();
    assert_ne!(
        replaced.metadata.resource_version,
        first.metadata.resource_version
    );
    let mut stale = first;
    stale.data = Some([("k".to_string(), "stale".to_string())].into());
    let err = api_error(
        api.replace("a", &PostParams::default(), &stale)
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert_eq!(api.get("a").await.unwrap().data.unwrap()["k"], "new");
}

#[tokio::test]
async fn merge_patch_changes_only_the_given_fields() {
    let (_server, api) = with_pools().await;
    api.create(&PostParams::default(), &pool("p", "atlanta"))
        .await
        .unwrap();
    let patch = json!({"spec": {"primarySite": "dallas"}, "metadata": {"labels": {"x": "y"}}});
    let patched = api
        .patch("p", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    assert_eq!(patched.data["spec"]["primarySite"], "dallas");
    assert_eq!(patched.data["spec"]["homeSite"], "atlanta");
    assert_eq!(patched.metadata.labels.unwrap()["x"], "y");
}

#[test]
fn json_patch_adds_replaces_removes_and_fails_a_false_test() {
    let server = FakeApiServer::start();
    server.put_object(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "default"}, "data": {"a": "1", "b": "2"}}));
    let path = "/api/v1/namespaces/default/configmaps/c";
    let ops = json!([
        {"op": "test", "path": "/data/a", "value": "1"},
        {"op": "replace", "path": "/data/a", "value": "one"},
        {"op": "add", "path": "/data/c", "value": "3"},
        {"op": "remove", "path": "/data/b"},
    ]);
    let (status, body) = raw(
        &server,
        "PATCH",
        path,
        "application/json-patch+json",
        &ops.to_string(),
    );
    assert_eq!(status, 200, "{body}");
    let stored = server
        .get("v1", "configmaps", Some("default"), "c")
        .unwrap();
    assert_eq!(stored["data"], json!({"a": "one", "c": "3"}));
    let failing = json!([{"op": "test", "path": "/data/a", "value": "1"}, {"op": "remove", "path": "/data/a"}]);
    let (status, body) = raw(
        &server,
        "PATCH",
        path,
        "application/json-patch+json",
        &failing.to_string(),
    );
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("test failed"), "{body}");
    assert_eq!(
        server
            .get("v1", "configmaps", Some("default"), "c")
            .unwrap()["data"]["a"],
        "one",
        "nothing changed"
    );
}

#[tokio::test]
async fn apply_patch_creates_then_merges_and_records_the_field_manager() {
    let (server, api) = with_pools().await;
    let params = PatchParams::apply("tester");
    let created = api
        .patch("p", &params, &Patch::Apply(pool("p", "atlanta")))
        .await
        .unwrap();
    assert_eq!(generation(&created), 1);
    let partial = json!({"apiVersion": POOLS, "kind": "PersistentChatPool", "metadata": {"name": "p"},
        "spec": {"primarySite": "dallas", "homeSite": "atlanta"}});
    let applied = api
        .patch("p", &params, &Patch::Apply(&partial))
        .await
        .unwrap();
    assert_eq!(applied.data["spec"]["primarySite"], "dallas");
    let managers = applied.metadata.managed_fields.unwrap();
    assert!(
        managers
            .iter()
            .any(|m| m.manager.as_deref() == Some("tester")
                && m.operation.as_deref() == Some("Apply"))
    );
    let apply_request = server
        .requests()
        .into_iter()
        .rfind(|r| r.method == "PATCH")
        .unwrap();
    assert_eq!(apply_request.content_type, "application/apply-patch+yaml");
    assert_eq!(apply_request.field_manager, "tester");
}

#[tokio::test]
async fn apply_removes_fields_the_manager_no_longer_applies() {
    let (_server, api) = with_pools().await;
    let params = PatchParams::apply("tester");
    api.patch("p", &params, &Patch::Apply(pool("p", "atlanta")))
        .await
        .unwrap();
    let without_home = json!({"apiVersion": POOLS, "kind": "PersistentChatPool", "metadata": {"name": "p"},
        "spec": {"primarySite": "atlanta"}});
    let applied = api
        .patch("p", &params, &Patch::Apply(&without_home))
        .await
        .unwrap();
    assert_eq!(applied.data["spec"], json!({"primarySite": "atlanta"}));
}

#[tokio::test]
async fn apply_over_another_managers_field_is_a_conflict_unless_forced() {
    let (_server, api) = with_pools().await;
    api.patch(
        "p",
        &PatchParams::apply("first"),
        &Patch::Apply(pool("p", "atlanta")),
    )
    .await
    .unwrap();
    let other = json!({"apiVersion": POOLS, "kind": "PersistentChatPool", "metadata": {"name": "p"},
        "spec": {"primarySite": "dallas"}});
    let err = api_error(
        api.patch("p", &PatchParams::apply("second"), &Patch::Apply(&other))
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert!(
        err.message.contains("first") && err.message.contains(".spec.primarySite"),
        "{}",
        err.message
    );
    let forced = api
        .patch(
            "p",
            &PatchParams::apply("second").force(),
            &Patch::Apply(&other),
        )
        .await
        .unwrap();
    assert_eq!(forced.data["spec"]["primarySite"], "dallas");
}

#[tokio::test]
async fn status_patch_changes_only_status() {
    let (_server, api) = with_pools().await;
    api.create(&PostParams::default(), &pool("p", "atlanta"))
        .await
        .unwrap();
    let status = json!({"apiVersion": POOLS, "kind": "PersistentChatPool", "metadata": {"name": "p"},
        "spec": {"primarySite": "dallas"}, "status": {"phase": "Ready", "observedGeneration": 1}});
    let params = PatchParams::apply("pchat-operator").force();
    let patched = api
        .patch_status("p", &params, &Patch::Apply(&status))
        .await
        .unwrap();
    assert_eq!(patched.data["status"]["phase"], "Ready");
    assert_eq!(
        patched.data["spec"]["primarySite"], "atlanta",
        "a status write must not change spec"
    );
    let merged = api
        .patch_status(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Switching"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        merged.data["status"],
        json!({"phase": "Switching", "observedGeneration": 1})
    );
    assert_eq!(
        api.get_status("p").await.unwrap().data["status"]["phase"],
        "Switching"
    );
}

#[tokio::test]
async fn generation_increments_on_spec_change_not_on_status_change() {
    let (_server, api) = with_pools().await;
    let created = api
        .create(&PostParams::default(), &pool("p", "atlanta"))
        .await
        .unwrap();
    assert_eq!(generation(&created), 1);
    let status = Patch::Merge(json!({"status": {"phase": "Ready"}}));
    let after_status = api
        .patch_status("p", &PatchParams::default(), &status)
        .await
        .unwrap();
    assert_eq!(generation(&after_status), 1);
    let labels = Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}}));
    assert_eq!(
        generation(
            &api.patch("p", &PatchParams::default(), &labels)
                .await
                .unwrap()
        ),
        1
    );
    let spec = Patch::Merge(json!({"spec": {"primarySite": "dallas"}}));
    assert_eq!(
        generation(
            &api.patch("p", &PatchParams::default(), &spec)
                .await
                .unwrap()
        ),
        2
    );
    let same = api
        .patch("p", &PatchParams::default(), &spec)
        .await
        .unwrap();
    assert_eq!(generation(&same), 2, "a no-op write changes nothing");
}

#[tokio::test]
async fn status_written_through_the_main_resource_is_ignored() {
    let (_server, api) = with_pools().await;
    let mut with_status = pool("p", "atlanta");
    with_status.data["status"] = json!({"phase": "Ready"});
    let created = api
        .create(&PostParams::default(), &with_status)
        .await
        .unwrap();
    assert!(
        created.data.get("status").is_none(),
        "create drops status: {:?}",
        created.data
    );
    let patch = Patch::Merge(json!({"status": {"phase": "Ready"}}));
    let patched = api
        .patch("p", &PatchParams::default(), &patch)
        .await
        .unwrap();
    assert!(patched.data.get("status").is_none());
    assert_eq!(
        patched.metadata.resource_version, created.metadata.resource_version,
        "nothing was written"
    );
}

#[tokio::test]
async fn watch_delivers_added_modified_deleted_in_order_and_bookmarks() {
    let server = FakeApiServer::start();
    let api: Api<ConfigMap> = Api::default_namespaced(server.client().await);
    let rv = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut stream = api
        .watch(&WatchParams::default().timeout(60), &rv)
        .await
        .unwrap()
        .boxed();
    api.create(&PostParams::default(), &configmap("a", json!({})))
        .await
        .unwrap();
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "changed"}})),
    )
    .await
    .unwrap();
    api.delete("a", &DeleteParams::default()).await.unwrap();
    let mut seen = Vec::new();
    let mut bookmarks = 0;
    while seen.len() < 3 || bookmarks < 2 {
        let event = tokio::time::timeout(DEADLINE, stream.next())
            .await
            .expect("an event in time");
        match event.expect("the watch goes on").unwrap() {
            WatchEvent::Added(cm) => seen.push(("ADDED", cm.data.unwrap()["k"].clone())),
            WatchEvent::Modified(cm) => seen.push(("MODIFIED", cm.data.unwrap()["k"].clone())),
            WatchEvent::Deleted(cm) => seen.push(("DELETED", cm.data.unwrap()["k"].clone())),
            WatchEvent::Bookmark(_) => bookmarks += 1,
            WatchEvent::Error(e) => panic!("watch error {e:?}"),
        }
    }
    let expected = [
        ("ADDED", "a"),
        ("MODIFIED", "changed"),
        ("DELETED", "changed"),
    ];
    assert_eq!(seen, expected.map(|(t, k)| (t, k.to_string())));
}

#[tokio::test]
async fn watch_ends_after_timeout_seconds() {
    let server = FakeApiServer::start();
    let api: Api<ConfigMap> = Api::default_namespaced(server.client().await);
    let mut stream = api
        .watch(&WatchParams::default().timeout(1), "0")
        .await
        .unwrap()
        .boxed();
    let drained = tokio::time::timeout(DEADLINE, async {
        while let Some(event) = stream.next().await {
            assert!(
                matches!(event.unwrap(), WatchEvent::Bookmark(_)),
                "no object exists to report"
            );
        }
    });
    drained.await.expect("the watch ends within the deadline");
}

#[tokio::test]
async fn a_watch_from_before_compaction_gets_410_expired() {
    let server = FakeApiServer::start();
    let api: Api<ConfigMap> = Api::default_namespaced(server.client().await);
    let old = api
        .create(&PostParams::default(), &configmap("a", json!({})))
        .await
        .unwrap();
    server.compact();
    let old_rv = old.metadata.resource_version.unwrap();
    let mut stream = api
        .watch(&WatchParams::default(), &old_rv)
        .await
        .unwrap()
        .boxed();
    let event = tokio::time::timeout(DEADLINE, stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    match event {
        WatchEvent::Error(e) => assert_eq!((e.code, e.reason.as_str()), (410, "Expired")),
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
    let fresh = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let (status, body) = raw(
        &server,
        "GET",
        &format!(
            "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={fresh}&timeoutSeconds=1"
        ),
        "",
        "",
    );
    assert_eq!(status, 200);
    assert!(
        !body.contains("ERROR"),
        "a fresh list's version is watchable: {body}"
    );
}

#[tokio::test]
async fn watcher_recovers_from_410_by_relisting() {
    let server = FakeApiServer::start();
    let api: Api<ConfigMap> = Api::default_namespaced(server.client().await);
    api.create(&PostParams::default(), &configmap("a", json!({})))
        .await
        .unwrap();
    let mut stream = watcher(api.clone(), watcher::Config::default()).boxed();
    let mut init_done = 0;
    let mut errors = 0;
    let mut relisted = Vec::new();
    loop {
        let event = tokio::time::timeout(DEADLINE, stream.next())
            .await
            .expect("a watcher event in time");
        match event.expect("the watcher goes on") {
            Ok(watcher::Event::InitDone) => {
                init_done += 1;
                if init_done == 1 {
                    server.compact();
                    server.put_object(json!({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": "b", "namespace": "default"}}));
                } else {
                    break;
                }
            }
            Ok(watcher::Event::InitApply(cm)) if init_done == 1 => {
                relisted.push(cm.metadata.name.unwrap())
            }
            Ok(_) => {}
            Err(_) => errors += 1,
        }
    }
    assert!(errors >= 1, "the 410 reaches the watcher as an error");
    assert_eq!(relisted, ["a", "b"]);
    let lists = server
        .requests()
        .iter()
        .filter(|r| {
            r.path == "/api/v1/namespaces/default/configmaps"
                && r.method == "GET"
                && !r.query.contains("watch")
        })
        .count();
    assert_eq!(lists, 2, "one initial list and one re-list");
}

#[tokio::test]
async fn an_applied_crd_makes_the_custom_kind_served() {
    let server = FakeApiServer::start();
    let client = server.client().await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(crd()).unwrap();
    let applied = crds
        .patch(
            "persistentchatpools.persistentchat.io",
            &PatchParams::apply("tester"),
            &Patch::Apply(&crd),
        )
        .await
        .unwrap();
    let established = applied.status.unwrap().conditions.unwrap();
    assert!(
        established
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
    );
    let discovery = kube::discovery::Discovery::new(client.clone())
        .run()
        .await
        .unwrap();
    let (found, caps) = discovery
        .groups()
        .flat_map(|g| g.recommended_resources())
        .find(|(r, _)| r.kind == "PersistentChatPool")
        .expect("discovered");
    assert_eq!(found.plural, "persistentchatpools");
    assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
    assert!(
        caps.subresources
            .iter()
            .any(|(s, _)| s.plural == "persistentchatpools/status" || s.plural == "status")
    );
    let api: Api<DynamicObject> = Api::namespaced_with(client, "default", &found);
    api.create(&PostParams::default(), &pool("p", "atlanta"))
        .await
        .unwrap();
    let (_, group) = raw(&server, "GET", "/apis/persistentchat.io/v1alpha1", "", "");
    let group: Value = serde_json::from_str(&group).unwrap();
    assert_eq!(group["resources"][0]["shortNames"], json!(["pcpool"]));
}

#[tokio::test]
async fn the_lease_manager_acquires_and_another_identity_cannot_while_it_is_held() {
    let server = FakeApiServer::start();
    let client = server.client().await;
    // A short lease renewed by the holder's watch task (every 3 s, with 3 s of slack for a
    // loaded machine), so the test window covers renewals.
    let build = |identity: &str| {
        kube_lease_manager::LeaseManagerBuilder::new(client.clone(), "pchat-operator")
            .with_namespace("default")
            .with_identity(identity)
            .with_duration(6)
            .with_grace(3)
            .build()
    };
    let (mut first, first_task) = build("replica-a").await.unwrap().watch().await;
    tokio::time::timeout(DEADLINE, first.wait_for(|leader| *leader))
        .await
        .expect("acquired in time")
        .unwrap();
    let second = build("replica-b").await.unwrap();
    // Longer than the lease duration: only renewals keep it from the second identity.
    let attempt = tokio::time::timeout(Duration::from_secs(8), second.changed()).await;
    assert!(
        attempt.is_err(),
        "the second identity must still be waiting: {attempt:?}"
    );
    let leases: Api<Lease> = Api::default_namespaced(client);
    let lease = leases.get("pchat-operator").await.unwrap();
    assert_eq!(
        lease.spec.unwrap().holder_identity.as_deref(),
        Some("replica-a")
    );
    // Dropping the receiver makes the holder release the lease; then the other one acquires.
    drop(first);
    first_task.await.unwrap().unwrap();
    let taken = tokio::time::timeout(DEADLINE, second.changed())
        .await
        .expect("acquired in time")
        .unwrap();
    assert!(taken);
    let lease = leases.get("pchat-operator").await.unwrap();
    assert_eq!(
        lease.spec.unwrap().holder_identity.as_deref(),
        Some("replica-b")
    );
}

#[tokio::test]
async fn the_events_recorder_publishes_an_event() {
    use kube::runtime::events::{Event, EventType, Recorder, Reporter};
    let server = FakeApiServer::start();
    let reporter = Reporter {
        controller: "pchat-operator".into(),
        instance: Some("replica-a".into()),
    };
    let recorder = Recorder::new(server.client().await, reporter);
    let reference = ObjectReference {
        api_version: Some(POOLS.into()),
        kind: Some("PersistentChatPool".into()),
        name: Some("atl-cs-001".into()),
        namespace: Some("default".into()),
        ..Default::default()
    };
    let event = Event {
        type_: EventType::Normal,
        reason: "StepSucceeded".into(),
        note: Some("restored mgc".into()),
        action: "Reconcile".into(),
        secondary: None,
    };
    recorder.publish(&event, &reference).await.unwrap();
    recorder.publish(&event, &reference).await.unwrap();
    let events = server.list("events.k8s.io/v1", "events", Some("default"));
    assert_eq!(
        events.len(),
        1,
        "the second publish updates the same event series"
    );
    assert_eq!(events[0]["reason"], "StepSucceeded");
    assert_eq!(events[0]["regarding"]["name"], "atl-cs-001");
    assert_eq!(events[0]["series"]["count"], 2);
}

#[tokio::test]
async fn label_and_field_selectors_filter_lists() {
    let server = FakeApiServer::start();
    let api: Api<ConfigMap> = Api::default_namespaced(server.client().await);
    api.create(
        &PostParams::default(),
        &configmap("a", json!({"app": "x", "tier": "db"})),
    )
    .await
    .unwrap();
    api.create(&PostParams::default(), &configmap("b", json!({"app": "y"})))
        .await
        .unwrap();
    let names = |list: kube::api::ObjectList<ConfigMap>| -> Vec<String> {
        list.items
            .into_iter()
            .map(|c| c.metadata.name.unwrap())
            .collect()
    };
    let by = |s: &str| ListParams::default().labels(s);
    assert_eq!(names(api.list(&by("app=x")).await.unwrap()), ["a"]);
    assert_eq!(names(api.list(&by("app!=x")).await.unwrap()), ["b"]);
    assert_eq!(names(api.list(&by("tier")).await.unwrap()), ["a"]);
    assert_eq!(names(api.list(&by("app,!tier")).await.unwrap()), ["b"]);
    let field = ListParams::default().fields("metadata.name=b");
    assert_eq!(names(api.list(&field).await.unwrap()), ["b"]);
    let by_data = ListParams::default().fields("data.k!=a,metadata.namespace=default");
    assert_eq!(names(api.list(&by_data).await.unwrap()), ["b"]);
    let err = api_error(
        api.list(&ListParams::default().fields("metadata..name=b"))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 400);
    let err = api_error(
        api.list(&ListParams::default().labels("app in (x)"))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 400);
}

#[tokio::test]
async fn finalizers_delay_deletion_until_they_are_removed() {
    let server = FakeApiServer::start();
    let api: Api<ConfigMap> = Api::default_namespaced(server.client().await);
    let mut cm = configmap("a", json!({}));
    cm.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    api.create(&PostParams::default(), &cm).await.unwrap();
    api.delete("a", &DeleteParams::default()).await.unwrap();
    let held = api.get("a").await.unwrap();
    assert!(held.metadata.deletion_timestamp.is_some());
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert_eq!(api_error(api.get("a").await.unwrap_err()).code, 404);
}

#[test]
fn errors_are_status_objects_and_requests_are_recorded() {
    let server = FakeApiServer::start();
    let (status, body) = raw(
        &server,
        "GET",
        "/api/v1/namespaces/default/configmaps/missing",
        "",
        "",
    );
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status, 404);
    assert_eq!(body["kind"], "Status");
    assert_eq!(body["status"], "Failure");
    assert_eq!(body["reason"], "NotFound");
    assert_eq!(body["code"], 404);
    let (status, body) = raw(
        &server,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/x",
        "application/apply-patch+yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
    );
    assert_eq!(status, 422, "apply needs a fieldManager: {body}");
    let (status, _) = raw(
        &server,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/x?fieldManager=me",
        "application/apply-patch+yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  k: v\n",
    );
    assert_eq!(status, 201, "apply of an absent object creates it");
    assert_eq!(
        server
            .get("v1", "configmaps", Some("default"), "x")
            .unwrap()["data"]["k"],
        "v"
    );
    let recorded = server.requests();
    let last = recorded.last().unwrap();
    assert_eq!(
        (
            last.method.as_str(),
            last.field_manager.as_str(),
            last.status
        ),
        ("PATCH", "me", 201)
    );
    assert_eq!(recorded.len(), 3);
}

#[test]
fn test_side_put_and_delete_notify_and_bump_versions() {
    let server = FakeApiServer::start();
    server.put_object(crd());
    let obj = json!({"apiVersion": POOLS, "kind": "PersistentChatPool",
        "metadata": {"name": "p", "namespace": "default"}, "spec": {"primarySite": "atlanta"},
        "status": {"phase": "Ready"}});
    server.put_object(obj.clone());
    let first = server
        .get(POOLS, "persistentchatpools", Some("default"), "p")
        .unwrap();
    assert_eq!(
        first["status"]["phase"], "Ready",
        "a fixture may set status"
    );
    let mut changed = obj;
    changed["spec"]["primarySite"] = json!("dallas");
    server.put_object(changed);
    let second = server
        .get(POOLS, "persistentchatpools", Some("default"), "p")
        .unwrap();
    assert_eq!(second["metadata"]["generation"], 2);
    assert_eq!(second["metadata"]["uid"], first["metadata"]["uid"]);
    let rv = |o: &Value| {
        o["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    assert!(rv(&second) > rv(&first));
    assert_eq!(server.list(POOLS, "persistentchatpools", None).len(), 1);
    server.delete_object(POOLS, "persistentchatpools", Some("default"), "p");
    assert!(
        server
            .get(POOLS, "persistentchatpools", Some("default"), "p")
            .is_none()
    );
}

#[tokio::test]
async fn the_written_kubeconfig_gives_a_working_kube_client() {
    let server = FakeApiServer::start();
    let path = std::env::temp_dir().join(format!("kube-fake-kubeconfig-{}", std::process::id()));
    server.write_kubeconfig(&path);
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let options = kube::config::KubeConfigOptions::default();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .unwrap();
    assert_eq!(config.default_namespace, "default");
    support::kube_fake::install_crypto_provider();
    let client = kube::Client::try_from(config).unwrap();
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client);
    let names: Vec<_> = namespaces
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|n| n.metadata.name.unwrap())
        .collect();
    assert_eq!(names, ["default", "kube-system"]);
    let sent = server.requests();
    assert!(
        sent.iter()
            .all(|r| !format!("{r:?}").contains("kubefake-token")),
        "no credential is recorded"
    );
}

#[test]
fn send_initial_events_streams_current_objects_then_the_initial_events_end_bookmark() {
    let server = FakeApiServer::start();
    for name in ["a", "b"] {
        server.put_object(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default"}}));
    }
    let path = "/api/v1/namespaces/default/configmaps?watch=1&sendInitialEvents=true\
                &resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1";
    let (status, body) = raw(&server, "GET", path, "", "");
    assert_eq!(status, 200);
    let events: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .take(3)
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["ADDED", "ADDED", "BOOKMARK"]);
    assert_eq!(
        events[2]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    assert!(
        events[3..].iter().all(|e| e["type"] == "BOOKMARK"),
        "{body}"
    );
}
