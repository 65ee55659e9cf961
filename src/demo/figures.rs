//! The demo's figures: what the simulator's latency table makes a batch cost, the message
//! accounting of an act, and the timings of a planned act (the report prints them for one run,
//! the bench summarises them over many).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use regex::Regex;

use super::acts::ActOutcome;
use super::world::StepRecord;
use pchat_sim::server::StatementKind;
use pchat_sim::workload::Ack;

/// Statement starts the simulator charges latency for, by kind. `SELECT` is not listed: in the
/// operator's batches it appears only inside `IF EXISTS (...)` conditions, which are not
/// statements (and the demo sets no select latency).
static STATEMENT_START: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(BACKUP|RESTORE|ALTER\s+DATABASE|EXEC(?:UTE)?|KILL|INSERT)\b")
        .expect("valid regex")
});

/// The latency the simulator adds to `sql`: the table's entry for each statement the batch
/// holds, plus the `any` entry once per statement.
pub fn latency_of_batch(sql: &str, table: &BTreeMap<StatementKind, u64>) -> Duration {
    let any = table.get(&StatementKind::Any).copied().unwrap_or(0);
    let ms: u64 = STATEMENT_START
        .captures_iter(sql)
        .map(|c| {
            let word = c[1].to_ascii_uppercase();
            let kind = match word.split_whitespace().next().unwrap_or_default() {
                "BACKUP" => StatementKind::Backup,
                "RESTORE" => StatementKind::Restore,
                "ALTER" => StatementKind::AlterDatabase,
                "KILL" => StatementKind::Kill,
                "INSERT" => StatementKind::Insert,
                _ => StatementKind::Exec,
            };
            table.get(&kind).copied().unwrap_or(0) + any
        })
        .sum();
    Duration::from_millis(ms)
}

/// The message accounting of one act.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accounting {
    /// Messages acknowledged to chat servers during the act.
    pub acknowledged: usize,
    /// Of those, the ones on the serving copy at the end of the act.
    pub present: usize,
    /// Of those, the ones missing from it, ascending.
    pub lost: Vec<i64>,
}

/// Check the acknowledgements `acked` against the ids on the serving copy (through
/// [`workload::verify`](pchat_sim::workload::verify)).
pub fn account(acked: &[Ack], serving_ids: &[i64]) -> Accounting {
    const SERVING: &str = "serving";
    let report = pchat_sim::workload::verify(
        acked,
        &BTreeMap::from([(SERVING.to_string(), serving_ids.to_vec())]),
    );
    let lost = report.missing.get(SERVING).cloned().unwrap_or_default();
    Accounting {
        acknowledged: report.acknowledged,
        present: report.acknowledged - lost.len(),
        lost,
    }
}

/// The lost messages acknowledged before `window_start`: those a forced failover lost outside
/// the data-loss window it reported.
pub fn lost_outside_window(acked: &[Ack], lost: &[i64], window_start: jiff::Timestamp) -> Vec<i64> {
    let lost: BTreeSet<i64> = lost.iter().copied().collect();
    acked
        .iter()
        .filter(|a| lost.contains(&a.id) && a.at < window_start)
        .map(|a| a.id)
        .collect()
}

/// SQL time and simulator latency summed over steps run one after the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Path {
    pub sql: Duration,
    pub latency: Duration,
}

impl Path {
    fn of<'a>(steps: impl IntoIterator<Item = &'a StepRecord>) -> Path {
        steps.into_iter().fold(
            Path {
                sql: Duration::ZERO,
                latency: Duration::ZERO,
            },
            |p, s| Path {
                sql: p.sql + s.elapsed,
                latency: p.latency + s.latency,
            },
        )
    }
}

/// The switch proper: from its first step (the drain) through the publish of the new site's
/// chat servers, the stretch chat users feel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Switch {
    pub steps: usize,
    pub wall: Duration,
    pub path: Path,
}

/// The same stretch from its first SQL statement: the drain before it waits on the chat
/// servers, not on SQL Server. Its wall time splits into the statements, the engine's passes
/// before the later steps (observing, planning, status: the first pass's came before the
/// stretch began) and the rest (the demo's loop between passes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FromFirstSql {
    pub steps: usize,
    pub wall: Duration,
    pub latency: Duration,
    pub drain: Duration,
    pub statements: Duration,
    pub passes: usize,
    pub engine: Duration,
    pub rest: Duration,
}

/// The timings of a planned act (a switch), from the steps the engine ran in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ActTimings {
    /// Every step of the act.
    pub whole: Path,
    pub switch: Option<Switch>,
    pub from_first_sql: Option<FromFirstSql>,
    pub spec_to_first_step: Option<Duration>,
    pub spec_to_first_sql: Option<Duration>,
}

