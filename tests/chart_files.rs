//! The Helm chart's files, checked as text, without Helm or a cluster (rendering, lint, install
//! and the RBAC on a real API server are `k8s_chart.rs`'s and `k8s_rbac.rs`'s): the chart's CRD
//! is the committed one, values.yaml parses and
//! holds every key the templates read, the Deployment carries each PodSecurity `restricted`
//! setting, and the Grafana dashboard is valid JSON that queries only metrics the operator's registry exports.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The operator's metrics text with one sample in every family (a family with no sample is
/// not rendered at all).
fn metrics_text() -> String {
    use pchat_operator::k8s::metrics::{Metrics, Outcome};
    let m = Metrics::new();
    m.pass("chat", "atl-cs-001", Outcome::Step);
    m.error("chat", "atl-cs-001", "StepRetrying");
    m.step("CatchUp", std::time::Duration::from_millis(250));
    m.round_trips("chat", "atl-cs-001", 4);
    m.set_leader(true);
    m.set_max_concurrent_pools(16);
    // The guards count down when dropped; the series stay.
    drop(m.waiting_for_turn("ordinary"));
    drop(m.got_turn("ordinary", std::time::Duration::from_millis(5)));
    let status: pchat_core::api::PersistentChatPoolStatus =
        serde_json::from_value(serde_json::json!({
            "observedGeneration": 1,
            "poolState": "Normal",
            "servingSite": "atlanta",
            "phase": "Protected",
            "protection": {"restoreLatencySeconds": 12},
            "transition": {"from": "dallas", "to": "atlanta", "kind": "Forced",
                           "startedAt": "2026-11-26T12:00:00Z",
                           "dataLoss": {"estimatedSeconds": 3}},
            "conditions": [{"type": "Ready", "status": "True", "reason": "Protected",
                            "message": "", "lastTransitionTime": "2026-11-26T12:00:00Z",
                            "observedGeneration": 1}]
        }))
        .expect("a status");
    m.status(
        "chat",
        "atl-cs-001",
        &["atlanta".to_string(), "dallas".to_string()],
        &status,
    );
    m.render()
}

/// Every series `pchat-operator run` exposes, as Prometheus sees it, read from the operator's
/// own registry (`# TYPE` lines of its OpenMetrics text): counters end in `_total`, histograms
/// come as `_bucket`, `_sum` and `_count`.
fn exported_series() -> BTreeSet<String> {
    let text = metrics_text();
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let (Some(name), Some(kind)) = (words.next(), words.next()) else {
            continue;
        };
        match kind {
            "counter" => {
                out.insert(format!("{}_total", name.trim_end_matches("_total")));
            }
            "histogram" => {
                for suffix in ["_bucket", "_sum", "_count"] {
                    out.insert(format!("{name}{suffix}"));
                }
            }
            _ => {
                out.insert(name.to_string());
            }
        }
    }
    out
}

/// The metric families (names without the histogram series suffixes).
fn exported_families() -> BTreeSet<String> {
    let text = metrics_text();
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|rest| {
            let mut w = rest.split_whitespace();
            match (w.next(), w.next()) {
                (Some(name), Some("counter")) => {
                    Some(format!("{}_total", name.trim_end_matches("_total")))
                }
                (Some(name), Some(_)) => Some(name.to_string()),
                _ => None,
            }
        })
        .collect()
}

