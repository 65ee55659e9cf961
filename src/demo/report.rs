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
fn step_label(step: &crate::plan::Step) -> String {
    match step {
        crate::plan::Step::PublishActiveServers { servers, .. } if servers.is_empty() => {
            format!("{} (drain)", step.name())
        }
        _ => step.name().to_string(),
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
    if let Some(a) = &act.accounting {
        let _ = writeln!(
            out,
            "  messages: {} acknowledged in the act; of all {} acknowledged so far, {} present on {}, {} lost{}",
            act.acknowledged_in_act,
            a.acknowledged,
            a.present,
            act.serving.as_deref().unwrap_or("?"),
            a.lost.len(),
            match (act.loss_window_start, act.previously_lost) {
                (Some(_), _) if act.problems.is_empty() => {
                    ", every one acknowledged inside the reported window".to_string()
                }
                (None, n) if n > 0 => format!(" (besides {n} lost in act 4 inside its window)"),
                _ => String::new(),
            }
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
        let n = act.number;
        let whole = Path::of(&steps);
        let _ = writeln!(
            out,
            "  act {n} {}: SQL critical path {} against {} of simulator latency (ratio {}); act wall time {:.1}s",
            act.title,
            ms(whole.sql),
            ms(whole.latency),
            ratio(whole.sql, whole.latency),
            act.wall.as_secs_f64()
        );
        // The switch proper: from the drain to the new site's servers being published.
        let switch = switch_steps(&steps);
        if let (Some(first), Some(last)) = (switch.first(), switch.last()) {
            let p = Path::of(switch);
            let wall = last
                .ended
                .saturating_duration_since(first.ended - first.elapsed);
            let _ = writeln!(
                out,
                "  act {n} switch (drain to publish, {} steps): wall time {} against {} of simulator latency (ratio {}); SQL time {} (ratio {})",
                switch.len(),
                ms(wall),
                ms(p.latency),
                ratio(wall, p.latency),
                ms(p.sql),
                ratio(p.sql, p.latency)
            );
            // The same stretch from its first SQL statement: the drain before it waits on the
            // chat servers, not on SQL Server, and is shown on its own.
            if let Some(first_sql) = switch.iter().position(|s| s.statements_sent > 0) {
                let sql_steps = &switch[first_sql..];
                let start = sql_steps[0].ended - sql_steps[0].elapsed;
                let wall = last.ended.saturating_duration_since(start);
                let latency: Duration = sql_steps.iter().map(|s| s.latency).sum();
                let drain = start.saturating_duration_since(first.ended);
                let _ = writeln!(
                    out,
                    "  act {n} switch from its first SQL statement to publish ({} steps): wall time {} against {} of simulator latency (ratio {}); the drain before it took {}",
                    sql_steps.len(),
                    ms(wall),
                    ms(latency),
                    ratio(wall, latency),
                    ms(drain)
                );
                let _ = writeln!(out, "    {}", where_the_time_went(sql_steps, wall));
            }
            let _ = writeln!(
                out,
                "  act {n}: chat write outage {} beside the switch's SQL critical path {}",
                act.write_outage.map(ms).unwrap_or_else(|| "n/a".into()),
                ms(p.sql)
            );
        }
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
                "  act {n}: spec change -> first step {}, -> first SQL write {} (after the drain)",
                first_step.map(ms).unwrap_or_else(|| "none".into()),
                first_sql.map(ms).unwrap_or_else(|| "none".into()),
            );
        }
    }
}

/// SQL time and simulator latency summed over steps run one after the other.
struct Path {
    sql: Duration,
    latency: Duration,
}

impl Path {
    fn of(steps: &[&StepRecord]) -> Path {
        Path {
            sql: steps.iter().map(|s| s.elapsed).sum(),
            latency: steps.iter().map(|s| s.latency).sum(),
        }
    }
}

/// The wall time of a run of steps, from its first statement, split into the statements, the
/// engine's work in the passes of the later steps (observing, planning, status: the first
/// pass's came before the stretch began) and the rest (the demo's loop between passes).
fn where_the_time_went(steps: &[&StepRecord], wall: Duration) -> String {
    let statements: Duration = steps.iter().map(|s| s.elapsed).sum();
    let later = steps.get(1..).unwrap_or_default();
    let engine: Duration = later.iter().map(|s| s.pass.saturating_sub(s.elapsed)).sum();
    let loop_gaps = wall.saturating_sub(statements + engine);
    let passes = later.len().max(1) as u32;
    format!(
        "of which statements {}, the engine's passes before the next steps {} ({} passes, each observing every instance, planning and assembling status: {:.1} ms a pass), the rest {}",
        ms(statements),
        ms(engine),
        later.len(),
        (engine / passes).as_secs_f64() * 1e3,
        ms(loop_gaps)
    )
}

fn ratio(a: Duration, b: Duration) -> String {
    if b.is_zero() {
        "n/a".to_string()
    } else {
        format!("{:.2}", a.as_secs_f64() / b.as_secs_f64())
    }
}

/// The steps of a planned switch from its first step (the drain) through the publish of the
/// new site's chat servers: the stretch chat users feel.
fn switch_steps<'a, 'b>(steps: &'a [&'b StepRecord]) -> &'a [&'b StepRecord] {
    let end = steps
        .iter()
        .enumerate()
        .skip(1)
        .find(|(_, s)| {
            matches!(&s.step, crate::plan::Step::PublishActiveServers { servers, .. } if !servers.is_empty())
        })
        .map(|(i, _)| i + 1)
        .unwrap_or(0);
    &steps[..end]
}

/// Print the summary on stdout.
pub fn print_summary(run: &DemoRun) {
    print!("{}", summary(run));
}
