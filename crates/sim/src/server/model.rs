//! The model's state: instances, their databases (state, LSNs, rows), sessions, msdb history and
//! log-shipping configuration, agent jobs, and the network (instances up/down, partitions,
//! shares). Everything lives behind the simulator's one mutex; functions here are synchronous.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::NaiveDateTime;
use tokio_util::sync::CancellationToken;

use super::topology::JobIntervals;

/// The first LSN of a new database: large like SQL Server's (VLF:block:slot packed into a
/// decimal) so that tools that parse LSNs as numeric(25,0) see realistic magnitudes.
pub const FIRST_LSN: i128 = 34_000_000_001_000_001;

/// Database states of `sys.databases.state_desc` that the model produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DbState {
    Online,
    Restoring,
    RecoveryPending,
    Offline,
}

impl DbState {
    pub fn code(self) -> i32 {
        match self {
            DbState::Online => 0,
            DbState::Restoring => 1,
            DbState::RecoveryPending => 3,
            DbState::Offline => 6,
        }
    }
    pub fn desc(self) -> &'static str {
        match self {
            DbState::Online => "ONLINE",
            DbState::Restoring => "RESTORING",
            DbState::RecoveryPending => "RECOVERY_PENDING",
            DbState::Offline => "OFFLINE",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Multi,
    Single,
    Restricted,
}

impl Access {
    pub fn code(self) -> i32 {
        match self {
            Access::Multi => 0,
            Access::Single => 1,
            Access::Restricted => 2,
        }
    }
    pub fn desc(self) -> &'static str {
        match self {
            Access::Multi => "MULTI_USER",
            Access::Single => "SINGLE_USER",
            Access::Restricted => "RESTRICTED_USER",
        }
    }
}

/// A row of `dbo.Messages`, with the LSN of the transaction that inserted it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Message {
    pub id: i64,
    pub chat_server: Option<String>,
    pub body: Option<String>,
    pub posted_at: Option<NaiveDateTime>,
    pub lsn: i128,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Principal,
    Mirror,
}

impl Role {
    pub fn code(self) -> i32 {
        match self {
            Role::Principal => 1,
            Role::Mirror => 2,
        }
    }
    pub fn desc(self) -> &'static str {
        match self {
            Role::Principal => "PRINCIPAL",
            Role::Mirror => "MIRROR",
        }
    }
}

/// `sys.database_mirroring.mirroring_state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MirrorState {
    Suspended,
    Disconnected,
    Synchronizing,
    Synchronized,
}

impl MirrorState {
    pub fn code(self) -> i32 {
        match self {
            MirrorState::Suspended => 0,
            MirrorState::Disconnected => 1,
            MirrorState::Synchronizing => 2,
            MirrorState::Synchronized => 4,
        }
    }
    pub fn desc(self) -> &'static str {
        match self {
            MirrorState::Suspended => "SUSPENDED",
            MirrorState::Disconnected => "DISCONNECTED",
            MirrorState::Synchronizing => "SYNCHRONIZING",
            MirrorState::Synchronized => "SYNCHRONIZED",
        }
    }
}

/// One side of a mirroring session.
#[derive(Clone, Debug)]
pub struct Mirroring {
    pub role: Role,
    /// The partner's endpoint, `TCP://host:port`, as `mirroring_partner_name` shows it.
    pub partner_name: String,
    /// The partner's instance name (`mirroring_partner_instance`).
    pub partner_instance: String,
    pub state: MirrorState,
    pub safety_full: bool,
    pub witness: Option<String>,
    pub failover_lsn: i128,
    /// Bumped on every role change; when two partners disagree after a reconnection, the
    /// side with the higher epoch is the principal (the one that was forced into service).
    pub epoch: u64,
    pub guid: String,
    pub timeout: i64,
}

/// The mirror side's `SET PARTNER`, waiting for the principal's.
#[derive(Clone, Debug)]
pub struct PendingPartner {
    pub partner_instance: String,
}

