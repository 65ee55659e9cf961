//! Reading a `PersistentChatPool` manifest from YAML text (file mode, tests, examples).

use kube::{CustomResourceExt, Resource};
use serde_json::Value;

use super::patterns;
use super::spec::PersistentChatPool;

/// Why a manifest could not be read. Reading does not validate the spec: see [`super::validate`].
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The text is not YAML, or does not have the shape of a `PersistentChatPool`. The message
    /// names the line and column, and shows the offending line.
    #[error("cannot read the PersistentChatPool manifest: {source}")]
    Yaml {
        /// 1-based line of the problem, when the parser knows it.
        line: Option<u64>,
        /// 1-based column of the problem, when the parser knows it.
        column: Option<u64>,
        // Boxed: the parser's error is large, and results travel by value.
        #[source]
        source: Box<serde_saphyr::Error>,
    },
    /// The manifest is some other kind of object.
    #[error(
        "the manifest is apiVersion {found_api_version:?} kind {found_kind:?}; expected apiVersion \
         {expected_api_version:?} kind {expected_kind:?}"
    )]
    WrongKind {
        found_api_version: String,
        found_kind: String,
        expected_api_version: String,
        expected_kind: String,
    },
    /// Fields a `PersistentChatPool` does not have, most likely misspelt. The API server would
    /// drop them silently; file mode refuses them, so that a misspelt `suspend` or
    /// `approveOverwrite` cannot pass unnoticed.
    #[error(
        "the manifest has fields a PersistentChatPool does not have (misspelt?): {}",
        .paths.join(", ")
    )]
    UnknownFields {
        /// Each unknown field's path, e.g. `spec.failover.alowDataLoss`.
        paths: Vec<String>,
    },
    /// Durations the schema does not admit (not Go duration text, a negative one, or a number
    /// too large for the clock), refused before they are converted: a value such as
    /// `99999999999999999999h` does not fit a `std::time::Duration`.
    #[error(
        "{}: not a duration the operator accepts (Go duration text such as 90s, 5m or 1h30m, \
         each number at most six digits)",
        .paths.join(", ")
    )]
    BadDurations {
        /// Each field's path and value, e.g. `spec.failover.unreachableAfter = "99999999h"`.
        paths: Vec<String>,
    },
}

/// The type identity of a manifest. The derived `PersistentChatPool` ignores `apiVersion` and
/// `kind` when it deserializes, so they are read on their own first.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypeMeta {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
}

fn parse<'de, T: serde::Deserialize<'de>>(text: &'de str) -> Result<T, LoadError> {
    serde_saphyr::from_str(text).map_err(|source| {
        let location = source.location();
        LoadError::Yaml {
            line: location.map(|l| l.line()),
            column: location.map(|l| l.column()),
            source: Box::new(source),
        }
    })
}

/// Parses one full `PersistentChatPool` manifest (`apiVersion`, `kind`, `metadata`, `spec`).
pub fn load_pool_yaml(text: &str) -> Result<PersistentChatPool, LoadError> {
    let type_meta: TypeMeta = parse(text)?;
    let expected_api_version = PersistentChatPool::api_version(&()).into_owned();
    let expected_kind = PersistentChatPool::kind(&()).into_owned();
    if type_meta.api_version != expected_api_version || type_meta.kind != expected_kind {
        return Err(LoadError::WrongKind {
            found_api_version: type_meta.api_version,
            found_kind: type_meta.kind,
            expected_api_version,
            expected_kind,
        });
    }
    let raw: Value = parse(text)?;
    let checked = check_against_schema(&raw);
    if !checked.unknown.is_empty() {
        return Err(LoadError::UnknownFields {
            paths: checked.unknown,
        });
    }
    if !checked.bad_durations.is_empty() {
        return Err(LoadError::BadDurations {
            paths: checked.bad_durations,
        });
    }
    parse(text)
}

/// What the walk over a manifest and the CRD's schema found.
#[derive(Default)]
struct SchemaCheck {
    /// Fields the schema does not declare.
    unknown: Vec<String>,
    /// Duration fields whose text the schema's pattern refuses, with their values.
    bad_durations: Vec<String>,
}

/// The fields in `manifest` that the CRD's schema does not declare, and the duration fields it
/// refuses.
fn check_against_schema(manifest: &Value) -> SchemaCheck {
    let crd = PersistentChatPool::crd();
    let schema = crd
        .spec
        .versions
        .first()
        .and_then(|v| v.schema.as_ref())
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .and_then(|s| serde_json::to_value(s).ok());
    let mut out = SchemaCheck::default();
    let (Some(schema), Some(fields)) = (schema, manifest.as_object()) else {
        return out;
    };
    for (key, value) in fields {
        // The generated schema leaves out the fields every Kubernetes object has.
        if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        match schema.get("properties").and_then(|p| p.get(key)) {
            Some(child_schema) => walk(child_schema, value, key, &mut out),
            None => out.unknown.push(key.clone()),
        }
    }
    out
}

fn walk(schema: &Value, value: &Value, path: &str, out: &mut SchemaCheck) {
    match value {
        Value::String(text)
            if schema.get("pattern").and_then(Value::as_str) == Some(patterns::DURATION)
                && !patterns::COMPILED.duration.is_match(text) =>
        {
            out.bad_durations.push(format!("{path} = {text:?}"));
        }
        Value::Object(fields) => {
            // An object schema without `properties` (such as `metadata`) takes any field.
            let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
                return;
            };
            for (key, child) in fields {
                let child_path = format!("{path}.{key}");
                match properties.get(key) {
                    Some(child_schema) => walk(child_schema, child, &child_path, out),
                    None => out.unknown.push(child_path),
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    walk(item_schema, item, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}
