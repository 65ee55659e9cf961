//! `pchat-operator drill` as a user runs it: the binary on a pool file (the example, and the
//! example allowing data loss), on bad input, and on a pool read from a real kube-apiserver
//! with the user's kubeconfig, allowed and forbidden.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::k8s::{Cluster, write_token_kubeconfig};

fn drill(args: &[&str], envs: &[(&str, &Path)]) -> (Output, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pchat-operator"))
        .arg("drill")
        .args(args)
        .envs(envs.iter().copied())
        .output()
        .expect("pchat-operator starts");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/pool.yaml")
}

/// A copy of the example pool with `edit` applied to its text, in a folder of its own.
fn pool_file(name: &str, edit: impl FnOnce(String) -> String) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pchat-drill-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pool.yaml");
    std::fs::write(&path, edit(std::fs::read_to_string(example()).unwrap())).unwrap();
    path
}

/// The lines of scenario `n`, from its title to the next blank line.
fn scenario(stdout: &str, n: usize) -> String {
    let start = format!("scenario {n}: ");
    stdout
        .split("\n\n")
        .find(|block| block.starts_with(&start))
        .unwrap_or_else(|| panic!("no scenario {n} in:\n{stdout}"))
        .to_string()
}

#[test]
fn the_example_pool_switches_there_and_back_without_loss_and_its_policy_refuses_the_forced_failover()
 {
    let (out, stdout, stderr) = drill(&["-f", example().to_str().unwrap()], &[]);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.starts_with("drill of pool atl-cs-001: 4 instances on sites atlanta and dallas"),
        "{stdout}"
    );
    assert!(stdout.contains("backupInterval 5m -> 10s"), "{stdout}");
    let planned = scenario(&stdout, 1);
    assert!(
        planned.starts_with("scenario 1: planned switch atlanta -> dallas"),
        "{planned}"
    );
    // The steps in order with the T-SQL they sent: the tail-log backup leaves the old primary
    // RESTORING before the new one is recovered.
    let tail = planned
        .find("BACKUP LOG [mgc] TO DISK = @P1 WITH NORECOVERY")
        .unwrap_or_else(|| panic!("no tail-log backup in:\n{planned}"));
    let recover = planned
        .find("RESTORE DATABASE [mgc] WITH RECOVERY")
        .unwrap_or_else(|| panic!("no recovery in:\n{planned}"));
    assert!(tail < recover, "{planned}");
    assert!(planned.contains("-- on atl-sql1:"), "{planned}");
    assert!(
        planned.contains("predicted SQL critical path: "),
        "{planned}"
    );
    assert!(
        planned.contains("predicted chat write outage: "),
        "{planned}"
    );
    assert!(
        planned.contains(" lost\n") || planned.contains(" 0 lost"),
        "{planned}"
    );
    assert!(
        planned.contains("verdict: PASSED: serving from dal-sql"),
        "{planned}"
    );
    let back = scenario(&stdout, 2);
    assert!(
        back.starts_with("scenario 2: planned switch back dallas -> atlanta"),
        "{back}"
    );
    assert!(
        back.contains("verdict: PASSED: serving from atl-sql"),
        "{back}"
    );
    let forced = scenario(&stdout, 3);
    assert!(
        forced.starts_with("scenario 3: atlanta down: forced failover to dallas"),
        "{forced}"
    );
    assert!(
        forced.contains("verdict: REFUSED by the pool's policy, as configured: atlanta is down"),
        "{forced}"
    );
    assert!(forced.contains("failover.allowDataLoss: true"), "{forced}");
    assert!(stdout.contains("result: PASSED: 3 scenarios"), "{stdout}");
}

#[test]
fn a_pool_that_allows_data_loss_fails_over_in_the_drill_and_reports_its_loss_window() {
    let path = pool_file("loss", |t| {
        t.replace("allowDataLoss: false", "allowDataLoss: true")
    });
    let (out, stdout, stderr) = drill(&["-f", path.to_str().unwrap(), "--rate", "50"], &[]);
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let forced = scenario(&stdout, 3);
    assert!(
        forced.contains("RESTORE DATABASE [mgc] WITH RECOVERY"),
        "{forced}"
    );
    assert!(
        forced.contains("data-loss window of the forced failover: "),
        "{forced}"
    );
    assert!(forced.contains("at the pool's intervals"), "{forced}");
    assert!(
        forced.contains("verdict: PASSED: serving from dal-sql"),
        "{forced}"
    );
}

