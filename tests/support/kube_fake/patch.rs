//! Patch formats: JSON merge patch (RFC 7386), JSON patch (RFC 6902), strategic merge patch
//! (treated as a merge patch; see docs/testing.md), and the apply body (YAML or JSON).

use serde_json::{Map, Value};

/// Applies an RFC 7386 merge patch: objects merge key by key, `null` removes, anything else
/// (lists included) replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Some(patch_map) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let target_map = target.as_object_mut().expect("made an object above");
    for (key, value) in patch_map {
        if value.is_null() {
            target_map.remove(key);
        } else {
            merge_patch(target_map.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// Removes strategic-merge-patch directives (`$patch`, `$retainKeys`, `$setElementOrder/...`,
/// `$deleteFromPrimitiveList/...`) so the rest can be applied as a merge patch. Lists are then
/// replaced as a whole rather than merged by key.
pub fn strip_strategic_directives(patch: &mut Value) {
    match patch {
        Value::Object(map) => {
            map.retain(|k, _| !k.starts_with('$'));
            map.values_mut().for_each(strip_strategic_directives);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_strategic_directives),
        _ => {}
    }
}

/// Applies an RFC 6902 JSON patch (add, remove, replace, test, copy, move). The error names
/// the operation index and path.
pub fn json_patch(target: &mut Value, ops: &Value) -> Result<(), String> {
    let ops = ops
        .as_array()
        .ok_or("a JSON patch must be a list of operations")?;
    for (i, op) in ops.iter().enumerate() {
        let name = op.get("op").and_then(Value::as_str).unwrap_or("");
        let path = op
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("operation {i}: missing path"))?;
        let fail = |why: &str| format!("operation {i} ({name} {path}): {why}");
        match name {
            "add" | "replace" => {
                let value = op
                    .get("value")
                    .cloned()
                    .ok_or_else(|| fail("missing value"))?;
                if name == "replace" && target.pointer(path).is_none() {
                    return Err(fail("the path does not exist"));
                }
                put(target, path, value, name == "add").map_err(|e| fail(&e))?;
            }
            "remove" => {
                take(target, path).ok_or_else(|| fail("the path does not exist"))?;
            }
            "test" => {
                let want = op.get("value").ok_or_else(|| fail("missing value"))?;
                if target.pointer(path) != Some(want) {
                    return Err(fail("test failed"));
                }
            }
            "copy" | "move" => {
                let from = op
                    .get("from")
                    .and_then(Value::as_str)
                    .ok_or_else(|| fail("missing from"))?;
                let value = if name == "move" {
                    take(target, from)
                } else {
                    target.pointer(from).cloned()
                }
                .ok_or_else(|| fail("the from path does not exist"))?;
                put(target, path, value, true).map_err(|e| fail(&e))?;
            }
            _ => return Err(fail("unknown operation")),
        }
    }
    Ok(())
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn split(path: &str) -> Option<(&str, String)> {
    let (parent, last) = path.rsplit_once('/')?;
    Some((parent, unescape(last)))
}

fn put(target: &mut Value, path: &str, value: Value, insert: bool) -> Result<(), String> {
    if path.is_empty() {
        *target = value;
        return Ok(());
    }
    let (parent, last) = split(path).ok_or("the path must start with /")?;
    match target.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.insert(last, value);
            Ok(())
        }
        Some(Value::Array(items)) => {
            let index = if last == "-" {
                items.len()
            } else {
                last.parse::<usize>().map_err(|_| "bad list index")?
            };
            if insert && index <= items.len() {
                items.insert(index, value);
            } else if !insert && index < items.len() {
                items[index] = value;
            } else {
                return Err("list index out of range".into());
            }
            Ok(())
        }
        _ => Err("the parent path does not exist".into()),
    }
}

fn take(target: &mut Value, path: &str) -> Option<Value> {
    let (parent, last) = split(path)?;
    match target.pointer_mut(parent)? {
        Value::Object(map) => map.remove(&last),
        Value::Array(items) => {
            let index = last.parse::<usize>().ok()?;
            (index < items.len()).then(|| items.remove(index))
        }
        _ => None,
    }
}

/// Parses a request body that may be JSON or YAML (kubectl sends YAML for server-side apply).
pub fn parse_body(body: &[u8]) -> Result<Value, String> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return Ok(v);
    }
    let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8".to_string())?;
    serde_saphyr::from_str::<Value>(text)
        .map_err(|e| format!("the body is neither JSON nor YAML: {e}"))
}
