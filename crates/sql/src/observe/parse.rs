//! The instance batch's result sets turned into the observation model. Pure functions: the
//! tables come from [`super::tables::run`] or from a unit test.

use chrono::NaiveDateTime;
use jiff::Timestamp;

use super::batch::{HEADER_FOR, Section};
#[cfg(test)]
use super::tables::ServerError;
use super::tables::{Answer, Cell, Record, Table};
use pchat_core::observe::{
    BackupFile, BackupType, DatabaseFile, DatabaseObservation, DatabaseState, DefaultPaths,
    JobSchedule, LogShippingLink, LogShippingPrimary, LogShippingSecondary, Lsn, LsnPosition,
    MirroringObservation, MirroringRole, MirroringSafety, MirroringState, RecoveryModel,
    RunningOperation, SessionObservation, UserAccess,
};

/// An LSN from a `numeric(25,0)` column, or from the `vlf:block:slot` hexadecimal text that
/// `sys.dm_db_log_stats` reports on SQL Server (the numeric form is the three parts in
/// decimal: `vlf * 10^15 + block * 10^5 + slot`).
pub fn lsn(cell: &Cell) -> Option<Lsn> {
    match cell {
        Cell::Decimal(v, scale) => {
            let v = *v / 10i128.pow(u32::from(*scale));
            u128::try_from(v).ok().map(Lsn)
        }
        Cell::Int(i) => u128::try_from(*i).ok().map(Lsn),
        Cell::Text(s) => {
            let s = s.trim();
            let parts: Vec<&str> = s.split(':').collect();
            if let [vlf, block, slot] = parts.as_slice() {
                let vlf = u128::from_str_radix(vlf, 16).ok()?;
                let block = u128::from_str_radix(block, 16).ok()?;
                let slot = u128::from_str_radix(slot, 16).ok()?;
                vlf.checked_mul(1_000_000_000_000_000)?
                    .checked_add(block.checked_mul(100_000)?)?
                    .checked_add(slot)
                    .map(Lsn)
            } else {
                s.parse().ok().map(Lsn)
            }
        }
        _ => None,
    }
}

/// One row of a catalog view, read so that a value the operator cannot take (an LSN that is
/// not one, a state it does not know, a date that is not a date) is an error naming the
/// instance, the view, the column and the value, rather than a default that could steer a
/// decision (a copy read as MULTI_USER, an end of log read as none).
struct Checked<'a> {
    record: Record<'a>,
    instance: &'a str,
    view: &'static str,
    /// Whose row it is, e.g. the database's name.
    about: String,
}

impl Checked<'_> {
    fn surprise(&self, column: &str, what: &str) -> String {
        let value = match self.record.get(column) {
            Cell::Text(t) => format!("'{}'", t.chars().take(60).collect::<String>()),
            other => format!("{other:?}").chars().take(60).collect(),
        };
        format!(
            "{} answered what the operator cannot read: {}.{column} of {} is {value}, which {what}",
            self.instance, self.view, self.about
        )
    }

    /// An LSN column: NULL is none; anything but an LSN is an error.
    fn lsn(&self, column: &str) -> Result<Option<Lsn>, String> {
        match self.record.get(column) {
            Cell::Null => Ok(None),
            cell => lsn(cell)
                .map(Some)
                .ok_or_else(|| self.surprise(column, "is not an LSN")),
        }
    }

    /// A `*_desc` column naming one of `known`: NULL is none; another text is an error.
    fn one_of<T: Copy>(&self, column: &str, known: &[(&str, T)]) -> Result<Option<T>, String> {
        let Some(text) = self.record.text(column) else {
            return match self.record.get(column) {
                Cell::Null | Cell::Text(_) => Ok(None),
                _ => Err(self.surprise(column, "is not text")),
            };
        };
        known
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(&text))
            .map(|(_, value)| Some(*value))
            .ok_or_else(|| {
                let names: Vec<&str> = known.iter().map(|(n, _)| *n).collect();
                self.surprise(column, &format!("is none of {}", names.join(", ")))
            })
    }

    /// `value` read from `column`, which must not be NULL.
    fn required<T>(&self, column: &str, value: Option<T>) -> Result<T, String> {
        value.ok_or_else(|| self.surprise(column, "is missing"))
    }

    /// A `datetime` column: NULL is none; anything but a date and time is an error.
    fn datetime(&self, column: &str) -> Result<Option<NaiveDateTime>, String> {
        match self.record.get(column) {
            Cell::Null => Ok(None),
            Cell::DateTime(t) => Ok(Some(*t)),
            _ => Err(self.surprise(column, "is not a date and time")),
        }
    }
}

/// An LSN column where 0 means "none" (`DatabaseBackupLSN` of a first full backup).
fn nonzero_lsn(cell: &Cell) -> Option<Lsn> {
    lsn(cell).filter(|l| l.0 != 0)
}

/// A server-local `datetime` as an instant, given the server's offset from UTC in minutes.
pub fn instant(local: NaiveDateTime, utc_offset_minutes: i64) -> Option<Timestamp> {
    let utc = local - chrono::Duration::minutes(utc_offset_minutes);
    let t = utc.and_utc();
    Timestamp::new(t.timestamp(), t.timestamp_subsec_nanos() as i32).ok()
}

/// The offset from UTC, in minutes, that held when a backup was taken: `backupset.time_zone`
/// counts it in 15-minute steps (-48 to +48; 127 when unknown). `backup_finish_date` is in the
/// server's local time *of that moment*: converted with today's offset instead, a backup taken
/// before a daylight-saving change would be an hour off, and so would the data-loss estimate
/// of a forced failover. `current` (today's offset) is used only when the set does not say.
fn backup_offset(row: &Record, current: i64) -> i64 {
    match row.get("time_zone").int() {
        Some(quarters @ -48..=48) => quarters * 15,
        _ => current,
    }
}

/// A UTC `datetime` column, else a server-local one converted with the offset.
fn instant_of(r: &Record, utc_column: &str, local_column: &str, offset: i64) -> Option<Timestamp> {
    match r.get(utc_column).datetime() {
        Some(utc) => instant(utc, 0),
        None => instant(r.get(local_column).datetime()?, offset),
    }
}

/// `@@SERVERNAME`, `@@SPID` and the server's offset from UTC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerInfo {
    pub server_name: String,
    pub spid: i64,
    pub utc_offset_minutes: i64,
    /// The default data and log folders, when the server reports both.
    pub default_paths: Option<DefaultPaths>,
    /// `SERVERPROPERTY('ProductVersion')`.
    pub product_version: Option<String>,
}

impl ServerInfo {
    /// How this server lists folders, when its version can be read.
    pub fn folder_lister(&self) -> Option<super::batch::FolderLister> {
        let version = version_parts(self.product_version.as_deref()?)?;
        Some(super::batch::FolderLister::for_major_version(version[0]))
    }
}

/// One file of a folder listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub name: String,
    /// Write time and size: a file rewritten in place (BACKUP ... WITH INIT) is read again.
    pub version: String,
}

/// What one instance's batch returned.
#[derive(Clone, Debug, PartialEq)]
pub struct InstanceData {
    pub server: ServerInfo,
    pub databases: Vec<DatabaseObservation>,
    pub sessions: Vec<SessionObservation>,
    /// BACKUP and RESTORE statements running there.
    pub running_operations: Vec<RunningOperation>,
    /// The copy folder's files, or why it could not be listed.
    pub copy_folder: Result<Vec<Listed>, String>,
    /// The share's files when this instance listed it.
    pub share: Option<Result<Vec<Listed>, String>>,
}