/// One copy of a database on one instance.
#[derive(Clone, Debug)]
pub struct Database {
    pub id: i32,
    pub name: String,
    pub state: DbState,
    pub access: Access,
    /// `ALTER DATABASE ... SET READ_ONLY`: no login, sysadmin included, may change it; reads
    /// and backups go on.
    pub read_only: bool,
    /// FULL, SIMPLE or BULK_LOGGED.
    pub recovery: String,
    /// Identifies the database's lineage across backup and restore (FamilyGUID).
    pub family_guid: String,
    pub create_date: NaiveDateTime,
    pub rows: Vec<Message>,
    /// The next LSN the log will assign: every committed write and every backup advances it.
    pub next_lsn: i128,
    /// Where the next log backup starts; None until a full backup starts the log chain.
    pub log_chain: Option<i128>,
    /// FirstLSN of the full backup that is the base of the log chain (database_backup_lsn).
    pub database_backup_lsn: Option<i128>,
    /// For a RESTORING copy: the LastLSN of the last backup applied (the redo point).
    pub redo_lsn: Option<i128>,
    /// Log backups applied since the last full restore (seeding a mirror needs at least one).
    pub logs_restored: u32,
    /// The recovery path: (recovery fork GUID, LSN where the fork starts), oldest first. Every
    /// recovery (RESTORE .. WITH RECOVERY, FORCE_SERVICE) starts a new fork at its redo point.
    pub lineage: Vec<(String, i128)>,
    pub mirroring: Option<Mirroring>,
    pub pending_partner: Option<PendingPartner>,
    /// The data and log files (sys.master_files); empty for the system databases.
    pub files: Vec<DbFile>,
}

/// `SERVERPROPERTY('ProductVersion')`: major.minor.build.revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProductVersion {
    pub text: String,
    parts: [u32; 4],
}

impl ProductVersion {
    /// SQL Server 2019 RTM, the version an instance runs unless the topology says.
    pub const DEFAULT: &'static str = "15.0.2000.5";

    pub fn parse(text: &str) -> Option<ProductVersion> {
        let numbers: Vec<u32> = text
            .split('.')
            .map(|p| p.parse().ok())
            .collect::<Option<_>>()?;
        let parts: [u32; 4] = numbers.try_into().ok()?;
        Some(ProductVersion {
            text: text.to_string(),
            parts,
        })
    }

    pub fn major(&self) -> u32 {
        self.parts[0]
    }

    /// Whether this version is `minimum` or later.
    pub fn at_least(&self, minimum: [u32; 4]) -> bool {
        self.parts >= minimum
    }
}

/// One file of a database, as `sys.master_files` and RESTORE FILELISTONLY show it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct DbFile {
    pub file_id: i32,
    /// The log file (type 1, `L` in FILELISTONLY); otherwise a data file.
    pub log: bool,
    pub logical_name: String,
    pub physical_name: String,
}

impl DbFile {
    /// The files CREATE DATABASE makes: `<db>.mdf` in the instance's default data folder and
    /// `<db>_log.ldf` in its default log folder.
    pub fn defaults(database: &str, data_path: &str, log_path: &str) -> Vec<DbFile> {
        vec![
            DbFile {
                file_id: 1,
                log: false,
                logical_name: database.to_string(),
                physical_name: format!("{data_path}{database}.mdf"),
            },
            DbFile {
                file_id: 2,
                log: true,
                logical_name: format!("{database}_log"),
                physical_name: format!("{log_path}{database}_log.ldf"),
            },
        ]
    }

    /// The folder the file is in, with its trailing backslash.
    pub fn folder(&self) -> &str {
        self.physical_name
            .rfind('\\')
            .map_or("", |i| &self.physical_name[..=i])
    }
}

