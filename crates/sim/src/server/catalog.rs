//! The catalog views and msdb tables as SQLite tables, refreshed from the model before each
//! query that names them. Column names follow the SQL Server documentation; the declared
//! SQLite types carry the SQL Server type so result columns map to the right TDS types.

use chrono::NaiveDateTime;
use rusqlite::types::Value as Sql;

use super::model::{DbState, FIRST_LSN, Instance};

/// `(table, [(column, declared type)])`.
pub type TableDef = (&'static str, &'static [(&'static str, &'static str)]);

const LSN: &str = "NUMERIC(25,0)";
/// `sysname`, the type of SQL Server's object names.
const SYSNAME: &str = "NVARCHAR(128)";
const NVARCHAR_60: &str = "NVARCHAR(60)";
const NVARCHAR_500: &str = "NVARCHAR(500)";
const INT: &str = "INT";
const BIT: &str = "BIT";
const DATETIME: &str = "DATETIME";
const GUID: &str = "UNIQUEIDENTIFIER";

pub const TABLES: &[TableDef] = &[
    (
        "sys.databases",
        &[
            ("name", SYSNAME),
            ("database_id", INT),
            ("source_database_id", INT),
            ("create_date", DATETIME),
            ("compatibility_level", "TINYINT"),
            ("collation_name", SYSNAME),
            ("user_access", "TINYINT"),
            ("user_access_desc", NVARCHAR_60),
            ("is_read_only", BIT),
            ("state", "TINYINT"),
            ("state_desc", NVARCHAR_60),
            ("is_in_standby", BIT),
            ("recovery_model", "TINYINT"),
            ("recovery_model_desc", NVARCHAR_60),
            ("log_reuse_wait_desc", NVARCHAR_60),
        ],
    ),
    (
        "sys.database_mirroring",
        &[
            ("database_id", INT),
            ("mirroring_guid", GUID),
            ("mirroring_state", "TINYINT"),
            ("mirroring_state_desc", NVARCHAR_60),
            ("mirroring_role", "TINYINT"),
            ("mirroring_role_desc", NVARCHAR_60),
            ("mirroring_role_sequence", INT),
            ("mirroring_safety_level", "TINYINT"),
            ("mirroring_safety_level_desc", NVARCHAR_60),
            ("mirroring_safety_sequence", INT),
            ("mirroring_partner_name", SYSNAME),
            ("mirroring_partner_instance", SYSNAME),
            ("mirroring_witness_name", SYSNAME),
            ("mirroring_witness_state", "TINYINT"),
            ("mirroring_witness_state_desc", NVARCHAR_60),
            ("mirroring_failover_lsn", LSN),
            ("mirroring_connection_timeout", INT),
            ("mirroring_redo_queue", INT),
            ("mirroring_end_of_log_lsn", LSN),
            ("mirroring_replication_lsn", LSN),
        ],
    ),
    (
        "sys.master_files",
        &[
            ("database_id", INT),
            ("file_id", INT),
            ("type", "TINYINT"),
            ("type_desc", NVARCHAR_60),
            ("name", SYSNAME),
            ("physical_name", "NVARCHAR(260)"),
            ("state_desc", NVARCHAR_60),
            ("redo_start_lsn", LSN),
            ("redo_target_lsn", LSN),
            ("create_lsn", LSN),
        ],
    ),
    (
        "sys.database_recovery_status",
        &[
            ("database_id", INT),
            ("database_guid", GUID),
            ("family_guid", GUID),
            ("last_log_backup_lsn", LSN),
            ("recovery_fork_guid", GUID),
            ("first_recovery_fork_guid", GUID),
            ("fork_point_lsn", LSN),
        ],
    ),
    (
        "sys.dm_exec_sessions",
        &[
            ("session_id", "SMALLINT"),
            ("login_time", DATETIME),
            ("host_name", SYSNAME),
            ("program_name", SYSNAME),
            ("client_interface_name", SYSNAME),
            ("login_name", SYSNAME),
            ("status", "NVARCHAR(30)"),
            ("database_id", "SMALLINT"),
            ("is_user_process", BIT),
            ("last_request_start_time", DATETIME),
        ],
    ),
    (
        "sys.dm_exec_requests",
        &[
            ("session_id", INT),
            ("command", "NVARCHAR(32)"),
            ("status", "NVARCHAR(30)"),
            ("start_time", DATETIME),
            ("database_id", "SMALLINT"),
            ("percent_complete", "REAL"),
            ("estimated_completion_time", "BIGINT"),
        ],
    ),
    (
        "sys.dm_exec_connections",
        &[
            ("session_id", INT),
            ("connect_time", DATETIME),
            ("net_transport", "NVARCHAR(40)"),
            ("client_net_address", "NVARCHAR(48)"),
            ("encrypt_option", "NVARCHAR(40)"),
        ],
    ),
    (
        "sys.dm_db_log_stats",
        &[
            ("database_id", INT),
            ("recovery_model", NVARCHAR_60),
            ("log_min_lsn", LSN),
            ("log_end_lsn", LSN),
            ("log_backup_lsn", LSN),
            ("log_recovery_lsn", LSN),
        ],
    ),
    (
        "msdb.dbo.backupset",
        &[
            ("backup_set_id", INT),
            ("media_set_id", INT),
            ("name", SYSNAME),
            ("database_name", SYSNAME),
            ("server_name", SYSNAME),
            ("machine_name", SYSNAME),
            ("type", "NCHAR(1)"),
            ("first_lsn", LSN),
            ("last_lsn", LSN),
            ("checkpoint_lsn", LSN),
            ("database_backup_lsn", LSN),
            ("backup_start_date", DATETIME),
            ("backup_finish_date", DATETIME),
            ("time_zone", "SMALLINT"),
            ("is_copy_only", BIT),
            ("is_force_offline", BIT),
            ("recovery_model", NVARCHAR_60),
            ("family_guid", GUID),
        ],
    ),
    (
        "msdb.dbo.backupmediafamily",
        &[
            ("media_set_id", INT),
            ("family_sequence_number", "TINYINT"),
            ("physical_device_name", "NVARCHAR(260)"),
            ("device_type", "TINYINT"),
        ],
    ),
    (
        "msdb.dbo.restorehistory",
        &[
            ("restore_history_id", INT),
            ("restore_date", DATETIME),
            ("destination_database_name", SYSNAME),
            ("user_name", SYSNAME),
            ("backup_set_id", INT),
            ("restore_type", "NCHAR(1)"),
            ("replace", BIT),
            ("recovery", BIT),
        ],
    ),
    (
        "msdb.dbo.log_shipping_primary_databases",
        &[
            ("primary_id", GUID),
            ("primary_database", SYSNAME),
            ("backup_directory", NVARCHAR_500),
            ("backup_share", NVARCHAR_500),
            ("backup_retention_period", INT),
            ("backup_job_id", GUID),
            ("monitor_server", SYSNAME),
            ("monitor_server_security_mode", BIT),
            ("last_backup_file", NVARCHAR_500),
            ("last_backup_date", DATETIME),
            ("user_specified_monitor", BIT),
            ("backup_compression", "TINYINT"),
        ],
    ),
    (
        "msdb.dbo.log_shipping_primary_secondaries",
        &[
            ("secondary_id", GUID),
            ("primary_id", GUID),
            ("secondary_server", SYSNAME),
            ("secondary_database", SYSNAME),
        ],
    ),
    (
        "msdb.dbo.log_shipping_monitor_primary",
        &[
            ("primary_id", GUID),
            ("primary_server", SYSNAME),
            ("primary_database", SYSNAME),
            ("backup_threshold", INT),
            ("threshold_alert", INT),
            ("threshold_alert_enabled", BIT),
            ("last_backup_file", NVARCHAR_500),
            ("last_backup_date", DATETIME),
            ("last_backup_date_utc", DATETIME),
            ("history_retention_period", INT),
        ],
    ),
    (
        "msdb.dbo.log_shipping_secondary",
        &[
            ("secondary_id", GUID),
            ("primary_server", SYSNAME),
            ("primary_database", SYSNAME),
            ("backup_source_directory", NVARCHAR_500),
            ("backup_destination_directory", NVARCHAR_500),
            ("file_retention_period", INT),
            ("copy_job_id", GUID),
            ("restore_job_id", GUID),
            ("monitor_server", SYSNAME),
            ("monitor_server_security_mode", BIT),
            ("user_specified_monitor", BIT),
            ("last_copied_file", NVARCHAR_500),
            ("last_copied_date", DATETIME),
        ],
    ),
    (
        "msdb.dbo.log_shipping_secondary_databases",
        &[
            ("secondary_database", SYSNAME),
            ("secondary_id", GUID),
            ("restore_delay", INT),
            ("restore_all", BIT),
            ("restore_mode", BIT),
            ("disconnect_users", BIT),
            ("block_size", INT),
            ("buffer_count", INT),
            ("max_transfer_size", INT),
            ("last_restored_file", NVARCHAR_500),
            ("last_restored_date", DATETIME),
        ],
    ),
    (
        "msdb.dbo.log_shipping_monitor_secondary",
        &[
            ("secondary_server", SYSNAME),
            ("secondary_database", SYSNAME),
            ("secondary_id", GUID),
            ("primary_server", SYSNAME),
            ("primary_database", SYSNAME),
            ("restore_threshold", INT),
            ("threshold_alert", INT),
            ("threshold_alert_enabled", BIT),
            ("last_copied_file", NVARCHAR_500),
            ("last_copied_date", DATETIME),
            ("last_copied_date_utc", DATETIME),
            ("last_restored_file", NVARCHAR_500),
            ("last_restored_date", DATETIME),
            ("last_restored_date_utc", DATETIME),
            ("last_restored_latency", INT),
            ("history_retention_period", INT),
        ],
    ),
    (
        "msdb.dbo.sysjobs",
        &[
            ("job_id", GUID),
            ("name", SYSNAME),
            ("enabled", "TINYINT"),
            ("description", "NVARCHAR(512)"),
        ],
    ),
    (
        "msdb.dbo.sysschedules",
        &[
            ("schedule_id", INT),
            ("schedule_uid", GUID),
            ("name", SYSNAME),
            ("enabled", INT),
            ("freq_type", INT),
            ("freq_interval", INT),
            ("freq_subday_type", INT),
            ("freq_subday_interval", INT),
            ("freq_relative_interval", INT),
            ("freq_recurrence_factor", INT),
            ("active_start_date", INT),
            ("active_end_date", INT),
            ("active_start_time", INT),
            ("active_end_time", INT),
        ],
    ),
    (
        "msdb.dbo.sysjobschedules",
        &[
            ("schedule_id", INT),
            ("job_id", GUID),
            ("next_run_date", INT),
            ("next_run_time", INT),
        ],
    ),
    (
        "msdb.dbo.sysjobhistory",
        &[
            ("instance_id", INT),
            ("job_id", GUID),
            ("step_id", INT),
            ("step_name", SYSNAME),
            ("message", "NVARCHAR(4000)"),
            ("run_status", INT),
            ("run_date", INT),
            ("run_time", INT),
            ("run_duration", INT),
            ("server", SYSNAME),
        ],
    ),
];

