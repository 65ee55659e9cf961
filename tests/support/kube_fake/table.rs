//! `as=Table` answers for kubectl get: Name, the CRD's additionalPrinterColumns (simple
//! JSONPath: `.a.b`, `.a[0]`, `.a[?(@.k=="v")].b`), and Age.

use serde_json::{Value, json};

use super::resources::ResourceInfo;

fn age(timestamp: &str) -> String {
    let Ok(then) = chrono::DateTime::parse_from_rfc3339(timestamp) else {
        return "<unknown>".into();
    };
    let secs = (chrono::Utc::now() - then.with_timezone(&chrono::Utc))
        .num_seconds()
        .max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// Evaluates the small JSONPath subset printer columns use; None when absent.
pub fn json_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let mut current = obj;
    let mut rest = path.trim_start_matches('.');
    while !rest.is_empty() {
        let end = rest.find(['.', '[']).unwrap_or(rest.len());
        let (key, tail) = rest.split_at(end);
        if !key.is_empty() {
            current = current.get(key)?;
        }
        rest = tail;
        if let Some(inner) = rest.strip_prefix('[') {
            let close = inner.find(']')?;
            let selector = &inner[..close];
            rest = &inner[close + 1..];
            current = if let Some(filter) = selector
                .strip_prefix("?(@.")
                .and_then(|f| f.strip_suffix(')'))
            {
                let (field, want) = filter.split_once("==")?;
                let want = want.trim_matches(|c| c == '"' || c == '\'');
                current
                    .as_array()?
                    .iter()
                    .find(|item| item.get(field).and_then(Value::as_str) == Some(want))?
            } else {
                current.get(selector.parse::<usize>().ok()?)?
            };
        }
        rest = rest.trim_start_matches('.');
    }
    Some(current)
}

fn cell(value: Option<&Value>, column_type: &str) -> Value {
    match value {
        None | Some(Value::Null) => Value::Null,
        Some(Value::String(s)) if column_type == "date" => json!(age(s)),
        Some(v) => v.clone(),
    }
}

pub fn table(res: &ResourceInfo, items: &[Value], resource_version: &str) -> Value {
    let mut columns = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0}),
    ];
    let printer: Vec<(String, String, String)> = res
        .printer_columns
        .iter()
        .filter_map(|c| {
            Some((
                c.get("name")?.as_str()?.to_string(),
                c.get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("string")
                    .to_string(),
                c.get("jsonPath")?.as_str()?.to_string(),
            ))
        })
        .collect();
    let has_age = printer.iter().any(|(n, _, _)| n == "Age");
    for (name, column_type, _) in &printer {
        columns.push(json!({"name": name, "type": column_type, "format": "", "description": "", "priority": 0}));
    }
    if !has_age {
        columns.push(
            json!({"name": "Age", "type": "date", "format": "", "description": "", "priority": 0}),
        );
    }
    let rows: Vec<Value> = items
        .iter()
        .map(|obj| {
            let mut cells = vec![
                obj.pointer("/metadata/name")
                    .cloned()
                    .unwrap_or(Value::Null),
            ];
            for (_, column_type, path) in &printer {
                cells.push(cell(json_path(obj, path), column_type));
            }
            if !has_age {
                cells.push(cell(obj.pointer("/metadata/creationTimestamp"), "date"));
            }
            json!({
                "cells": cells,
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
                },
            })
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": columns,
        "rows": rows,
    })
}
