//! The core/v1 view of events.k8s.io/v1 Events. A real API server stores Events once and serves
//! both shapes; here each API stores its own, and reads (GET, LIST) of core/v1 Events also
//! return the events.k8s.io ones converted, so `kubectl describe` and `kubectl get events`
//! show what kube-runtime's Recorder publishes. Watches of core/v1 Events do not include them.

use serde_json::{Map, Value, json};

/// An events.k8s.io/v1 Event in the core/v1 shape.
pub fn to_core(new: &Value) -> Value {
    let field = |k: &str| new.get(k).cloned();
    let mut core = Map::new();
    core.insert("apiVersion".into(), json!("v1"));
    core.insert("kind".into(), json!("Event"));
    core.insert("metadata".into(), field("metadata").unwrap_or(json!({})));
    let renames = [
        ("regarding", "involvedObject"),
        ("related", "related"),
        ("reason", "reason"),
        ("note", "message"),
        ("type", "type"),
        ("action", "action"),
        ("eventTime", "eventTime"),
        ("reportingController", "reportingComponent"),
        ("reportingInstance", "reportingInstance"),
        ("deprecatedFirstTimestamp", "firstTimestamp"),
        ("deprecatedLastTimestamp", "lastTimestamp"),
        ("deprecatedCount", "count"),
    ];
    for (from, to) in renames {
        if let Some(v) = field(from).filter(|v| !v.is_null()) {
            core.insert(to.into(), v);
        }
    }
    let source = field("deprecatedSource")
        .filter(|s| s.is_object())
        .unwrap_or_else(
            || json!({"component": new.get("reportingController").cloned().unwrap_or(Value::Null)}),
        );
    core.insert("source".into(), source);
    if let Some(series) = field("series").filter(Value::is_object) {
        core.insert(
            "count".into(),
            series.get("count").cloned().unwrap_or(json!(1)),
        );
        core.insert("series".into(), series);
    }
    Value::Object(core)
}