/// The columns of a `dbo.Messages` table.
pub const MESSAGES_COLUMNS: &[(&str, &str)] = &[
    ("MessageId", "BIGINT"),
    ("ChatServer", "NVARCHAR(256)"),
    ("Body", "NVARCHAR(1073741823)"),
    ("PostedAt", "DATETIME2"),
];

pub fn lookup(name: &str) -> Option<&'static TableDef> {
    TABLES.iter().find(|(n, _)| n.eq_ignore_ascii_case(name))
}

/// `d` as `%Y-%m-%d %H:%M:%S%.f` (the fraction in 0, 3, 6 or 9 digits, as chrono writes it).
/// Written by hand: every catalog row carries dates and chrono's formatter reads its pattern
/// anew for each one, which was a third of computing a catalog view's rows.
pub fn fmt_dt(d: NaiveDateTime) -> String {
    use chrono::{Datelike, Timelike};
    if !(0..=9999).contains(&d.year()) {
        return d.format("%Y-%m-%d %H:%M:%S%.f").to_string();
    }
    fn digits(out: &mut String, v: u32, width: u32) {
        for p in (0..width).rev() {
            out.push(char::from(b'0' + (v / 10u32.pow(p) % 10) as u8));
        }
    }
    let mut out = String::with_capacity(29);
    digits(&mut out, d.year() as u32, 4);
    out.push('-');
    digits(&mut out, d.month(), 2);
    out.push('-');
    digits(&mut out, d.day(), 2);
    out.push(' ');
    digits(&mut out, d.hour(), 2);
    out.push(':');
    digits(&mut out, d.minute(), 2);
    out.push(':');
    // A leap second is second 59 with a nanosecond count past one second.
    let (second, nanos) = match d.nanosecond() {
        n if n >= 1_000_000_000 => (d.second() + 1, n - 1_000_000_000),
        n => (d.second(), n),
    };
    digits(&mut out, second, 2);
    match nanos {
        0 => {}
        n if n % 1_000_000 == 0 => {
            out.push('.');
            digits(&mut out, n / 1_000_000, 3);
        }
        n if n % 1_000 == 0 => {
            out.push('.');
            digits(&mut out, n / 1_000, 6);
        }
        n => {
            out.push('.');
            digits(&mut out, n, 9);
        }
    }
    out
}

