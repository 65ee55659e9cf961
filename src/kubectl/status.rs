//! `kubectl pchat status NAME`: the pool's status as a person reads it.

use std::fmt::Write as _;

use jiff::Timestamp;
use pchat_core::api::{PersistentChatPool, PersistentChatPoolStatus};

/// Whole seconds as people write them (`45s`, `5m`, `1h 30m`).
pub(crate) fn friendly_seconds(secs: u64) -> String {
    format!(
        "{:#}",
        jiff::SignedDuration::from_secs(i64::try_from(secs).unwrap_or(i64::MAX))
    )
}

/// How long ago `at` was, in whole units (`12s`, `3m 4s`).
fn ago(at: Timestamp, now: Timestamp) -> String {
    let secs = now.duration_since(at).as_secs().max(0);
    format!("{} ago", friendly_seconds(secs.unsigned_abs()))
}

/// The status of `pool` at `now`, one topic a line, then its conditions and instances.
pub fn render(pool: &PersistentChatPool, now: Timestamp) -> String {
    let mut out = String::new();
    let name = pool.metadata.name.as_deref().unwrap_or("?");
    let namespace = pool.metadata.namespace.as_deref().unwrap_or("?");
    let Some(status) = &pool.status else {
        let _ = writeln!(
            out,
            "PersistentChatPool {namespace}/{name}: no status yet (is the operator running and watching this namespace?)"
        );
        return out;
    };
    let generation = pool.metadata.generation.unwrap_or(0);
    let _ = writeln!(
        out,
        "PersistentChatPool {namespace}/{name}: generation {generation}, status of generation {}{}",
        status
            .observed_generation
            .map_or_else(|| "none".to_string(), |g| g.to_string()),
        if status.observed_generation == Some(generation) {
            ""
        } else {
            " (the operator has not acted on the latest spec yet)"
        }
    );
    let field = |label: &str, value: String| format!("{label:<18}{value}\n");
    out.push_str(&field(
        "serving site:",
        format!(
            "{} (spec.primarySite {}), phase {}, pool state {}",
            status.serving_site.as_deref().unwrap_or("none"),
            pool.spec.primary_site,
            status
                .phase
                .map_or_else(|| "unknown".to_string(), |p| format!("{p:?}")),
            status
                .pool_state
                .map_or_else(|| "unknown".to_string(), |p| format!("{p:?}")),
        ),
    ));
    out.push_str(&field(
        "active servers:",
        if status.active_servers.is_empty() {
            "none published".to_string()
        } else {
            status.active_servers.join(", ")
        },
    ));
    out.push_str(&field("step:", step(status, now)));
    if let Some(waiting) = &status.waiting_for {
        out.push_str(&field(
            "waiting for:",
            format!(
                "{waiting}{}",
                status
                    .waiting_since
                    .map(|t| format!(" (since {})", ago(t, now)))
                    .unwrap_or_default()
            ),
        ));
    }
    out.push_str(&field("lag:", lag(status)));
    out.push_str(&field("last transition:", transition(status, now)));
    out.push_str(&field("data-loss window:", loss(status)));
    let _ = writeln!(out, "conditions:");
    let rows: Vec<[String; 5]> = status
        .conditions
        .iter()
        .map(|c| {
            [
                c.type_.clone(),
                c.status.clone(),
                c.reason.clone(),
                ago(c.last_transition_time.0, now),
                c.message.clone(),
            ]
        })
        .collect();
    table(
        &mut out,
        ["TYPE", "STATUS", "REASON", "SINCE", "MESSAGE"],
        &rows,
    );
    let _ = writeln!(out, "instances:");
    let rows: Vec<[String; 4]> = status
        .instances
        .iter()
        .map(|i| {
            [
                i.name.clone(),
                i.site.clone(),
                if i.reachable {
                    "yes".to_string()
                } else {
                    format!("no: {}", i.reason.as_deref().unwrap_or("unreachable"))
                },
                i.databases
                    .iter()
                    .map(|d| {
                        let role = d
                            .mirroring_role
                            .as_deref()
                            .map(|r| format!(" {}", r.to_lowercase()))
                            .unwrap_or_default();
                        format!("{} {}{role}", d.name, d.state)
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
            ]
        })
        .collect();
    table(&mut out, ["NAME", "SITE", "REACHABLE", "DATABASES"], &rows);
    for salvage in &status.salvage_backups {
        let _ = writeln!(
            out,
            "salvage backup:  {} of {} on {} ({}): {}",
            salvage.database,
            salvage.site,
            salvage.instance,
            ago(salvage.taken_at, now),
            salvage.file
        );
    }
    out
}

fn step(status: &PersistentChatPoolStatus, now: Timestamp) -> String {
    let Some(step) = &status.step else {
        return "none in progress".to_string();
    };
    let mut text = format!("{}/{} {}", step.index, step.total, step.name);
    if let Some(site) = &step.site {
        let _ = write!(text, " on {site}");
    }
    if let Some(started) = step.started_at {
        let _ = write!(text, ", started {}", ago(started, now));
    }
    if let Some(p) = &step.progress {
        let _ = write!(
            text,
            ", {} {}% on {}",
            p.command, p.percent_complete, p.instance
        );
    }
    if !step.detail.is_empty() {
        let _ = write!(text, ": {}", step.detail);
    }
    text
}

fn lag(status: &PersistentChatPoolStatus) -> String {
    let Some(p) = &status.protection else {
        return "unknown (no protection reported)".to_string();
    };
    let mut parts = Vec::new();
    if let Some(secs) = p.restore_latency_seconds {
        parts.push(format!("log shipping {} behind", friendly_seconds(secs)));
    }
    if let Some(f) = &p.last_backup_file {
        parts.push(format!("last log backup {f}"));
    }
    if let Some(f) = &p.last_restored_file {
        parts.push(format!("last restored {f}"));
    }
    if parts.is_empty() {
        "unknown".to_string()
    } else {
        parts.join("; ")
    }
}

fn transition(status: &PersistentChatPoolStatus, now: Timestamp) -> String {
    let Some(t) = &status.transition else {
        return "none".to_string();
    };
    let when = match t.completed_at {
        Some(done) => format!(
            "completed {} after {:#}",
            ago(done, now),
            jiff::SignedDuration::from_millis(done.duration_since(t.started_at).as_millis() as i64)
        ),
        None => format!("in progress since {}", ago(t.started_at, now)),
    };
    format!("{} -> {} {:?}, {when}", t.from, t.to, t.kind)
}

fn loss(status: &PersistentChatPoolStatus) -> String {
    match status
        .transition
        .as_ref()
        .and_then(|t| t.data_loss.as_ref())
    {
        Some(d) => format!(
            "{} (last restored log backup: {})",
            friendly_seconds(d.estimated_seconds),
            d.last_restored_file.as_deref().unwrap_or("none")
        ),
        None => "none reported".to_string(),
    }
}

/// Rows under a header, columns padded to their widest cell; the last column is not padded.
fn table<const N: usize>(out: &mut String, header: [&str; N], rows: &[[String; N]]) {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut line = |cells: Vec<&str>| {
        let mut text = String::from("  ");
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == N {
                text.push_str(cell);
            } else {
                let _ = write!(text, "{cell:<w$}  ");
            }
        }
        let _ = writeln!(out, "{}", text.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_without_status_says_the_operator_has_not_written_one() {
        let mut pool =
            pchat_core::api::load_pool_yaml(include_str!("../../examples/pool.yaml")).unwrap();
        pool.metadata.namespace = Some("chat".into());
        let text = render(&pool, Timestamp::now());
        assert!(text.contains("chat/atl-cs-001: no status yet"), "{text}");
    }

    #[test]
    fn the_status_shows_serving_site_step_transition_loss_and_conditions() {
        let mut pool =
            pchat_core::api::load_pool_yaml(include_str!("../../examples/pool.yaml")).unwrap();
        pool.metadata.namespace = Some("chat".into());
        pool.metadata.generation = Some(4);
        let status: PersistentChatPoolStatus = serde_json::from_value(serde_json::json!({
            "observedGeneration": 4,
            "servingSite": "dallas",
            "phase": "FailingOver",
            "step": {"name": "Recover", "site": "dallas", "index": 3, "total": 5,
                     "startedAt": "2026-12-04T10:00:00Z", "detail": "",
                     "progress": {"instance": "dal-sql1", "command": "RESTORE DATABASE",
                                  "percentComplete": 45, "reportedAt": "2026-12-04T10:00:05Z"}},
            "transition": {"from": "atlanta", "to": "dallas", "kind": "Forced",
                           "startedAt": "2026-12-04T09:59:00Z",
                           "dataLoss": {"estimatedSeconds": 95, "lastRestoredFile": "x.trn"}},
            "conditions": [{"type": "Ready", "status": "False", "reason": "FailingOver",
                            "message": "failing over", "lastTransitionTime": "2026-12-04T09:59:00Z"}]
        }))
        .expect("a status");
        pool.status = Some(status);
        let now: Timestamp = "2026-12-04T10:00:10Z".parse().unwrap();
        let text = render(&pool, now);
        assert!(
            text.contains("serving site:     dallas (spec.primarySite atlanta)"),
            "{text}"
        );
        assert!(
            text.contains("step:             3/5 Recover on dallas, started 10s ago, RESTORE DATABASE 45% on dal-sql1"),
            "{text}"
        );
        assert!(
            text.contains("atlanta -> dallas Forced, in progress since 1m 10s ago"),
            "{text}"
        );
        assert!(
            text.contains("data-loss window: 1m 35s (last restored log backup: x.trn)"),
            "{text}"
        );
        assert!(
            text.contains("Ready  False   FailingOver  1m 10s ago  failing over"),
            "{text}"
        );
    }
}