fn section(answer: &Answer, s: Section) -> Option<&Table> {
    answer
        .tables
        .iter()
        .find(|t| t.key().eq_ignore_ascii_case(s.key()))
}

/// The error text of an answer, for a listing that is missing from it.
fn listing_failure(answer: &Answer, what: &str) -> String {
    match &answer.error {
        Some(e) => format!("{what} cannot be listed: error {}: {}", e.number, e.message),
        None => format!("{what} cannot be listed (no answer)"),
    }
}

/// A folder listing section: its files, or the reason it is missing. Either form of
/// [`super::batch::FolderLister`]: the function's result set, named by the section, or the
/// marker followed by xp_fileexist's and xp_dirtree's.
pub fn listing(answer: &Answer, s: Section, what: &str) -> Result<Vec<Listed>, String> {
    if let Some(t) = section(answer, s) {
        return Ok(t
            .records()
            .filter_map(|r| {
                let name = r.text(s.key())?;
                let written = r.get("last_write_time").datetime();
                let size = r.get("size_in_bytes").int();
                Some(Listed {
                    name,
                    version: format!("{written:?}/{size:?}"),
                })
            })
            .collect());
    }
    let marker = super::batch::xp_marker(s);
    let at = answer
        .tables
        .iter()
        .position(|t| t.key().eq_ignore_ascii_case(&marker))
        .ok_or_else(|| listing_failure(answer, what))?;
    let folder = answer.tables[at]
        .records()
        .next()
        .and_then(|r| r.text(&marker))
        .unwrap_or_default();
    let (exists, entries) = match (answer.tables.get(at + 1), answer.tables.get(at + 2)) {
        (Some(e), Some(d))
            if e.key().eq_ignore_ascii_case("File Exists")
                && d.key().eq_ignore_ascii_case("subdirectory") =>
        {
            (e, d)
        }
        _ => return Err(listing_failure(answer, what)),
    };
    let is_folder = exists
        .records()
        .next()
        .is_some_and(|r| r.get("File is a Directory").flag());
    if !is_folder {
        return Err(format!(
            "{what} cannot be listed: xp_fileexist does not see {folder} as a folder (missing, or \
             not readable by the SQL Server service account)"
        ));
    }
    // xp_dirtree gives no write time or size: a file rewritten under the same name is not
    // read again (the operator's own files carry the time in their names).
    Ok(entries
        .records()
        .filter(|r| r.get("file").flag())
        .filter_map(|r| {
            Some(Listed {
                name: r.text("subdirectory")?,
                version: String::new(),
            })
        })
        .collect())
}

/// How often a SQL Agent schedule runs its job: daily (`freq_type` 4), repeating every N
/// seconds (2), minutes (4) or hours (8). None for any other schedule.
fn every_seconds(freq_type: Option<i64>, unit: Option<i64>, n: Option<i64>) -> Option<u64> {
    let n = u64::try_from(n?).ok().filter(|n| *n > 0)?;
    if freq_type? != 4 {
        return None;
    }
    match unit? {
        2 => Some(n),
        4 => Some(n * 60),
        8 => Some(n * 3600),
        _ => None,
    }
}

/// The pool's database names, as the spec spells them: the catalogs report names in their own
/// case, and the observation uses the spec's.
struct PoolDatabases<'a>(&'a [&'a str]);

impl PoolDatabases<'_> {
    /// The spec's spelling of `name`, when it is a pool database.
    fn canonical(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|d| d.eq_ignore_ascii_case(name))
            .map(|d| d.to_string())
    }

    /// The observed database a record names in its `key` column.
    fn named_by<'d>(
        &self,
        databases: &'d mut [DatabaseObservation],
        record: &Record,
        key: &str,
    ) -> Option<&'d mut DatabaseObservation> {
        let name = self.canonical(&record.text(key)?)?;
        databases.iter_mut().find(|d| d.name == name)
    }
}

/// Parse the instance batch. `Err` when a catalog result set is missing: the observation of
/// this instance is then incomplete and must not be used.
pub fn instance(
    answer: &Answer,
    instance: &str,
    pool_databases: &[&str],
    listed_share: bool,
) -> Result<InstanceData, String> {
    let need = |s: Section| {
        section(answer, s).ok_or_else(|| match &answer.error {
            Some(e) => format!(
                "the observation batch failed: error {} (severity {}, state {}): {}",
                e.number, e.class, e.state, e.message
            ),
            None => format!("the observation batch returned no {} result", s.key()),
        })
    };
    let server = server_info(need(Section::Server)?)?;
    // Checked before the rest: on an older server the batch fails at the first newer view
    // (208), which says less than the version does.
    if let Some(problem) = server
        .product_version
        .as_deref()
        .and_then(unsupported_version)
    {
        return Err(problem);
    }
    let offset = server.utc_offset_minutes;
    let pool = PoolDatabases(pool_databases);
    let mut databases = databases(need(Section::Databases)?, &pool, instance)?;
    add_log_shipping_primaries(
        &mut databases,
        need(Section::LogShippingPrimary)?,
        &pool,
        offset,
    );
    add_log_shipping_secondaries(
        &mut databases,
        need(Section::LogShippingSecondary)?,
        &pool,
        offset,
    );
    add_job_schedules(&mut databases, need(Section::LogShippingJobs)?, &pool);
    add_last_log_backups(
        &mut databases,
        need(Section::LastLogBackup)?,
        &pool,
        offset,
        instance,
    )?;
    let sessions = sessions(need(Section::Sessions)?);
    add_files(&mut databases, need(Section::Files)?, &pool);
    let running_operations = running_operations(need(Section::Requests)?);
    Ok(InstanceData {
        server,
        databases,
        sessions,
        running_operations,
        copy_folder: listing(answer, Section::CopyFolder, "the copy folder"),
        share: listed_share.then(|| listing(answer, Section::Share, "the backup share")),
    })
}

/// The server row: `@@SERVERNAME`, `@@SPID` and the offset from UTC.
fn server_info(table: &Table) -> Result<ServerInfo, String> {
    let row = table
        .records()
        .next()
        .ok_or("the observation batch returned no server row")?;
    let default_paths = match (row.text("default_data_path"), row.text("default_log_path")) {
        (Some(data), Some(log)) if !data.is_empty() && !log.is_empty() => {
            Some(DefaultPaths { data, log })
        }
        _ => None,
    };
    Ok(ServerInfo {
        server_name: row.text("server_name").unwrap_or_default(),
        spid: row.get("spid").int().unwrap_or(0),
        utc_offset_minutes: row.get("utc_offset_minutes").int().unwrap_or(0),
        default_paths,
        product_version: row.text("product_version"),
    })
}

