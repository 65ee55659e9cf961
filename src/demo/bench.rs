//! `pchat-operator bench --runs N`: the demo N times over, one after the other, and its figures
//! summarised as fewest, median and most. One run's timings move with the shared host's load by
//! more than most changes move them; the median of several runs does not.

use std::fmt::Write as _;
use std::time::Duration;

use super::figures::{act_timings, ratio};

/// The target for a planned switch: wall time from its first SQL statement to the
/// publish, against the simulator latency of its statements.
pub const SWITCH_RATIO_TARGET: f64 = 1.2;
/// The target for a planned switch's chat write outage, against its SQL critical path.
pub const OUTAGE_RATIO_TARGET: f64 = 1.2;

/// Fewest, median and most of a series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

/// The spread of `values`; None when there are none. The median of an even count is the mean
/// of the middle two.
pub fn spread(values: &[f64]) -> Option<Spread> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    let median = if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    };
    Some(Spread {
        min: v[0],
        median,
        max: v[v.len() - 1],
    })
}

/// One figure over the runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub label: String,
    /// How a value is printed: "ms", "s", or "" for a plain ratio or count.
    pub unit: &'static str,
    pub values: Vec<f64>,
}

/// What the bench measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Bench {
    pub runs: usize,
    /// The figures, in the order they are printed.
    pub series: Vec<Series>,
    /// Why runs failed (lost messages, broken safety rules, acts that did not complete).
    pub failures: Vec<String>,
    /// The last run's acts as timeline pictures.
    pub pictures: Vec<super::timeline::Picture>,
}

impl Bench {
    fn record(&mut self, label: String, unit: &'static str, value: Option<f64>) {
        let Some(value) = value else { return };
        match self.series.iter_mut().find(|s| s.label == label) {
            Some(s) => s.values.push(value),
            None => self.series.push(Series {
                label,
                unit,
                values: vec![value],
            }),
        }
    }

    /// Add one demo run's figures.
    pub fn add(&mut self, run: &super::DemoRun) {
        self.runs += 1;
        let n = self.runs;
        self.failures
            .extend(run.failures().into_iter().map(|f| format!("run {n}: {f}")));
        let millis = |d: Duration| d.as_secs_f64() * 1e3;
        if let Some(p) = run.converged_passes.last() {
            self.record(
                "converged pass: SQL round trips per reachable instance".into(),
                "",
                Some(p.round_trips as f64 / p.reachable.max(1) as f64),
            );
            self.record("converged pass: writes".into(), "", Some(p.writes as f64));
        }
        for act in run.acts.iter().filter(|a| a.number == 2 || a.number == 3) {
            let a = act.number;
            let t = act_timings(act, &run.world_steps);
            let first_sql = t.from_first_sql;
            self.record(
                format!("act {a}: switch from its first SQL statement to publish, wall / simulator latency"),
                "",
                first_sql.and_then(|f| ratio(f.wall, f.latency)),
            );
            self.record(
                format!("act {a}: the same, wall time"),
                "ms",
                first_sql.map(|f| millis(f.wall)),
            );
            self.record(
                format!("act {a}: the same, statements / simulator latency"),
                "",
                first_sql.and_then(|f| ratio(f.statements, f.latency)),
            );
            self.record(
                format!("act {a}: engine pass between steps"),
                "ms",
                first_sql
                    .filter(|f| f.passes > 0)
                    .map(|f| millis(f.engine) / f.passes as f64),
            );
            self.record(
                format!("act {a}: chat write outage"),
                "ms",
                act.write_outage().map(millis),
            );
            self.record(
                format!("act {a}: chat write outage / SQL critical path"),
                "",
                act.write_outage()
                    .zip(t.switch.map(|s| s.path.sql))
                    .and_then(|(o, sql)| ratio(o, sql)),
            );
            self.record(
                format!("act {a}: spec change -> first SQL write"),
                "ms",
                t.spec_to_first_sql.map(millis),
            );
        }
        self.record("demo wall time".into(), "s", Some(run.wall.as_secs_f64()));
    }
}

