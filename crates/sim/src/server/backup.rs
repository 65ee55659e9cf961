//! BACKUP DATABASE/LOG, RESTORE DATABASE/LOG and RESTORE HEADERONLY: real files under the state
//! directory, SQL Server's LSN chain rules (which backup a restore accepts, and the error it
//! raises for one it does not), and the msdb history rows.
//!
//! LSN model: every committed write and every backup takes one LSN. A full backup covers
//! [CheckpointLSN, LastLSN) and carries every row; a log backup covers [FirstLSN, LastLSN) from
//! where the previous log backup ended. A RESTORING copy remembers its redo point R (LastLSN of
//! the last backup applied); a log applies only when `FirstLSN <= R < LastLSN`.

use super::backupfile::{self, BackupSet, Media, ReadError};
use super::errors::{self as e, Failure, SqlError};
use super::model::{
    BackupSetRow, Database, DbFile, DbState, Instance, RestoreHistoryRow, State, now,
};
use super::paths;
use crate::backend::{Column, ColumnType, ResultSet, Value};

#[derive(Clone, Debug, Default)]
pub struct BackupArgs {
    pub log: bool,
    pub database: String,
    pub disk: String,
    pub init: bool,
    pub copy_only: bool,
    pub norecovery: bool,
    pub checksum: bool,
    pub name: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestoreWhat {
    Database,
    Log,
}

#[derive(Clone, Debug)]
pub struct RestoreArgs {
    pub what: RestoreWhat,
    pub database: String,
    pub disk: Option<String>,
    pub recovery: bool,
    pub replace: bool,
    pub file: usize,
    /// WITH MOVE 'logical' TO 'physical', in the statement's order.
    pub moves: Vec<(String, String)>,
}

fn fail(what: &str, root: SqlError) -> Failure {
    vec![root, e::terminating(what)]
}

/// Informational lines SQL Server prints after a successful BACKUP/RESTORE.
fn success_infos(what: &str, db: &str, rows: usize, log: bool) -> Vec<SqlError> {
    let pages = 2 + rows / 50;
    let file_kind = if log { "_log" } else { "" };
    vec![
        SqlError::info(
            4035,
            format!(
                "Processed {pages} pages for database '{db}', file '{db}{file_kind}' on file 1."
            ),
        ),
        SqlError::info(
            3014,
            format!("{what} successfully processed {pages} pages in 0.010 seconds (1.000 MB/sec)."),
        ),
    ]
}

/// Run BACKUP on instance `inst` for session `spid`.
pub fn backup(
    state: &mut State,
    inst: usize,
    spid: Option<i16>,
    args: &BackupArgs,
) -> Result<Vec<SqlError>, Failure> {
    let what = if args.log {
        "BACKUP LOG"
    } else {
        "BACKUP DATABASE"
    };
    check_backup(state, inst, spid, args, what)?;
    let inst_name = state.instances[inst].name.clone();
    let resolved = paths::resolve(state, &inst_name, &args.disk)
        .map_err(|pe| fail(what, e::cannot_open_device(&args.disk, pe.os_error())))?;
    // INIT (or a new file) starts new media; otherwise the set is appended to the media there.
    let mut media = if args.init || !resolved.local.exists() {
        Media::new()
    } else {
        backupfile::read(&resolved.local).map_err(|_| fail(what, e::not_a_backup(&args.disk)))?
    };
    let backup_set_guid = state.new_guid();
    let utc_offset_minutes = state.instances[inst].utc_offset_minutes;
    let db = state.instances[inst]
        .db_mut(&args.database)
        .expect("checked above");
    let mut set = take_backup_set(db, args, &inst_name, backup_set_guid);
    set.utc_offset_minutes = utc_offset_minutes;
    if args.norecovery {
        db.state = DbState::Restoring;
        db.redo_lsn = Some(set.last_lsn);
        db.logs_restored = 1;
    }
    let row_count = set.rows.len();
    let db_name = db.name.clone();
    media.sets.push(set.clone());
    if let Err(err) = backupfile::write(&resolved.local, &media) {
        return Err(fail(
            what,
            e::cannot_open_device(&args.disk, &format!("5({err})")),
        ));
    }
    record_backupset(state, inst, &set, args);
    Ok(success_infos(what, &db_name, row_count, args.log))
}

/// The errors SQL Server raises before a BACKUP touches its media: the database must be
/// ONLINE, a log backup needs the FULL or BULK_LOGGED model and a full backup to start its
/// chain, and a tail-log backup (NORECOVERY) needs a database outside mirroring that no other
/// session uses.
fn check_backup(
    state: &State,
    inst: usize,
    spid: Option<i16>,
    args: &BackupArgs,
    what: &str,
) -> Result<(), Failure> {
    let Some(db) = state.instances[inst].db(&args.database) else {
        return Err(fail(what, e::db_absent_use(&args.database)));
    };
    if let Some(err) = e::cannot_open(db) {
        return Err(fail(what, err));
    }
    if args.log {
        if db.recovery == "SIMPLE" {
            return Err(fail(what, e::log_backup_simple()));
        }
        if db.log_chain.is_none() {
            return Err(fail(what, e::no_current_backup(&db.name)));
        }
    }
    if args.norecovery {
        if db.mirroring.is_some() {
            return Err(fail(what, e::involved_in_mirroring(&db.name)));
        }
        // A tail-log backup takes the database to RESTORING: it needs exclusive access.
        if !state.instances[inst].sessions_in(&db.name, spid).is_empty() {
            return Err(fail(what, e::exclusive_access()));
        }
    }
    Ok(())
}

/// Take the backup set of `db` (the backup itself takes one LSN) and move the database's
/// backup LSNs as a backup that is not COPY_ONLY does: a log backup moves the log chain to its
/// LastLSN; a full backup becomes the differential base and starts the log chain if there was
/// none (outside SIMPLE recovery).
fn take_backup_set(
    db: &mut Database,
    args: &BackupArgs,
    inst_name: &str,
    backup_set_guid: String,
) -> BackupSet {
    let start = now();
    let first = if args.log {
        db.log_chain.expect("checked above")
    } else {
        db.next_lsn
    };
    // A backup checkpoints the database first, which writes to its log; a READ_ONLY database
    // has nothing to checkpoint and takes no log record, so its end of log stays where the
    // fence left it and a salvage backup keeps covering it.
    if !db.read_only {
        db.log_record();
    }
    let last = db.next_lsn;
    let (backup_type, database_backup_lsn, rows) = if args.log {
        if !args.copy_only {
            db.log_chain = Some(last);
        }
        let rows = db
            .rows
            .iter()
            .filter(|r| r.lsn >= first && r.lsn < last)
            .cloned()
            .collect();
        (2, db.database_backup_lsn.unwrap_or(0), rows)
    } else {
        let previous_base = db.database_backup_lsn.unwrap_or(0);
        if !args.copy_only {
            db.database_backup_lsn = Some(first);
            if db.log_chain.is_none() && db.recovery != "SIMPLE" {
                db.log_chain = Some(first);
            }
        }
        let rows = db.rows.iter().filter(|r| r.lsn < last).cloned().collect();
        (1, previous_base, rows)
    };
    BackupSet {
        backup_name: args.name.clone(),
        backup_type,
        database_name: db.name.clone(),
        server_name: inst_name.to_string(),
        first_lsn: first,
        last_lsn: last,
        checkpoint_lsn: first,
        database_backup_lsn,
        backup_start_date: start,
        backup_finish_date: now(),
        utc_offset_minutes: 0,
        is_copy_only: args.copy_only,
        // Only a log backup can be a tail-log backup that leaves the database RESTORING.
        is_force_offline: args.log && args.norecovery,
        has_checksums: args.checksum,
        recovery_model: db.recovery.clone(),
        family_guid: db.family_guid.clone(),
        backup_set_guid,
        fork_point_lsn: db.fork_point(),
        lineage: db.lineage.clone(),
        files: db.files.clone(),
        rows,
    }
}

/// The msdb.dbo.backupset (and backupmediafamily) row of a backup just written.
fn record_backupset(state: &mut State, inst: usize, set: &BackupSet, args: &BackupArgs) {
    let msdb = &mut state.instances[inst].msdb;
    let id = msdb.next_id();
    msdb.backupset.push(BackupSetRow {
        backup_set_id: id,
        media_set_id: id,
        name: set.backup_name.clone(),
        database_name: set.database_name.clone(),
        server_name: set.server_name.clone(),
        type_code: if args.log { "L" } else { "D" },
        first_lsn: set.first_lsn,
        last_lsn: set.last_lsn,
        checkpoint_lsn: set.checkpoint_lsn,
        database_backup_lsn: set.database_backup_lsn,
        backup_start_date: set.backup_start_date,
        backup_finish_date: set.backup_finish_date,
        utc_offset_minutes: set.utc_offset_minutes,
        is_copy_only: args.copy_only,
        is_force_offline: set.is_force_offline,
        recovery_model: set.recovery_model.clone(),
        family_guid: set.family_guid.clone(),
        physical_device_name: args.disk.clone(),
    });
}

/// Read backup set `file` (1-based) of the media at `disk`, as seen from `inst`.
pub fn read_set(
    state: &State,
    inst: usize,
    disk: &str,
    file: usize,
    what: &str,
) -> Result<BackupSet, Failure> {
    let media = read_media(state, inst, disk, what)?;
    media
        .sets
        .get(file.saturating_sub(1))
        .cloned()
        .ok_or_else(|| fail(what, e::file_not_found_in_media(file as i64, disk)))
}

pub fn read_media(state: &State, inst: usize, disk: &str, what: &str) -> Result<Media, Failure> {
    let inst_name = &state.instances[inst].name;
    let resolved = paths::resolve(state, inst_name, disk)
        .map_err(|pe| fail(what, e::cannot_open_device(disk, pe.os_error())))?;
    backupfile::read(&resolved.local).map_err(|re| match re {
        ReadError::Missing => fail(
            what,
            e::cannot_open_device(disk, "2(The system cannot find the file specified.)"),
        ),
        ReadError::Malformed => fail(what, e::not_a_backup(disk)),
    })
}

/// Run RESTORE DATABASE/LOG on instance `inst` for session `spid`.
pub fn restore(
    state: &mut State,
    inst: usize,
    spid: Option<i16>,
    args: &RestoreArgs,
) -> Result<Vec<SqlError>, Failure> {
    let what = match args.what {
        RestoreWhat::Database => "RESTORE DATABASE",
        RestoreWhat::Log => "RESTORE LOG",
    };
    let Some(disk) = args.disk.as_deref() else {
        return recover_only(state, inst, spid, &args.database);
    };
    let existing = state.instances[inst].db(&args.database).cloned();
    if let Some(db) = &existing {
        if db.mirroring.is_some() || db.pending_partner.is_some() {
            return Err(fail(what, e::restore_mirrored(&db.name)));
        }
        let me = spid.and_then(|s| state.instances[inst].sessions.get(&s));
        if me.is_some_and(|s| s.database.eq_ignore_ascii_case(&db.name)) {
            return Err(fail(what, e::in_use_by_this_session(&db.name)));
        }
        if !state.instances[inst].sessions_in(&db.name, spid).is_empty() {
            return Err(fail(what, e::exclusive_access()));
        }
    }
    let set = read_set(state, inst, disk, args.file, what)?;
    let infos = match args.what {
        RestoreWhat::Database => {
            restore_database(state, inst, args, existing.as_ref(), &set, disk)?
        }
        RestoreWhat::Log => restore_log(state, inst, args, existing.as_ref(), &set, disk)?,
    };
    let msdb = &mut state.instances[inst].msdb;
    let id = msdb.next_id();
    msdb.restorehistory.push(RestoreHistoryRow {
        restore_history_id: id,
        restore_date: now(),
        destination_database_name: args.database.clone(),
        user_name: "sa".into(),
        backup_set_id: id,
        restore_type: if args.what == RestoreWhat::Database {
            "D"
        } else {
            "L"
        },
        replace: args.replace,
        recovery: args.recovery,
    });
    Ok(infos)
}

/// Error 3135: the backup set is of the other kind (`created_by` is "BACKUP LOG" or "BACKUP
/// DATABASE").
fn wrong_backup_type(disk: &str, created_by: &str) -> SqlError {
    SqlError::new(
        3135,
        format!(
            "The backup set in file '{disk}' was created by {created_by} and cannot be used for this restore operation."
        ),
    )
}

/// RESTORE DATABASE from a full backup set: a new copy in place of `existing` (which, without
/// REPLACE, must be of the same family and have its tail backed up), RESTORING at the set's
/// LastLSN or ONLINE WITH RECOVERY.
fn restore_database(
    state: &mut State,
    inst: usize,
    args: &RestoreArgs,
    existing: Option<&Database>,
    set: &BackupSet,
    disk: &str,
) -> Result<Vec<SqlError>, Failure> {
    let what = "RESTORE DATABASE";
    if set.backup_type != 1 {
        return Err(fail(what, wrong_backup_type(disk, "BACKUP LOG")));
    }
    if let Some(db) = existing
        && !args.replace
    {
        if !db.family_guid.eq_ignore_ascii_case(&set.family_guid) {
            return Err(fail(what, e::other_database(&db.name)));
        }
        if db.state == DbState::Online && db.recovery != "SIMPLE" {
            return Err(fail(what, e::tail_not_backed_up(&db.name)));
        }
    }
    let id = match existing {
        Some(db) => db.id,
        None => {
            let instance = &mut state.instances[inst];
            instance.next_db_id += 1;
            instance.next_db_id
        }
    };
    let name = existing.map_or_else(|| args.database.clone(), |d| d.name.clone());
    let files = restored_files(&state.instances[inst], args, existing, set)?;
    let mut db = Database::new(id, &name, set.family_guid.clone(), now());
    db.files = files;
    db.rows = set.rows.clone();
    db.next_lsn = set.last_lsn;
    db.redo_lsn = Some(set.last_lsn);
    db.database_backup_lsn = Some(set.first_lsn);
    db.log_chain = Some(set.last_lsn);
    db.recovery = set.recovery_model.clone();
    db.lineage = set.lineage.clone();
    db.state = DbState::Restoring;
    if args.recovery {
        let fork = state.new_guid();
        bring_online(&mut db, fork);
    }
    let infos = success_infos(what, &name, db.rows.len(), false);
    let instance = &mut state.instances[inst];
    match instance.databases.iter_mut().find(|d| d.id == id) {
        Some(slot) => *slot = db,
        None => instance.databases.push(db),
    }
    Ok(infos)
}

/// Where a full restore puts each file of the backup set: where WITH MOVE says; otherwise
/// over the existing database's file of the same id, or, for a new database, at the path the
/// backup recorded. SQL Server refuses, while planning the restore, a MOVE naming no file of
/// the set (3234), a path in a folder the instance does not have (5133, 3156), and a file
/// another database uses (1834, 3156).
fn restored_files(
    instance: &Instance,
    args: &RestoreArgs,
    existing: Option<&Database>,
    set: &BackupSet,
) -> Result<Vec<DbFile>, Failure> {
    let what = "RESTORE DATABASE";
    if set.files.is_empty() {
        return Ok(instance.default_files(&args.database));
    }
    for (logical, _) in &args.moves {
        if !set
            .files
            .iter()
            .any(|f| f.logical_name.eq_ignore_ascii_case(logical))
        {
            return Err(fail(what, e::not_a_file_of(logical, &set.database_name)));
        }
    }
    let mut problems = Vec::new();
    let mut files = Vec::new();
    for file in &set.files {
        let moved = args
            .moves
            .iter()
            .rev()
            .find(|(l, _)| l.eq_ignore_ascii_case(&file.logical_name))
            .map(|(_, p)| p.clone());
        let kept = existing
            .and_then(|d| d.files.iter().find(|f| f.file_id == file.file_id))
            .map(|f| f.physical_name.clone());
        let target = DbFile {
            physical_name: moved.or(kept).unwrap_or_else(|| file.physical_name.clone()),
            ..file.clone()
        };
        let folder = target.folder();
        if !folder.eq_ignore_ascii_case(&instance.data_path)
            && !folder.eq_ignore_ascii_case(&instance.log_path)
        {
            problems.push(e::directory_lookup_failed(&target.physical_name));
            problems.push(e::use_with_move(&file.logical_name, &target.physical_name));
        } else if let Some(user) = instance.databases.iter().find(|d| {
            existing.is_none_or(|x| x.id != d.id)
                && d.files
                    .iter()
                    .any(|f| f.physical_name.eq_ignore_ascii_case(&target.physical_name))
        }) {
            problems.push(e::file_in_use(&target.physical_name, &user.name));
            problems.push(e::use_with_move(&file.logical_name, &target.physical_name));
        }
        files.push(target);
    }
    if problems.is_empty() {
        return Ok(files);
    }
    problems.push(e::restore_planning_failed());
    problems.push(e::terminating(what));
    Err(problems)
}

/// RESTORE LOG: apply a log backup set to a RESTORING copy. SQL Server refuses a set whose
/// FirstLSN is after the copy's redo point (4305), one the copy already contains (4326), and
/// one of another database (3154) and one from another recovery path (4330).
fn restore_log(
    state: &mut State,
    inst: usize,
    args: &RestoreArgs,
    existing: Option<&Database>,
    set: &BackupSet,
    disk: &str,
) -> Result<Vec<SqlError>, Failure> {
    let what = "RESTORE LOG";
    let Some(db) = existing else {
        return Err(fail(what, e::db_absent_use(&args.database)));
    };
    if set.backup_type != 2 {
        return Err(fail(what, wrong_backup_type(disk, "BACKUP DATABASE")));
    }
    if db.state != DbState::Restoring {
        return Err(fail(what, e::no_rollforward()));
    }
    if !db.family_guid.eq_ignore_ascii_case(&set.family_guid) {
        return Err(fail(what, e::other_database(&db.name)));
    }
    let redo = db.redo_lsn.unwrap_or(db.next_lsn);
    if set.first_lsn > redo {
        return Err(fail(what, e::log_too_recent(set.first_lsn, redo)));
    }
    if set.last_lsn <= redo {
        return Err(fail(what, e::log_too_early(set.last_lsn, redo)));
    }
    if !super::model::same_path(&db.lineage, &set.lineage, redo) {
        return Err(fail(what, e::inconsistent_recovery_path()));
    }
    let fork = state.new_guid();
    let db = state.instances[inst]
        .db_mut(&args.database)
        .expect("checked above");
    db.rows
        .extend(set.rows.iter().filter(|m| m.lsn >= redo).cloned());
    db.next_lsn = set.last_lsn;
    db.redo_lsn = Some(set.last_lsn);
    db.log_chain = Some(set.last_lsn);
    db.logs_restored += 1;
    db.lineage = set.lineage.clone();
    if args.recovery {
        bring_online(db, fork);
    }
    Ok(success_infos(what, &args.database, set.rows.len(), true))
}

/// RESTORE DATABASE x WITH RECOVERY without FROM: bring a RESTORING copy online.
fn recover_only(
    state: &mut State,
    inst: usize,
    spid: Option<i16>,
    name: &str,
) -> Result<Vec<SqlError>, Failure> {
    let what = "RESTORE DATABASE";
    let Some(db) = state.instances[inst].db(name) else {
        return Err(fail(what, e::db_absent_use(name)));
    };
    if db.mirroring.is_some() || db.pending_partner.is_some() {
        return Err(fail(what, e::restore_mirrored(&db.name)));
    }
    if db.state != DbState::Restoring {
        return Err(fail(
            what,
            SqlError::new(3153, "The database is already fully recovered."),
        ));
    }
    if !state.instances[inst].sessions_in(name, spid).is_empty() {
        return Err(fail(what, e::exclusive_access()));
    }
    let fork = state.new_guid();
    let db = state.instances[inst].db_mut(name).expect("checked above");
    bring_online(db, fork);
    Ok(vec![SqlError::info(
        3014,
        "RESTORE DATABASE successfully processed 0 pages in 0.001 seconds (0.000 MB/sec).",
    )])
}

/// Recovery: the copy becomes ONLINE at its redo point, where a new recovery fork starts.
pub fn bring_online(db: &mut Database, fork_guid: String) {
    let r = db.redo_lsn.unwrap_or(db.next_lsn);
    db.state = DbState::Online;
    db.lineage.push((fork_guid, r));
    db.next_lsn = r;
    // Recovery writes a log record of its own.
    db.log_record();
    db.redo_lsn = None;
    if db.database_backup_lsn.is_some() && db.recovery != "SIMPLE" {
        db.log_chain = Some(r);
    }
}

fn header_columns() -> Vec<Column> {
    let nv = |n: &str| Column {
        name: n.into(),
        ty: ColumnType::NVarChar(Some(128)),
        nullable: true,
    };
    let lsn = |n: &str| Column {
        name: n.into(),
        ty: ColumnType::Numeric {
            precision: 25,
            scale: 0,
        },
        nullable: true,
    };
    let int = |n: &str, ty: ColumnType| Column {
        name: n.into(),
        ty,
        nullable: true,
    };
    vec![
        nv("BackupName"),
        nv("BackupDescription"),
        int("BackupType", ColumnType::Int),
        int("ExpirationDate", ColumnType::DateTime),
        int("Compressed", ColumnType::Bit),
        int("Position", ColumnType::Int),
        int("DeviceType", ColumnType::Int),
        nv("UserName"),
        nv("ServerName"),
        nv("DatabaseName"),
        int("DatabaseVersion", ColumnType::Int),
        int("DatabaseCreationDate", ColumnType::DateTime),
        int(
            "BackupSize",
            ColumnType::Numeric {
                precision: 20,
                scale: 0,
            },
        ),
        lsn("FirstLSN"),
        lsn("LastLSN"),
        lsn("CheckpointLSN"),
        lsn("DatabaseBackupLSN"),
        int("BackupStartDate", ColumnType::DateTime),
        int("BackupFinishDate", ColumnType::DateTime),
        nv("MachineName"),
        nv("RecoveryModel"),
        int("FamilyGUID", ColumnType::UniqueIdentifier),
        int("HasBackupChecksums", ColumnType::Bit),
        int("IsForceOffline", ColumnType::Bit),
        int("IsCopyOnly", ColumnType::Bit),
        lsn("ForkPointLSN"),
        int("FirstRecoveryForkID", ColumnType::UniqueIdentifier),
        int("RecoveryForkID", ColumnType::UniqueIdentifier),
        nv("BackupTypeDescription"),
        int("BackupSetGUID", ColumnType::UniqueIdentifier),
    ]
}

/// Parse `XXXXXXXX-XXXX-...` into the 16 bytes in textual order.
pub fn guid_bytes(s: &str) -> Value {
    let hex: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    if hex.len() != 32 {
        return Value::NVarChar(s.to_string());
    }
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).unwrap_or(0);
    }
    Value::UniqueIdentifier(out)
}

