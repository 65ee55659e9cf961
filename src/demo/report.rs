//! The demo's printed summary: the timeline, the accounting of each act and the figures.

use std::fmt::Write as _;
use std::time::Duration;

use super::DemoRun;
use super::acts::ActOutcome;
use super::figures::{act_timings, ratio};
use super::world::StepRecord;

pub(crate) fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

/// The summary as text.
pub fn summary(run: &DemoRun) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "timeline (one line per step the engine ran)");
    let _ = writeln!(
        out,
        "{:<4} {:<30} {:<8} {:>9} {:>6} {:>6} {:>10}",
        "act", "step", "site", "duration", "stmts", "writes", "sim-lat"
    );
    for s in &run.world_steps {
        let _ = writeln!(
            out,
            "{:<4} {:<30} {:<8} {:>9} {:>6} {:>6} {:>10}{}",
            s.act,
            step_label(&s.step),
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

/// The step's name; a publish of an empty list is the drain.
pub(crate) fn step_label(step: &pchat_core::plan::Step) -> String {
    if step.is_drain() {
        format!("{} (drain)", step.name())
    } else {
        step.name().to_string()
    }
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
    if let Some(line) = messages_line(act, "act") {
        let _ = writeln!(out, "{line}");
    }
    for p in &act.problems {
        let _ = writeln!(out, "  FAILED: {p}");
    }
}

/// The act's message accounting, `during` naming the stretch (`act`, `scenario`).
pub(crate) fn messages_line(act: &ActOutcome, during: &str) -> Option<String> {
    let a = act.accounting.as_ref()?;
    Some(format!(
        "  messages: {} acknowledged in the {during}; of all {} acknowledged so far, {} present on {}, {} lost{}",
        act.acknowledged_in_act,
        a.acknowledged,
        a.present,
        act.serving.as_deref().unwrap_or("?"),
        a.lost.len(),
        match (act.loss_window_start, act.previously_lost) {
            (Some(_), _) if act.problems.is_empty() && !a.lost.is_empty() => {
                ", every one acknowledged inside the reported window".to_string()
            }
            (None, n) if n > 0 => format!(" (besides {n} lost in act 4 inside its window)"),
            _ => String::new(),
        }
    ))
}

fn write_figures(out: &mut String, run: &DemoRun) {
    let _ = writeln!(out);
    let _ = writeln!(out, "figures");
    let t = &run.transport;
    let _ = writeln!(
        out,
        "  transport: spec.tls.encrypt {:?}, certificates verified against the simulator's CA; {} of the operator's {} statements came over TLS-encrypted connections (as the simulator saw them)",
        t.encrypt, t.encrypted, t.statements
    );
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
        let n = act.number;
        let t = act_timings(act, &run.world_steps);
        let _ = writeln!(
            out,
            "  act {n} {}: SQL critical path {} against {} of simulator latency (ratio {}); act wall time {:.1}s",
            act.title,
            ms(t.whole.sql),
            ms(t.whole.latency),
            ratio_text(t.whole.sql, t.whole.latency),
            act.wall.as_secs_f64()
        );
        if let Some(sw) = t.switch {
            let _ = writeln!(
                out,
                "  act {n} switch (drain to publish, {} steps): wall time {} against {} of simulator latency (ratio {}); SQL time {} (ratio {})",
                sw.steps,
                ms(sw.wall),
                ms(sw.path.latency),
                ratio_text(sw.wall, sw.path.latency),
                ms(sw.path.sql),
                ratio_text(sw.path.sql, sw.path.latency)
            );
            if let Some(f) = t.from_first_sql {
                let _ = writeln!(
                    out,
                    "  act {n} switch from its first SQL statement to publish ({} steps): wall time {} against {} of simulator latency (ratio {}); the drain before it took {}",
                    f.steps,
                    ms(f.wall),
                    ms(f.latency),
                    ratio_text(f.wall, f.latency),
                    ms(f.drain)
                );
                let _ = writeln!(
                    out,
                    "    of which statements {}, the engine's passes before the next steps {} ({} passes, each observing every instance, planning and assembling status: {:.1} ms a pass), the rest {}",
                    ms(f.statements),
                    ms(f.engine),
                    f.passes,
                    (f.engine / f.passes.max(1) as u32).as_secs_f64() * 1e3,
                    ms(f.rest)
                );
            }
            let _ = writeln!(
                out,
                "  act {n}: chat write outage {} beside the switch's SQL critical path {} (ratio {})",
                act.write_outage().map(ms).unwrap_or_else(|| "n/a".into()),
                ms(sw.path.sql),
                act.write_outage()
                    .and_then(|o| ratio(o, sw.path.sql))
                    .map(|r| format!("{r:.2}"))
                    .unwrap_or_else(|| "n/a".into())
            );
        }
        if act.spec_changed.is_some() {
            let _ = writeln!(
                out,
                "  act {n}: spec change -> first step {}, -> first SQL write {} (after the drain)",
                t.spec_to_first_step
                    .map(ms)
                    .unwrap_or_else(|| "none".into()),
                t.spec_to_first_sql.map(ms).unwrap_or_else(|| "none".into()),
            );
        }
    }
}

fn ratio_text(a: Duration, b: Duration) -> String {
    ratio(a, b).map_or_else(|| "n/a".to_string(), |r| format!("{r:.2}"))
}

/// Print the summary on stdout.
pub fn print_summary(run: &DemoRun) {
    print!("{}", summary(run));
}