fn text(s: &str) -> Sql {
    Sql::Text(s.to_string())
}
fn opt_text(s: &Option<String>) -> Sql {
    s.as_ref().map_or(Sql::Null, |v| Sql::Text(v.clone()))
}
fn int(v: i64) -> Sql {
    Sql::Integer(v)
}
fn bit(v: bool) -> Sql {
    Sql::Integer(v as i64)
}
fn lsn(v: i128) -> Sql {
    Sql::Integer(v as i64)
}
fn opt_lsn(v: Option<i128>) -> Sql {
    v.map_or(Sql::Null, lsn)
}
fn datetime(v: NaiveDateTime) -> Sql {
    Sql::Text(fmt_dt(v))
}
fn opt_datetime(v: Option<NaiveDateTime>) -> Sql {
    v.map_or(Sql::Null, datetime)
}

/// Rows of a catalog table, each row in the table's column order.
type Rows = Vec<Vec<Sql>>;

/// The rows of catalog table `name` as instance `inst` shows them.
pub fn rows(inst: &Instance, name: &str) -> Rows {
    let rows_of: fn(&Instance) -> Rows = match name {
        "sys.databases" => databases,
        "sys.database_mirroring" => database_mirroring,
        "sys.master_files" => master_files,
        "sys.database_recovery_status" => database_recovery_status,
        "sys.dm_exec_sessions" => dm_exec_sessions,
        "sys.dm_exec_connections" => dm_exec_connections,
        "sys.dm_exec_requests" => dm_exec_requests,
        "sys.dm_db_log_stats" => dm_db_log_stats,
        "msdb.dbo.backupset" => backupset,
        "msdb.dbo.backupmediafamily" => backupmediafamily,
        "msdb.dbo.restorehistory" => restorehistory,
        "msdb.dbo.log_shipping_primary_databases" => log_shipping_primary_databases,
        "msdb.dbo.log_shipping_primary_secondaries" => log_shipping_primary_secondaries,
        "msdb.dbo.log_shipping_monitor_primary" => log_shipping_monitor_primary,
        "msdb.dbo.log_shipping_secondary" => log_shipping_secondary,
        "msdb.dbo.log_shipping_secondary_databases" => log_shipping_secondary_databases,
        "msdb.dbo.log_shipping_monitor_secondary" => log_shipping_monitor_secondary,
        "msdb.dbo.sysjobs" => sysjobs,
        "msdb.dbo.sysschedules" => sysschedules,
        "msdb.dbo.sysjobschedules" => sysjobschedules,
        "msdb.dbo.sysjobhistory" => sysjobhistory,
        _ => return Vec::new(),
    };
    rows_of(inst)
}