/// The pool databases of `sys.databases` (with their mirroring and LSNs), in the pool's order.
fn databases(
    table: &Table,
    pool: &PoolDatabases,
    instance: &str,
) -> Result<Vec<DatabaseObservation>, String> {
    let mut databases = Vec::new();
    for r in table.records() {
        let Some(name) = r
            .text(Section::Databases.key())
            .and_then(|n| pool.canonical(&n))
        else {
            continue;
        };
        let row = Checked {
            record: r,
            instance,
            view: "sys.databases",
            about: name.clone(),
        };
        // A STANDBY secondary shows ONLINE between log restores; it is planned as the
        // RESTORING copy it is (see `DatabaseObservation::standby`).
        let standby = r.get("is_in_standby").flag();
        let state = if standby {
            DatabaseState::Restoring
        } else {
            database_state(&r.text("state_desc").unwrap_or_default())
        };
        let access = row.one_of(
            "user_access_desc",
            &[
                ("MULTI_USER", UserAccess::MultiUser),
                ("SINGLE_USER", UserAccess::SingleUser),
                ("RESTRICTED_USER", UserAccess::RestrictedUser),
            ],
        )?;
        let user_access = row.required("user_access_desc", access)?;
        let model = row.one_of(
            "recovery_model_desc",
            &[
                ("FULL", RecoveryModel::Full),
                ("BULK_LOGGED", RecoveryModel::BulkLogged),
                ("SIMPLE", RecoveryModel::Simple),
            ],
        )?;
        let recovery_model = row.required("recovery_model_desc", model)?;
        let redo_start = row.lsn("redo_start_lsn")?;
        let end_of_log = row.lsn("log_end_lsn")?;
        let fork_point = row.lsn("fork_point_lsn")?.filter(|l| l.0 != 0);
        databases.push(DatabaseObservation {
            name,
            state,
            read_only: r.get("is_read_only").flag(),
            standby,
            user_access,
            recovery_model,
            mirroring: mirroring(&row)?,
            log_shipping_primary: None,
            log_shipping_secondary: None,
            lsn: LsnPosition {
                redo_start: redo_start.filter(|_| state == DatabaseState::Restoring),
                end_of_log: end_of_log.filter(|_| state == DatabaseState::Online),
                fork_point,
            },
            last_log_backup: None,
            files: Vec::new(),
        });
    }
    databases.sort_by_key(|d| pool.0.iter().position(|n| *n == d.name));
    Ok(databases)
}

/// The primary log-shipping configurations: one row per secondary they ship to.
fn add_log_shipping_primaries(
    databases: &mut [DatabaseObservation],
    table: &Table,
    pool: &PoolDatabases,
    offset: i64,
) {
    for row in table.records() {
        let Some(copy) = pool.named_by(databases, &row, Section::LogShippingPrimary.key()) else {
            continue;
        };
        let primary = copy
            .log_shipping_primary
            .get_or_insert_with(|| LogShippingPrimary {
                backup_directory: row.text("backup_directory").unwrap_or_default(),
                backup_share: row.text("backup_share").unwrap_or_default(),
                last_backup_file: row.text("last_backup_file"),
                last_backup_date: instant_of(
                    &row,
                    "last_backup_date_utc",
                    "last_backup_date",
                    offset,
                ),
                secondaries: Vec::new(),
                job_schedules: Vec::new(),
            });
        if let (Some(secondary_server), Some(secondary_database)) =
            (row.text("secondary_server"), row.text("secondary_database"))
        {
            primary.secondaries.push(LogShippingLink {
                secondary_server,
                secondary_database,
            });
        }
    }
}

/// The secondary log-shipping configurations and their last copy and restore.
fn add_log_shipping_secondaries(
    databases: &mut [DatabaseObservation],
    table: &Table,
    pool: &PoolDatabases,
    offset: i64,
) {
    for row in table.records() {
        let Some(copy) = pool.named_by(databases, &row, Section::LogShippingSecondary.key()) else {
            continue;
        };
        copy.log_shipping_secondary = Some(LogShippingSecondary {
            primary_server: row.text("primary_server").unwrap_or_default(),
            primary_database: row.text("primary_database").unwrap_or_default(),
            backup_source_directory: row.text("backup_source_directory").unwrap_or_default(),
            backup_destination_directory: row
                .text("backup_destination_directory")
                .unwrap_or_default(),
            last_copied_file: row.text("last_copied_file"),
            last_copied_date: instant_of(&row, "last_copied_date_utc", "last_copied_date", offset),
            last_restored_file: row.text("last_restored_file"),
            last_restored_date: instant_of(
                &row,
                "last_restored_date_utc",
                "last_restored_date",
                offset,
            ),
            last_restored_latency_minutes: row
                .get("last_restored_latency")
                .int()
                .and_then(|m| u32::try_from(m).ok()),
            job_schedules: Vec::new(),
        });
    }
}

/// The SQL Agent schedules of the log-shipping jobs, on the side of the configuration that
/// owns the job (read after both sides).
fn add_job_schedules(databases: &mut [DatabaseObservation], table: &Table, pool: &PoolDatabases) {
    for row in table.records() {
        let Some(copy) = pool.named_by(databases, &row, Section::LogShippingJobs.key()) else {
            continue;
        };
        let Some(schedule_id) = row
            .get("schedule_id")
            .int()
            .and_then(|i| i32::try_from(i).ok())
        else {
            continue;
        };
        let schedule = JobSchedule {
            job_name: row.text("job_name").unwrap_or_default(),
            schedule_id,
            schedule_name: row.text("schedule_name").unwrap_or_default(),
            enabled: row.get("enabled").flag(),
            every_seconds: every_seconds(
                row.get("freq_type").int(),
                row.get("freq_subday_type").int(),
                row.get("freq_subday_interval").int(),
            ),
        };
        let schedules = match row.text("side").as_deref() {
            Some("primary") => copy
                .log_shipping_primary
                .as_mut()
                .map(|p| &mut p.job_schedules),
            _ => copy
                .log_shipping_secondary
                .as_mut()
                .map(|s| &mut s.job_schedules),
        };
        if let Some(schedules) = schedules {
            schedules.push(schedule);
        }
    }
}

/// Each database's last log backup in msdb's history.
fn add_last_log_backups(
    databases: &mut [DatabaseObservation],
    table: &Table,
    pool: &PoolDatabases,
    offset: i64,
    instance: &str,
) -> Result<(), String> {
    for r in table.records() {
        let Some(copy) = pool.named_by(databases, &r, Section::LastLogBackup.key()) else {
            continue;
        };
        let row = Checked {
            record: r,
            instance,
            view: "msdb.dbo.backupset",
            about: format!("the last log backup of {}", copy.name),
        };
        let first = row.required("first_lsn", row.lsn("first_lsn")?)?;
        let last = row.required("last_lsn", row.lsn("last_lsn")?)?;
        let finished = row
            .datetime("backup_finish_date")?
            .and_then(|t| instant(t, backup_offset(&r, offset)))
            .ok_or_else(|| row.surprise("backup_finish_date", "is not a time of this era"))?;
        copy.last_log_backup = Some(BackupFile {
            path: r.text("physical_device_name").unwrap_or_default(),
            database: copy.name.clone(),
            backup_type: BackupType::Log,
            first_lsn: first,
            last_lsn: last,
            database_backup_lsn: row.lsn("database_backup_lsn")?.filter(|l| l.0 != 0),
            finished_at: finished,
            copy_only: r.get("is_copy_only").flag(),
            force_offline: r.get("is_force_offline").flag(),
            server_name: r.text("server_name").unwrap_or_default(),
        });
    }
    Ok(())
}

/// The user sessions of `sys.dm_exec_sessions`.
fn sessions(table: &Table) -> Vec<SessionObservation> {
    table
        .records()
        .filter_map(|r| {
            Some(SessionObservation {
                session_id: i32::try_from(r.get(Section::Sessions.key()).int()?).ok()?,
                host_name: r.text("host_name").unwrap_or_default(),
                program_name: r.text("program_name").unwrap_or_default(),
                database: r.text("database_name"),
            })
        })
        .collect()
}

