//! LSN chain selection: which log backups, in which order, roll a RESTORING copy forward.

use crate::observe::{BackupFile, BackupType, Lsn};

use super::step::LogFile;

/// The ordered log backups that roll a copy whose redo point is `redo` forward, as far as the
/// `files` allow (and no further than `target` when given). `files` lists candidates in order of
/// preference: when two locations hold the same backup (same LSN range) the first one wins, so
/// callers pass the local copy folder before a remote share.
///
/// SQL Server's restore rule: a log backup `L` applies to redo point `R` only if
/// `L.first_lsn <= R < L.last_lsn`. Files wholly before `R` are skipped, a gap ends the chain,
/// and among overlapping candidates the one reaching furthest is taken.
pub fn chain<'a>(
    files: impl IntoIterator<Item = &'a BackupFile>,
    database: &str,
    redo: Lsn,
    target: Option<Lsn>,
) -> Vec<LogFile> {
    let mut candidates: Vec<&BackupFile> = Vec::new();
    for f in files {
        if f.backup_type != BackupType::Log || !f.database.eq_ignore_ascii_case(database) {
            continue;
        }
        if candidates
            .iter()
            .any(|c| c.first_lsn == f.first_lsn && c.last_lsn == f.last_lsn)
        {
            continue;
        }
        candidates.push(f);
    }
    let mut out = Vec::new();
    let mut r = redo;
    loop {
        if target.is_some_and(|t| r >= t) {
            break;
        }
        let next = candidates
            .iter()
            .filter(|f| f.first_lsn <= r && r < f.last_lsn)
            // Furthest first; on a tie the earlier (preferred) location.
            .max_by(|a, b| {
                a.last_lsn
                    .cmp(&b.last_lsn)
                    .then(std::cmp::Ordering::Greater)
            });
        match next {
            Some(f) => {
                out.push(LogFile {
                    path: f.path.clone(),
                    first_lsn: f.first_lsn,
                    last_lsn: f.last_lsn,
                });
                r = f.last_lsn;
            }
            None => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(path: &str, first: u128, last: u128) -> BackupFile {
        BackupFile {
            path: path.to_string(),
            database: "mgc".to_string(),
            backup_type: BackupType::Log,
            first_lsn: Lsn(first),
            last_lsn: Lsn(last),
            database_backup_lsn: None,
            finished_at: "2026-11-26T12:00:00Z".parse().unwrap(),
            copy_only: false,
            force_offline: false,
            server_name: "atl-sql1".to_string(),
        }
    }

    fn paths(c: &[LogFile]) -> Vec<&str> {
        c.iter().map(|f| f.path.as_str()).collect()
    }

    #[test]
    fn chain_skips_files_before_the_redo_point_and_orders_by_lsn() {
        let files = [log("c", 300, 400), log("a", 100, 200), log("b", 200, 300)];
        assert_eq!(paths(&chain(&files, "mgc", Lsn(250), None)), ["b", "c"]);
    }

    #[test]
    fn chain_stops_at_a_gap() {
        let files = [log("a", 100, 200), log("c", 300, 400)];
        assert_eq!(paths(&chain(&files, "mgc", Lsn(100), None)), ["a"]);
    }

    #[test]
    fn chain_is_empty_when_the_first_file_is_too_recent() {
        let files = [log("b", 200, 300)];
        assert!(chain(&files, "mgc", Lsn(150), None).is_empty());
    }

    #[test]
    fn chain_takes_the_overlapping_file_that_reaches_furthest() {
        let files = [
            log("short", 100, 150),
            log("long", 100, 300),
            log("next", 300, 400),
        ];
        assert_eq!(
            paths(&chain(&files, "mgc", Lsn(120), None)),
            ["long", "next"]
        );
    }

    #[test]
    fn chain_prefers_the_first_location_for_a_file_held_twice() {
        let files = [
            log("D:\\copy\\mgc_1.trn", 100, 200),
            log("\\\\atl-fs\\pchat-ls\\mgc_1.trn", 100, 200),
            log("\\\\atl-fs\\pchat-ls\\mgc_2.trn", 200, 300),
        ];
        assert_eq!(
            paths(&chain(&files, "mgc", Lsn(100), None)),
            ["D:\\copy\\mgc_1.trn", "\\\\atl-fs\\pchat-ls\\mgc_2.trn"]
        );
    }

    #[test]
    fn chain_stops_at_the_target() {
        let files = [log("a", 100, 200), log("b", 200, 300)];
        assert_eq!(
            paths(&chain(&files, "mgc", Lsn(100), Some(Lsn(200)))),
            ["a"]
        );
        assert!(chain(&files, "mgc", Lsn(200), Some(Lsn(200))).is_empty());
    }

    #[test]
    fn chain_ignores_full_backups_and_other_databases() {
        let mut full = log("full", 100, 200);
        full.backup_type = BackupType::Full;
        let mut other = log("other", 100, 200);
        other.database = "mgccomp".to_string();
        assert!(chain(&[full, other], "mgc", Lsn(100), None).is_empty());
    }
}
