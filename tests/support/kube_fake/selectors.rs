//! Label selectors (`k=v`, `k==v`, `k!=v`, `k`, `!k`, comma-separated; no set-based `in`/`notin`)
//! and field selectors (`=`, `==`, `!=` on any dotted field path, e.g. `metadata.name` or
//! `involvedObject.uid`; a real server accepts only per-kind field labels, which are a subset).

use serde_json::Value;

#[derive(Clone, Debug)]
enum Req {
    Eq(String, String),
    Ne(String, String),
    Exists(String),
    Absent(String),
}

/// A parsed selector; the empty selector matches everything.
#[derive(Clone, Debug, Default)]
pub struct Selector {
    labels: Vec<Req>,
    fields: Vec<Req>,
}

fn parse_terms(text: &str, what: &str) -> Result<Vec<Req>, String> {
    let mut out = Vec::new();
    for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        if term.contains(" in ") || term.contains(" notin ") || term.contains('(') {
            return Err(format!(
                "{what} \"{term}\": set-based requirements are not supported by this fake"
            ));
        }
        let req = if let Some((k, v)) = term.split_once("!=") {
            Req::Ne(k.trim().into(), v.trim().into())
        } else if let Some((k, v)) = term.split_once("==") {
            Req::Eq(k.trim().into(), v.trim().into())
        } else if let Some((k, v)) = term.split_once('=') {
            Req::Eq(k.trim().into(), v.trim().into())
        } else if let Some(k) = term.strip_prefix('!') {
            Req::Absent(k.trim().into())
        } else {
            Req::Exists(term.into())
        };
        out.push(req);
    }
    Ok(out)
}

impl Selector {
    pub fn parse(
        label_selector: Option<&str>,
        field_selector: Option<&str>,
    ) -> Result<Self, String> {
        let labels = parse_terms(label_selector.unwrap_or(""), "labelSelector")?;
        let fields = parse_terms(field_selector.unwrap_or(""), "fieldSelector")?;
        for f in &fields {
            let key = match f {
                Req::Eq(k, _) | Req::Ne(k, _) => k,
                Req::Exists(k) | Req::Absent(k) => {
                    return Err(format!(
                        "fieldSelector \"{k}\": a field selector needs = or !="
                    ));
                }
            };
            if key.is_empty() || key.split('.').any(str::is_empty) {
                return Err(format!("fieldSelector \"{key}\": not a field path"));
            }
        }
        Ok(Selector { labels, fields })
    }

    pub fn matches(&self, obj: &Value) -> bool {
        let label = |k: &str| {
            obj.pointer("/metadata/labels")
                .and_then(|l| l.get(k))
                .and_then(Value::as_str)
        };
        // Absent fields compare as "", as in a real server's field sets.
        let field = |k: &str| -> String {
            match k.split('.').try_fold(obj, |v, part| v.get(part)) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            }
        };
        self.labels.iter().all(|r| match r {
            Req::Eq(k, v) => label(k) == Some(v.as_str()),
            Req::Ne(k, v) => label(k) != Some(v.as_str()),
            Req::Exists(k) => label(k).is_some(),
            Req::Absent(k) => label(k).is_none(),
        }) && self.fields.iter().all(|r| match r {
            Req::Eq(k, v) => field(k) == *v,
            Req::Ne(k, v) => field(k) != *v,
            Req::Exists(_) | Req::Absent(_) => false,
        })
    }
}