/// The oldest SQL Server the observation works on: 2016 SP2 (13.0.5026), the first with
/// `sys.dm_db_log_stats`. Before it no documented view gives a database's end-of-log LSN, which
/// every decision about a copy that may hold writes of its own rests on.
const MINIMUM_VERSION: [u32; 3] = [13, 0, 5026];

/// The numeric parts of a `SERVERPROPERTY('ProductVersion')` (major, minor, build).
pub fn version_parts(version: &str) -> Option<[u32; 3]> {
    let mut parts = version.trim().split('.').map(|p| p.parse::<u32>().ok());
    Some([parts.next()??, parts.next()??, parts.next()??])
}

/// Why an instance of `version` (`SERVERPROPERTY('ProductVersion')`) cannot be observed, when
/// it is older than the operator supports.
fn unsupported_version(version: &str) -> Option<String> {
    let parts = version_parts(version)?;
    if parts >= MINIMUM_VERSION {
        return None;
    }
    let release = match parts[0] {
        9 => "SQL Server 2005",
        10 => "SQL Server 2008 or 2008 R2",
        11 => "SQL Server 2012",
        12 => "SQL Server 2014",
        13 => "SQL Server 2016 before SP2",
        _ => "SQL Server",
    };
    Some(format!(
        "{release} ({version}) is not supported: the operator needs SQL Server 2016 SP2 (13.0.5026) \
         or later, whose sys.dm_db_log_stats gives each copy's end of log (no documented view \
         does before it); nothing is sent to this instance"
    ))
}

/// The BACKUP and RESTORE requests running on the instance.
fn running_operations(table: &Table) -> Vec<RunningOperation> {
    table
        .records()
        .filter_map(|r| {
            Some(RunningOperation {
                session_id: i32::try_from(r.get(Section::Requests.key()).int()?).ok()?,
                command: r.text("command")?,
                percent_complete: r
                    .get("percent_complete")
                    .int()
                    .map_or(0, |p| p.clamp(0, 100) as u8),
                program_name: r.text("program_name").unwrap_or_default(),
            })
        })
        .collect()
}

/// `sys.master_files` rows of the pool's databases, in file order.
fn add_files(databases: &mut [DatabaseObservation], table: &Table, pool: &PoolDatabases) {
    for r in table.records() {
        let Some(database) = pool.named_by(databases, &r, Section::Files.key()) else {
            continue;
        };
        let (Some(logical_name), Some(physical_name)) =
            (r.text("logical_name"), r.text("physical_name"))
        else {
            continue;
        };
        database.files.push(DatabaseFile {
            logical_name,
            // sys.master_files.type: 0 rows, 1 log (2 FILESTREAM, 4 full-text: data-like).
            log: r.get("file_type").int() == Some(1),
            physical_name,
        });
    }
}

/// `sys.databases.state_desc`. A state the model does not name (COPYING, OFFLINE_SECONDARY)
/// reads as OFFLINE: a copy the operator neither uses nor repairs.
fn database_state(desc: &str) -> DatabaseState {
    match desc {
        "ONLINE" => DatabaseState::Online,
        "RESTORING" => DatabaseState::Restoring,
        "RECOVERING" => DatabaseState::Recovering,
        "RECOVERY_PENDING" => DatabaseState::RecoveryPending,
        "SUSPECT" => DatabaseState::Suspect,
        "EMERGENCY" => DatabaseState::Emergency,
        _ => DatabaseState::Offline,
    }
}

/// The database's mirroring session; none when `mirroring_role_desc` is NULL.
fn mirroring(row: &Checked) -> Result<Option<MirroringObservation>, String> {
    let Some(role) = row.one_of(
        "mirroring_role_desc",
        &[
            ("PRINCIPAL", MirroringRole::Principal),
            ("MIRROR", MirroringRole::Mirror),
        ],
    )?
    else {
        return Ok(None);
    };
    let state = row
        .one_of(
            "mirroring_state_desc",
            &[
                ("SUSPENDED", MirroringState::Suspended),
                ("DISCONNECTED", MirroringState::Disconnected),
                ("SYNCHRONIZING", MirroringState::Synchronizing),
                ("PENDING_FAILOVER", MirroringState::PendingFailover),
                ("SYNCHRONIZED", MirroringState::Synchronized),
                ("UNSYNCHRONIZED", MirroringState::Unsynchronized),
            ],
        )?
        .unwrap_or(MirroringState::Disconnected);
    let safety = row
        .one_of(
            "mirroring_safety_level_desc",
            &[
                ("FULL", MirroringSafety::Full),
                ("OFF", MirroringSafety::Off),
                // Shown while the session is being set up (SQL Server's documented value).
                ("UNKNOWN", MirroringSafety::Off),
            ],
        )?
        .unwrap_or(MirroringSafety::Off);
    let r = &row.record;
    Ok(Some(MirroringObservation {
        role,
        state,
        safety,
        partner_name: r.text("mirroring_partner_name").unwrap_or_default(),
        partner_instance: r.text("mirroring_partner_instance").unwrap_or_default(),
        witness_name: r.text("mirroring_witness_name"),
        failover_lsn: row.lsn("mirroring_failover_lsn")?.filter(|l| l.0 != 0),
    }))
}

/// The headers batch: each file's first backup set (the one a RESTORE without `FILE =`
/// applies), by path. A file whose header is missing (unreadable, not a backup, a backup type
/// the model does not know) is left out.
pub fn headers(answer: &Answer, offsets: &HeaderOffsets) -> Vec<BackupFile> {
    let mut out = Vec::new();
    let mut tables = answer.tables.iter().peekable();
    while let Some(t) = tables.next() {
        if !t.key().eq_ignore_ascii_case(HEADER_FOR) {
            continue;
        }
        let Some(path) = t.records().next().and_then(|r| r.text(HEADER_FOR)) else {
            continue;
        };
        let Some(h) = tables.next_if(|n| !n.key().eq_ignore_ascii_case(HEADER_FOR)) else {
            continue;
        };
        let Some(r) = h.records().next() else {
            continue;
        };
        if let Some(f) = header(&r, &path, offsets) {
            out.push(f);
        }
    }
    out
}

/// What converts a header's local BackupFinishDate to an instant: RESTORE HEADERONLY gives
/// the taking server's local time of that moment and no time zone.
pub struct HeaderOffsets<'a> {
    /// Each server's offset from UTC in minutes, by lower-case `@@SERVERNAME`, as this process
    /// last saw it (a server down now keeps the offset it had when it answered).
    pub known: &'a dyn Fn(&str) -> Option<i64>,
    /// The reading instance's offset, for a server this process never reached.
    pub reader: i64,
}

impl HeaderOffsets<'_> {
    /// The offset that held when the backup in `path`, started at local `started`, was taken
    /// on `server`. The known offset of the server, unless the file's name (log shipping's
    /// and the operator's `_yyyymmddhhmmss` in UTC) says the offset was an hour off it then:
    /// a daylight-saving switch since. A server never reached is read by the name alone, and
    /// failing that with the reader's offset.
    pub fn of(&self, server: &str, path: &str, started: Option<NaiveDateTime>) -> i64 {
        let named = started.and_then(|s| offset_from_name(path, s));
        match ((self.known)(&server.to_ascii_lowercase()), named) {
            (Some(known), Some(named)) if (named - known).abs() == 60 => named,
            (Some(known), _) => known,
            (None, Some(named)) => named,
            (None, None) => self.reader,
        }
    }
}

