//! The drill's printed report: the copy it ran on, then per scenario the steps in order with
//! the T-SQL each sent, the SQL critical path, the chat write outage, the data-loss window or
//! the policy's refusal, and a verdict line; a result line at the end.

use std::fmt::Write as _;
use std::time::Duration;

use super::{Drill, Scenario, Verdict};
use crate::demo::figures::{act_timings, ratio};
use crate::demo::report::{ms, step_label};
use crate::demo::world::{LATENCY_MS, StepRecord};
use crate::kubectl::friendly_seconds;
use pchat_sql::statements::{ParamValue, Statement};

/// A duration as people write it (`5m`, `1h 30m`, `45s`).
pub(super) fn friendly(d: Duration) -> String {
    crate::kubectl::friendly_seconds(d.as_secs())
}

/// `secs` of drill time and what they stand for at the pool's own intervals. One sample: the
/// window depends on where in the log backup and copy jobs' schedules the site fell.
fn scaled(secs: u64, scale: u32) -> String {
    if scale <= 1 {
        return friendly_seconds(secs);
    }
    format!(
        "{} in the drill, about {} at the pool's intervals (one sample: it depends on where in \
         the log backup and copy schedules the site falls)",
        friendly_seconds(secs),
        friendly_seconds(secs * u64::from(scale))
    )
}

/// The whole report.
pub fn render(drill: &Drill) -> String {
    let mut out = String::new();
    write_header(&mut out, drill);
    let prep = &drill.preparation;
    let _ = writeln!(
        out,
        "preparation: {} ({:.1}s)",
        prep.title,
        prep.wall.as_secs_f64()
    );
    for p in &prep.problems {
        let _ = writeln!(out, "  FAILED: {p}");
    }
    for scenario in &drill.scenarios {
        let _ = writeln!(out);
        write_scenario(&mut out, scenario, drill.compressed.scale);
    }
    let _ = writeln!(out);
    let refused = drill
        .scenarios
        .iter()
        .filter(|s| matches!(s.verdict(), Verdict::Refused(_)))
        .count();
    if drill.passed() {
        let _ = writeln!(
            out,
            "result: PASSED: {} scenarios in {:.1}s: {} converged without losing an acknowledged message outside a reported window{}",
            drill.scenarios.len(),
            drill.wall.as_secs_f64(),
            drill.scenarios.len() - refused,
            if refused > 0 {
                format!(", {refused} refused by the pool's policy as configured")
            } else {
                String::new()
            }
        );
    } else {
        let ran = drill.scenarios.len();
        let _ = writeln!(
            out,
            "result: FAILED: {} of {} scenarios ran{}",
            ran,
            super::SCENARIOS,
            if drill.preparation.problems.is_empty() {
                ""
            } else {
                " (the copy could not be bootstrapped)"
            }
        );
    }
    out
}

fn write_header(out: &mut String, drill: &Drill) {
    let spec = &drill.spec;
    let instances: usize = spec.sites.iter().map(|s| s.instances.len()).sum();
    let sites: Vec<&str> = spec.sites.iter().map(|s| s.name.as_str()).collect();
    let servers: usize = spec.sites.iter().map(|s| s.chat_servers.len()).sum();
    let _ = writeln!(
        out,
        "drill of pool {}: {instances} instances on sites {}, databases {}; a simulated copy on loopback, nothing is sent to the pool's instances",
        drill.pool,
        sites.join(" and "),
        spec.databases.names().collect::<Vec<_>>().join(" and "),
    );
    let c = &drill.compressed;
    let fields: Vec<String> = c
        .fields
        .iter()
        .map(|(name, pool, copy)| format!("{name} {pool} -> {copy}"))
        .collect();
    let _ = writeln!(
        out,
        "time runs {}x faster than the pool's: {}",
        c.scale,
        fields.join(", ")
    );
    if c.resumed {
        let _ = writeln!(
            out,
            "the pool is suspended (spec.suspend: true) and the operator does nothing for it; the drill rehearses it as if resumed"
        );
    }
    let latencies: Vec<String> = LATENCY_MS
        .iter()
        .map(|(kind, ms)| format!("{kind:?} {ms} ms"))
        .collect();
    let _ = writeln!(
        out,
        "SQL statements take the simulator's times ({}): a real server's BACKUP and RESTORE take as long as the log they carry",
        latencies.join(", ")
    );
    let _ = writeln!(
        out,
        "chat workload: {servers} chat servers, the published ones writing {} messages a second each",
        drill.rate_per_server
    );
    let _ = writeln!(
        out,
        "policy: allowDataLoss {}, maxDataLoss {}",
        spec.failover.allow_data_loss,
        friendly(spec.failover.max_data_loss.into())
    );
    let _ = writeln!(out);
}