impl Database {
    pub fn new(id: i32, name: &str, family_guid: String, now: NaiveDateTime) -> Self {
        Database {
            id,
            name: name.to_string(),
            state: DbState::Online,
            access: Access::Multi,
            read_only: false,
            recovery: "FULL".into(),
            family_guid: family_guid.clone(),
            create_date: now,
            rows: Vec::new(),
            next_lsn: FIRST_LSN,
            log_chain: None,
            database_backup_lsn: None,
            redo_lsn: None,
            logs_restored: 0,
            lineage: vec![(family_guid.clone(), FIRST_LSN)],
            mirroring: None,
            pending_partner: None,
            files: Vec::new(),
        }
    }

    /// Advance the log by one record and return its LSN.
    pub fn log_record(&mut self) -> i128 {
        let lsn = self.next_lsn;
        self.next_lsn += 1;
        lsn
    }

    /// Where the current recovery fork starts (None before the first recovery).
    pub fn fork_point(&self) -> Option<i128> {
        (self.lineage.len() > 1)
            .then(|| self.lineage.last().map(|f| f.1))
            .flatten()
    }

    pub fn fork_guid(&self) -> &str {
        self.lineage.last().map_or("", |f| f.0.as_str())
    }

    pub fn first_fork_guid(&self) -> &str {
        self.lineage.first().map_or("", |f| f.0.as_str())
    }

    pub fn is_system(&self) -> bool {
        self.id <= 4
    }
}

/// A login session on an instance.
#[derive(Clone, Debug)]
pub struct SessionInfo {
    pub spid: i16,
    pub login: String,
    pub host_name: String,
    pub program_name: String,
    pub client_addr: String,
    /// The connection is encrypted (TLS after login).
    pub encrypted: bool,
    pub database: String,
    pub login_time: NaiveDateTime,
    pub last_request: NaiveDateTime,
    pub killed: CancellationToken,
    /// The session's open transaction, if any (see `super::transaction`).
    pub transaction: super::transaction::SessionTransaction,
    /// The BACKUP or RESTORE the session is running (`sys.dm_exec_requests`), while it runs.
    pub request: Option<RunningRequest>,
}

/// A long statement in progress: what `sys.dm_exec_requests` shows of it.
#[derive(Clone, Debug)]
pub struct RunningRequest {
    /// `BACKUP DATABASE`, `BACKUP LOG`, `RESTORE DATABASE` or `RESTORE LOG`.
    pub command: &'static str,
    pub start_time: NaiveDateTime,
    pub started: std::time::Instant,
    /// How long it takes (the statement's latency).
    pub duration: std::time::Duration,
}

impl RunningRequest {
    /// `percent_complete`: the share of its duration already run, below 100 until it ends.
    pub fn percent_complete(&self) -> f64 {
        if self.duration.is_zero() {
            return 0.0;
        }
        (self.started.elapsed().as_secs_f64() / self.duration.as_secs_f64() * 100.0).min(99.9)
    }
}

#[derive(Clone, Debug)]
pub struct BackupSetRow {
    pub backup_set_id: i64,
    pub media_set_id: i64,
    pub name: Option<String>,
    pub database_name: String,
    pub server_name: String,
    pub type_code: &'static str,
    pub first_lsn: i128,
    pub last_lsn: i128,
    pub checkpoint_lsn: i128,
    pub database_backup_lsn: i128,
    /// In UTC; shown in the local time of `utc_offset_minutes`, the offset when it was taken.
    pub backup_start_date: NaiveDateTime,
    pub backup_finish_date: NaiveDateTime,
    pub utc_offset_minutes: i32,
    pub is_copy_only: bool,
    /// Taken WITH NORECOVERY (a tail-log backup that left the database RESTORING).
    pub is_force_offline: bool,
    pub recovery_model: String,
    pub family_guid: String,
    pub physical_device_name: String,
}

#[derive(Clone, Debug)]
pub struct RestoreHistoryRow {
    pub restore_history_id: i64,
    pub restore_date: NaiveDateTime,
    pub destination_database_name: String,
    pub user_name: String,
    pub backup_set_id: i64,
    pub restore_type: &'static str,
    pub replace: bool,
    pub recovery: bool,
}