/// RESTORE FILELISTONLY: the data and log file of backup set `file`.
pub fn filelistonly(
    state: &State,
    inst: usize,
    disk: &str,
    file: usize,
) -> Result<ResultSet, Failure> {
    let set = read_set(state, inst, disk, file, "RESTORE FILELIST")?;
    let col = |name: &str, ty: ColumnType| Column {
        name: name.into(),
        ty,
        nullable: true,
    };
    let nv = ColumnType::NVarChar(Some(260));
    let columns = vec![
        col("LogicalName", ColumnType::NVarChar(Some(128))),
        col("PhysicalName", nv),
        col("Type", ColumnType::NVarChar(Some(1))),
        col("FileGroupName", ColumnType::NVarChar(Some(128))),
        col(
            "Size",
            ColumnType::Numeric {
                precision: 20,
                scale: 0,
            },
        ),
        col(
            "MaxSize",
            ColumnType::Numeric {
                precision: 20,
                scale: 0,
            },
        ),
        col("FileId", ColumnType::BigInt),
    ];
    let rows = set
        .files
        .iter()
        .map(|f| {
            vec![
                Value::NVarChar(f.logical_name.clone()),
                Value::NVarChar(f.physical_name.clone()),
                Value::NVarChar(if f.log { "L" } else { "D" }.into()),
                if f.log {
                    Value::Null
                } else {
                    Value::NVarChar("PRIMARY".into())
                },
                Value::Numeric(8 * 1024 * 1024),
                Value::Numeric(if f.log {
                    2_199_023_255_552
                } else {
                    35_184_372_080_640
                }),
                Value::BigInt(f.file_id as i64),
            ]
        })
        .collect();
    Ok(ResultSet { columns, rows })
}