/// The rows of `sys.databases`.
fn databases(inst: &Instance) -> Rows {
    inst.databases
        .iter()
        .map(|d| {
            let recovery_model = match d.recovery.as_str() {
                "FULL" => 1,
                "BULK_LOGGED" => 2,
                _ => 3,
            };
            vec![
                text(&d.name),
                int(d.id as i64),
                Sql::Null,
                datetime(d.create_date),
                int(160),
                text("SQL_Latin1_General_CP1_CI_AS"),
                int(d.access.code() as i64),
                text(d.access.desc()),
                bit(d.read_only),
                int(d.state.code() as i64),
                text(d.state.desc()),
                bit(false),
                int(recovery_model),
                text(&d.recovery),
                text(if d.mirroring.is_some() {
                    "DATABASE_MIRRORING"
                } else if d.recovery == "SIMPLE" {
                    "NOTHING"
                } else {
                    "LOG_BACKUP"
                }),
            ]
        })
        .collect()
}

/// The rows of `sys.database_mirroring`.
fn database_mirroring(inst: &Instance) -> Rows {
    inst.databases
        .iter()
        .map(|d| match &d.mirroring {
            None => {
                let mut r = vec![int(d.id as i64)];
                r.extend(std::iter::repeat_n(Sql::Null, 19));
                r
            }
            Some(m) => vec![
                int(d.id as i64),
                text(&m.guid),
                int(m.state.code() as i64),
                text(m.state.desc()),
                int(m.role.code() as i64),
                text(m.role.desc()),
                int(m.epoch as i64),
                int(if m.safety_full { 2 } else { 1 }),
                text(if m.safety_full { "FULL" } else { "OFF" }),
                int(1),
                text(&m.partner_name),
                text(&m.partner_instance),
                m.witness.as_ref().map_or(text(""), |w| text(w)),
                int(if m.witness.is_some() { 1 } else { 0 }),
                text(if m.witness.is_some() {
                    "CONNECTED"
                } else {
                    "UNKNOWN"
                }),
                lsn(m.failover_lsn),
                int(m.timeout),
                Sql::Null,
                lsn(d.redo_lsn.unwrap_or(d.next_lsn)),
                lsn(d.redo_lsn.unwrap_or(d.next_lsn)),
            ],
        })
        .collect()
}

