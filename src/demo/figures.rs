//! The demo's figures: what the simulator's latency table makes a batch cost, and the message
//! accounting of an act.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;
use std::time::Duration;

use regex::Regex;

use crate::sim::server::StatementKind;
use crate::sim::workload::Ack;

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
/// [`workload::verify`](crate::sim::workload::verify)).
pub fn account(acked: &[Ack], serving_ids: &[i64]) -> Accounting {
    const SERVING: &str = "serving";
    let report = crate::sim::workload::verify(
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