/// A row of `msdb.dbo.log_shipping_primary_databases` with its monitor columns: a primary
/// database's log-shipping configuration.
#[derive(Clone, Debug)]
pub struct LogShippingPrimary {
    pub primary_id: String,
    pub primary_database: String,
    pub backup_directory: String,
    pub backup_share: String,
    pub backup_retention_period: i32,
    pub backup_job_id: String,
    pub backup_threshold: i32,
    pub threshold_alert_enabled: bool,
    pub history_retention_period: i32,
    pub last_backup_file: Option<String>,
    pub last_backup_date: Option<NaiveDateTime>,
}

/// A row of `msdb.dbo.log_shipping_primary_secondaries`: a secondary the primary ships to.
#[derive(Clone, Debug)]
pub struct LogShippingPrimarySecondary {
    pub secondary_id: String,
    pub primary_id: String,
    pub secondary_server: String,
    pub secondary_database: String,
}

/// A row of `msdb.dbo.log_shipping_secondary`: the secondary's entry for one primary, with
/// its copy and restore jobs.
#[derive(Clone, Debug)]
pub struct LogShippingSecondary {
    pub secondary_id: String,
    pub primary_server: String,
    pub primary_database: String,
    pub backup_source_directory: String,
    pub backup_destination_directory: String,
    pub file_retention_period: i32,
    pub copy_job_id: String,
    pub restore_job_id: String,
    pub restore_threshold: i32,
    pub last_copied_file: Option<String>,
    pub last_copied_date: Option<NaiveDateTime>,
}

/// A row of `msdb.dbo.log_shipping_secondary_databases` with its monitor columns: a database
/// the restore job keeps restoring.
#[derive(Clone, Debug)]
pub struct LogShippingSecondaryDatabase {
    pub secondary_database: String,
    pub secondary_id: String,
    pub restore_delay: i32,
    pub restore_all: bool,
    pub restore_mode: i32,
    pub disconnect_users: bool,
    pub last_restored_file: Option<String>,
    pub last_restored_date: Option<NaiveDateTime>,
    pub last_restored_latency: Option<i32>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobKind {
    /// LSBackup: log backups of a primary database.
    Backup { database: String },
    /// LSCopy: copy new files from the primary's share to the destination folder.
    Copy { secondary_id: String },
    /// LSRestore: restore copied files to every secondary database of that primary.
    Restore { secondary_id: String },
}

#[derive(Clone, Debug)]
pub struct Job {
    pub job_id: String,
    pub name: String,
    pub enabled: bool,
    pub kind: JobKind,
    /// Millisecond tick of the simulator clock at the last run.
    pub last_run_ms: Option<u64>,
    pub run_requested: bool,
}

/// A SQL Agent schedule as `sp_add_schedule` stores it. Only daily schedules
/// (`freq_type = 4`) exist in the model; the `freq_subday_*` pair gives the interval.
#[derive(Clone, Debug)]
pub struct Schedule {
    pub schedule_id: i32,
    pub schedule_uid: String,
    pub name: String,
    pub enabled: bool,
    pub freq_type: i32,
    pub freq_interval: i32,
    /// 1 once a day, 2 seconds, 4 minutes, 8 hours.
    pub freq_subday_type: i32,
    pub freq_subday_interval: i32,
    pub active_start_date: i32,
    pub active_end_date: i32,
    pub active_start_time: i32,
    pub active_end_time: i32,
}

impl Schedule {
    /// How often a job on this schedule runs, in milliseconds.
    pub fn interval_ms(&self) -> u64 {
        let n = self.freq_subday_interval.max(1) as u64;
        match self.freq_subday_type {
            2 => n * 1_000,
            4 => n * 60_000,
            8 => n * 3_600_000,
            // Once a day at active_start_time: every freq_interval days.
            _ => self.freq_interval.max(1) as u64 * 86_400_000,
        }
    }
}

#[derive(Clone, Debug)]
pub struct JobHistoryRow {
    pub instance_id: i64,
    pub job_id: String,
    /// 0 failed, 1 succeeded.
    pub run_status: i32,
    pub message: String,
    pub run_at: NaiveDateTime,
}

/// The msdb content the model keeps (history and log-shipping configuration).
#[derive(Debug, Default)]
pub struct Msdb {
    pub backupset: Vec<BackupSetRow>,
    pub restorehistory: Vec<RestoreHistoryRow>,
    pub log_shipping_primaries: Vec<LogShippingPrimary>,
    pub log_shipping_primary_secondaries: Vec<LogShippingPrimarySecondary>,
    pub log_shipping_secondaries: Vec<LogShippingSecondary>,
    pub log_shipping_secondary_databases: Vec<LogShippingSecondaryDatabase>,
    pub jobs: Vec<Job>,
    pub job_history: Vec<JobHistoryRow>,
    /// SQL Agent schedules (`msdb.dbo.sysschedules`).
    pub schedules: Vec<Schedule>,
    /// Which job runs on which schedule (`msdb.dbo.sysjobschedules`): (job_id, schedule_id).
    pub job_schedules: Vec<(String, i32)>,
    pub next_schedule_id: i32,
    pub next_id: i64,
}

impl Msdb {
    pub fn next_id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }
}

