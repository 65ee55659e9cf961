//! A minimal OpenAPI v3 (no schemas): the root index and, per group/version, one PATCH
//! operation per kind that declares the `fieldValidation` query parameter. That is what
//! kubectl's query-parameter verifier looks for: finding it, kubectl sends
//! `fieldValidation=Strict` instead of validating against a downloaded schema. The fake
//! accepts that parameter but does not validate fields (see docs/testing.md).

use serde_json::{Map, Value, json};

use super::resources::ResourceInfo;

pub fn root(resources: &[ResourceInfo]) -> Value {
    let mut paths = Map::new();
    for r in resources {
        for v in &r.versions {
            let key = if r.group.is_empty() {
                format!("api/{v}")
            } else {
                format!("apis/{}/{v}", r.group)
            };
            paths.insert(
                key.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{key}")}),
            );
        }
    }
    json!({"paths": paths})
}

pub fn group_version(resources: &[ResourceInfo], group: &str, version: &str) -> Option<Value> {
    let mut paths = Map::new();
    for r in resources
        .iter()
        .filter(|r| r.group == group && r.versions.iter().any(|v| v == version))
    {
        let prefix = if group.is_empty() {
            format!("/api/{version}")
        } else {
            format!("/apis/{group}/{version}")
        };
        let path = if r.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", r.plural)
        } else {
            format!("{prefix}/{}/{{name}}", r.plural)
        };
        let gvk = json!({"group": group, "version": version, "kind": r.kind});
        let query = |name: &str| json!({"name": name, "in": "query", "schema": {"type": "string"}});
        paths.insert(
            path,
            json!({
                "patch": {
                    "operationId": format!("patch{}", r.kind),
                    "x-kubernetes-action": "patch",
                    "x-kubernetes-group-version-kind": gvk,
                    "parameters": [query("dryRun"), query("fieldManager"), query("fieldValidation"), query("force")],
                    "responses": {"200": {"description": "OK"}},
                }
            }),
        );
    }
    if paths.is_empty() {
        return None;
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (kubefake)", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}