#[test]
fn an_invalid_pool_is_refused_with_each_field_named_and_no_drill_runs() {
    let path = pool_file("invalid", |t| {
        t.replace("primarySite: atlanta", "primarySite: houston")
            .replace("backupInterval: 5m", "backupInterval: 5s")
    });
    let (out, stdout, stderr) = drill(&["-f", path.to_str().unwrap()], &[]);
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("is not a valid pool"), "{stderr}");
    assert!(stderr.contains("spec.primarySite: \"houston\""), "{stderr}");
    assert!(
        stderr.contains("spec.logShipping.backupInterval: 5s"),
        "{stderr}"
    );
}

#[test]
fn a_time_scale_that_would_run_backups_faster_than_sql_server_agent_allows_is_refused() {
    let (out, stdout, stderr) = drill(
        &["-f", example().to_str().unwrap(), "--time-scale", "31"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(stderr.contains("--time-scale 31"), "{stderr}");
    assert!(
        stderr.contains("largest scale for this pool: 30"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_the_cluster_the_drill_reads_the_live_pool_with_the_users_kubeconfig_and_names_a_missing_right()
 {
    let cluster = Cluster::start_for("drill").await;
    cluster.apply_crd().await;
    cluster
        .tool("kubectl", &["create", "namespace", "chat"])
        .await;
    let path = pool_file("cluster", |t| {
        t.replace("allowDataLoss: false", "allowDataLoss: true")
            .replace("name: atl-cs-001", "name: atl-cs-001\n  namespace: chat")
    });
    cluster
        .tool("kubectl", &["apply", "-f", path.to_str().unwrap()])
        .await;
    let _ = std::fs::remove_dir_all(path.parent().unwrap());

    let admin = cluster.admin_kubeconfig.clone();
    let (out, stdout, stderr) = tokio::task::spawn_blocking(move || {
        drill(
            &["--from-cluster", "chat/atl-cs-001"],
            &[("KUBECONFIG", &admin)],
        )
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.starts_with("drill of pool atl-cs-001"), "{stdout}");
    // The live resource's policy, not the example's: data loss is allowed there.
    assert!(scenario(&stdout, 3).contains("verdict: PASSED"), "{stdout}");

    // A user with no right on pools: refused, with the verb and resource named.
    cluster
        .tool(
            "kubectl",
            &["create", "serviceaccount", "auditor", "-n", "chat"],
        )
        .await;
    let token = cluster
        .tool("kubectl", &["create", "token", "auditor", "-n", "chat"])
        .await;
    let kubeconfig = cluster.dir.join("auditor.kubeconfig");
    write_token_kubeconfig(&kubeconfig, &cluster, "auditor", "chat", token.trim());
    let (out, stdout, stderr) = tokio::task::spawn_blocking(move || {
        drill(
            &["--from-cluster", "chat/atl-cs-001"],
            &[("KUBECONFIG", &kubeconfig)],
        )
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("forbidden"), "{stderr}");
    assert!(
        stderr.contains("the verb \"get\" on resource \"persistentchatpools\""),
        "{stderr}"
    );
    assert!(stderr.contains("in namespace chat"), "{stderr}");

    // Reading is all the drill did: one GET of the pool per run, nothing written. (kubectl is
    // the test's, the control plane's own components watch every resource.)
    let drills: Vec<_> = cluster
        .audit_events()
        .into_iter()
        .filter(|e| {
            let agent = e["userAgent"].as_str().unwrap_or_default();
            e["objectRef"]["resource"] == "persistentchatpools"
                && !["kubectl", "kube-controller-manager", "kube-apiserver"]
                    .iter()
                    .any(|component| agent.starts_with(component))
        })
        .map(|e| e["verb"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(drills, ["get", "get"], "{drills:?}");
}