/// The rows of `sys.master_files`.
fn master_files(inst: &Instance) -> Rows {
    inst.databases
        .iter()
        .flat_map(|d| {
            let redo = if d.state == DbState::Restoring {
                opt_lsn(d.redo_lsn)
            } else {
                Sql::Null
            };
            d.files.iter().map(move |f| {
                vec![
                    int(d.id as i64),
                    int(f.file_id as i64),
                    int(i64::from(f.log)),
                    text(if f.log { "LOG" } else { "ROWS" }),
                    text(&f.logical_name),
                    text(&f.physical_name),
                    text(d.state.desc()),
                    redo.clone(),
                    redo.clone(),
                    lsn(FIRST_LSN),
                ]
            })
        })
        .collect()
}

/// The rows of `sys.database_recovery_status`.
fn database_recovery_status(inst: &Instance) -> Rows {
    inst.databases
        .iter()
        .map(|d| {
            vec![
                int(d.id as i64),
                text(&d.family_guid),
                text(&d.family_guid),
                opt_lsn(d.log_chain),
                text(d.fork_guid()),
                text(d.first_fork_guid()),
                opt_lsn(d.fork_point()),
            ]
        })
        .collect()
}

/// The rows of `sys.dm_exec_requests`: the BACKUP and RESTORE statements running, with
/// their progress. (SQL Server lists every running request; the simulator only the long ones,
/// which are what a client polls.) `database_id` is the session's current database, as on
/// SQL Server, not the one the statement names.
fn dm_exec_requests(inst: &Instance) -> Rows {
    inst.sessions
        .values()
        .filter_map(|s| {
            let r = s.request.as_ref()?;
            let database_id = inst.db(&s.database).map_or(1, |d| d.id as i64);
            let left = r.duration.saturating_sub(r.started.elapsed());
            Some(vec![
                int(s.spid as i64),
                text(r.command),
                text("suspended"),
                datetime(r.start_time),
                int(database_id),
                Sql::Real(r.percent_complete()),
                int(left.as_millis() as i64),
            ])
        })
        .collect()
}

/// The rows of `sys.dm_exec_sessions`.
fn dm_exec_sessions(inst: &Instance) -> Rows {
    inst.sessions
        .values()
        .map(|s| {
            let db_id = inst.db(&s.database).map_or(1, |d| d.id);
            vec![
                int(s.spid as i64),
                datetime(s.login_time),
                text(&s.host_name),
                text(&s.program_name),
                text("TDS"),
                text(&s.login),
                text("sleeping"),
                int(db_id as i64),
                bit(true),
                datetime(s.last_request),
            ]
        })
        .collect()
}

