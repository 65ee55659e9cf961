//! The fake API server (tests/support/kube_fake) driven by the real kubectl binary, through a
//! kubeconfig written by `write_kubeconfig`.

#[path = "support/kube_fake/mod.rs"]
mod kube_fake;

use std::path::{Path, PathBuf};
use std::process::Command;

use kube_fake::FakeApiServer;
use serde_json::Value;

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

#[test]
fn kubectl_apply_patch_get_delete_a_pool() {
    let k = Kubectl::start("pool");
    k.ok(&["apply", "-f", &manifest("crds/persistentchatpool.yaml")]);
    k.ok(&["apply", "-f", &manifest("examples/pool.yaml")]);
    let pool = k
        .server
        .get(POOLS, "persistentchatpools", Some("default"), "atl-cs-001")
        .expect("the pool exists");
    assert_eq!(pool["metadata"]["generation"], 1);
    let out = k.ok(&["apply", "-f", &manifest("examples/pool.yaml")]);
    assert!(out.contains("unchanged"), "{out}");
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
    let table = k.ok(&["get", "pcpool"]);
    assert!(table.contains("atl-cs-001"), "{table}");
    k.ok(&[
        "create",
        "secret",
        "generic",
        "pchat-sql",
        "--from-literal=username=sa",
        "--from-literal=password=x",
    ]);
    k.ok(&["get", "configmap"]);
    k.ok(&["delete", "pcpool", "atl-cs-001"]);
    assert!(
        k.server
            .get(POOLS, "persistentchatpools", Some("default"), "atl-cs-001")
            .is_none()
    );
    for r in k.server.requests() {
        eprintln!(
            "{} {} {} {} {}",
            r.method, r.path, r.query, r.content_type, r.status
        );
    }
}