/// RESTORE HEADERONLY: one row per backup set in the media.
pub fn headeronly(state: &State, inst: usize, disk: &str) -> Result<ResultSet, Failure> {
    let media = read_media(state, inst, disk, "RESTORE HEADERONLY")?;
    let rows = media
        .sets
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let opt = |v: &Option<String>| v.clone().map_or(Value::Null, Value::NVarChar);
            vec![
                opt(&s.backup_name),
                Value::Null,
                Value::Int(s.backup_type),
                Value::Null,
                Value::Bit(false),
                Value::Int(i as i32 + 1),
                Value::Int(2),
                Value::NVarChar("sa".into()),
                Value::NVarChar(s.server_name.clone()),
                Value::NVarChar(s.database_name.clone()),
                Value::Int(957),
                Value::DateTime(s.backup_start_date),
                Value::Numeric(8192 * (2 + s.rows.len() as i128)),
                Value::Numeric(s.first_lsn),
                Value::Numeric(s.last_lsn),
                Value::Numeric(s.checkpoint_lsn),
                Value::Numeric(s.database_backup_lsn),
                Value::DateTime(super::model::local(
                    s.backup_start_date,
                    s.utc_offset_minutes,
                )),
                Value::DateTime(super::model::local(
                    s.backup_finish_date,
                    s.utc_offset_minutes,
                )),
                Value::NVarChar(s.server_name.clone()),
                Value::NVarChar(s.recovery_model.clone()),
                guid_bytes(&s.family_guid),
                Value::Bit(s.has_checksums),
                Value::Bit(s.is_force_offline),
                Value::Bit(s.is_copy_only),
                s.fork_point_lsn.map_or(Value::Null, Value::Numeric),
                s.lineage.first().map_or(Value::Null, |f| guid_bytes(&f.0)),
                s.lineage.last().map_or(Value::Null, |f| guid_bytes(&f.0)),
                Value::NVarChar(
                    if s.backup_type == 1 {
                        "Database"
                    } else {
                        "Transaction Log"
                    }
                    .into(),
                ),
                guid_bytes(&s.backup_set_guid),
            ]
        })
        .collect();
    Ok(ResultSet {
        columns: header_columns(),
        rows,
    })
}