/// One SQL Server instance.
pub struct Instance {
    pub name: String,
    pub site: String,
    /// The mirroring endpoint other partners use, `TCP://name:5022` unless the topology says.
    pub endpoint: String,
    /// Other host names (FQDNs) that resolve to this instance.
    pub aliases: Vec<String>,
    pub listen: String,
    /// `SERVERPROPERTY('InstanceDefaultDataPath')` and `...LogPath`, with their trailing
    /// backslash: the only folders this instance's database files may be in.
    pub data_path: String,
    pub log_path: String,
    pub version: ProductVersion,
    /// Local time minus UTC, in minutes (see the topology's `utc_offset_minutes`); changed by
    /// the `ClockChange` fault, as a daylight-saving switch changes it.
    pub utc_offset_minutes: i32,
    pub logins: Vec<super::topology::LoginDef>,
    pub up: bool,
    pub databases: Vec<Database>,
    pub next_db_id: i32,
    pub sessions: BTreeMap<i16, SessionInfo>,
    pub next_spid: i16,
    pub msdb: Msdb,
    /// The SQLite connection the catalog SELECTs run on. Behind its own lock, so that queries
    /// on different instances run at once under a shared lock of the model.
    pub sqlite: std::sync::Mutex<SqliteTables>,
    /// Every statement run on this instance, newest last, at most `STATEMENT_LOG_CAP`.
    pub statement_log: std::collections::VecDeque<LoggedStatement>,
}

/// An instance's SQLite connection and what each of its tables holds.
pub struct SqliteTables {
    pub connection: rusqlite::Connection,
    /// What each SQLite table was last loaded with (columns and rows), so a query whose
    /// catalog view has not changed reuses the table instead of dropping and refilling it:
    /// an observation batch reads the same views many times a second.
    pub loaded: std::collections::HashMap<String, LoadedTable>,
}

