//! The repository's example pools against the real API server and the operator's own loader,
//! one list: every valid example is admitted by `kubectl apply` and planned by
//! `pchat-operator plan -f`; every invalid one (`examples/invalid/`) is refused by both, each
//! naming the same field. The CRD's schema and CEL rules and the operator's validation agree.

mod support;

use std::path::PathBuf;
use std::process::Command;

use support::k8s::{Cluster, NAMESPACE};

/// Every example pool and, for an invalid one, the field both must name.
fn examples() -> Vec<(PathBuf, Option<&'static str>)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut list = vec![
        (root.join("pool.yaml"), None),
        (root.join("pool-local.yaml"), None),
    ];
    for (file, field) in [
        ("primary-site-not-a-site.yaml", "spec.primarySite"),
        (
            "backup-interval-under-10s.yaml",
            "spec.logShipping.backupInterval",
        ),
        ("compliance-same-as-chat.yaml", "spec.databases.compliance"),
        ("duration-in-words.yaml", "spec.failover.unreachableAfter"),
        ("misspelt-field.yaml", "spec.failover.allowDataloss"),
    ] {
        list.push((root.join("invalid").join(file), Some(field)));
    }
    // Every file of examples/invalid/ is in the list.
    let on_disk = std::fs::read_dir(root.join("invalid")).unwrap().count();
    assert_eq!(on_disk, list.iter().filter(|(_, f)| f.is_some()).count());
    list
}

/// `pchat-operator plan -f FILE` against the installer-state observation: exit code, output.
fn plan(file: &std::path::Path) -> (i32, String) {
    let observed =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/observed-installer.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_pchat-operator"))
        .arg("plan")
        .arg("-f")
        .arg(file)
        .arg("--observed")
        .arg(observed)
        .output()
        .expect("run pchat-operator");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_server_and_plan_agree_on_every_example_naming_the_same_field() {
    let cluster = Cluster::start_for("examples").await;
    cluster.apply_crd().await;
    cluster
        .tool("kubectl", &["create", "namespace", NAMESPACE])
        .await;
    for (file, field) in examples() {
        let name = file.display().to_string();
        // A server-side dry run: admission, schema, CEL rules, and strict field validation,
        // without storing the object (every example has the same name).
        let (admitted, answer) = cluster
            .try_tool(
                "kubectl",
                &["apply", "--dry-run=server", "-n", NAMESPACE, "-f", &name],
            )
            .await;
        let (code, planned) = plan(&file);
        match field {
            None => {
                assert!(admitted, "{name}: refused by the API server:\n{answer}");
                assert_eq!(code, 0, "{name}: refused by plan:\n{planned}");
            }
            Some(field) => {
                assert!(!admitted, "{name}: admitted by the API server:\n{answer}");
                assert!(
                    answer.contains(field),
                    "{name}: the API server does not name {field}:\n{answer}"
                );
                // 2 for a rule the spec breaks, 1 for a field or value that cannot be read.
                assert!(
                    code == 1 || code == 2,
                    "{name}: plan did not refuse it (exit {code}):\n{planned}"
                );
                assert!(
                    planned.contains(field),
                    "{name}: plan does not name {field}:\n{planned}"
                );
            }
        }
    }
}