/// The rows of `sys.dm_exec_connections`.
fn dm_exec_connections(inst: &Instance) -> Rows {
    inst.sessions
        .values()
        .map(|s| {
            vec![
                int(s.spid as i64),
                datetime(s.login_time),
                text("TCP"),
                text(s.client_addr.split(':').next().unwrap_or("")),
                text(if s.encrypted { "TRUE" } else { "FALSE" }),
            ]
        })
        .collect()
}

/// The rows of `sys.dm_db_log_stats`.
fn dm_db_log_stats(inst: &Instance) -> Rows {
    inst.databases
        .iter()
        .map(|d| {
            vec![
                int(d.id as i64),
                text(&d.recovery),
                lsn(FIRST_LSN),
                lsn(d.next_lsn),
                opt_lsn(d.log_chain),
                lsn(d.next_lsn),
            ]
        })
        .collect()
}

/// The rows of `msdb.dbo.backupset`.
fn backupset(inst: &Instance) -> Rows {
    inst.msdb
        .backupset
        .iter()
        .map(|r| {
            vec![
                int(r.backup_set_id),
                int(r.media_set_id),
                opt_text(&r.name),
                text(&r.database_name),
                text(&r.server_name),
                text(&r.server_name),
                text(r.type_code),
                lsn(r.first_lsn),
                lsn(r.last_lsn),
                lsn(r.checkpoint_lsn),
                lsn(r.database_backup_lsn),
                datetime(super::model::local(
                    r.backup_start_date,
                    r.utc_offset_minutes,
                )),
                datetime(super::model::local(
                    r.backup_finish_date,
                    r.utc_offset_minutes,
                )),
                // The offset of the moment, in quarter hours.
                int(i64::from(r.utc_offset_minutes / 15)),
                bit(r.is_copy_only),
                bit(r.is_force_offline),
                text(&r.recovery_model),
                text(&r.family_guid),
            ]
        })
        .collect()
}

/// A time msdb keeps in UTC, in the instance's local time (the columns without `_utc`).
/// SQL Server writes them in the local time of the moment; shown with today's offset here,
/// they differ from SQL Server's only for rows written before a daylight-saving switch.
fn local_of(inst: &Instance, utc: Option<chrono::NaiveDateTime>) -> Option<chrono::NaiveDateTime> {
    utc.map(|t| super::model::local(t, inst.utc_offset_minutes))
}

/// The rows of `msdb.dbo.backupmediafamily`.
fn backupmediafamily(inst: &Instance) -> Rows {
    inst.msdb
        .backupset
        .iter()
        .map(|r| {
            vec![
                int(r.media_set_id),
                int(1),
                text(&r.physical_device_name),
                int(2),
            ]
        })
        .collect()
}

/// The rows of `msdb.dbo.restorehistory`.
fn restorehistory(inst: &Instance) -> Rows {
    inst.msdb
        .restorehistory
        .iter()
        .map(|r| {
            vec![
                int(r.restore_history_id),
                datetime(super::model::local(r.restore_date, inst.utc_offset_minutes)),
                text(&r.destination_database_name),
                text(&r.user_name),
                int(r.backup_set_id),
                text(r.restore_type),
                bit(r.replace),
                bit(r.recovery),
            ]
        })
        .collect()
}

/// The rows of `msdb.dbo.log_shipping_primary_databases`.
fn log_shipping_primary_databases(inst: &Instance) -> Rows {
    inst.msdb
        .log_shipping_primaries
        .iter()
        .map(|p| {
            vec![
                text(&p.primary_id),
                text(&p.primary_database),
                text(&p.backup_directory),
                text(&p.backup_share),
                int(p.backup_retention_period as i64),
                text(&p.backup_job_id),
                Sql::Null,
                bit(true),
                opt_text(&p.last_backup_file),
                opt_datetime(local_of(inst, p.last_backup_date)),
                bit(false),
                int(2),
            ]
        })
        .collect()
}

/// The rows of `msdb.dbo.log_shipping_primary_secondaries`.
fn log_shipping_primary_secondaries(inst: &Instance) -> Rows {
    inst.msdb
        .log_shipping_primary_secondaries
        .iter()
        .map(|p| {
            vec![
                text(&p.secondary_id),
                text(&p.primary_id),
                text(&p.secondary_server),
                text(&p.secondary_database),
            ]
        })
        .collect()
}