impl SqliteTables {
    /// The tables of `inst`, locked. A panic during a query leaves the tables as they were at
    /// that instant, and `loaded` is forgotten before a table is refilled, so go on serving.
    pub fn of(inst: &Instance) -> std::sync::MutexGuard<'_, SqliteTables> {
        inst.sqlite.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A SQLite table's content as last loaded (see [`SqliteTables::loaded`]).
#[derive(Debug, PartialEq)]
pub struct LoadedTable {
    /// Names and declared types (every source's column list is a constant).
    pub columns: &'static [(&'static str, &'static str)],
    pub rows: Vec<Vec<rusqlite::types::Value>>,
}

/// How many statements an instance's log keeps (the oldest are dropped first).
pub const STATEMENT_LOG_CAP: usize = 50_000;

/// One statement as the instance ran it: who sent it and whether it can change anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedStatement {
    pub at: NaiveDateTime,
    pub session_id: i16,
    pub host_name: String,
    pub program_name: String,
    /// The statement's text as sent.
    pub text: String,
    /// False only for statements that cannot change state: SELECT, RESTORE HEADERONLY /
    /// FILELISTONLY / VERIFYONLY, USE, DECLARE/SET of variables, PRINT, WAITFOR, and the
    /// read-only procedures (sp_who, sp_who2, xp_dirtree, xp_fileexist). Every other procedure counts as a
    /// write.
    pub writes: bool,
    /// The statement came over an encrypted connection.
    pub encrypted: bool,
}

impl Instance {
    /// A new user database's files, in this instance's default folders.
    pub fn default_files(&self, database: &str) -> Vec<DbFile> {
        DbFile::defaults(database, &self.data_path, &self.log_path)
    }

    pub fn db(&self, name: &str) -> Option<&Database> {
        self.databases
            .iter()
            .find(|d| d.name.eq_ignore_ascii_case(name))
    }

    pub fn db_mut(&mut self, name: &str) -> Option<&mut Database> {
        self.databases
            .iter_mut()
            .find(|d| d.name.eq_ignore_ascii_case(name))
    }

    /// Sessions other than `except` whose current database is `db`.
    pub fn sessions_in(&self, db: &str, except: Option<i16>) -> Vec<i16> {
        self.sessions
            .values()
            .filter(|s| s.database.eq_ignore_ascii_case(db) && Some(s.spid) != except)
            .map(|s| s.spid)
            .collect()
    }

    /// End a session: cancel its token (the front end closes the connection) and forget it.
    pub fn kill(&mut self, spid: i16) -> bool {
        match self.sessions.remove(&spid) {
            Some(s) => {
                s.killed.cancel();
                true
            }
            None => false,
        }
    }

    /// Does `host` (from `TCP://host:port`) name this instance?
    pub fn answers_to(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        let first_label = host.split('.').next().unwrap_or("");
        self.name.eq_ignore_ascii_case(&host)
            || self.name.eq_ignore_ascii_case(first_label)
            || self.aliases.iter().any(|a| a.eq_ignore_ascii_case(&host))
            || endpoint_host(&self.endpoint).eq_ignore_ascii_case(&host)
    }
}

/// The host part of `TCP://host:port`.
pub fn endpoint_host(endpoint: &str) -> &str {
    let rest = endpoint
        .strip_prefix("TCP://")
        .or_else(|| endpoint.strip_prefix("tcp://"))
        .unwrap_or(endpoint);
    rest.split(':').next().unwrap_or(rest)
}

/// A file share host declared by the topology.
#[derive(Clone, Debug)]
pub struct Share {
    pub host: String,
    pub share: String,
    pub site: Option<String>,
}

/// A pending "fail the next matching statement" rule.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FailRule {
    pub instance: Option<String>,
    pub pattern: String,
    pub regex: bool,
    pub error: i32,
}

/// The whole simulated world.
pub struct State {
    /// Added with [`State::add_instance`] only, which keeps `by_name` in step.
    pub instances: Vec<Instance>,
    /// Index into `instances` by lower-cased name: a simulator of hundreds of pools looks
    /// instances up by name for every statement and every mirroring session each second.
    pub by_name: std::collections::HashMap<String, usize>,
    pub shares: Vec<Share>,
    pub shares_down: Vec<String>,
    pub partitions: Vec<(Vec<String>, Vec<String>)>,
    pub fail_next: Vec<FailRule>,
    pub intervals: JobIntervals,
    pub state_dir: PathBuf,
    pub guid_counter: u64,
    /// Milliseconds since the simulator started (job scheduling).
    pub clock_ms: u64,
}

