//! The demo's printed summary: the timeline, the accounting of each act and the figures.

use std::fmt::Write as _;
use std::time::Duration;

use super::DemoRun;
use super::acts::ActOutcome;
use super::world::StepRecord;

fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

/// The summary as text.
pub fn summary(run: &DemoRun) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "timeline (one line per step the engine ran)");
    let _ = writeln!(
        out,
        "{:<4} {:<22} {:<8} {:>9} {:>6} {:>6} {:>10}",
        "act", "step", "site", "duration", "stmts", "writes", "sim-lat"
    );
    for s in &run.world_steps {
        let _ = writeln!(
            out,
            "{:<4} {:<22} {:<8} {:>9} {:>6} {:>6} {:>10}{}",
            s.act,
            s.step.name(),
            s.step.site(),
            ms(s.elapsed),
            s.statements_sent,
            s.writes,
            ms(s.latency),
            s.error
                .as_ref()
                .map(|e| format!("  failed: {e}"))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(out);
    for act in &run.acts {
        write_act(&mut out, act, &run.world_steps);
    }
    write_figures(&mut out, run);
    let failures = run.failures();
    if failures.is_empty() {
        let _ = writeln!(
            out,
            "result: OK, {} acts in {:.1}s, no acknowledged message lost outside the reported window, no safety rule broken",
            run.acts.len(),
            run.wall.as_secs_f64()
        );
    } else {
        let _ = writeln!(out, "result: FAILED");
        for f in failures {
            let _ = writeln!(out, "  {f}");
        }
    }
    out
}

fn act_steps(steps: &[StepRecord], act: usize) -> impl Iterator<Item = &StepRecord> {
    steps.iter().filter(move |s| s.act == act)
}

fn write_act(out: &mut String, act: &ActOutcome, steps: &[StepRecord]) {
    let n = act_steps(steps, act.number).count();
    let _ = writeln!(
        out,
        "act {}: {} ({} steps, {:.1}s)",
        act.number,
        act.title,
        n,
        act.wall.as_secs_f64()
    );
    for note in &act.notes {
        let _ = writeln!(out, "  {note}");
    }
    if let Some(a) = &act.accounting {
        let _ = writeln!(
            out,
            "  messages: {} acknowledged in the act; of all {} acknowledged so far, {} present on {}, {} lost",
            act.acknowledged_in_act,
            a.acknowledged,
            a.present,
            act.serving.as_deref().unwrap_or("?"),
            a.lost.len()
        );
    }
    for p in &act.problems {
        let _ = writeln!(out, "  FAILED: {p}");
    }
}

fn write_figures(out: &mut String, run: &DemoRun) {
    let _ = writeln!(out);
    let _ = writeln!(out, "figures");
    match run.converged_passes.last() {
        Some(p) => {
            let max_trips = run
                .converged_passes
                .iter()
                .map(|p| p.round_trips)
                .max()
                .unwrap_or(0);
            let _ = writeln!(
                out,
                "  converged pass: {} SQL round trips for {} reachable instances, {} writes ({} converged passes, at most {} round trips)",
                p.round_trips,
                p.reachable,
                p.writes,
                run.converged_passes.len(),
                max_trips
            );
        }
        None => {
            let _ = writeln!(out, "  converged pass: none observed");
        }
    }
    for act in run.acts.iter().filter(|a| a.number == 2 || a.number == 3) {
        let steps: Vec<&StepRecord> = act_steps(&run.world_steps, act.number).collect();
        let sql: Duration = steps.iter().map(|s| s.elapsed).sum();
        let latency: Duration = steps.iter().map(|s| s.latency).sum();
        let ratio = if latency.is_zero() {
            "n/a".to_string()
        } else {
            format!("{:.2}", sql.as_secs_f64() / latency.as_secs_f64())
        };
        let _ = writeln!(
            out,
            "  act {} {}: SQL critical path {} against {} of simulator latency (ratio {ratio}); act wall time {:.1}s",
            act.number,
            act.title,
            ms(sql),
            ms(latency),
            act.wall.as_secs_f64()
        );
        if let Some(changed) = act.spec_changed {
            let first_step = steps
                .first()
                .map(|s| (s.ended - s.elapsed).saturating_duration_since(changed));
            let first_sql = steps
                .iter()
                .find(|s| s.statements_sent > 0)
                .map(|s| (s.ended - s.elapsed).saturating_duration_since(changed));
            let _ = writeln!(
                out,
                "  act {}: spec change -> first step {}, -> first SQL statement {}",
                act.number,
                first_step.map(ms).unwrap_or_else(|| "none".into()),
                first_sql.map(ms).unwrap_or_else(|| "none".into()),
            );
        }
        let _ = writeln!(
            out,
            "  act {}: chat write outage {} beside SQL critical path {}",
            act.number,
            act.write_outage.map(ms).unwrap_or_else(|| "n/a".into()),
            ms(sql)
        );
    }
}

/// Print the summary on stdout.
pub fn print_summary(run: &DemoRun) {
    print!("{}", summary(run));
}
