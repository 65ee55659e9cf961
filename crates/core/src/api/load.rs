//! Reading a `PersistentChatPool` manifest from YAML text (file mode, tests, examples).
//! Reading does not validate the spec: see [`super::validate`].

use kube::{CustomResourceExt, Resource};
use serde_json::Value;

use super::patterns;
use super::spec::PersistentChatPool;
use crate::Error;

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

fn parse<'de, T: serde::Deserialize<'de>>(text: &'de str) -> Result<T, Error> {
    serde_saphyr::from_str(text).map_err(|source| {
        let location = source.location();
        Error::Yaml {
            line: location.map(|l| l.line()),
            column: location.map(|l| l.column()),
            source: Box::new(source),
        }
    })
}

/// Parses one full `PersistentChatPool` manifest (`apiVersion`, `kind`, `metadata`, `spec`).
pub fn load_pool_yaml(text: &str) -> Result<PersistentChatPool, Error> {
    let type_meta: TypeMeta = parse(text)?;
    let expected_api_version = PersistentChatPool::api_version(&()).into_owned();
    let expected_kind = PersistentChatPool::kind(&()).into_owned();
    if type_meta.api_version != expected_api_version || type_meta.kind != expected_kind {
        return Err(Error::WrongKind {
            found_api_version: type_meta.api_version,
            found_kind: type_meta.kind,
            expected_api_version,
            expected_kind,
        });
    }
    let raw: Value = parse(text)?;
    let checked = check_against_schema(&raw);
    if !checked.unknown.is_empty() {
        return Err(Error::UnknownFields {
            paths: checked.unknown,
        });
    }
    if !checked.bad_durations.is_empty() {
        return Err(Error::BadDurations {
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
/// The CRD's OpenAPI schema as JSON, generated once: local mode loads the manifest on every
/// pass, and generating the schema costs more than the rest of the load.
static SCHEMA: std::sync::LazyLock<Option<Value>> = std::sync::LazyLock::new(|| {
    PersistentChatPool::crd()
        .spec
        .versions
        .first()
        .and_then(|v| v.schema.as_ref())
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .and_then(|s| serde_json::to_value(s).ok())
});

fn check_against_schema(manifest: &Value) -> SchemaCheck {
    let mut out = SchemaCheck::default();
    let (Some(schema), Some(fields)) = (SCHEMA.as_ref(), manifest.as_object()) else {
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
