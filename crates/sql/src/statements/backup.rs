//! BACKUP and RESTORE statements. The database name is bracket-quoted (the statements take it
//! as a name); the file goes as the `@P1` parameter, which T-SQL accepts as the backup device
//! (`TO DISK = @var`), so no path is ever spliced into statement text. Paths are the
//! planner's; nothing here chooses one.

use super::codes::*;
use super::{Batch, Statement};
use crate::quote;
use pchat_core::plan::LogFile;

/// `BACKUP DATABASE|LOG [db] TO DISK = @P1 WITH <options>`.
fn backup(kind: &str, database: &str, file: &str, options: &str) -> Batch {
    Batch::new(&format!(
        "BACKUP {kind} {} TO DISK = ",
        quote::ident(database)
    ))
    .text(file)
    .sql(&format!(" WITH {options}"))
}

/// `RESTORE DATABASE|LOG [db] FROM DISK = @P1 WITH <options>`.
fn restore(kind: &str, database: &str, file: &str, options: &str) -> Batch {
    Batch::new(&format!(
        "RESTORE {kind} {} FROM DISK = ",
        quote::ident(database)
    ))
    .text(file)
    .sql(&format!(" WITH {options}"))
}

/// DemoteOldPrimary: the tail-log backup `BACKUP LOG [db] TO DISK = @P1 WITH NORECOVERY`. A new
/// file per backup, so no INIT.
pub(super) fn tail_log(instance: &str, database: &str, file: &str) -> Statement {
    backup("LOG", database, file, "NORECOVERY, CHECKSUM")
        .on(
            instance,
            format!("tail-log backup of {database} on {instance} to {file}, leaving it RESTORING"),
        )
        // The copy is already RESTORING: the tail was taken (a repeat after a lost answer), so
        // nothing can write to it any more, which is what the demotion is for. The planner
        // reads the tail LSN from the backup history, not from this answer.
        .done_if(&[IN_RESTORE])
        .retry_if(&[CANNOT_OPEN_DEVICE])
}

/// `RESTORE LOG [db] FROM DISK = @P1 WITH NORECOVERY`, safe to repeat: a file the copy already
/// passed answers 4326.
fn restore_log(instance: &str, database: &str, file: &str, purpose: String) -> Statement {
    restore("LOG", database, file, "NORECOVERY")
        .on(instance, purpose)
        .done_if(&[LOG_TOO_EARLY])
        .retry_if(&[IN_USE, CANNOT_OPEN_DEVICE])
}

/// CatchUp: one RESTORE LOG per file, in the planner's (LSN) order.
pub(super) fn catch_up(instance: &str, database: &str, files: &[LogFile]) -> Vec<Statement> {
    let total = files.len();
    files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            restore_log(
                instance,
                database,
                &f.path,
                format!(
                    "restore log backup {} of {total} ({}, LSN {} to {}) into {database} on {instance} WITH NORECOVERY",
                    i + 1,
                    f.path,
                    f.first_lsn,
                    f.last_lsn
                ),
            )
        })
        .collect()
}

/// SalvageStaleCopy: `BACKUP DATABASE [db] TO DISK = @P1 WITH COPY_ONLY, INIT, CHECKSUM`.
/// COPY_ONLY leaves the copy's backup chain alone; INIT makes a repeat overwrite the file with
/// a backup of the same copy rather than append a second set.
pub(super) fn salvage(instance: &str, database: &str, file: &str) -> Statement {
    backup("DATABASE", database, file, "COPY_ONLY, INIT, CHECKSUM")
        .on(
            instance,
            format!("salvage backup (COPY_ONLY) of {database} on {instance} to {file}"),
        )
        .retry_if(&[CANNOT_OPEN_DEVICE])
}

/// A copy built from a full and a log backup of `source`, restored on `target` WITH
/// NORECOVERY: Reseed, BootstrapSecondary and SeedMirror.
pub(super) struct Seed<'a> {
    pub source: &'a str,
    pub target: &'a str,
    pub database: &'a str,
    pub full_backup: &'a str,
    pub log_backup: &'a str,
    /// `WITH REPLACE`: a copy exists on the target and is to be overwritten.
    pub replace: bool,
    /// `WITH MOVE` logical file name `TO` path on the target, one per file of the copy.
    pub moves: Vec<(String, String)>,
}

/// Full and log backup on the source, as ONE batch, then RESTORE DATABASE and RESTORE LOG WITH
/// NORECOVERY on the target (a mirror needs the log restore too).
///
/// Why one batch, and INIT on both: a repeated log backup on its own cannot be made harmless.
/// Appended to the same file it leaves a second set that nothing restores, so the copy misses
/// log the principal no longer has (1478 on SET PARTNER); written over it, the first log
/// backup is lost and the second no longer follows the full one (4305). Repeating the pair
/// together takes a new full backup first, and the new log backup follows it whatever came
/// before, so the target's two restores always fit. What a repeat cannot give back is the
/// first log file to a log-shipping copy job that had not copied it yet.
pub(super) fn seed(s: &Seed) -> Vec<Statement> {
    let Seed {
        source,
        target,
        database,
        full_backup,
        log_backup,
        replace,
        ref moves,
    } = *s;
    let restore_options = if replace {
        "NORECOVERY, REPLACE"
    } else {
        "NORECOVERY"
    };
    // Each target path is a parameter too: `MOVE @P2 TO @P3` is T-SQL's variable form.
    let full_restore = moves.iter().fold(
        restore("DATABASE", database, full_backup, restore_options),
        |batch, (logical, physical)| {
            batch
                .sql(", MOVE ")
                .text(logical)
                .sql(" TO ")
                .text(physical)
        },
    );
    let moved = match moves.len() {
        0 => String::new(),
        n => format!(
            ", moving its {n} files to {}",
            moves
                .iter()
                .map(|(_, p)| p.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    vec![
        backup("DATABASE", database, full_backup, "INIT, CHECKSUM")
            .sql(&format!(
                "; BACKUP LOG {} TO DISK = ",
                quote::ident(database)
            ))
            .text(log_backup)
            .sql(" WITH INIT, CHECKSUM")
            .on(
                source,
                format!(
                    "full backup of {database} on {source} to {full_backup}, then a log backup to {log_backup}"
                ),
            )
            .retry_if(&[CANNOT_OPEN_DEVICE]),
        full_restore
            .on(
                target,
                format!(
                    "restore {full_backup} as {database} on {target} WITH {restore_options}{moved}"
                ),
            )
            .retry_if(&[IN_USE, CANNOT_OPEN_DEVICE]),
        restore_log(
            target,
            database,
            log_backup,
            format!("restore {log_backup} into {database} on {target} WITH NORECOVERY"),
        ),
    ]
}