/// The rows of `msdb.dbo.log_shipping_monitor_primary`.
fn log_shipping_monitor_primary(inst: &Instance) -> Rows {
    inst.msdb
        .log_shipping_primaries
        .iter()
        .map(|p| {
            vec![
                text(&p.primary_id),
                text(&inst.name),
                text(&p.primary_database),
                int(p.backup_threshold as i64),
                int(14420),
                bit(p.threshold_alert_enabled),
                opt_text(&p.last_backup_file),
                opt_datetime(local_of(inst, p.last_backup_date)),
                opt_datetime(p.last_backup_date),
                int(p.history_retention_period as i64),
            ]
        })
        .collect()
}

/// The rows of `msdb.dbo.log_shipping_secondary`.
fn log_shipping_secondary(inst: &Instance) -> Rows {
    inst.msdb
        .log_shipping_secondaries
        .iter()
        .map(|s| {
            vec![
                text(&s.secondary_id),
                text(&s.primary_server),
                text(&s.primary_database),
                text(&s.backup_source_directory),
                text(&s.backup_destination_directory),
                int(s.file_retention_period as i64),
                text(&s.copy_job_id),
                text(&s.restore_job_id),
                Sql::Null,
                bit(true),
                bit(false),
                opt_text(&s.last_copied_file),
                opt_datetime(local_of(inst, s.last_copied_date)),
            ]
        })
        .collect()
}

/// The rows of `msdb.dbo.log_shipping_secondary_databases`.
fn log_shipping_secondary_databases(inst: &Instance) -> Rows {
    inst.msdb
        .log_shipping_secondary_databases
        .iter()
        .map(|d| {
            vec![
                text(&d.secondary_database),
                text(&d.secondary_id),
                int(d.restore_delay as i64),
                bit(d.restore_all),
                int(d.restore_mode as i64),
                bit(d.disconnect_users),
                int(-1),
                int(-1),
                int(-1),
                opt_text(&d.last_restored_file),
                opt_datetime(local_of(inst, d.last_restored_date)),
            ]
        })
        .collect()
}

/// The rows of `msdb.dbo.log_shipping_monitor_secondary`.
fn log_shipping_monitor_secondary(inst: &Instance) -> Rows {
    let msdb = &inst.msdb;
    msdb.log_shipping_secondary_databases
        .iter()
        .filter_map(|d| {
            let s = msdb
                .log_shipping_secondaries
                .iter()
                .find(|s| s.secondary_id == d.secondary_id)?;
            Some(vec![
                text(&inst.name),
                text(&d.secondary_database),
                text(&d.secondary_id),
                text(&s.primary_server),
                text(&s.primary_database),
                int(s.restore_threshold as i64),
                int(14421),
                bit(true),
                opt_text(&s.last_copied_file),
                opt_datetime(local_of(inst, s.last_copied_date)),
                opt_datetime(s.last_copied_date),
                opt_text(&d.last_restored_file),
                opt_datetime(local_of(inst, d.last_restored_date)),
                opt_datetime(d.last_restored_date),
                d.last_restored_latency.map_or(Sql::Null, |v| int(v as i64)),
                int(5760),
            ])
        })
        .collect()
}

/// The rows of `msdb.dbo.sysjobs`.
fn sysjobs(inst: &Instance) -> Rows {
    inst.msdb
        .jobs
        .iter()
        .map(|j| {
            vec![
                text(&j.job_id),
                text(&j.name),
                bit(j.enabled),
                text("Log shipping job"),
            ]
        })
        .collect()
}

/// The rows of `msdb.dbo.sysschedules`.
fn sysschedules(inst: &Instance) -> Rows {
    inst.msdb
        .schedules
        .iter()
        .map(|s| {
            vec![
                int(s.schedule_id as i64),
                text(&s.schedule_uid),
                text(&s.name),
                int(s.enabled as i64),
                int(s.freq_type as i64),
                int(s.freq_interval as i64),
                int(s.freq_subday_type as i64),
                int(s.freq_subday_interval as i64),
                int(0),
                int(0),
                int(s.active_start_date as i64),
                int(s.active_end_date as i64),
                int(s.active_start_time as i64),
                int(s.active_end_time as i64),
            ]
        })
        .collect()
}