fn write_scenario(out: &mut String, scenario: &Scenario, scale: u32) {
    let act = &scenario.act;
    let _ = writeln!(
        out,
        "scenario {}: {} ({} steps, {:.1}s)",
        act.number,
        act.title,
        scenario.steps.len(),
        act.wall.as_secs_f64()
    );
    for (i, step) in scenario.steps.iter().enumerate() {
        write_step(out, i + 1, step);
    }
    for note in &act.notes {
        let _ = writeln!(out, "  {note}");
    }
    let timings = act_timings(act, &scenario.steps);
    let path = timings.switch.map_or(timings.whole, |s| s.path);
    if !scenario.steps.is_empty() {
        let _ = writeln!(
            out,
            "  predicted SQL critical path: {} ({} of it the simulator's statement times)",
            ms(path.sql),
            ms(path.latency)
        );
    }
    match (&scenario.verdict(), act.write_outage()) {
        (Verdict::Refused(_), _) => {
            let _ = writeln!(
                out,
                "  chat writes stopped when the site went down and do not resume until it returns or the policy allows the failover"
            );
        }
        (_, Some(outage)) => {
            let _ = writeln!(
                out,
                "  predicted chat write outage: {}{}",
                ms(outage),
                ratio(outage, path.sql)
                    .filter(|_| act.planned)
                    .map(|r| format!(" ({r:.2} x the SQL critical path)"))
                    .unwrap_or_default()
            );
        }
        (_, None) => {}
    }
    if let Some(loss) = &act.loss_after {
        let _ = writeln!(
            out,
            "  data-loss window of the forced failover: {}",
            scaled(loss.estimated_seconds, scale)
        );
    }
    if let Some(line) = crate::demo::report::messages_line(act, "scenario") {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out, "  verdict: {}", verdict_text(scenario, scale));
}

fn verdict_text(scenario: &Scenario, scale: u32) -> String {
    let act = &scenario.act;
    match &scenario.verdict() {
        Verdict::Passed => format!(
            "PASSED: serving from {} after {:.1}s, {}",
            act.serving.as_deref().unwrap_or("?"),
            act.wall.as_secs_f64(),
            if act.planned {
                "no acknowledged message lost".to_string()
            } else {
                "nothing acknowledged before the reported window lost".to_string()
            }
        ),
        Verdict::Refused(reason) => format!(
            "REFUSED by the pool's policy, as configured: {reason}{}",
            act.loss_before
                .as_ref()
                .map(|d| format!(
                    "; a failover now would lose up to {}",
                    scaled(d.estimated_seconds, scale)
                ))
                .unwrap_or_default()
        ),
        Verdict::Failed(problems) => format!("FAILED: {}", problems.join("; ")),
    }
}

fn write_step(out: &mut String, number: usize, step: &StepRecord) {
    let label = step_label(&step.step);
    let _ = writeln!(
        out,
        "  {number:>2}. {label} [{}]: {}, {} statement{}{}",
        step.step.site(),
        ms(step.elapsed),
        step.statements_sent,
        if step.statements_sent == 1 { "" } else { "s" },
        step.error
            .as_ref()
            .map(|e| format!(", failed: {e}"))
            .unwrap_or_default()
    );
    for statement in &step.statements {
        write_statement(out, statement);
    }
}

fn write_statement(out: &mut String, statement: &Statement) {
    let _ = writeln!(
        out,
        "        -- on {}: {}",
        statement.instance, statement.purpose
    );
    for line in statement.sql.lines() {
        let _ = writeln!(out, "        {line}");
    }
    for (name, value) in &statement.params {
        let value = match value {
            ParamValue::Text(t) => pchat_sql::quote::nstring(t),
            ParamValue::Int(i) => i.to_string(),
        };
        let _ = writeln!(out, "        --   {name} = {value}");
    }
}
