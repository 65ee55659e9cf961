//! The Helm chart against a real API server, with the control plane's own `helm`: `helm lint
//! --strict` is clean; `helm install` (CRD from crds/ included) creates what it renders, every
//! object accepted by the API server; the Deployment's pod passes PodSecurity `restricted`
//! admission when created as a Pod; `helm upgrade` with a changed value changes the Deployment;
//! `helm uninstall` removes the release's objects and keeps the CRD (Helm never deletes crds/).
//! No pod runs (no kubelet): what the pod does is `k8s_*.rs`'s, with the operator out of cluster.

mod support;

use std::time::Duration;

use support::k8s::{Cluster, IMAGE, NAMESPACE, RELEASE, chart_dir, eventually};

/// The installed Deployment, as the API server stores it.
async fn deployment(cluster: &Cluster) -> serde_json::Value {
    let out = cluster
        .tool(
            "kubectl",
            &["get", "deployment", RELEASE, "-n", NAMESPACE, "-o", "json"],
        )
        .await;
    serde_json::from_str(&out).unwrap()
}

/// The Deployment's container arguments.
async fn deployment_args(cluster: &Cluster) -> Vec<String> {
    deployment(cluster).await["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

/// The value following `flag` in a list of arguments.
fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    let i = args.iter().position(|a| a == flag)?;
    args.get(i + 1).map(String::as_str)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chart_lints_clean_and_installs_upgrades_and_uninstalls_on_a_real_api_server() {
    // The chart's life in order on one control plane, longer than most tests: an upgrade and an
    // uninstall act on what the install before them left.
    let cluster = Cluster::start_for("chart").await;
    let chart = chart_dir();
    let chart = chart.to_str().unwrap();
    let lint = cluster
        .tool("helm", &["lint", "--strict", chart, "--set", IMAGE])
        .await;
    assert!(
        lint.contains("1 chart(s) linted, 0 chart(s) failed"),
        "{lint}"
    );
    assert!(
        !lint.contains("[WARNING]") && !lint.contains("[ERROR]"),
        "{lint}"
    );

    // The NetworkPolicy has no API server address to guess: enabling it without one fails the
    // render, naming the value to set.
    let render_network_policy = async |extra: &[&str]| {
        let mut args = vec![
            "template",
            "x",
            chart,
            "--set",
            "networkPolicy.enabled=true",
            "--set",
            IMAGE,
        ];
        args.extend_from_slice(extra);
        cluster.try_tool("helm", &args).await
    };
    let (rendered, message) = render_network_policy(&[]).await;
    assert!(!rendered, "{message}");
    assert!(
        message.contains("networkPolicy.apiServer.cidrs is empty"),
        "{message}"
    );
    let (rendered, message) =
        render_network_policy(&["--set", "networkPolicy.apiServer.cidrs={192.0.2.10/32}"]).await;
    assert!(rendered, "{message}");
    assert!(message.contains("cidr: 192.0.2.10/32"), "{message}");

    // No public image exists: an install without one fails, naming the value and what to set.
    let (rendered, message) = cluster.try_tool("helm", &["template", "x", chart]).await;
    assert!(!rendered, "{message}");
    assert!(
        message.contains("image.repository is empty") && message.contains("Dockerfile"),
        "{message}"
    );

    // PodSecurity `restricted` enforced on the release namespace.
    cluster
        .tool("kubectl", &["create", "namespace", NAMESPACE])
        .await;
    cluster
        .tool(
            "kubectl",
            &[
                "label",
                "namespace",
                NAMESPACE,
                "pod-security.kubernetes.io/enforce=restricted",
            ],
        )
        .await;
    let watch = format!("watchNamespaces={{{NAMESPACE}}}");
    let install = cluster
        .tool(
            "helm",
            &[
                "install", RELEASE, chart, "-n", NAMESPACE, "--set", &watch, "--set", IMAGE,
            ],
        )
        .await;
    assert!(install.contains("STATUS: deployed"), "{install}");
    cluster.wait_crd_established().await;
    let args = deployment_args(&cluster).await;
    assert_eq!(
        flag_value(&args, "--lease-duration"),
        Some("15"),
        "{args:?}"
    );
    assert_eq!(
        flag_value(&args, "--max-concurrent-pools"),
        Some("16"),
        "{args:?}"
    );
    assert_eq!(
        flag_value(&args, "--namespace"),
        Some(NAMESPACE),
        "{args:?}"
    );
    assert_eq!(flag_value(&args, "--lease-name"), Some(RELEASE), "{args:?}");
    // IPv6-only and dual-stack clusters: the endpoint listens on every address family.
    assert_eq!(
        flag_value(&args, "--http-addr"),
        Some("[::]:8080"),
        "{args:?}"
    );
    // A leader on SIGTERM finishes its step before it releases the Lease: the kubelet must not
    // kill it during the longest one, a BACKUP or RESTORE bounded by `spec.timeouts.command`.
    let grace =
        deployment(&cluster).await["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
            .as_u64()
            .unwrap();
    let longest_step: Duration = pchat_core::api::SqlTimeouts::default().command.into();
    let longest_step = longest_step.as_secs();
    assert!(grace > longest_step, "{grace} s <= {longest_step} s");
    pod_of_the_deployment_passes_restricted_admission(&cluster).await;
    two_replicas_get_a_disruption_budget_and_prefer_different_nodes(&cluster).await;

    let upgrade = cluster
        .tool(
            "helm",
            &[
                "upgrade",
                RELEASE,
                chart,
                "-n",
                NAMESPACE,
                "--reuse-values",
                "--set",
                "leaseDuration=30",
            ],
        )
        .await;
    assert!(upgrade.contains("STATUS: deployed"), "{upgrade}");
    assert!(upgrade.contains("REVISION: 2"), "{upgrade}");
    let args = deployment_args(&cluster).await;
    assert_eq!(
        flag_value(&args, "--lease-duration"),
        Some("30"),
        "{args:?}"
    );

    cluster
        .tool("helm", &["uninstall", RELEASE, "-n", NAMESPACE])
        .await;
    let selector = format!("app.kubernetes.io/instance={RELEASE}");
    eventually(
        Duration::from_secs(60),
        "the release's objects are gone",
        async || {
            let left = cluster
                .tool(
                    "kubectl",
                    &[
                        "get",
                        "deployments,services,serviceaccounts,roles,rolebindings",
                        "-n",
                        NAMESPACE,
                        "-l",
                        &selector,
                        "-o",
                        "name",
                    ],
                )
                .await;
            left.trim().is_empty().then_some(())
        },
        async || String::new(),
    )
    .await;
    // Helm installs crds/ once and never deletes them: the pools outlive the release.
    cluster
        .tool(
            "kubectl",
            &["get", "crd", "persistentchatpools.persistentchat.io"],
        )
        .await;
}

/// A Pod made of the installed Deployment's pod template is admitted in a namespace that
/// enforces PodSecurity `restricted` (a Deployment itself only draws warnings).
/// With the default two replicas: a PodDisruptionBudget lets a drain take one at a time, and
/// the pods prefer different nodes, so a standby survives one node.
async fn two_replicas_get_a_disruption_budget_and_prefer_different_nodes(cluster: &Cluster) {
    let budget = cluster
        .tool(
            "kubectl",
            &[
                "get",
                "poddisruptionbudget",
                RELEASE,
                "-n",
                NAMESPACE,
                "-o",
                "jsonpath={.spec.maxUnavailable}",
            ],
        )
        .await;
    assert_eq!(budget.trim(), "1", "{budget}");
    let topology = cluster
        .tool(
            "kubectl",
            &[
                "get",
                "deployment",
                RELEASE,
                "-n",
                NAMESPACE,
                "-o",
                "jsonpath={.spec.template.spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey}",
            ],
        )
        .await;
    assert_eq!(topology.trim(), "kubernetes.io/hostname", "{topology}");
    // The Prometheus Operator's API is not installed here: asking for a ServiceMonitor
    // installs nothing rather than failing on an unknown kind.
    let chart = chart_dir();
    let rendered = cluster
        .tool(
            "helm",
            &[
                "template",
                RELEASE,
                chart.to_str().unwrap(),
                "-n",
                NAMESPACE,
                "--set",
                "serviceMonitor.enabled=true",
                "--set",
                IMAGE,
            ],
        )
        .await;
    assert!(!rendered.contains("kind: ServiceMonitor"), "{rendered}");
}

async fn pod_of_the_deployment_passes_restricted_admission(cluster: &Cluster) {
    let out = cluster
        .tool(
            "kubectl",
            &["get", "deployment", RELEASE, "-n", NAMESPACE, "-o", "json"],
        )
        .await;
    let d: serde_json::Value = serde_json::from_str(&out).unwrap();
    let pod = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "from-template", "namespace": NAMESPACE},
        "spec": d["spec"]["template"]["spec"],
    });
    let path = cluster.dir.join("pod.json");
    std::fs::write(&path, pod.to_string()).unwrap();
    let (ok, out) = cluster
        .try_tool(
            "kubectl",
            &["create", "--dry-run=server", "-f", path.to_str().unwrap()],
        )
        .await;
    assert!(
        ok,
        "the operator's pod is refused by PodSecurity restricted:\n{out}"
    );
    assert!(!out.contains("Warning"), "{out}");
}