/// next_run_date/time are 0, as SQL Server shows them before the agent's first refresh.
fn sysjobschedules(inst: &Instance) -> Rows {
    inst.msdb
        .job_schedules
        .iter()
        .map(|(job_id, schedule_id)| vec![int(*schedule_id as i64), text(job_id), int(0), int(0)])
        .collect()
}

/// The rows of `msdb.dbo.sysjobhistory`.
fn sysjobhistory(inst: &Instance) -> Rows {
    inst.msdb
        .job_history
        .iter()
        .map(|h| {
            let date: i64 = h.run_at.format("%Y%m%d").to_string().parse().unwrap_or(0);
            let time: i64 = h.run_at.format("%H%M%S").to_string().parse().unwrap_or(0);
            vec![
                int(h.instance_id),
                text(&h.job_id),
                int(0),
                text("(Job outcome)"),
                text(&h.message),
                int(h.run_status as i64),
                int(date),
                int(time),
                int(0),
                text(&inst.name),
            ]
        })
        .collect()
}

/// Quote an identifier for SQLite.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Replace the rows of table `name`, which exists with the columns `rows` fit.
pub fn refill(conn: &rusqlite::Connection, name: &str, rows: &[Vec<Sql>]) -> rusqlite::Result<()> {
    let q = quote_ident(name);
    let tx = conn.unchecked_transaction()?;
    tx.prepare_cached(&format!("DELETE FROM {q}"))?
        .execute([])?;
    if let Some(first) = rows.first() {
        let marks = vec!["?"; first.len()].join(", ");
        let mut stmt = tx.prepare_cached(&format!("INSERT INTO {q} VALUES ({marks})"))?;
        for r in rows {
            stmt.execute(rusqlite::params_from_iter(r.iter()))?;
        }
    }
    tx.commit()
}

/// (Re)create table `name` with `columns` and fill it with `rows`.
pub fn load(
    conn: &rusqlite::Connection,
    name: &str,
    columns: &[(&str, &str)],
    rows: &[Vec<Sql>],
) -> rusqlite::Result<()> {
    let q = quote_ident(name);
    let cols: Vec<String> = columns
        .iter()
        .map(|(c, ty)| {
            // SQL Server's default collation is case-insensitive: compare text the same way.
            let collate = if ty.starts_with("NVARCHAR") || ty.starts_with("NCHAR") {
                " COLLATE NOCASE"
            } else {
                ""
            };
            format!("{} {}{collate}", quote_ident(c), ty)
        })
        .collect();
    conn.execute_batch(&format!(
        "DROP TABLE IF EXISTS {q}; CREATE TABLE {q} ({});",
        cols.join(", ")
    ))?;
    if rows.is_empty() {
        return Ok(());
    }
    let marks = vec!["?"; columns.len()].join(", ");
    let tx = conn.unchecked_transaction()?;
    {
        let mut stmt = tx.prepare(&format!("INSERT INTO {q} VALUES ({marks})"))?;
        for r in rows {
            stmt.execute(rusqlite::params_from_iter(r.iter()))?;
        }
    }
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Timelike;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn fmt_dt_writes_what_chrono_writes(
            secs in -62_135_596_800i64..253_402_300_799i64,
            nanos in prop_oneof![
                Just(0u32),
                (0u32..1000).prop_map(|m| m * 1_000_000),
                (0u32..1_000_000).prop_map(|u| u * 1_000),
                0u32..1_000_000_000,
                1_000_000_000u32..2_000_000_000,
            ],
        ) {
            let d = chrono::DateTime::from_timestamp(secs, 0).unwrap().naive_utc();
            let Some(d) = d.with_nanosecond(nanos) else { return Ok(()) };
            prop_assert_eq!(fmt_dt(d), d.format("%Y-%m-%d %H:%M:%S%.f").to_string());
        }
    }

    #[test]
    fn fmt_dt_of_a_year_past_9999_is_chronos() {
        let d = chrono::NaiveDate::from_ymd_opt(12345, 1, 2)
            .unwrap()
            .and_hms_opt(3, 4, 5)
            .unwrap();
        assert_eq!(fmt_dt(d), "+12345-01-02 03:04:05");
    }
}