fn chart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/pchat-operator")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn dashboard() -> Value {
    let path = chart().join("dashboards/pchat-operator.json");
    serde_json::from_str(&read(&path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every PromQL expression of every panel.
fn exprs(dash: &Value) -> Vec<String> {
    let panels = dash["panels"].as_array().expect("dashboard panels");
    panels
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .map(|t| t["expr"].as_str().expect("a target expr").to_string())
        .collect()
}

/// The `pchat_*` names in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("pchat_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

/// Whether `name` is a series the operator exposes.
fn is_exported(name: &str) -> bool {
    exported_series().contains(name)
}

#[test]
fn every_metric_the_dashboard_queries_is_one_the_operator_exports_and_each_is_shown() {
    let dash = dashboard();
    let mut queried = BTreeSet::new();
    for e in exprs(&dash) {
        for name in metric_names(&e) {
            assert!(
                is_exported(&name),
                "the dashboard queries {name}, which the operator does not expose: {e}"
            );
            queried.insert(name);
        }
    }
    // The panels an SRE reads during a switch: each of these metrics is shown somewhere.
    let families = exported_families();
    assert!(families.len() >= 11, "{families:?}");
    for m in &families {
        assert!(
            queried.iter().any(|q| q.starts_with(m.as_str())),
            "no panel shows {m}"
        );
    }
    assert!(
        exprs(&dash).iter().any(|e| e.contains("histogram_quantile")
            && e.contains("pchat_step_duration_seconds_bucket")),
        "step durations are shown as histogram quantiles"
    );
}

#[test]
fn the_metric_name_scan_finds_names_and_rejects_unknown_ones() {
    assert_eq!(
        metric_names("sum(rate(pchat_reconciles_total{a=\"b\"}[5m])) / pchat_leader"),
        ["pchat_reconciles_total", "pchat_leader"]
    );
    assert!(is_exported("pchat_step_duration_seconds_bucket"));
    assert!(is_exported("pchat_reconciles_total"));
    assert!(!is_exported("pchat_pool_state_bucket"));
    assert!(!is_exported("pchat_reconciles"));
}

#[test]
fn the_charts_crd_is_byte_identical_to_the_committed_crd() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let committed = std::fs::read(root.join("crds/persistentchatpool.yaml")).unwrap();
    let in_chart = std::fs::read(chart().join("crds/persistentchatpool.yaml")).unwrap();
    assert!(
        committed == in_chart,
        "charts/pchat-operator/crds/persistentchatpool.yaml differs from crds/persistentchatpool.yaml: \
         cp crds/persistentchatpool.yaml charts/pchat-operator/crds/"
    );
}

fn values() -> Value {
    let path = chart().join("values.yaml");
    serde_saphyr::from_str(&read(&path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The template files (Go templates, read as text).
fn templates() -> Vec<(String, String)> {
    let dir = chart().join("templates");
    let mut out: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                read(&p),
            )
        })
        .collect();
    out.sort();
    out
}

/// Every `.Values.a.b.c` path the templates read, with `$x := .Values.a` aliases resolved
/// (`$x.b` reads `a.b`).
fn values_paths(text: &str) -> BTreeSet<String> {
    let ident = |s: &str| {
        s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .map_or(s.to_string(), |end| s[..end].to_string())
            .trim_end_matches('.')
            .to_string()
    };
    let mut aliases = Vec::new();
    for (i, _) in text.match_indices(":= .Values.") {
        let before = &text[..i];
        let var = before.rsplit('$').next().unwrap().trim().to_string();
        let path = ident(&text[i + ":= .Values.".len()..]);
        aliases.push((format!("${var}."), path));
    }
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices(".Values.") {
        out.insert(ident(&text[i + ".Values.".len()..]));
    }
    for (alias, base) in &aliases {
        for (i, _) in text.match_indices(alias.as_str()) {
            out.insert(format!("{base}.{}", ident(&text[i + alias.len()..])));
        }
    }
    out
}

#[test]
fn values_yaml_parses_and_holds_every_key_the_templates_read() {
    let values = values();
    let mut checked = 0;
    for (file, text) in templates() {
        for path in values_paths(&text) {
            let mut v = &values;
            for key in path.split('.') {
                v = v.get(key).unwrap_or_else(|| {
                    panic!(
                        "templates/{file} reads .Values.{path}, which values.yaml does not define"
                    )
                });
            }
            checked += 1;
        }
    }
    assert!(
        checked > 30,
        "only {checked} value paths found: the scan is broken"
    );
}

#[test]
fn the_values_scan_resolves_aliases() {
    let t = "{{- $np := .Values.networkPolicy }} {{ $np.sql.cidrs }} {{ .Values.image.tag | default 1 }}";
    assert_eq!(
        values_paths(t).into_iter().collect::<Vec<_>>(),
        ["image.tag", "networkPolicy", "networkPolicy.sql.cidrs"]
    );
}

#[test]
fn the_default_values_run_as_podsecurity_restricted_asks() {
    let v = values();
    assert_eq!(v["replicas"], 2);
    assert_eq!(v["podSecurity"]["runAsUser"], 65532);
    assert_eq!(v["podSecurity"]["seccompProfileType"], "RuntimeDefault");
    assert_eq!(v["watchNamespaces"], Value::Array(vec![]));
    assert!(["plain", "json"].contains(&v["logFormat"].as_str().unwrap()));
    assert_eq!(v["serviceMonitor"]["enabled"], false);
    assert_eq!(v["networkPolicy"]["enabled"], false);
    assert_eq!(
        v["networkPolicy"]["sql"]["ports"],
        serde_json::json!([1433])
    );
}

#[test]
fn the_deployment_template_carries_each_restricted_podsecurity_setting() {
    let d = read(&chart().join("templates/deployment.yaml"));
    // Both the pod and the container security contexts.
    assert_eq!(
        d.matches("runAsNonRoot: true").count(),
        2,
        "runAsNonRoot in pod and container"
    );
    assert_eq!(
        d.matches("runAsUser: {{ .Values.podSecurity.runAsUser }}")
            .count(),
        2
    );
    assert_eq!(
        d.matches("seccompProfile:\n").count(),
        2,
        "seccompProfile in pod and container"
    );
    assert_eq!(
        d.matches("type: {{ .Values.podSecurity.seccompProfileType }}")
            .count(),
        2
    );
    for setting in [
        "readOnlyRootFilesystem: true",
        "allowPrivilegeEscalation: false",
        "drop: [\"ALL\"]",
        // /tmp is the one writable place.
        "mountPath: /tmp",
        "emptyDir:",
        // Leader identity and Lease namespace from the downward API.
        "name: POD_NAME",
        "fieldPath: metadata.name",
        "name: POD_NAMESPACE",
        "fieldPath: metadata.namespace",
        // Probes on the named port.
        "path: /healthz",
        "path: /readyz",
        "name: http",
        "containerPort: 8080",
        // The agreed flags of `pchat-operator run`.
        "- run",
        "- --http-addr\n            - {{ .Values.httpAddr | quote }}",
        "- --log-format\n            - {{ .Values.logFormat }}",
        "- --lease-duration",
        "- --lease-name",
        "- --namespace",
        "{{- toYaml .Values.resources",
    ] {
        assert!(
            d.contains(setting),
            "templates/deployment.yaml lacks {setting:?}"
        );
    }
    assert!(!d.contains("privileged: true"));
}

#[test]
fn rbac_reads_secrets_by_name_only_and_keeps_leases_in_the_release_namespace() {
    let helpers = read(&chart().join("templates/_helpers.tpl"));
    let secrets = helpers
        .split("- apiGroups:")
        .find(|r| r.contains("resources: [\"secrets\"]"))
        .expect("a Secrets rule");
    assert!(secrets.contains("verbs: [\"get\"]"), "{secrets}");
    let rbac = read(&chart().join("templates/rbac.yaml"));
    let lease_role = rbac
        .split("---")
        .find(|d| d.contains("coordination.k8s.io"))
        .expect("a Lease rule");
    assert!(
        lease_role.contains("kind: Role\n"),
        "Leases are granted by a Role: {lease_role}"
    );
    assert!(lease_role.contains("namespace: {{ .Release.Namespace }}"));
    assert!(lease_role.contains("verbs: [\"get\", \"create\", \"patch\"]"));
    // Cluster-wide rights only when every namespace is watched.
    assert!(rbac.contains("{{- if empty .Values.watchNamespaces }}"));
    assert!(!rbac.contains("\"*\""), "no wildcard rights");
}

#[test]
fn the_dashboard_configmap_ships_the_dashboard_file_for_the_grafana_sidecar() {
    let t = read(&chart().join("templates/grafana-dashboard.yaml"));
    assert!(t.contains("grafana_dashboard: \"1\""));
    assert!(t.contains(".Files.Get \"dashboards/pchat-operator.json\""));
    assert!(t.contains("{{- if .Values.grafanaDashboard.enabled }}"));
}