/// The timings of `act`, whose steps are among `steps`.
pub fn act_timings(act: &ActOutcome, steps: &[StepRecord]) -> ActTimings {
    let steps: Vec<&StepRecord> = steps.iter().filter(|s| s.act == act.number).collect();
    let switch = switch_steps(&steps);
    let (first, last) = (switch.first(), switch.last());
    let from_first_sql = first.zip(last).and_then(|(first, last)| {
        let sql_steps = from_first_statement(switch)?;
        let start = sql_steps[0].ended - sql_steps[0].elapsed;
        let wall = last.ended.saturating_duration_since(start);
        let statements: Duration = sql_steps.iter().map(|s| s.elapsed).sum();
        let later = &sql_steps[1..];
        let engine: Duration = later.iter().map(|s| s.pass.saturating_sub(s.elapsed)).sum();
        Some(FromFirstSql {
            steps: sql_steps.len(),
            wall,
            latency: sql_steps.iter().map(|s| s.latency).sum(),
            drain: start.saturating_duration_since(first.ended),
            statements,
            passes: later.len(),
            engine,
            rest: wall.saturating_sub(statements + engine),
        })
    });
    let since_change = |s: &&StepRecord| {
        act.spec_changed
            .map(|changed| (s.ended - s.elapsed).saturating_duration_since(changed))
    };
    ActTimings {
        whole: Path::of(steps.iter().copied()),
        switch: first.zip(last).map(|(first, last)| Switch {
            steps: switch.len(),
            wall: last
                .ended
                .saturating_duration_since(first.ended - first.elapsed),
            path: Path::of(switch.iter().copied()),
        }),
        from_first_sql,
        spec_to_first_step: steps.first().and_then(since_change),
        spec_to_first_sql: steps
            .iter()
            .find(|s| s.statements_sent > 0)
            .and_then(since_change),
    }
}

/// The stretch of a switch among one act's `steps` that waits on SQL Server: from the start of
/// its first step that sent a statement to the end of the publish of the new site's chat
/// servers, with the statements' own time in it (the SQL critical path).
pub fn critical_path(steps: &[&StepRecord]) -> Option<(Instant, Instant, Duration)> {
    let sql_steps = from_first_statement(switch_steps(steps))?;
    let first = sql_steps.first()?;
    let last = sql_steps.last()?;
    let sql = sql_steps.iter().map(|s| s.elapsed).sum();
    Some((first.ended - first.elapsed, last.ended, sql))
}

/// The steps of a switch from its first that sent a statement.
fn from_first_statement<'a, 'b>(switch: &'a [&'b StepRecord]) -> Option<&'a [&'b StepRecord]> {
    let at = switch.iter().position(|s| s.statements_sent > 0)?;
    Some(&switch[at..])
}

/// The steps of a planned switch from its first step (the drain) through the publish of the
/// new site's chat servers.
fn switch_steps<'a, 'b>(steps: &'a [&'b StepRecord]) -> &'a [&'b StepRecord] {
    let end = steps
        .iter()
        .enumerate()
        .skip(1)
        .find(|(_, s)| {
            matches!(&s.step, pchat_core::plan::Step::PublishActiveServers { servers, .. } if !servers.is_empty())
        })
        .map(|(i, _)| i + 1)
        .unwrap_or(0);
    &steps[..end]
}

/// `a / b`, or None when `b` is zero.
pub fn ratio(a: Duration, b: Duration) -> Option<f64> {
    (!b.is_zero()).then(|| a.as_secs_f64() / b.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(id: i64, secs: i64) -> Ack {
        Ack {
            id,
            server: "atl-pc1.litwareinc.com".into(),
            at: jiff::Timestamp::from_second(1_764_000_000 + secs).unwrap(),
        }
    }

    #[test]
    fn batch_latency_charges_each_statement_by_its_kind() {
        let table = BTreeMap::from([
            (StatementKind::Backup, 30),
            (StatementKind::Restore, 40),
            (StatementKind::AlterDatabase, 5),
        ]);
        let sql = "IF EXISTS (SELECT 1 FROM sys.databases WHERE name = N'mgc') \
                   RESTORE LOG [mgc] FROM DISK = @P1 WITH NORECOVERY; \
                   ALTER DATABASE [mgc] SET PARTNER OFF; BACKUP LOG [mgc] TO DISK = @P2";
        assert_eq!(latency_of_batch(sql, &table), Duration::from_millis(75));
        let with_any = BTreeMap::from([(StatementKind::Any, 1), (StatementKind::Kill, 3)]);
        assert_eq!(
            latency_of_batch("KILL 53", &with_any),
            Duration::from_millis(4)
        );
    }

    #[test]
    fn accounting_counts_acknowledged_ids_missing_from_the_serving_copy() {
        let acked = vec![ack(1, 0), ack(2, 1), ack(3, 2)];
        let a = account(&acked, &[1, 3, 7]);
        assert_eq!((a.acknowledged, a.present, a.lost.clone()), (3, 2, vec![2]));
        let start = jiff::Timestamp::from_second(1_764_000_001).unwrap();
        assert!(lost_outside_window(&acked, &a.lost, start).is_empty());
        let later = jiff::Timestamp::from_second(1_764_000_002).unwrap();
        assert_eq!(lost_outside_window(&acked, &a.lost, later), vec![2]);
    }
}
