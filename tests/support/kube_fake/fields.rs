//! Coarse server-side-apply field ownership, kept in `metadata.managedFields` (FieldsV1).
//!
//! A field is a path of object keys; lists and scalars are leaves (a list is owned as a whole,
//! never per element). Tracked: everything except `apiVersion`, `kind` and `metadata`, plus
//! `metadata.labels.*`, `metadata.annotations.*`, `metadata.finalizers` and
//! `metadata.ownerReferences`.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

pub type Path = Vec<String>;

/// Leaf paths of the tracked fields of `obj`.
pub fn tracked_paths(obj: &Value) -> BTreeSet<Path> {
    let mut out = BTreeSet::new();
    let Some(map) = obj.as_object() else {
        return out;
    };
    for (key, value) in map {
        match key.as_str() {
            "apiVersion" | "kind" => {}
            "metadata" => {
                for sub in ["labels", "annotations"] {
                    if let Some(m) = value.get(sub).and_then(Value::as_object) {
                        for k in m.keys() {
                            out.insert(vec!["metadata".into(), sub.into(), k.clone()]);
                        }
                    }
                }
                for sub in ["finalizers", "ownerReferences"] {
                    if value.get(sub).is_some() {
                        out.insert(vec!["metadata".into(), sub.into()]);
                    }
                }
            }
            _ => leaves(value, &mut vec![key.clone()], &mut out),
        }
    }
    out
}

fn leaves(value: &Value, prefix: &mut Path, out: &mut BTreeSet<Path>) {
    match value.as_object() {
        Some(map) if !map.is_empty() => {
            for (k, v) in map {
                prefix.push(k.clone());
                leaves(v, prefix, out);
                prefix.pop();
            }
        }
        _ => {
            out.insert(prefix.clone());
        }
    }
}

/// Paths whose value differs between `old` and `new` (present in either).
pub fn changed_paths(old: &Value, new: &Value) -> BTreeSet<Path> {
    let a = tracked_paths(old);
    let b = tracked_paths(new);
    a.union(&b)
        .filter(|p| lookup(old, p) != lookup(new, p))
        .cloned()
        .collect()
}

pub fn lookup<'a>(obj: &'a Value, path: &Path) -> Option<&'a Value> {
    path.iter().try_fold(obj, |v, k| v.get(k))
}

/// Removes `path` from `obj`, and then any object left empty on the way up.
pub fn remove_path(obj: &mut Value, path: &Path) {
    fn go(v: &mut Value, path: &[String]) {
        let Some(map) = v.as_object_mut() else { return };
        if path.len() == 1 {
            map.remove(&path[0]);
            return;
        }
        if let Some(child) = map.get_mut(&path[0]) {
            go(child, &path[1..]);
            if child.as_object().is_some_and(Map::is_empty) {
                map.remove(&path[0]);
            }
        }
    }
    go(obj, path);
}

/// Whether two paths overlap (equal, or one is a prefix of the other).
pub fn overlaps(a: &Path, b: &Path) -> bool {
    let n = a.len().min(b.len());
    a[..n] == b[..n]
}

pub fn to_fields_v1(paths: &BTreeSet<Path>) -> Value {
    let mut root = Map::new();
    for path in paths {
        let mut node = &mut root;
        for key in path {
            node = node
                .entry(format!("f:{key}"))
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .expect("fieldsV1 nodes are objects");
        }
    }
    Value::Object(root)
}

pub fn from_fields_v1(fields: &Value) -> BTreeSet<Path> {
    let mut out = BTreeSet::new();
    fn go(v: &Value, prefix: &mut Path, out: &mut BTreeSet<Path>) {
        let children: Vec<_> = v
            .as_object()
            .map(|m| m.iter().filter(|(k, _)| k.starts_with("f:")).collect())
            .unwrap_or_default();
        if children.is_empty() {
            if !prefix.is_empty() {
                out.insert(prefix.clone());
            }
            return;
        }
        for (k, child) in children {
            prefix.push(k[2..].to_string());
            go(child, prefix, out);
            prefix.pop();
        }
    }
    go(fields, &mut Vec::new(), &mut out);
    out
}

/// One `metadata.managedFields` entry, decoded.
#[derive(Clone, Debug)]
pub struct Entry {
    pub manager: String,
    /// "Apply" or "Update".
    pub operation: String,
    /// "" or "status".
    pub subresource: String,
    pub api_version: String,
    pub time: String,
    pub paths: BTreeSet<Path>,
}

pub fn read_entries(obj: &Value) -> Vec<Entry> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|entries| {
            entries
                .iter()
                .map(|e| {
                    let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                    Entry {
                        manager: s("manager"),
                        operation: s("operation"),
                        subresource: s("subresource"),
                        api_version: s("apiVersion"),
                        time: s("time"),
                        paths: e.get("fieldsV1").map(from_fields_v1).unwrap_or_default(),
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn write_entries(obj: &mut Value, entries: &[Entry]) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.paths.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": to_fields_v1(&e.paths),
            });
            if !e.subresource.is_empty() {
                v["subresource"] = json!(e.subresource);
            }
            v
        })
        .collect();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if list.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(list));
        }
    }
}

/// Renders a path the way the API server names fields in conflict messages: `.spec.x`.
pub fn display(path: &Path) -> String {
    path.iter().map(|k| format!(".{k}")).collect()
}