/// Run the demo `runs` times, one after the other, and gather its figures.
pub async fn run(runs: usize) -> Result<Bench, String> {
    let mut bench = Bench::default();
    for _ in 0..runs {
        let run = super::run().await?;
        bench.add(&run);
        bench.pictures = run.pictures;
    }
    Ok(bench)
}

fn value_text(v: f64, unit: &str) -> String {
    match unit {
        "ms" => format!("{v:.1} ms"),
        "s" => format!("{v:.2} s"),
        _ => format!("{v:.2}"),
    }
}

/// The bench's summary as text: one line per figure, then the verdict.
pub fn summary(bench: &Bench) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "demo figures over {} runs (fewest / median / most)",
        bench.runs
    );
    let width = bench
        .series
        .iter()
        .map(|s| s.label.chars().count())
        .max()
        .unwrap_or(0);
    for s in &bench.series {
        let Some(sp) = spread(&s.values) else {
            continue;
        };
        let mut line = format!(
            "  {:<width$}  {} / {} / {}",
            s.label,
            value_text(sp.min, s.unit),
            value_text(sp.median, s.unit),
            value_text(sp.max, s.unit),
        );
        if s.values.len() < bench.runs {
            let _ = write!(line, " ({} of {} runs)", s.values.len(), bench.runs);
        }
        let target = if s.label.ends_with("wall / simulator latency") {
            Some(SWITCH_RATIO_TARGET)
        } else if s.label.ends_with("outage / SQL critical path") {
            Some(OUTAGE_RATIO_TARGET)
        } else {
            None
        };
        if let Some(target) = target {
            let under = s.values.iter().filter(|v| **v <= target).count();
            let _ = write!(
                line,
                "  (at most {target} in {under} of {})",
                s.values.len()
            );
        }
        let _ = writeln!(out, "{line}");
    }
    if bench.failures.is_empty() {
        let _ = writeln!(
            out,
            "result: OK, {} runs, no acknowledged message lost outside a reported window, no safety rule broken",
            bench.runs
        );
    } else {
        let _ = writeln!(out, "result: FAILED");
        for f in &bench.failures {
            let _ = writeln!(out, "  {f}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_gives_fewest_median_and_most_and_averages_the_middle_two_of_an_even_count() {
        assert_eq!(
            spread(&[1.3, 1.1, 1.2]),
            Some(Spread {
                min: 1.1,
                median: 1.2,
                max: 1.3
            })
        );
        let even = spread(&[4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!((even.min, even.median, even.max), (1.0, 2.5, 4.0));
        assert_eq!(spread(&[]), None);
        assert_eq!(spread(&[f64::NAN]), None);
    }

    #[test]
    fn summary_counts_the_runs_under_the_switch_target_and_lists_failures() {
        let bench = Bench {
            pictures: Vec::new(),
            runs: 3,
            series: vec![
                Series {
                    label: "act 2: switch from its first SQL statement to publish, wall / simulator latency".into(),
                    unit: "",
                    values: vec![1.1, 1.25, 1.15],
                },
                Series {
                    label: "act 2: chat write outage".into(),
                    unit: "ms",
                    values: vec![250.0, 260.5],
                },
            ],
            failures: vec!["run 2: act 2: lost 1 acknowledged message".into()],
        };
        let text = summary(&bench);
        assert!(text.starts_with("demo figures over 3 runs"), "{text}");
        assert!(
            text.contains("1.10 / 1.15 / 1.25  (at most 1.2 in 2 of 3)"),
            "{text}"
        );
        assert!(
            text.contains("250.0 ms / 255.2 ms / 260.5 ms (2 of 3 runs)"),
            "{text}"
        );
        assert!(
            text.contains("result: FAILED\n  run 2: act 2: lost 1"),
            "{text}"
        );
    }
}
