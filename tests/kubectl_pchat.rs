//! The kubectl plugin as a person uses it: the binary linked onto the PATH as `kubectl-pchat`,
//! run through the control plane's own kubectl (`kubectl pchat ...`) with a kubeconfig, against
//! a real kube-apiserver where the operator runs with the chart's rights: `status`, `plan`,
//! `switch --wait` to the other site, `drill`, a site that is not the pool's, and a user whose
//! RBAC allows reading pools but not patching them.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::k8s::{NAMESPACE, POOL, World, write_token_kubeconfig};

/// A folder holding `kubectl-pchat` (a link to the binary under test), put first on the PATH.
fn plugin_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pchat-plugin-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_pchat-operator"),
        dir.join("kubectl-pchat"),
    )
    .unwrap();
    dir
}

/// `kubectl pchat ARGS` as the holder of `kubeconfig`: (exit code, stdout, stderr).
async fn kubectl_pchat(
    world: &World,
    plugins: &Path,
    kubeconfig: &Path,
    args: &[&str],
) -> (Option<i32>, String, String) {
    let kubectl = world.cluster.bin.join("kubectl");
    let path = format!(
        "{}:{}",
        plugins.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let args: Vec<String> = ["pchat"]
        .iter()
        .chain(args)
        .map(|s| s.to_string())
        .collect();
    let kubeconfig = kubeconfig.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let out = Command::new(kubectl)
            .args(&args)
            .env("PATH", path)
            .env("KUBECONFIG", kubeconfig)
            .output()
            .expect("kubectl starts");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_pchat_shows_status_and_plan_switches_with_wait_drills_and_respects_rbac() {
    // One story on one control plane and one operator, longer than most tests: each command
    // acts on the state the one before left (the switch on the plan shown, the drill on the
    // pool switched), and starting the control plane again for each would be most of the time.
    let (world, op) = World::with_pool_ready("plugin", &[]).await;
    let plugins = plugin_dir("all");
    let admin = world.cluster.admin_kubeconfig.clone();
    let ns = ["-n", NAMESPACE];

    // status: the pool as the operator last wrote it.
    let (code, out, err) =
        kubectl_pchat(&world, &plugins, &admin, &["status", POOL, ns[0], ns[1]]).await;
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(
        out.starts_with(&format!(
            "PersistentChatPool {NAMESPACE}/{POOL}: generation 1"
        )),
        "{out}"
    );
    assert!(
        out.contains("serving site:     atlanta (spec.primarySite atlanta)"),
        "{out}"
    );
    assert!(out.contains("step:             none in progress"), "{out}");
    assert!(out.contains("\n  Ready "), "{out}");
    assert!(out.contains("atl-sql1"), "{out}");

    // plan: converged, nothing to do, read from the live instances.
    let (code, out, err) = kubectl_pchat(
        &world,
        &plugins,
        &admin,
        &["plan", POOL, ns[0], ns[1], "-o", "json"],
    )
    .await;
    assert_eq!(code, Some(0), "{out}\n{err}");
    let plan: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(plan["steps"].as_array().map(Vec::len), Some(0), "{plan:#}");
    let statements_before = world.operator_statements();

    // A site the pool does not have: refused, nothing changed.
    let (code, out, err) = kubectl_pchat(
        &world,
        &plugins,
        &admin,
        &["switch", POOL, "houston", ns[0], ns[1]],
    )
    .await;
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert!(err.contains("spec.primarySite: \"houston\" is not the name of one of spec.sites (defined: atlanta, dallas)"), "{err}");
    assert_eq!(
        world.pool().await.unwrap()["metadata"]["generation"],
        1,
        "nothing was patched"
    );

    // switch --wait: patched, followed step by step to Ready on dallas.
    let (code, out, err) = kubectl_pchat(
        &world,
        &plugins,
        &admin,
        &[
            "switch",
            POOL,
            "dallas",
            "--wait",
            "--timeout",
            "3m",
            ns[0],
            ns[1],
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{out}\n{err}\n{}", op.log());
    assert!(
        out.contains(&format!(
            "{NAMESPACE}/{POOL}: spec.primarySite atlanta -> dallas (generation 2)"
        )),
        "{out}"
    );
    // Progress as the status records it: the switch's first status write is the tail LSN's
    // (its drain's status waits for it), so the first step shown is one of the first few.
    assert!(
        out.lines()
            .any(|l| l.starts_with("step ") && l.contains('/') && l.contains(" on ")),
        "progress lines: {out}"
    );
    assert!(
        out.trim_end()
            .ends_with(&format!("{NAMESPACE}/{POOL} is Ready on dallas")),
        "{out}"
    );
    let status = world.status().await.unwrap();
    assert_eq!(status.serving_site.as_deref(), Some("dallas"));
    assert!(world.operator_statements() > statements_before);
    let managers: Vec<String> = world.pool().await.unwrap()["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["manager"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        managers.contains(&"kubectl-pchat".to_string()),
        "{managers:?}"
    );

    // drill: the live pool rehearsed on a simulated copy.
    let (code, out, err) =
        kubectl_pchat(&world, &plugins, &admin, &["drill", POOL, ns[0], ns[1]]).await;
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.starts_with(&format!("drill of pool {POOL}")), "{out}");
    // The live pool serves from dallas now: the drill switches away from there.
    assert!(
        out.contains("scenario 1: planned switch dallas -> atlanta"),
        "{out}"
    );
    assert!(out.contains("result: PASSED"), "{out}");

    // A user who may read pools but not patch them.
    world
        .kubectl(&["create", "serviceaccount", "viewer", "-n", NAMESPACE])
        .await;
    world
        .kubectl(&[
            "create",
            "role",
            "pool-viewer",
            "-n",
            NAMESPACE,
            "--verb=get,list,watch",
            "--resource=persistentchatpools.persistentchat.io",
        ])
        .await;
    world
        .kubectl(&[
            "create",
            "rolebinding",
            "pool-viewer",
            "-n",
            NAMESPACE,
            "--role=pool-viewer",
            &format!("--serviceaccount={NAMESPACE}:viewer"),
        ])
        .await;
    let token = world
        .kubectl(&["create", "token", "viewer", "-n", NAMESPACE])
        .await;
    let viewer = world.dir.join("viewer.kubeconfig");
    write_token_kubeconfig(&viewer, &world.cluster, "viewer", NAMESPACE, token.trim());
    // The context's namespace is used without -n.
    let (code, out, err) = kubectl_pchat(&world, &plugins, &viewer, &["status", POOL]).await;
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("serving site:     dallas"), "{out}");
    let (code, out, err) =
        kubectl_pchat(&world, &plugins, &viewer, &["switch", POOL, "atlanta"]).await;
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert!(
        err.contains("needs the verb \"patch\" on resource \"persistentchatpools\""),
        "{err}"
    );
    // Without the Secret, plan cannot observe: it names the right it lacks.
    let (code, out, err) = kubectl_pchat(&world, &plugins, &viewer, &["plan", POOL]).await;
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert!(
        err.contains("needs the verb \"get\" on resource \"secrets\""),
        "{err}"
    );
    assert_eq!(
        world.status().await.unwrap().serving_site.as_deref(),
        Some("dallas"),
        "the refused switch changed nothing"
    );
    let _ = std::fs::remove_dir_all(&plugins);
}
