//! BACKUP and RESTORE statements. The database name is bracket-quoted (the statements take it
//! as a name); the file goes as the `@P1` parameter, which T-SQL accepts as the backup device
//! (`TO DISK = @var`), so no path is ever spliced into statement text. Paths are the
//! planner's; nothing here chooses one.

use super::codes::*;
use super::{Batch, Statement};
use crate::plan::LogFile;
use crate::sql::quote;

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
}

/// Full backup WITH INIT and log backup on the source, then RESTORE DATABASE and RESTORE LOG
/// WITH NORECOVERY on the target (a mirror needs the log restore too).
///
/// The full backup uses INIT so that repeating it overwrites its file. The log backup does
/// not: a repeated one appends a second set, and RESTORE reads the first, which is the one
/// that follows the full backup.
pub(super) fn seed(s: &Seed) -> Vec<Statement> {
    let Seed {
        source,
        target,
        database,
        full_backup,
        log_backup,
        replace,
    } = *s;
    let restore_options = if replace {
        "NORECOVERY, REPLACE"
    } else {
        "NORECOVERY"
    };
    vec![
        backup("DATABASE", database, full_backup, "INIT, CHECKSUM")
            .on(
                source,
                format!("full backup of {database} on {source} to {full_backup}"),
            )
            .retry_if(&[CANNOT_OPEN_DEVICE]),
        backup("LOG", database, log_backup, "CHECKSUM")
            .on(
                source,
                format!("log backup of {database} on {source} to {log_backup}"),
            )
            .retry_if(&[CANNOT_OPEN_DEVICE]),
        restore("DATABASE", database, full_backup, restore_options)
            .on(
                target,
                format!("restore {full_backup} as {database} on {target} WITH {restore_options}"),
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
