//! The served resource types: the built-in ones and those that CustomResourceDefinitions add.

use serde_json::{Value, json};

/// One served resource type (all its versions share one storage, as in a real API server,
/// with no conversion: objects are returned with the requested apiVersion).
#[derive(Clone, Debug)]
pub struct ResourceInfo {
    /// API group; "" for the core group.
    pub group: String,
    /// Served versions, storage version first.
    pub versions: Vec<String>,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    /// Whether `/status` is a subresource (then writes to the main resource keep `.status`).
    pub status_subresource: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    /// Whether the server keeps `metadata.generation` (custom resources and CRDs here).
    pub has_generation: bool,
    /// `additionalPrinterColumns` of the storage version (for Table output).
    pub printer_columns: Vec<Value>,
}

impl ResourceInfo {
    /// `apiVersion` as written in objects: "v1" for the core group, else "group/version".
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{}", self.group, version)
        }
    }

    /// The name used in error messages, e.g. `persistentchatpools.persistentchat.io`.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    fn builtin(group: &str, version: &str, plural: &str, kind: &str, namespaced: bool) -> Self {
        ResourceInfo {
            group: group.into(),
            versions: vec![version.into()],
            plural: plural.into(),
            singular: kind.to_lowercase(),
            kind: kind.into(),
            namespaced,
            status_subresource: false,
            short_names: vec![],
            categories: vec![],
            has_generation: false,
            printer_columns: vec![],
        }
    }

    fn with_short(mut self, names: &[&str]) -> Self {
        self.short_names = names.iter().map(|s| s.to_string()).collect();
        self
    }
}

/// The resource types served before any CRD is created.
pub fn builtins() -> Vec<ResourceInfo> {
    let mut namespaces = ResourceInfo::builtin("", "v1", "namespaces", "Namespace", false);
    namespaces.short_names = vec!["ns".into()];
    namespaces.status_subresource = true;
    let mut crds = ResourceInfo::builtin(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        false,
    )
    .with_short(&["crd", "crds"]);
    crds.status_subresource = true;
    crds.has_generation = true;
    crds.categories = vec!["api-extensions".into()];
    vec![
        namespaces,
        ResourceInfo::builtin("", "v1", "configmaps", "ConfigMap", true).with_short(&["cm"]),
        ResourceInfo::builtin("", "v1", "secrets", "Secret", true),
        ResourceInfo::builtin("", "v1", "events", "Event", true).with_short(&["ev"]),
        ResourceInfo::builtin("events.k8s.io", "v1", "events", "Event", true).with_short(&["ev"]),
        ResourceInfo::builtin("coordination.k8s.io", "v1", "leases", "Lease", true),
        crds,
    ]
}

/// The resource type a CustomResourceDefinition object declares, or a message naming the
/// missing field.
pub fn from_crd(crd: &Value) -> Result<ResourceInfo, String> {
    let spec = crd.get("spec").ok_or("spec: Required value")?;
    let text = |v: Option<&Value>, field: &str| -> Result<String, String> {
        v.and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or_else(|| format!("{field}: Required value"))
    };
    let group = text(spec.get("group"), "spec.group")?;
    let names = spec.get("names").ok_or("spec.names: Required value")?;
    let plural = text(names.get("plural"), "spec.names.plural")?;
    let kind = text(names.get("kind"), "spec.names.kind")?;
    let singular = names
        .get("singular")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| kind.to_lowercase());
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let scope = text(spec.get("scope"), "spec.scope")?;
    let namespaced = match scope.as_str() {
        "Namespaced" => true,
        "Cluster" => false,
        other => return Err(format!("spec.scope: Unsupported value: \"{other}\"")),
    };
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .filter(|v| !v.is_empty())
        .ok_or("spec.versions: Required value")?;
    let mut served = Vec::new();
    let mut status_subresource = false;
    let mut printer_columns = Vec::new();
    for v in versions {
        let name = text(v.get("name"), "spec.versions[].name")?;
        if v.get("served").and_then(Value::as_bool) == Some(false) {
            continue;
        }
        let storage = v.get("storage").and_then(Value::as_bool) == Some(true);
        if v.pointer("/subresources/status").is_some() {
            status_subresource = true;
        }
        if storage {
            printer_columns = v
                .get("additionalPrinterColumns")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            served.insert(0, name);
        } else {
            served.push(name);
        }
    }
    if served.is_empty() {
        return Err("spec.versions: Invalid value: no version is served".into());
    }
    Ok(ResourceInfo {
        group,
        versions: served,
        plural,
        singular,
        kind,
        namespaced,
        status_subresource,
        short_names: strings(names.get("shortNames")),
        categories: strings(names.get("categories")),
        has_generation: true,
        printer_columns,
    })
}

/// The status a real API server writes on a CRD once its names are accepted.
pub fn crd_status(crd: &Value, now: &str) -> Value {
    let names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
    let stored: Vec<Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                .filter_map(|v| v.get("name").cloned())
                .collect()
        })
        .unwrap_or_default();
    let condition = |t: &str, reason: &str, message: &str| json!({"type": t, "status": "True", "lastTransitionTime": now, "reason": reason, "message": message});
    json!({
        "acceptedNames": names,
        "storedVersions": stored,
        "conditions": [
            condition("NamesAccepted", "NoConflicts", "no conflicts found"),
            condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
    })
}
