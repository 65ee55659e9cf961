//! The catalog views and msdb tables as SQLite tables, refreshed from the model before each
//! query that names them. Column names follow the SQL Server documentation; the declared
//! SQLite types carry the SQL Server type so result columns map to the right TDS types.

use chrono::NaiveDateTime;
use rusqlite::types::Value as Sql;

use super::model::{Instance, State};

/// `(table, [(column, declared type)])`.
pub type TableDef = (&'static str, &'static [(&'static str, &'static str)]);

const LSN: &str = "NUMERIC(25,0)";
const NV: &str = "NVARCHAR(128)";
const NV60: &str = "NVARCHAR(60)";
const NV500: &str = "NVARCHAR(500)";
const INT: &str = "INT";
const BIT: &str = "BIT";
const DT: &str = "DATETIME";
const GUID: &str = "UNIQUEIDENTIFIER";

pub const TABLES: &[TableDef] = &[
    (
        "sys.databases",
        &[
            ("name", NV),
            ("database_id", INT),
            ("source_database_id", INT),
            ("create_date", DT),
            ("compatibility_level", "TINYINT"),
            ("collation_name", NV),
            ("user_access", "TINYINT"),
            ("user_access_desc", NV60),
            ("is_read_only", BIT),
            ("state", "TINYINT"),
            ("state_desc", NV60),
            ("is_in_standby", BIT),
            ("recovery_model", "TINYINT"),
            ("recovery_model_desc", NV60),
            ("log_reuse_wait_desc", NV60),
        ],
    ),
    (
        "sys.database_mirroring",
        &[
            ("database_id", INT),
            ("mirroring_guid", GUID),
            ("mirroring_state", "TINYINT"),
            ("mirroring_state_desc", NV60),
            ("mirroring_role", "TINYINT"),
            ("mirroring_role_desc", NV60),
            ("mirroring_role_sequence", INT),
            ("mirroring_safety_level", "TINYINT"),
            ("mirroring_safety_level_desc", NV60),
            ("mirroring_safety_sequence", INT),
            ("mirroring_partner_name", NV),
            ("mirroring_partner_instance", NV),
            ("mirroring_witness_name", NV),
            ("mirroring_witness_state", "TINYINT"),
            ("mirroring_witness_state_desc", NV60),
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
            ("type_desc", NV60),
            ("name", NV),
            ("physical_name", "NVARCHAR(260)"),
            ("state_desc", NV60),
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
            ("login_time", DT),
            ("host_name", NV),
            ("program_name", NV),
            ("client_interface_name", NV),
            ("login_name", NV),
            ("status", "NVARCHAR(30)"),
            ("database_id", "SMALLINT"),
            ("is_user_process", BIT),
            ("last_request_start_time", DT),
        ],
    ),
    (
        "sys.dm_exec_connections",
        &[
            ("session_id", INT),
            ("connect_time", DT),
            ("net_transport", "NVARCHAR(40)"),
            ("client_net_address", "NVARCHAR(48)"),
        ],
    ),
    (
        "sys.dm_db_log_stats",
        &[
            ("database_id", INT),
            ("recovery_model", NV60),
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
            ("name", NV),
            ("database_name", NV),
            ("server_name", NV),
            ("machine_name", NV),
            ("type", "NCHAR(1)"),
            ("first_lsn", LSN),
            ("last_lsn", LSN),
            ("checkpoint_lsn", LSN),
            ("database_backup_lsn", LSN),
            ("backup_start_date", DT),
            ("backup_finish_date", DT),
            ("is_copy_only", BIT),
            ("is_force_offline", BIT),
            ("recovery_model", NV60),
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
            ("restore_date", DT),
            ("destination_database_name", NV),
            ("user_name", NV),
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
            ("primary_database", NV),
            ("backup_directory", NV500),
            ("backup_share", NV500),
            ("backup_retention_period", INT),
            ("backup_job_id", GUID),
            ("monitor_server", NV),
            ("monitor_server_security_mode", BIT),
            ("last_backup_file", NV500),
            ("last_backup_date", DT),
            ("user_specified_monitor", BIT),
            ("backup_compression", "TINYINT"),
        ],
    ),
    (
        "msdb.dbo.log_shipping_primary_secondaries",
        &[
            ("secondary_id", GUID),
            ("primary_id", GUID),
            ("secondary_server", NV),
            ("secondary_database", NV),
        ],
    ),
    (
        "msdb.dbo.log_shipping_monitor_primary",
        &[
            ("primary_id", GUID),
            ("primary_server", NV),
            ("primary_database", NV),
            ("backup_threshold", INT),
            ("threshold_alert", INT),
            ("threshold_alert_enabled", BIT),
            ("last_backup_file", NV500),
            ("last_backup_date", DT),
            ("last_backup_date_utc", DT),
            ("history_retention_period", INT),
        ],
    ),
    (
        "msdb.dbo.log_shipping_secondary",
        &[
            ("secondary_id", GUID),
            ("primary_server", NV),
            ("primary_database", NV),
            ("backup_source_directory", NV500),
            ("backup_destination_directory", NV500),
            ("file_retention_period", INT),
            ("copy_job_id", GUID),
            ("restore_job_id", GUID),
            ("monitor_server", NV),
            ("monitor_server_security_mode", BIT),
            ("user_specified_monitor", BIT),
            ("last_copied_file", NV500),
            ("last_copied_date", DT),
        ],
    ),
    (
        "msdb.dbo.log_shipping_secondary_databases",
        &[
            ("secondary_database", NV),
            ("secondary_id", GUID),
            ("restore_delay", INT),
            ("restore_all", BIT),
            ("restore_mode", BIT),
            ("disconnect_users", BIT),
            ("block_size", INT),
            ("buffer_count", INT),
            ("max_transfer_size", INT),
            ("last_restored_file", NV500),
            ("last_restored_date", DT),
        ],
    ),
    (
        "msdb.dbo.log_shipping_monitor_secondary",
        &[
            ("secondary_server", NV),
            ("secondary_database", NV),
            ("secondary_id", GUID),
            ("primary_server", NV),
            ("primary_database", NV),
            ("restore_threshold", INT),
            ("threshold_alert", INT),
            ("threshold_alert_enabled", BIT),
            ("last_copied_file", NV500),
            ("last_copied_date", DT),
            ("last_copied_date_utc", DT),
            ("last_restored_file", NV500),
            ("last_restored_date", DT),
            ("last_restored_date_utc", DT),
            ("last_restored_latency", INT),
            ("history_retention_period", INT),
        ],
    ),
    (
        "msdb.dbo.sysjobs",
        &[
            ("job_id", GUID),
            ("name", NV),
            ("enabled", "TINYINT"),
            ("description", "NVARCHAR(512)"),
        ],
    ),
    (
        "msdb.dbo.sysschedules",
        &[
            ("schedule_id", INT),
            ("schedule_uid", GUID),
            ("name", NV),
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
            ("step_name", NV),
            ("message", "NVARCHAR(4000)"),
            ("run_status", INT),
            ("run_date", INT),
            ("run_time", INT),
            ("run_duration", INT),
            ("server", NV),
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

fn t(s: &str) -> Sql {
    Sql::Text(s.to_string())
}
fn ot(s: &Option<String>) -> Sql {
    s.as_ref().map_or(Sql::Null, |v| Sql::Text(v.clone()))
}
fn i(v: i64) -> Sql {
    Sql::Integer(v)
}
fn b(v: bool) -> Sql {
    Sql::Integer(v as i64)
}
fn lsn(v: i128) -> Sql {
    Sql::Integer(v as i64)
}
fn olsn(v: Option<i128>) -> Sql {
    v.map_or(Sql::Null, lsn)
}
fn dt(v: NaiveDateTime) -> Sql {
    Sql::Text(fmt_dt(v))
}
fn odt(v: Option<NaiveDateTime>) -> Sql {
    v.map_or(Sql::Null, dt)
}

/// The rows of catalog table `name` as instance `inst` shows them.
pub fn rows(state: &State, inst: &Instance, name: &str) -> Vec<Vec<Sql>> {
    let msdb = &inst.msdb;
    match name {
        "sys.databases" => inst
            .databases
            .iter()
            .map(|d| {
                let rm = match d.recovery.as_str() {
                    "FULL" => 1,
                    "BULK_LOGGED" => 2,
                    _ => 3,
                };
                vec![
                    t(&d.name),
                    i(d.id as i64),
                    Sql::Null,
                    dt(d.create_date),
                    i(160),
                    t("SQL_Latin1_General_CP1_CI_AS"),
                    i(d.access.code() as i64),
                    t(d.access.desc()),
                    b(false),
                    i(d.state.code() as i64),
                    t(d.state.desc()),
                    b(false),
                    i(rm),
                    t(&d.recovery),
                    t(if d.mirroring.is_some() {
                        "DATABASE_MIRRORING"
                    } else if d.recovery == "SIMPLE" {
                        "NOTHING"
                    } else {
                        "LOG_BACKUP"
                    }),
                ]
            })
            .collect(),
        "sys.database_mirroring" => inst
            .databases
            .iter()
            .map(|d| match &d.mirroring {
                None => {
                    let mut r = vec![i(d.id as i64)];
                    r.extend(std::iter::repeat_n(Sql::Null, 19));
                    r
                }
                Some(m) => vec![
                    i(d.id as i64),
                    t(&m.guid),
                    i(m.state.code() as i64),
                    t(m.state.desc()),
                    i(m.role.code() as i64),
                    t(m.role.desc()),
                    i(m.epoch as i64),
                    i(if m.safety_full { 2 } else { 1 }),
                    t(if m.safety_full { "FULL" } else { "OFF" }),
                    i(1),
                    t(&m.partner_name),
                    t(&m.partner_instance),
                    m.witness.as_ref().map_or(t(""), |w| t(w)),
                    i(if m.witness.is_some() { 1 } else { 0 }),
                    t(if m.witness.is_some() {
                        "CONNECTED"
                    } else {
                        "UNKNOWN"
                    }),
                    lsn(m.failover_lsn),
                    i(m.timeout),
                    Sql::Null,
                    lsn(d.redo_lsn.unwrap_or(d.next_lsn)),
                    lsn(d.redo_lsn.unwrap_or(d.next_lsn)),
                ],
            })
            .collect(),
        "sys.master_files" => inst
            .databases
            .iter()
            .flat_map(|d| {
                let redo = if d.state == super::model::DbState::Restoring {
                    olsn(d.redo_lsn)
                } else {
                    Sql::Null
                };
                [
                    (1, 0, "ROWS", d.name.clone()),
                    (2, 1, "LOG", format!("{}_log", d.name)),
                ]
                .into_iter()
                .map(move |(fid, ty, desc, lname)| {
                    let ext = if ty == 0 { "mdf" } else { "ldf" };
                    vec![
                        i(d.id as i64),
                        i(fid),
                        i(ty),
                        t(desc),
                        t(&lname),
                        t(&format!("D:\\SQLData\\{lname}.{ext}")),
                        t(d.state.desc()),
                        redo.clone(),
                        redo.clone(),
                        lsn(super::model::FIRST_LSN),
                    ]
                })
            })
            .collect(),
        "sys.database_recovery_status" => inst
            .databases
            .iter()
            .map(|d| {
                vec![
                    i(d.id as i64),
                    t(&d.family_guid),
                    t(&d.family_guid),
                    olsn(d.log_chain),
                    t(d.fork_guid()),
                    t(d.first_fork_guid()),
                    olsn(d.fork_point()),
                ]
            })
            .collect(),
        "sys.dm_exec_sessions" => inst
            .sessions
            .values()
            .map(|s| {
                let db_id = inst.db(&s.database).map_or(1, |d| d.id);
                vec![
                    i(s.spid as i64),
                    dt(s.login_time),
                    t(&s.host_name),
                    t(&s.program_name),
                    t("TDS"),
                    t(&s.login),
                    t("sleeping"),
                    i(db_id as i64),
                    b(true),
                    dt(s.last_request),
                ]
            })
            .collect(),
        "sys.dm_exec_connections" => inst
            .sessions
            .values()
            .map(|s| {
                vec![
                    i(s.spid as i64),
                    dt(s.login_time),
                    t("TCP"),
                    t(s.client_addr.split(':').next().unwrap_or("")),
                ]
            })
            .collect(),
        "sys.dm_db_log_stats" => inst
            .databases
            .iter()
            .map(|d| {
                vec![
                    i(d.id as i64),
                    t(&d.recovery),
                    lsn(super::model::FIRST_LSN),
                    lsn(d.next_lsn),
                    olsn(d.log_chain),
                    lsn(d.next_lsn),
                ]
            })
            .collect(),
        "msdb.dbo.backupset" => msdb
            .backupset
            .iter()
            .map(|r| {
                vec![
                    i(r.backup_set_id),
                    i(r.media_set_id),
                    ot(&r.name),
                    t(&r.database_name),
                    t(&r.server_name),
                    t(&r.server_name),
                    t(r.type_code),
                    lsn(r.first_lsn),
                    lsn(r.last_lsn),
                    lsn(r.checkpoint_lsn),
                    lsn(r.database_backup_lsn),
                    dt(r.backup_start_date),
                    dt(r.backup_finish_date),
                    b(r.is_copy_only),
                    b(r.is_force_offline),
                    t(&r.recovery_model),
                    t(&r.family_guid),
                ]
            })
            .collect(),
        "msdb.dbo.backupmediafamily" => msdb
            .backupset
            .iter()
            .map(|r| vec![i(r.media_set_id), i(1), t(&r.physical_device_name), i(2)])
            .collect(),
        "msdb.dbo.restorehistory" => msdb
            .restorehistory
            .iter()
            .map(|r| {
                vec![
                    i(r.restore_history_id),
                    dt(r.restore_date),
                    t(&r.destination_database_name),
                    t(&r.user_name),
                    i(r.backup_set_id),
                    t(r.restore_type),
                    b(r.replace),
                    b(r.recovery),
                ]
            })
            .collect(),
        "msdb.dbo.log_shipping_primary_databases" => msdb
            .ls_primary
            .iter()
            .map(|p| {
                vec![
                    t(&p.primary_id),
                    t(&p.primary_database),
                    t(&p.backup_directory),
                    t(&p.backup_share),
                    i(p.backup_retention_period as i64),
                    t(&p.backup_job_id),
                    Sql::Null,
                    b(true),
                    ot(&p.last_backup_file),
                    odt(p.last_backup_date),
                    b(false),
                    i(2),
                ]
            })
            .collect(),
        "msdb.dbo.log_shipping_primary_secondaries" => msdb
            .ls_primary_secondaries
            .iter()
            .map(|p| {
                vec![
                    t(&p.secondary_id),
                    t(&p.primary_id),
                    t(&p.secondary_server),
                    t(&p.secondary_database),
                ]
            })
            .collect(),
        "msdb.dbo.log_shipping_monitor_primary" => msdb
            .ls_primary
            .iter()
            .map(|p| {
                vec![
                    t(&p.primary_id),
                    t(&inst.name),
                    t(&p.primary_database),
                    i(p.backup_threshold as i64),
                    i(14420),
                    b(p.threshold_alert_enabled),
                    ot(&p.last_backup_file),
                    odt(p.last_backup_date),
                    odt(p.last_backup_date),
                    i(p.history_retention_period as i64),
                ]
            })
            .collect(),
        "msdb.dbo.log_shipping_secondary" => msdb
            .ls_secondary
            .iter()
            .map(|s| {
                vec![
                    t(&s.secondary_id),
                    t(&s.primary_server),
                    t(&s.primary_database),
                    t(&s.backup_source_directory),
                    t(&s.backup_destination_directory),
                    i(s.file_retention_period as i64),
                    t(&s.copy_job_id),
                    t(&s.restore_job_id),
                    Sql::Null,
                    b(true),
                    b(false),
                    ot(&s.last_copied_file),
                    odt(s.last_copied_date),
                ]
            })
            .collect(),
        "msdb.dbo.log_shipping_secondary_databases" => msdb
            .ls_secondary_dbs
            .iter()
            .map(|d| {
                vec![
                    t(&d.secondary_database),
                    t(&d.secondary_id),
                    i(d.restore_delay as i64),
                    b(d.restore_all),
                    i(d.restore_mode as i64),
                    b(d.disconnect_users),
                    i(-1),
                    i(-1),
                    i(-1),
                    ot(&d.last_restored_file),
                    odt(d.last_restored_date),
                ]
            })
            .collect(),
        "msdb.dbo.log_shipping_monitor_secondary" => msdb
            .ls_secondary_dbs
            .iter()
            .filter_map(|d| {
                let s = msdb
                    .ls_secondary
                    .iter()
                    .find(|s| s.secondary_id == d.secondary_id)?;
                Some(vec![
                    t(&inst.name),
                    t(&d.secondary_database),
                    t(&d.secondary_id),
                    t(&s.primary_server),
                    t(&s.primary_database),
                    i(s.restore_threshold as i64),
                    i(14421),
                    b(true),
                    ot(&s.last_copied_file),
                    odt(s.last_copied_date),
                    odt(s.last_copied_date),
                    ot(&d.last_restored_file),
                    odt(d.last_restored_date),
                    odt(d.last_restored_date),
                    d.last_restored_latency.map_or(Sql::Null, |v| i(v as i64)),
                    i(5760),
                ])
            })
            .collect(),
        "msdb.dbo.sysjobs" => msdb
            .jobs
            .iter()
            .map(|j| {
                vec![
                    t(&j.job_id),
                    t(&j.name),
                    b(j.enabled),
                    t("Log shipping job"),
                ]
            })
            .collect(),
        "msdb.dbo.sysschedules" => msdb
            .schedules
            .iter()
            .map(|s| {
                vec![
                    i(s.schedule_id as i64),
                    t(&s.schedule_uid),
                    t(&s.name),
                    i(s.enabled as i64),
                    i(s.freq_type as i64),
                    i(s.freq_interval as i64),
                    i(s.freq_subday_type as i64),
                    i(s.freq_subday_interval as i64),
                    i(0),
                    i(0),
                    i(s.active_start_date as i64),
                    i(s.active_end_date as i64),
                    i(s.active_start_time as i64),
                    i(s.active_end_time as i64),
                ]
            })
            .collect(),
        // next_run_date/time are 0, as SQL Server shows them before the agent's first refresh.
        "msdb.dbo.sysjobschedules" => msdb
            .job_schedules
            .iter()
            .map(|(job_id, sid)| vec![i(*sid as i64), t(job_id), i(0), i(0)])
            .collect(),
        "msdb.dbo.sysjobhistory" => msdb
            .job_history
            .iter()
            .map(|h| {
                let date: i64 = h.run_at.format("%Y%m%d").to_string().parse().unwrap_or(0);
                let time: i64 = h.run_at.format("%H%M%S").to_string().parse().unwrap_or(0);
                vec![
                    i(h.instance_id),
                    t(&h.job_id),
                    i(0),
                    t("(Job outcome)"),
                    t(&h.message),
                    i(h.run_status as i64),
                    i(date),
                    i(time),
                    i(0),
                    t(&inst.name),
                ]
            })
            .collect(),
        _ => {
            let _ = state;
            Vec::new()
        }
    }
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
