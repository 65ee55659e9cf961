//! The fake API server (tests/support/kube_fake) driven by the real kubectl binary, through a
//! kubeconfig written by `write_kubeconfig`.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::kube_fake::FakeApiServer;

const KUBECTL: &str = "/usr/bin/kubectl";
const POOLS: &str = "persistentchat.io/v1alpha1";

/// A server, a kubeconfig for it, and a private kubectl cache directory.
struct Kubectl {
    server: FakeApiServer,
    dir: PathBuf,
}

impl Kubectl {
    fn start(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("kube-fake-kubectl-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let server = FakeApiServer::start();
        server.write_kubeconfig(&dir.join("kubeconfig"));
        Kubectl { server, dir }
    }

    /// Runs kubectl; returns (exit success, stdout, stderr).
    fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(KUBECTL)
            .args(args)
            .env("KUBECONFIG", self.dir.join("kubeconfig"))
            .env("HOME", &self.dir)
            .env("KUBECACHEDIR", self.dir.join("cache"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("run kubectl");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let (ok, stdout, stderr) = self.run(args);
        assert!(
            ok,
            "kubectl {args:?} failed:\nstdout: {stdout}\nstderr: {stderr}"
        );
        stdout
    }
}

impl Drop for Kubectl {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn manifest(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(path)
        .display()
        .to_string()
}

/// A server with the CRD and the example pool applied by kubectl.
fn with_example_pool(name: &str) -> Kubectl {
    let k = Kubectl::start(name);
    k.ok(&["apply", "-f", &manifest("crds/persistentchatpool.yaml")]);
    k.ok(&["apply", "-f", &manifest("examples/pool.yaml")]);
    k
}

fn stored_pool(k: &Kubectl) -> Value {
    k.server
        .get(POOLS, "persistentchatpools", Some("default"), "atl-cs-001")
        .expect("the pool exists")
}

#[test]
fn kubectl_applies_the_crd_and_the_example_pool_without_flags() {
    let k = with_example_pool("apply");
    let pool = stored_pool(&k);
    assert_eq!(pool["metadata"]["generation"], 1);
    assert_eq!(pool["spec"]["primarySite"], "atlanta");
    let creates: Vec<_> = k
        .server
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(creates.len(), 2);
    assert!(
        creates
            .iter()
            .all(|r| r.field_manager == "kubectl-client-side-apply" && r.status == 201)
    );
}

#[test]
fn a_second_identical_apply_changes_nothing() {
    let k = with_example_pool("reapply");
    let before = stored_pool(&k);
    let out = k.ok(&["apply", "-f", &manifest("examples/pool.yaml")]);
    assert!(out.contains("unchanged"), "{out}");
    let after = stored_pool(&k);
    assert_eq!(after["metadata"]["generation"], 1);
    assert_eq!(
        after["metadata"]["resourceVersion"],
        before["metadata"]["resourceVersion"]
    );
}

#[test]
fn kubectl_patch_shows_in_get_json_with_generation_2() {
    let k = with_example_pool("patch");
    k.ok(&[
        "patch",
        "pcpool",
        "atl-cs-001",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"primarySite":"dallas"}}"#,
    ]);
    let json: Value =
        serde_json::from_str(&k.ok(&["get", "pcpool", "atl-cs-001", "-o", "json"])).unwrap();
    assert_eq!(json["spec"]["primarySite"], "dallas");
    assert_eq!(json["metadata"]["generation"], 2);
    let patch = k
        .server
        .requests()
        .into_iter()
        .find(|r| r.method == "PATCH")
        .unwrap();
    assert_eq!(patch.content_type, "application/merge-patch+json");
}

#[test]
fn kubectl_get_prints_a_table_with_the_printer_columns() {
    let k = with_example_pool("table");
    k.server.put_object(serde_json::json!({
        "apiVersion": POOLS, "kind": "PersistentChatPool",
        "metadata": {"name": "atl-cs-001", "namespace": "default"},
        "spec": stored_pool(&k)["spec"].clone(),
        "status": {"servingSite": "atlanta", "phase": "Ready",
            "conditions": [{"type": "Ready", "status": "True"}]},
    }));
    let table = k.ok(&["get", "pcpool"]);
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    for column in ["NAME", "PRIMARY", "SERVING", "PHASE", "READY", "AGE"] {
        assert!(header.contains(column), "{table}");
    }
    let row = lines.next().unwrap();
    assert!(
        row.starts_with("atl-cs-001") && row.contains("Ready") && row.contains("True"),
        "{table}"
    );
    let all = k.ok(&["get", "pcpool", "-A"]);
    assert!(
        all.contains("NAMESPACE") && all.contains("default"),
        "{all}"
    );
}

#[test]
fn kubectl_creates_a_secret_and_lists_configmaps() {
    let k = Kubectl::start("secret");
    k.ok(&[
        "create",
        "secret",
        "generic",
        "pchat-sql",
        "--from-literal=username=sa",
        "--from-literal=password=x",
    ]);
    let secret = k
        .server
        .get("v1", "secrets", Some("default"), "pchat-sql")
        .expect("created");
    assert_eq!(
        secret["data"],
        serde_json::json!({"username": "c2E=", "password": "eA=="})
    );
    assert_eq!(secret["type"], "Opaque");
    let empty = k.run(&["get", "configmap"]);
    assert!(empty.0, "{empty:?}");
    k.server.put_object(serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "atl-cs-001-active-servers", "namespace": "default"}, "data": {"poolState": "Normal"}}));
    let listed = k.ok(&["get", "configmap"]);
    assert!(listed.contains("atl-cs-001-active-servers"), "{listed}");
}

