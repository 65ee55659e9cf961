//! The observed-state model: what each SQL instance, share and copy folder reports, and what is
//! currently published to chat servers. The planner decides from this alone.
//!
//! Every type here is plain data, serializable to YAML and JSON, so fixtures can be written by
//! hand. Column names in the docs are SQL Server's own (the catalog views and msdb tables they
//! are read from).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::api::PoolState;

/// A log sequence number, as SQL Server's `numeric(25,0)` LSN columns report it: the virtual
/// log file's sequence number times 10^15, plus the block times 10^5, plus the slot. The
/// sequence number is four bytes and grows every time a virtual log file is reused, so a
/// long-lived database passes 18,446 (where the decimal form outgrows 64 bits) in the
/// ordinary course of its life: 128 bits hold every LSN the column can.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(transparent)]
pub struct Lsn(pub u128);

impl std::fmt::Display for Lsn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One observation of the whole pool, taken in one reconcile pass.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Observation {
    /// When the observation was taken (the engine's clock, not the planner's).
    pub taken_at: Timestamp,
    /// Every instance the spec names, reachable or not.
    pub instances: Vec<InstanceObservation>,
    /// Backup files visible on the sites' shares and in the instances' copy folders.
    #[serde(default)]
    pub backup_locations: Vec<BackupLocation>,
    /// What is currently published to the chat servers (ConfigMap in Kubernetes, a file
    /// locally); `None` when nothing was ever published.
    #[serde(default)]
    pub published: Option<Published>,
}

/// The active-server list and pool state as currently published.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Published {
    /// `Set-CsPersistentChatActiveServer`: the chat servers allowed to connect. Empty while
    /// draining.
    pub active_servers: Vec<String>,
    /// `Set-CsPersistentChatState -PoolState`.
    pub pool_state: PoolState,
    /// When this content was published (the drain timer starts when an empty list is published).
    pub published_at: Timestamp,
}

/// What one SQL instance reports.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InstanceObservation {
    /// Instance name from the spec.
    pub name: String,
    /// Whether the observation batch ran, and if not, why and since when.
    pub reachability: Reachability,
    /// `@@SERVERNAME` as the instance reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// The pool's databases present on this instance (absent ones are not listed).
    #[serde(default)]
    pub databases: Vec<DatabaseObservation>,
    /// User sessions (`sys.dm_exec_sessions`, `is_user_process = 1`) other than the operator's
    /// own, on any database.
    #[serde(default)]
    pub sessions: Vec<SessionObservation>,
    /// Where the instance puts new database files (`SERVERPROPERTY('InstanceDefaultDataPath')`
    /// and `...LogPath`): where a restore onto it moves a copy's files. Absent when the server
    /// does not say (SQL Server before 2012).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_paths: Option<DefaultPaths>,
    /// BACKUP and RESTORE statements running on the instance (`sys.dm_exec_requests`), other
    /// than the observer's: a restore that outlived the operator's command timeout, a
    /// restarted replica's, or a DBA's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub running_operations: Vec<RunningOperation>,
}

/// A BACKUP or RESTORE in progress on an instance.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RunningOperation {
    pub session_id: i32,
    /// `BACKUP DATABASE`, `BACKUP LOG`, `RESTORE DATABASE` or `RESTORE LOG`.
    pub command: String,
    /// `percent_complete`, whole percent.
    pub percent_complete: u8,
    /// The session's program name (`pchat-operator` for the operator's own).
    #[serde(default)]
    pub program_name: String,
}

/// An instance's default data and log folders, as the server reports them (with their
/// trailing separator).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DefaultPaths {
    pub data: String,
    pub log: String,
}

/// One file of a database copy (`sys.master_files`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseFile {
    pub logical_name: String,
    /// The log file; otherwise a data file.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub log: bool,
    pub physical_name: String,
}

impl DatabaseFile {
    /// The file's name without its folder (`mgc.mdf` of `D:\SQLData\mgc.mdf`).
    pub fn file_name(&self) -> &str {
        self.physical_name
            .rsplit(['\\', '/'])
            .next()
            .unwrap_or(&self.physical_name)
    }
}

/// Whether an instance answered.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", tag = "status")]
pub enum Reachability {
    Reachable,
    Unreachable {
        /// The connection or login error, in words.
        reason: String,
        /// Since when it has been unreachable without interruption, as far as this observer
        /// knows (an observer that restarts starts counting again: the conservative choice).
        since: Timestamp,
    },
}