impl State {
    /// Add an instance (names are unique, compared without case).
    pub fn add_instance(&mut self, instance: Instance) {
        self.by_name
            .insert(instance.name.to_ascii_lowercase(), self.instances.len());
        self.instances.push(instance);
    }

    pub fn inst(&self, name: &str) -> Option<&Instance> {
        self.inst_index(name).map(|i| &self.instances[i])
    }

    pub fn inst_mut(&mut self, name: &str) -> Option<&mut Instance> {
        self.inst_index(name).map(|i| &mut self.instances[i])
    }

    pub fn inst_index(&self, name: &str) -> Option<usize> {
        self.by_name.get(&name.to_ascii_lowercase()).copied()
    }

    /// A fresh GUID, deterministic per simulator (tests can compare them).
    pub fn new_guid(&mut self) -> String {
        self.guid_counter += 1;
        let n = self.guid_counter;
        format!(
            "{:08X}-{:04X}-4{:03X}-8{:03X}-{:012X}",
            0x5157_0000u32 | (n as u32 & 0xffff),
            (n >> 16) & 0xffff,
            n & 0xfff,
            (n >> 12) & 0xfff,
            n
        )
    }

    /// The instance that `TCP://host:port` names.
    pub fn resolve_endpoint(&self, endpoint: &str) -> Option<&Instance> {
        let host = endpoint_host(endpoint);
        self.instances.iter().find(|i| i.answers_to(host))
    }

    fn site_of(&self, name: &str) -> Option<String> {
        if let Some(i) = self.inst(name) {
            return Some(i.site.clone());
        }
        self.shares
            .iter()
            .find(|s| s.host.eq_ignore_ascii_case(name))
            .and_then(|s| s.site.clone())
    }

    /// True when a partition separates the nodes `a` and `b` (instance names or share hosts).
    pub fn partitioned(&self, a: &str, b: &str) -> bool {
        if self.partitions.is_empty() {
            return false;
        }
        let names = |n: &str| {
            let mut v = vec![n.to_ascii_lowercase()];
            if let Some(site) = self.site_of(n) {
                v.push(site.to_ascii_lowercase());
            }
            v
        };
        let (na, nb) = (names(a), names(b));
        let hit = |set: &Vec<String>, ns: &Vec<String>| {
            set.iter().any(|x| ns.contains(&x.to_ascii_lowercase()))
        };
        self.partitions
            .iter()
            .any(|(l, r)| (hit(l, &na) && hit(r, &nb)) || (hit(l, &nb) && hit(r, &na)))
    }

    /// Can instance `a` talk to instance `b` right now?
    pub fn reachable(&self, a: &str, b: &str) -> bool {
        let up = |n: &str| self.inst(n).is_some_and(|i| i.up);
        up(a) && up(b) && !self.partitioned(a, b)
    }

    /// Can instance `inst` reach the share host `host`?
    pub fn share_reachable(&self, inst: &str, host: &str) -> bool {
        !self
            .shares_down
            .iter()
            .any(|h| h.eq_ignore_ascii_case(host))
            && !self.partitioned(inst, host)
    }
}

/// Do two recovery paths agree on everything before `lsn`? A log backup applies to a copy only
/// when it was taken on the same path up to the copy's redo point (SQL Server's recovery forks).
pub fn same_path(a: &[(String, i128)], b: &[(String, i128)], lsn: i128) -> bool {
    let before = |l: &[(String, i128)]| -> Vec<(String, i128)> {
        l.iter()
            .filter(|(_, start)| *start < lsn)
            .cloned()
            .collect()
    };
    before(a) == before(b)
}

pub fn now() -> NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

/// A UTC instant as local time at `utc_offset_minutes`.
pub fn local(utc: NaiveDateTime, utc_offset_minutes: i32) -> NaiveDateTime {
    utc + chrono::Duration::minutes(i64::from(utc_offset_minutes))
}
