//! The `plan` command's output: a table for people, JSON for programs.

use serde_json::json;

use super::{Decision, Projection};

/// One row per step: #, step, site, instance, database, what it will do, T-SQL class; then the end.
pub fn table(p: &Projection) -> String {
    let header = [
        "#",
        "STEP",
        "SITE",
        "INSTANCE",
        "DATABASE",
        "WHAT IT WILL DO",
        "T-SQL",
    ];
    let rows: Vec<[String; 7]> = p
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            [
                (i + 1).to_string(),
                s.name().to_string(),
                s.site().to_string(),
                s.instances().join(", "),
                match s.databases().join(", ") {
                    d if d.is_empty() => "-".to_string(),
                    d => d,
                },
                s.describe(),
                s.tsql_class().to_string(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = String::new();
    if !rows.is_empty() {
        out.push_str(&line(&header.map(String::from)));
        for r in &rows {
            out.push_str(&line(r));
        }
    }
    out.push_str(&format!("end: {}\n", end_text(&p.end)));
    out
}

/// The end of a plan in words.
pub fn end_text(d: &Decision) -> String {
    match d {
        Decision::Step(s) => format!(
            "plan truncated at {} steps; next: {}",
            super::PROJECTION_LIMIT,
            s.name()
        ),
        other => other.to_string(),
    }
}

/// The same content as JSON.
pub fn json(p: &Projection) -> serde_json::Value {
    let steps: Vec<_> = p
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            json!({
                "index": i + 1,
                "step": s.name(),
                "site": s.site(),
                "instances": s.instances(),
                "databases": s.databases(),
                "description": s.describe(),
                "tsqlClass": s.tsql_class(),
                "detail": s,
            })
        })
        .collect();
    let (kind, reason) = match &p.end {
        Decision::Converged => ("Converged", None),
        Decision::Step(_) => ("Truncated", Some(end_text(&p.end))),
        Decision::Wait(w) => ("Wait", Some(w.to_string())),
        Decision::Blocked(b) => ("Blocked", Some(b.to_string())),
    };
    json!({
        "steps": steps,
        "end": { "kind": kind, "reason": reason, "detail": p.end },
    })
}