/// `sys.databases.state_desc`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DatabaseState {
    Online,
    Restoring,
    Recovering,
    RecoveryPending,
    Suspect,
    Emergency,
    Offline,
}

/// `sys.databases.user_access_desc`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UserAccess {
    #[default]
    MultiUser,
    SingleUser,
    RestrictedUser,
}

/// `sys.databases.recovery_model_desc`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RecoveryModel {
    #[default]
    Full,
    BulkLogged,
    Simple,
}

/// One of the pool's databases on one instance.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseObservation {
    pub name: String,
    pub state: DatabaseState,
    #[serde(default)]
    pub user_access: UserAccess,
    #[serde(default)]
    pub recovery_model: RecoveryModel,
    /// `sys.databases.is_read_only`: no write is accepted, whatever `state` and `user_access`
    /// say (a STANDBY copy, or `ALTER DATABASE ... SET READ_ONLY`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    /// `sys.databases.is_in_standby`: a log-shipping secondary restored `WITH STANDBY`. SQL
    /// Server shows it ONLINE (read-only, between log restores), but it is a secondary that
    /// further log backups restore into, not a copy that serves: the observer reports its
    /// `state` as RESTORING, which is what the planner must see, and keeps the difference here.
    /// (The operator's own restores are WITH NORECOVERY, which SQL Server applies to a STANDBY
    /// copy too, leaving it RESTORING.)
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub standby: bool,
    /// `sys.database_mirroring`, when the database is a mirroring partner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirroring: Option<MirroringObservation>,
    /// msdb log-shipping primary configuration and monitor row, when this instance is a
    /// log-shipping primary for the database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_shipping_primary: Option<LogShippingPrimary>,
    /// msdb log-shipping secondary configuration and monitor row, when this instance is a
    /// log-shipping secondary for the database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_shipping_secondary: Option<LogShippingSecondary>,
    /// The LSN positions that matter for restores.
    #[serde(default)]
    pub lsn: LsnPosition,
    /// The newest log backup of this database taken on this instance (msdb `backupset`), which
    /// after a tail-log backup is the tail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_log_backup: Option<BackupFile>,
    /// The copy's files, data first: what a restore of its backup onto another instance must
    /// move.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<DatabaseFile>,
}

/// LSN positions of one copy.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct LsnPosition {
    /// RESTORING copies: `sys.master_files.redo_start_lsn`, the LSN the next log restore must
    /// contain (equal to the `last_lsn` of the last backup applied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redo_start: Option<Lsn>,
    /// ONLINE copies: the LSN after the last committed transaction
    /// (`sys.dm_db_log_stats.log_end_lsn`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_of_log: Option<Lsn>,
    /// `sys.database_recovery_status.fork_point_lsn`: where this copy's current recovery fork
    /// began, i.e. the LSN at which it was last brought online by RESTORE ... WITH RECOVERY.
    /// None when it never forked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fork_point: Option<Lsn>,
}

/// `sys.database_mirroring.mirroring_role_desc`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MirroringRole {
    Principal,
    Mirror,
}

/// `sys.database_mirroring.mirroring_state_desc`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MirroringState {
    Suspended,
    Disconnected,
    Synchronizing,
    PendingFailover,
    Synchronized,
    Unsynchronized,
}

/// `sys.database_mirroring.mirroring_safety_level_desc`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MirroringSafety {
    Off,
    Full,
}

/// A row of `sys.database_mirroring` with non-NULL mirroring columns.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MirroringObservation {
    pub role: MirroringRole,
    pub state: MirroringState,
    pub safety: MirroringSafety,
    /// `mirroring_partner_name`: the partner's endpoint, `TCP://host:port`.
    pub partner_name: String,
    /// `mirroring_partner_instance`: the partner's server name.
    pub partner_instance: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witness_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover_lsn: Option<Lsn>,
}

/// msdb `log_shipping_primary_databases` joined with `log_shipping_monitor_primary` and
/// `log_shipping_primary_secondaries`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct LogShippingPrimary {
    pub backup_directory: String,
    pub backup_share: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_backup_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_backup_date: Option<Timestamp>,
    /// `log_shipping_primary_secondaries`: the secondaries linked to this primary.
    #[serde(default)]
    pub secondaries: Vec<LogShippingLink>,
    /// The SQL Agent schedules of the backup job.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub job_schedules: Vec<JobSchedule>,
}