/// The offset from UTC a backup file's name implies: its `_yyyymmddhhmmss` stamp (UTC, when
/// the backup was started) against the header's local BackupStartDate. Only an answer within
/// five seconds of a whole quarter hour counts: a stamp written long before the backup started
/// (a log backup named before a full backup that took an hour) says nothing.
fn offset_from_name(path: &str, started_local: NaiveDateTime) -> Option<i64> {
    let name = path.rsplit(['\\', '/']).next()?;
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
    let stamp = stem.rsplit('_').next()?;
    if stamp.len() != 14 || !stamp.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let named_utc = NaiveDateTime::parse_from_str(stamp, "%Y%m%d%H%M%S").ok()?;
    let seconds = (started_local - named_utc).num_seconds();
    let quarters = (seconds as f64 / 900.0).round() as i64;
    let off_by = (seconds - quarters * 900).abs();
    (off_by <= 5 && quarters.abs() <= 56).then_some(quarters * 15)
}

fn header(r: &Record, path: &str, offsets: &HeaderOffsets) -> Option<BackupFile> {
    let backup_type = match r.get("BackupType").int()? {
        1 => BackupType::Full,
        2 => BackupType::Log,
        5 => BackupType::Differential,
        _ => return None,
    };
    let server_name = r.text("ServerName").unwrap_or_default();
    Some(BackupFile {
        path: path.to_string(),
        database: r.text("DatabaseName")?,
        backup_type,
        first_lsn: lsn(r.get("FirstLSN"))?,
        last_lsn: lsn(r.get("LastLSN"))?,
        database_backup_lsn: nonzero_lsn(r.get("DatabaseBackupLSN")),
        finished_at: instant(
            r.get("BackupFinishDate").datetime()?,
            offsets.of(&server_name, path, r.get("BackupStartDate").datetime()),
        )?,
        copy_only: r.get("IsCopyOnly").flag(),
        force_offline: r.get("IsForceOffline").flag(),
        server_name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(cols: &[&str], rows: Vec<Vec<Cell>>) -> Table {
        Table {
            columns: cols.iter().map(|c| c.to_string()).collect(),
            rows,
        }
    }

    fn t(s: &str) -> Cell {
        Cell::Text(s.into())
    }

    fn dt(s: &str) -> Cell {
        Cell::DateTime(NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap())
    }

    #[test]
    fn lsn_reads_numeric_and_the_hex_triple_of_dm_db_log_stats() {
        assert_eq!(
            lsn(&Cell::Decimal(34_000_000_012_300_001, 0)),
            Some(Lsn(34_000_000_012_300_001))
        );
        // 0x22 = 34, 0x7b = 123, 0x1 = 1
        assert_eq!(
            lsn(&t("00000022:0000007b:0001")),
            Some(Lsn(34_000_000_012_300_001))
        );
        assert_eq!(lsn(&Cell::Null), None);
        assert_eq!(lsn(&t("not an lsn")), None);
        // A database whose virtual log files were reused 200,000 times: its LSNs no longer
        // fit 64 bits, in either form.
        let wide = Lsn(200_000 * 10u128.pow(15) + 16 * 100_000 + 1);
        assert!(wide.0 > u128::from(u64::MAX));
        assert_eq!(lsn(&t("00030d40:00000010:0001")), Some(wide));
        assert_eq!(lsn(&Cell::Decimal(wide.0 as i128, 0)), Some(wide));
        // The largest the four-byte sequence number allows.
        assert!(lsn(&t("ffffffff:ffffffff:ffff")).is_some());
    }

    #[test]
    fn local_server_times_become_instants_with_the_server_offset() {
        let local =
            NaiveDateTime::parse_from_str("2026-11-26 07:00:00", "%Y-%m-%d %H:%M:%S").unwrap();
        let i = instant(local, -300).unwrap();
        assert_eq!(i.to_string(), "2026-11-26T12:00:00Z");
    }

    /// A healthy instance's catalog result sets, with `extra` after them: data, one table a
    /// section, long because the catalog is.
    fn catalog(extra: Vec<Table>) -> Answer {
        let mut tables = vec![
            table(
                &[
                    "server_name",
                    "spid",
                    "utc_offset_minutes",
                    "default_data_path",
                    "default_log_path",
                ],
                vec![vec![
                    t("ATL-SQL1"),
                    Cell::Int(52),
                    Cell::Int(0),
                    t(r"D:\SQLData\"),
                    t(r"L:\SQLLogs\"),
                ]],
            ),
            table(
                &[
                    "database_name",
                    "state_desc",
                    "user_access_desc",
                    "recovery_model_desc",
                    "mirroring_role_desc",
                    "mirroring_state_desc",
                    "mirroring_safety_level_desc",
                    "mirroring_partner_name",
                    "mirroring_partner_instance",
                    "mirroring_witness_name",
                    "mirroring_failover_lsn",
                    "redo_start_lsn",
                    "fork_point_lsn",
                    "log_end_lsn",
                ],
                vec![
                    vec![
                        t("MGC"),
                        t("ONLINE"),
                        t("MULTI_USER"),
                        t("FULL"),
                        t("PRINCIPAL"),
                        t("SYNCHRONIZED"),
                        t("FULL"),
                        t("TCP://atl-sql2:5022"),
                        t("atl-sql2"),
                        t(""),
                        Cell::Decimal(90, 0),
                        Cell::Null,
                        Cell::Null,
                        Cell::Decimal(120, 0),
                    ],
                    vec![
                        t("other"),
                        t("ONLINE"),
                        t("MULTI_USER"),
                        t("FULL"),
                        Cell::Null,
                        Cell::Null,
                        Cell::Null,
                        Cell::Null,
                        Cell::Null,
                        Cell::Null,
                        Cell::Null,
                        Cell::Null,
                        Cell::Null,
                        Cell::Decimal(7, 0),
                    ],
                ],
            ),
            table(
                &["ls_primary_database", "backup_share"],
                vec![vec![t("mgc"), t(r"\\atl-fs\pchat-ls")]],
            ),
            table(&["ls_secondary_database"], vec![]),
            table(
                &[
                    "log_backup_database",
                    "server_name",
                    "first_lsn",
                    "last_lsn",
                    "database_backup_lsn",
                    "backup_finish_date",
                    "is_copy_only",
                    "is_force_offline",
                    "physical_device_name",
                ],
                vec![vec![
                    t("mgc"),
                    t("ATL-SQL1"),
                    Cell::Decimal(100, 0),
                    Cell::Decimal(110, 0),
                    Cell::Decimal(50, 0),
                    dt("2026-11-26 12:00:00"),
                    Cell::Bool(false),
                    Cell::Bool(true),
                    t(r"\\atl-fs\pchat-ls\mgc_20261126120000.trn"),
                ]],
            ),
            table(
                &[
                    "ls_job_database",
                    "side",
                    "job_name",
                    "schedule_id",
                    "schedule_name",
                    "enabled",
                    "freq_type",
                    "freq_subday_type",
                    "freq_subday_interval",
                ],
                vec![
                    vec![
                        t("mgc"),
                        t("primary"),
                        t("LSBackup_mgc"),
                        Cell::Int(3),
                        t("LSBackup_mgc_every_300s"),
                        Cell::Bool(true),
                        Cell::Int(4),
                        Cell::Int(4),
                        Cell::Int(5),
                    ],
                    vec![
                        t("mgc"),
                        t("primary"),
                        t("LSBackup_mgc"),
                        Cell::Int(4),
                        t("nightly"),
                        Cell::Bool(false),
                        Cell::Int(4),
                        Cell::Int(1),
                        Cell::Int(0),
                    ],
                ],
            ),
            table(
                &["session_id", "host_name", "program_name", "database_name"],
                vec![vec![
                    Cell::Int(60),
                    t("atl-pc1"),
                    t("Persistent Chat"),
                    t("mgc"),
                ]],
            ),
            table(
                &[
                    "file_database",
                    "file_id",
                    "file_type",
                    "logical_name",
                    "physical_name",
                ],
                vec![
                    vec![
                        t("MGC"),
                        Cell::Int(1),
                        Cell::Int(0),
                        t("mgc"),
                        t(r"D:\SQLData\mgc.mdf"),
                    ],
                    vec![
                        t("MGC"),
                        Cell::Int(2),
                        Cell::Int(1),
                        t("mgc_log"),
                        t(r"L:\SQLLogs\mgc_log.ldf"),
                    ],
                    vec![
                        t("master"),
                        Cell::Int(1),
                        Cell::Int(0),
                        t("master"),
                        t(r"D:\SQLData\master.mdf"),
                    ],
                ],
            ),
            table(
                &[
                    "request_session_id",
                    "command",
                    "percent_complete",
                    "program_name",
                ],
                vec![vec![
                    Cell::Int(61),
                    t("RESTORE DATABASE"),
                    Cell::Int(42),
                    t("pchat-operator"),
                ]],
            ),
        ];
        tables.extend(extra);
        Answer {
            tables,
            error: None,
        }
    }

    #[test]
    fn a_backup_files_utc_stamp_gives_the_offset_only_when_the_backup_started_right_after_it() {
        let local = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap();
        let path = r"\\atl-fs\pchat-ls\mgc_20261126170000.trn";
        // Started two seconds after the stamp, at US Eastern standard time.
        assert_eq!(
            offset_from_name(path, local("2026-11-26 12:00:02")),
            Some(-300)
        );
        assert_eq!(
            offset_from_name(
                r"D:\c\mgc_seed_dal-sql1_20261126170000.bak",
                local("2026-11-26 11:00:01")
            ),
            Some(-360)
        );
        // Named an hour and three minutes before it started (after a long full backup).
        assert_eq!(offset_from_name(path, local("2026-11-26 13:03:40")), None);
        assert_eq!(
            offset_from_name(r"\\fs\s\mgc.trn", local("2026-11-26 12:00:00")),
            None
        );
        let known = |server: &str| (server == "atl-sql1").then_some(-240);
        let offsets = HeaderOffsets {
            known: &known,
            reader: -360,
        };
        // Taken before a daylight-saving switch: the name's offset, an hour off today's.
        assert_eq!(
            offsets.of("ATL-SQL1", path, Some(local("2026-11-26 12:00:02"))),
            -300
        );
        // A name that says nothing: the server's known offset, else the reader's.
        assert_eq!(
            offsets.of("atl-sql1", "x.trn", Some(local("2026-11-26 12:00:02"))),
            -240
        );
        assert_eq!(offsets.of("other", "x.trn", None), -360);
    }

    #[test]
    fn a_server_older_than_2016_sp2_is_named_with_its_release_and_what_is_needed() {
        let problem = unsupported_version("12.0.6024.0").unwrap();
        assert!(
            problem.contains("SQL Server 2014 (12.0.6024.0)"),
            "{problem}"
        );
        assert!(
            problem.contains("2016 SP2 (13.0.5026) or later"),
            "{problem}"
        );
        let sp1 = unsupported_version("13.0.4001.0").unwrap();
        assert!(
            sp1.contains("SQL Server 2016 before SP2 (13.0.4001.0)"),
            "{sp1}"
        );
        assert_eq!(unsupported_version("13.0.5026.0"), None);
        assert_eq!(unsupported_version("13.0.6300.2"), None);
        assert_eq!(unsupported_version("14.0.1000.169"), None);
        assert_eq!(unsupported_version("16.0.1000.6"), None);
        // A version that cannot be read is left to the observation itself.
        assert_eq!(unsupported_version("unknown"), None);
    }

    /// `answer` with one cell of the set whose first column is `key` replaced.
    fn with_cell(mut answer: Answer, key: &str, column: &str, cell: Cell) -> Answer {
        let table = answer.tables.iter_mut().find(|t| t.key() == key).unwrap();
        let at = table.columns.iter().position(|c| c == column).unwrap();
        table.rows[0][at] = cell;
        answer
    }

    #[test]
    fn a_value_the_operator_cannot_read_is_an_error_naming_the_instance_view_column_and_value() {
        let cases = [
            (
                "database_name",
                "recovery_model_desc",
                t("FUZZY"),
                "atl-sql1 answered what the operator cannot read: sys.databases.recovery_model_desc \
                 of mgc is 'FUZZY', which is none of FULL, BULK_LOGGED, SIMPLE",
            ),
            (
                "database_name",
                "user_access_desc",
                Cell::Null,
                "sys.databases.user_access_desc of mgc is Null, which is missing",
            ),
            (
                "database_name",
                "log_end_lsn",
                t("not-an-lsn"),
                "sys.databases.log_end_lsn of mgc is 'not-an-lsn', which is not an LSN",
            ),
            (
                "database_name",
                "mirroring_role_desc",
                t("WITNESS"),
                "sys.databases.mirroring_role_desc of mgc is 'WITNESS', which is none of PRINCIPAL, MIRROR",
            ),
            (
                "log_backup_database",
                "first_lsn",
                Cell::Null,
                "msdb.dbo.backupset.first_lsn of the last log backup of mgc is Null, which is missing",
            ),
            (
                "log_backup_database",
                "backup_finish_date",
                t("yesterday"),
                "msdb.dbo.backupset.backup_finish_date of the last log backup of mgc is 'yesterday', which is not a date and time",
            ),
        ];
        for (key, column, cell, expected) in cases {
            let answer = with_cell(catalog(vec![]), key, column, cell);
            let err = instance(&answer, "atl-sql1", &["mgc", "mgccomp"], false).unwrap_err();
            assert!(err.starts_with("atl-sql1 answered"), "{err}");
            assert!(err.contains(expected), "{column}: {err}");
        }
        // What SQL Server documents is read as it is.
        for (column, value) in [
            ("mirroring_safety_level_desc", "UNKNOWN"),
            ("recovery_model_desc", "bulk_logged"),
            ("user_access_desc", "RESTRICTED_USER"),
        ] {
            let answer = with_cell(catalog(vec![]), "database_name", column, t(value));
            assert!(
                instance(&answer, "atl-sql1", &["mgc"], false).is_ok(),
                "{column} {value}"
            );
        }
    }

    /// The three result sets of a SQL Server 2016 listing of the copy folder.
    fn xp_listing(is_folder: bool, entries: &[(&str, bool)]) -> Vec<Table> {
        vec![
            table(
                &["copy_folder_file_folder"],
                vec![vec![t(r"D:\pchat-ls-copy")]],
            ),
            table(
                &[
                    "File Exists",
                    "File is a Directory",
                    "Parent Directory Exists",
                ],
                vec![vec![
                    Cell::Int(0),
                    Cell::Int(is_folder as i64),
                    Cell::Int(1),
                ]],
            ),
            table(
                &["subdirectory", "depth", "file"],
                entries
                    .iter()
                    .map(|(n, f)| vec![t(n), Cell::Int(1), Cell::Int(*f as i64)])
                    .collect(),
            ),
        ]
    }

    #[test]
    fn a_2016_listing_names_the_files_xp_dirtree_gives_and_fails_for_a_folder_it_cannot_see() {
        let listed = instance(
            &catalog(xp_listing(true, &[("mgc_1.trn", true), ("old", false)])),
            "atl-sql1",
            &["mgc"],
            false,
        )
        .unwrap()
        .copy_folder
        .unwrap();
        assert_eq!(
            listed,
            vec![Listed {
                name: "mgc_1.trn".into(),
                version: String::new()
            }]
        );
        let empty = instance(&catalog(xp_listing(true, &[])), "atl-sql1", &["mgc"], false).unwrap();
        assert_eq!(empty.copy_folder, Ok(vec![]), "an empty folder is readable");
        let unreadable = instance(
            &catalog(xp_listing(false, &[])),
            "atl-sql1",
            &["mgc"],
            false,
        )
        .unwrap()
        .copy_folder
        .unwrap_err();
        assert!(
            unreadable.contains(r"xp_fileexist does not see D:\pchat-ls-copy as a folder"),
            "{unreadable}"
        );
    }

    #[test]
    fn the_catalog_sets_fill_databases_sessions_and_the_tail_of_the_log() {
        let listing = table(
            &["copy_folder_file", "last_write_time", "size_in_bytes"],
            vec![vec![
                t("mgc_1.trn"),
                dt("2026-11-26 12:00:00"),
                Cell::Int(10),
            ]],
        );
        let d = instance(
            &catalog(vec![listing]),
            "atl-sql1",
            &["mgc", "mgccomp"],
            false,
        )
        .unwrap();
        assert_eq!(d.server.server_name, "ATL-SQL1");
        assert_eq!(d.databases.len(), 1, "only the pool's databases");
        let mgc = &d.databases[0];
        assert_eq!(mgc.name, "mgc", "the spec's spelling");
        assert_eq!(mgc.lsn.end_of_log, Some(Lsn(120)));
        let m = mgc.mirroring.as_ref().unwrap();
        assert_eq!(m.state, MirroringState::Synchronized);
        assert_eq!(m.witness_name, None, "an empty witness is none");
        let tail = mgc.last_log_backup.as_ref().unwrap();
        assert!(tail.force_offline);
        assert_eq!(tail.last_lsn, Lsn(110));
        assert_eq!(d.sessions[0].database.as_deref(), Some("mgc"));
        // Its files, and where the server puts new ones.
        assert_eq!(
            mgc.files,
            [
                DatabaseFile {
                    logical_name: "mgc".into(),
                    log: false,
                    physical_name: r"D:\SQLData\mgc.mdf".into()
                },
                DatabaseFile {
                    logical_name: "mgc_log".into(),
                    log: true,
                    physical_name: r"L:\SQLLogs\mgc_log.ldf".into()
                }
            ]
        );
        assert_eq!(
            d.running_operations,
            [RunningOperation {
                session_id: 61,
                command: "RESTORE DATABASE".into(),
                percent_complete: 42,
                program_name: "pchat-operator".into()
            }]
        );
        assert_eq!(
            d.server.default_paths,
            Some(DefaultPaths {
                data: r"D:\SQLData\".into(),
                log: r"L:\SQLLogs\".into()
            })
        );
        // The backup job's schedules: every 5 minutes, and a once-a-day one (not repeating).
        let schedules = &mgc.log_shipping_primary.as_ref().unwrap().job_schedules;
        let seen: Vec<(&str, i32, bool, Option<u64>)> = schedules
            .iter()
            .map(|s| {
                (
                    s.job_name.as_str(),
                    s.schedule_id,
                    s.enabled,
                    s.every_seconds,
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("LSBackup_mgc", 3, true, Some(300)),
                ("LSBackup_mgc", 4, false, None)
            ]
        );
        assert_eq!(d.copy_folder.as_ref().unwrap()[0].name, "mgc_1.trn");
        assert_eq!(d.share, None);
    }

    /// `backup_finish_date` is the server's local time when the backup finished: a backup
    /// taken in winter (EST, time_zone -20 quarters) read in summer (today's offset EDT, -240
    /// minutes) is converted with its own offset, not today's; an unknown zone (127) falls back
    /// to today's.
    #[test]
    fn a_backup_finish_time_is_converted_with_the_offset_of_its_own_day() {
        let row = |zone: i64| {
            table(
                &["log_backup_database", "backup_finish_date", "time_zone"],
                vec![vec![t("mgc"), dt("2026-01-15 07:00:00"), Cell::Int(zone)]],
            )
        };
        let today = -240;
        let winter = row(-20);
        let record = winter.records().next().unwrap();
        assert_eq!(backup_offset(&record, today), -300);
        let finished = instant(
            record.get("backup_finish_date").datetime().unwrap(),
            backup_offset(&record, today),
        )
        .unwrap();
        assert_eq!(finished.to_string(), "2026-01-15T12:00:00Z");
        let unknown = row(127);
        assert_eq!(
            backup_offset(&unknown.records().next().unwrap(), today),
            today
        );
    }

    /// A log-shipping secondary restored WITH STANDBY shows ONLINE and read-only between log
    /// restores; it is observed as the RESTORING copy it is (its redo point read), so that no
    /// rule takes it for a second serving copy. A database set READ_ONLY stays ONLINE but is
    /// not writable.
    #[test]
    fn a_standby_copy_is_observed_restoring_and_a_read_only_one_is_not_writable() {
        let rows = table(
            &[
                "database_name",
                "state_desc",
                "user_access_desc",
                "recovery_model_desc",
                "is_read_only",
                "is_in_standby",
                "redo_start_lsn",
                "log_end_lsn",
            ],
            vec![
                vec![
                    t("mgc"),
                    t("ONLINE"),
                    t("MULTI_USER"),
                    t("FULL"),
                    Cell::Bool(true),
                    Cell::Bool(true),
                    Cell::Decimal(4900, 0),
                    Cell::Decimal(5000, 0),
                ],
                vec![
                    t("mgccomp"),
                    t("ONLINE"),
                    t("MULTI_USER"),
                    t("FULL"),
                    Cell::Bool(true),
                    Cell::Bool(false),
                    Cell::Null,
                    Cell::Decimal(70, 0),
                ],
            ],
        );
        let found = databases(&rows, &PoolDatabases(&["mgc", "mgccomp"]), "atl-sql1").unwrap();
        let (standby, read_only) = (&found[0], &found[1]);
        assert_eq!(standby.state, DatabaseState::Restoring);
        assert!(standby.standby && standby.read_only);
        assert_eq!(standby.lsn.redo_start, Some(Lsn(4900)));
        assert_eq!(standby.lsn.end_of_log, None);
        assert_eq!(read_only.state, DatabaseState::Online);
        assert!(read_only.read_only && !read_only.standby);
    }

    #[test]
    fn a_listing_that_failed_carries_the_error_and_the_rest_survives() {
        let mut a = catalog(vec![]);
        a.error = Some(ServerError {
            number: 3,
            state: 0,
            class: 16,
            message: "The system cannot find the path specified.".into(),
        });
        let d = instance(&a, "atl-sql1", &["mgc"], true).unwrap();
        let why = d.share.unwrap().unwrap_err();
        assert!(why.contains("error 3"), "{why}");
        assert!(d.copy_folder.is_err());
        assert_eq!(d.databases.len(), 1);
    }

    #[test]
    fn a_missing_catalog_set_fails_the_whole_instance() {
        let mut a = catalog(vec![]);
        a.tables.retain(|t| t.key() != "session_id");
        let err = instance(&a, "atl-sql1", &["mgc"], false).unwrap_err();
        assert!(err.contains("session_id"), "{err}");
        let mut a = catalog(vec![]);
        a.tables.retain(|t| t.key() != "ls_job_database");
        let err = instance(&a, "atl-sql1", &["mgc"], false).unwrap_err();
        assert!(err.contains("ls_job_database"), "{err}");
    }

    #[test]
    fn a_schedule_repeats_every_n_seconds_minutes_or_hours_of_a_daily_schedule_only() {
        assert_eq!(every_seconds(Some(4), Some(2), Some(30)), Some(30));
        assert_eq!(every_seconds(Some(4), Some(4), Some(5)), Some(300));
        assert_eq!(every_seconds(Some(4), Some(8), Some(2)), Some(7200));
        assert_eq!(every_seconds(Some(4), Some(1), Some(0)), None, "once a day");
        assert_eq!(every_seconds(Some(8), Some(4), Some(5)), None, "weekly");
        assert_eq!(every_seconds(Some(4), Some(4), Some(0)), None);
        assert_eq!(every_seconds(None, Some(4), Some(5)), None);
    }

    #[test]
    fn a_header_that_could_not_be_read_leaves_out_only_its_file() {
        let header_cols = [
            "BackupName",
            "BackupType",
            "ServerName",
            "DatabaseName",
            "FirstLSN",
            "LastLSN",
            "DatabaseBackupLSN",
            "BackupFinishDate",
            "IsForceOffline",
            "IsCopyOnly",
        ];
        let h = |first: i128| {
            table(
                &header_cols,
                vec![vec![
                    Cell::Null,
                    Cell::Int(2),
                    t("atl-sql1"),
                    t("mgc"),
                    Cell::Decimal(first, 0),
                    Cell::Decimal(first + 10, 0),
                    Cell::Decimal(0, 0),
                    dt("2026-11-26 12:00:00"),
                    Cell::Bool(false),
                    Cell::Bool(false),
                ]],
            )
        };
        let marker = |p: &str| table(&[HEADER_FOR], vec![vec![t(p)]]);
        let a = Answer {
            tables: vec![marker("a.trn"), marker("b.trn"), marker("c.trn"), h(30)],
            error: None,
        };
        let files = headers(
            &a,
            &HeaderOffsets {
                known: &|_| Some(0),
                reader: 0,
            },
        );
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].path, "c.trn");
        assert_eq!(files[0].first_lsn, Lsn(30));
        assert_eq!(files[0].database_backup_lsn, None);
        assert_eq!(files[0].backup_type, BackupType::Log);
    }
}

/// Whatever a server answers, reading it never panics: NULLs anywhere, numbers of any width,
/// dates at the ends of the calendar, names with brackets and quotes, sets missing or repeated.
/// A surprise is an error (or a value left out), never a crash of the process that serves
/// every other pool.
#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    /// Every column the readers look at, besides each set's first (key) column.
    const COLUMNS: &[&str] = &[
        "BackupFinishDate",
        "BackupType",
        "DatabaseBackupLSN",
        "DatabaseName",
        "FirstLSN",
        "IsCopyOnly",
        "IsForceOffline",
        "LastLSN",
        "ServerName",
        "backup_directory",
        "backup_finish_date",
        "backup_share",
        "backup_source_directory",
        "database_backup_lsn",
        "database_name",
        "enabled",
        "first_lsn",
        "fork_point_lsn",
        "freq_subday_interval",
        "freq_subday_type",
        "freq_type",
        "host_name",
        "is_copy_only",
        "is_force_offline",
        "is_in_standby",
        "is_read_only",
        "job_name",
        "last_backup_file",
        "last_copied_file",
        "last_lsn",
        "last_restored_file",
        "last_write_time",
        "log_end_lsn",
        "mirroring_failover_lsn",
        "mirroring_partner_instance",
        "mirroring_partner_name",
        "mirroring_role_desc",
        "mirroring_safety_level_desc",
        "mirroring_state_desc",
        "mirroring_witness_name",
        "physical_device_name",
        "primary_database",
        "primary_server",
        "program_name",
        "recovery_model_desc",
        "redo_start_lsn",
        "schedule_id",
        "schedule_name",
        "secondary_database",
        "secondary_server",
        "server_name",
        "side",
        "size_in_bytes",
        "spid",
        "state_desc",
        "user_access_desc",
        "utc_offset_minutes",
        "last_backup_date",
        "last_backup_date_utc",
        "last_copied_date",
        "last_copied_date_utc",
        "last_restored_date",
        "last_restored_date_utc",
        "last_restored_latency",
        "session_id",
        "ls_job_database",
    ];

    const SECTIONS: &[Section] = &[
        Section::Server,
        Section::Databases,
        Section::LogShippingPrimary,
        Section::LogShippingSecondary,
        Section::LastLogBackup,
        Section::LogShippingJobs,
        Section::Sessions,
        Section::Files,
        Section::Requests,
        Section::CopyFolder,
        Section::Share,
    ];

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("mgc".to_string()),
            Just("MGCCOMP".to_string()),
            Just("ONLINE".to_string()),
            Just("RESTORING".to_string()),
            Just("PRINCIPAL".to_string()),
            Just("SYNCHRONIZED".to_string()),
            Just("primary".to_string()),
            Just(String::new()),
            "[\\[\\]'\"a-zA-Z0-9_:.\\\\ -]{0,40}",
            any::<String>(),
        ]
    }

    fn cell() -> impl Strategy<Value = Cell> {
        prop_oneof![
            Just(Cell::Null),
            any::<i64>().prop_map(Cell::Int),
            any::<bool>().prop_map(Cell::Bool),
            text().prop_map(Cell::Text),
            (any::<i128>(), 0u8..=38).prop_map(|(v, scale)| Cell::Decimal(v, scale)),
            (-100_000_000_000i64..300_000_000_000i64).prop_map(|secs| {
                Cell::DateTime(
                    chrono::DateTime::from_timestamp(secs, 0)
                        .map(|d| d.naive_utc())
                        .unwrap_or_default(),
                )
            }),
            Just(Cell::DateTime(NaiveDateTime::MIN)),
            Just(Cell::DateTime(NaiveDateTime::MAX)),
            Just(Cell::Other),
        ]
    }

    /// One result set: a section's key column first, then every column, 0 to 3 rows.
    fn table_of(key: &'static str) -> impl Strategy<Value = Table> {
        let width = COLUMNS.len() + 1;
        prop::collection::vec(prop::collection::vec(cell(), width), 0..3).prop_map(move |rows| {
            let mut columns = vec![key.to_string()];
            columns.extend(COLUMNS.iter().map(|c| c.to_string()));
            Table { columns, rows }
        })
    }

    fn answer() -> impl Strategy<Value = Answer> {
        let sets: Vec<_> = SECTIONS
            .iter()
            .map(|s| prop::option::weighted(0.9, table_of(s.key())))
            .collect();
        (sets, any::<bool>()).prop_map(|(sets, repeat)| {
            let mut tables: Vec<Table> = sets.into_iter().flatten().collect();
            if repeat && let Some(first) = tables.first().cloned() {
                tables.push(first);
            }
            Answer {
                tables,
                error: None,
            }
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn no_answer_makes_the_reader_panic(answer in answer(), listed in any::<bool>()) {
            let _ = instance(&answer, "atl-sql1", &["mgc", "mgccomp"], listed);
        }
    }
}