#[test]
fn kubectl_deletes_the_pool() {
    let k = with_example_pool("delete");
    k.ok(&["delete", "pcpool", "atl-cs-001"]);
    assert!(
        k.server
            .get(POOLS, "persistentchatpools", Some("default"), "atl-cs-001")
            .is_none()
    );
    let (ok, _, stderr) = k.run(&["get", "pcpool", "atl-cs-001"]);
    assert!(
        !ok && stderr.contains("NotFound") || stderr.contains("not found"),
        "{stderr}"
    );
}

#[test]
fn kubectl_server_side_apply_wait_and_jsonpath() {
    let k = Kubectl::start("ssa");
    k.ok(&[
        "apply",
        "--server-side",
        "-f",
        &manifest("crds/persistentchatpool.yaml"),
    ]);
    k.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/persistentchatpools.persistentchat.io",
        "--timeout=30s",
    ]);
    k.ok(&[
        "apply",
        "--server-side",
        "-f",
        &manifest("examples/pool.yaml"),
    ]);
    let apply = k
        .server
        .requests()
        .into_iter()
        .rfind(|r| r.method == "PATCH")
        .unwrap();
    assert_eq!(apply.content_type, "application/apply-patch+yaml");
    assert_eq!(apply.field_manager, "kubectl");
    let primary = k.ok(&[
        "get",
        "pcpool",
        "atl-cs-001",
        "-o",
        "jsonpath={.spec.primarySite}",
    ]);
    assert_eq!(primary, "atlanta");
    let managers = stored_pool(&k)["metadata"]["managedFields"].clone();
    assert_eq!(managers[0]["manager"], "kubectl");
    assert_eq!(managers[0]["operation"], "Apply");
}

#[test]
fn kubectl_describe_and_get_events_show_events_published_through_events_k8s_io() {
    let k = with_example_pool("describe");
    let pool = stored_pool(&k);
    k.server.put_object(serde_json::json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "atl-cs-001.1", "namespace": "default"},
        "eventTime": "2026-01-01T00:00:00.000000Z",
        "reportingController": "pchat-operator", "reportingInstance": "replica-a",
        "action": "Reconcile", "reason": "StepSucceeded", "note": "restored mgc", "type": "Normal",
        "regarding": {"apiVersion": POOLS, "kind": "PersistentChatPool", "name": "atl-cs-001",
            "namespace": "default", "uid": pool["metadata"]["uid"].clone()},
    }));
    let out = k.ok(&["describe", "pcpool", "atl-cs-001"]);
    assert!(
        out.contains("Primary Site:") && out.contains("atlanta"),
        "{out}"
    );
    assert!(
        out.contains("StepSucceeded") && out.contains("restored mgc"),
        "the pool's events: {out}"
    );
    let core = k.ok(&["get", "events", "-o", "jsonpath={.items[*].message}"]);
    assert_eq!(core, "restored mgc");
    let events = k.ok(&[
        "get",
        "events.events.k8s.io",
        "-o",
        "jsonpath={.items[*].reason}",
    ]);
    assert_eq!(events, "StepSucceeded");
}