/// A SQL Agent schedule attached to a log-shipping job (`msdb.dbo.sysjobs`, `sysjobschedules`,
/// `sysschedules`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct JobSchedule {
    pub job_name: String,
    pub schedule_id: i32,
    pub schedule_name: String,
    pub enabled: bool,
    /// How often it runs the job: a daily schedule repeating every N seconds, minutes or hours
    /// (`freq_type` 4, `freq_subday_type` 2, 4 or 8). None for any other schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_seconds: Option<u64>,
}

/// A (server, database) pair of `log_shipping_primary_secondaries`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct LogShippingLink {
    pub secondary_server: String,
    pub secondary_database: String,
}

/// msdb `log_shipping_secondary` joined with `log_shipping_secondary_databases` and
/// `log_shipping_monitor_secondary`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct LogShippingSecondary {
    pub primary_server: String,
    pub primary_database: String,
    pub backup_source_directory: String,
    pub backup_destination_directory: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_copied_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_copied_date: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_restored_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_restored_date: Option<Timestamp>,
    /// `log_shipping_monitor_secondary.last_restored_latency`, in minutes; NULL at first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_restored_latency_minutes: Option<u32>,
    /// The SQL Agent schedules of the copy and restore jobs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub job_schedules: Vec<JobSchedule>,
}

/// A user session (`sys.dm_exec_sessions`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SessionObservation {
    pub session_id: i32,
    /// The client's host name, as the client sent it at login.
    pub host_name: String,
    /// The client's program name, as the client sent it at login.
    #[serde(default)]
    pub program_name: String,
    /// `DB_NAME(database_id)`: the session's current database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
}

/// Where backup files are kept.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum LocationKind {
    /// A site's backup share (`spec.sites[].backupShare`).
    Share { site: String },
    /// An instance's copy-destination folder (`spec.sites[].copyDestination` on that instance).
    CopyFolder { instance: String },
}

/// The backup files of one share or copy folder.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BackupLocation {
    #[serde(flatten)]
    pub kind: LocationKind,
    /// UNC path of the share, or the local folder path.
    pub path: String,
    /// Whether the listing succeeded; when false `files` is empty and `reason` says why.
    pub readable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default)]
    pub files: Vec<BackupFile>,
}

/// `BackupType` of RESTORE HEADERONLY / msdb `backupset.type`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BackupType {
    /// `D`: full database backup.
    Full,
    /// `I`: differential.
    Differential,
    /// `L`: transaction log.
    Log,
}

/// One backup file, with what RESTORE HEADERONLY (or msdb `backupset`) says of it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BackupFile {
    /// Full path (UNC or local) of the file.
    pub path: String,
    /// `DatabaseName`.
    pub database: String,
    pub backup_type: BackupType,
    /// `FirstLSN`.
    pub first_lsn: Lsn,
    /// `LastLSN`: the next LSN after the backup (exclusive).
    pub last_lsn: Lsn,
    /// `DatabaseBackupLSN`: the full backup this one is based on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_backup_lsn: Option<Lsn>,
    /// `BackupFinishDate`.
    pub finished_at: Timestamp,
    /// `IsCopyOnly`.
    #[serde(default)]
    pub copy_only: bool,
    /// `IsForceOffline`: taken WITH NORECOVERY (a tail-log backup that left the database
    /// RESTORING).
    #[serde(default)]
    pub force_offline: bool,
    /// The server the backup was taken on (`ServerName`).
    #[serde(default)]
    pub server_name: String,
}

impl Observation {
    /// The observation of one instance.
    pub fn instance(&self, name: &str) -> Option<&InstanceObservation> {
        self.instances.iter().find(|i| i.name == name)
    }

    /// One database on one instance, when the instance answered and the database exists.
    pub fn database(&self, instance: &str, database: &str) -> Option<&DatabaseObservation> {
        self.instance(instance)?.database(database)
    }
}

impl InstanceObservation {
    pub fn is_reachable(&self) -> bool {
        matches!(self.reachability, Reachability::Reachable)
    }

    pub fn database(&self, name: &str) -> Option<&DatabaseObservation> {
        self.databases.iter().find(|d| d.name == name)
    }
}
