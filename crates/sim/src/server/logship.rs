//! Log shipping: the eight `sp_add_/sp_delete_log_shipping_*` procedures with their documented
//! parameters and order rules (Microsoft's "Log Shipping Stored Procedures" and "Configure Log
//! Shipping" pages), and the agent jobs they create: LSBackup, LSCopy and LSRestore.

use std::collections::HashMap;

use chrono::{Duration, NaiveDateTime};

use super::backup::{self, BackupArgs, RestoreArgs, RestoreWhat};
use super::errors::{self as e, Failure, SqlError};
use super::model::{
    DbState, Job, JobHistoryRow, JobKind, LogShippingPrimary, LogShippingPrimarySecondary,
    LogShippingSecondary, LogShippingSecondaryDatabase, Msdb, State, now,
};
use super::paths;
use crate::backend::Value;

/// Arguments of a procedure call by lower-cased `@name`.
pub struct Args<'a> {
    pub proc_name: &'a str,
    pub named: HashMap<String, Value>,
}

impl Args<'_> {
    pub fn opt_str(&self, name: &str) -> Option<String> {
        match self.named.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::NVarChar(s)) => Some(s.clone()),
            Some(Value::Int(i)) => Some(i.to_string()),
            Some(Value::BigInt(i)) => Some(i.to_string()),
            Some(other) => Some(format!("{other:?}")),
        }
    }

    /// `@overwrite`: 1 replaces an existing configuration instead of failing.
    pub fn overwrite(&self) -> Result<bool, Failure> {
        Ok(self.opt_int("@overwrite")?.unwrap_or(0) != 0)
    }

    pub fn req_str(&self, name: &str) -> Result<String, Failure> {
        self.opt_str(name)
            .ok_or_else(|| vec![e::missing_param(self.proc_name, name)])
    }

    pub fn opt_int(&self, name: &str) -> Result<Option<i64>, Failure> {
        int_param(&self.named, name)
    }
}

/// An integer parameter of a system procedure, None when not given or NULL. Text converts as
/// SQL Server converts it to int (error 245 when it is not a number).
pub fn int_param(named: &HashMap<String, Value>, name: &str) -> Result<Option<i64>, Failure> {
    Ok(match named.get(name) {
        None | Some(Value::Null) => None,
        Some(Value::Int(i)) => Some(*i as i64),
        Some(Value::BigInt(i)) => Some(*i),
        Some(Value::Bit(b)) => Some(*b as i64),
        Some(Value::Numeric(n)) => Some(*n as i64),
        Some(Value::NVarChar(s)) => Some(
            s.trim()
                .parse()
                .map_err(|_| vec![e::conversion(s, "int")])?,
        ),
        Some(_) => return Err(vec![e::conversion(name, "int")]),
    })
}

/// The parameters each procedure accepts (anything else is error 8145).
pub fn known_params(proc_name: &str) -> Option<&'static [&'static str]> {
    Some(match proc_name {
        "sp_add_log_shipping_primary_database" => &[
            "@database",
            "@backup_directory",
            "@backup_share",
            "@backup_job_name",
            "@backup_retention_period",
            "@monitor_server",
            "@monitor_server_security_mode",
            "@monitor_server_login",
            "@monitor_server_password",
            "@backup_threshold",
            "@threshold_alert",
            "@threshold_alert_enabled",
            "@history_retention_period",
            "@backup_job_id",
            "@primary_id",
            "@backup_compression",
            "@overwrite",
        ],
        "sp_add_log_shipping_secondary_primary" => &[
            "@primary_server",
            "@primary_database",
            "@backup_source_directory",
            "@backup_destination_directory",
            "@copy_job_name",
            "@restore_job_name",
            "@file_retention_period",
            "@monitor_server",
            "@monitor_server_security_mode",
            "@monitor_server_login",
            "@monitor_server_password",
            "@copy_job_id",
            "@restore_job_id",
            "@secondary_id",
            "@overwrite",
        ],
        "sp_add_log_shipping_secondary_database" => &[
            "@secondary_database",
            "@primary_server",
            "@primary_database",
            "@restore_delay",
            "@restore_all",
            "@restore_mode",
            "@disconnect_users",
            "@block_size",
            "@buffer_count",
            "@max_transfer_size",
            "@restore_threshold",
            "@threshold_alert",
            "@threshold_alert_enabled",
            "@history_retention_period",
            "@overwrite",
            "@ignoreremotemonitor",
        ],
        "sp_add_log_shipping_primary_secondary" => &[
            "@primary_database",
            "@secondary_server",
            "@secondary_database",
            "@overwrite",
        ],
        "sp_delete_log_shipping_primary_secondary" => &[
            "@primary_database",
            "@secondary_server",
            "@secondary_database",
        ],
        "sp_delete_log_shipping_secondary_database" => &["@secondary_database"],
        "sp_delete_log_shipping_secondary_primary" => &["@primary_server", "@primary_database"],
        "sp_delete_log_shipping_primary_database" => &["@database"],
        _ => return None,
    })
}

fn log_shipping_error(number: i32, text: String) -> Failure {
    vec![e::log_shipping(number, text)]
}

fn new_job(state: &mut State, inst: usize, name: &str, kind: JobKind) -> Result<String, Failure> {
    if state.instances[inst]
        .msdb
        .jobs
        .iter()
        .any(|j| j.name.eq_ignore_ascii_case(name))
    {
        return Err(vec![SqlError::new(
            14261,
            format!("The specified @name ('{name}') already exists."),
        )]);
    }
    let job_id = state.new_guid();
    let clock = state.clock_ms;
    state.instances[inst].msdb.jobs.push(Job {
        job_id: job_id.clone(),
        name: name.to_string(),
        // Log-shipping jobs are created disabled; the administrator enables them with
        // sp_update_job (as Microsoft's configuration scripts do).
        enabled: false,
        kind,
        last_run_ms: Some(clock),
        run_requested: false,
    });
    Ok(job_id)
}

/// The job a re-configuration (`@overwrite = 1`) leaves: the same job when its name is
/// unchanged (keeping its id, enabled flag and schedule), otherwise a new one in place of
/// the old.
fn replace_job(
    state: &mut State,
    inst: usize,
    old_job_id: &str,
    name: &str,
    kind: JobKind,
) -> Result<String, Failure> {
    let jobs = &mut state.instances[inst].msdb.jobs;
    if let Some(job) = jobs
        .iter_mut()
        .find(|j| j.job_id == old_job_id && j.name.eq_ignore_ascii_case(name))
    {
        job.kind = kind;
        return Ok(job.job_id.clone());
    }
    drop_job(state, inst, old_job_id);
    new_job(state, inst, name, kind)
}

fn drop_job(state: &mut State, inst: usize, job_id: &str) {
    state.instances[inst]
        .msdb
        .jobs
        .retain(|j| j.job_id != job_id);
    super::agent::job_deleted(state, inst, job_id);
}

/// OUTPUT parameter values of a procedure call, by `@name`.
type OutputValues = Vec<(String, Value)>;

/// Run one of the eight procedures. Returns OUTPUT parameter values by `@name`.
pub fn run(
    state: &mut State,
    inst: usize,
    proc_name: &str,
    args: &Args<'_>,
) -> Result<OutputValues, Failure> {
    match proc_name {
        "sp_add_log_shipping_primary_database" => add_primary_database(state, inst, args),
        "sp_add_log_shipping_secondary_primary" => add_secondary_primary(state, inst, args),
        "sp_add_log_shipping_secondary_database" => add_secondary_database(state, inst, args),
        "sp_add_log_shipping_primary_secondary" => add_primary_secondary(state, inst, args),
        "sp_delete_log_shipping_primary_secondary" => delete_primary_secondary(state, inst, args),
        "sp_delete_log_shipping_secondary_database" => delete_secondary_database(state, inst, args),
        "sp_delete_log_shipping_secondary_primary" => delete_secondary_primary(state, inst, args),
        "sp_delete_log_shipping_primary_database" => delete_primary_database(state, inst, args),
        _ => Err(vec![e::no_such_procedure(proc_name)]),
    }
}

/// Error 15010, which the procedures raise for a database the instance does not have.
fn no_such_database(database: &str) -> Failure {
    log_shipping_error(
        15010,
        format!(
            "The database '{database}' does not exist. Supply a valid database name. To see available databases, use sys.databases."
        ),
    )
}

/// Where the primary configuration of `database` is in `log_shipping_primary_databases`.
fn primary_position(msdb: &Msdb, database: &str) -> Option<usize> {
    msdb.log_shipping_primaries
        .iter()
        .position(|p| p.primary_database.eq_ignore_ascii_case(database))
}

/// Where the secondary's entry for a primary is in `log_shipping_secondary`.
fn secondary_position(msdb: &Msdb, primary_server: &str, primary_database: &str) -> Option<usize> {
    msdb.log_shipping_secondaries.iter().position(|s| {
        s.primary_server.eq_ignore_ascii_case(primary_server)
            && s.primary_database.eq_ignore_ascii_case(primary_database)
    })
}

/// Drop a secondary's entry for a primary together with its copy and restore jobs.
fn remove_secondary(state: &mut State, inst: usize, pos: usize) {
    let removed = state.instances[inst]
        .msdb
        .log_shipping_secondaries
        .remove(pos);
    drop_job(state, inst, &removed.copy_job_id);
    drop_job(state, inst, &removed.restore_job_id);
}

/// `sp_add_log_shipping_primary_database`: the primary's configuration and its backup job.
fn add_primary_database(
    state: &mut State,
    inst: usize,
    args: &Args<'_>,
) -> Result<OutputValues, Failure> {
    let database = args.req_str("@database")?;
    let backup_directory = args.req_str("@backup_directory")?;
    let backup_share = args.req_str("@backup_share")?;
    let job_name = args.req_str("@backup_job_name")?;
    let retention = args.opt_int("@backup_retention_period")?.unwrap_or(4320);
    let threshold = args.opt_int("@backup_threshold")?.unwrap_or(60);
    let alert = args.opt_int("@threshold_alert_enabled")?.unwrap_or(0) != 0;
    let history = args.opt_int("@history_retention_period")?.unwrap_or(5760);
    let overwrite = args.overwrite()?;
    let Some(db) = state.instances[inst].db(&database) else {
        return Err(no_such_database(&database));
    };
    // The primary must be the writable copy: a mirror (954) or any RESTORING copy (927)
    // cannot be opened, which is why Microsoft's procedure for a mirrored primary fails over
    // to the mirror before configuring it. The number is the open failure's; SQL Server's own
    // for this call is not documented.
    if let Some(e) = e::cannot_open(db) {
        return Err(vec![e]);
    }
    if db.recovery == "SIMPLE" {
        return Err(log_shipping_error(
            32015,
            format!(
                "The primary database {database} cannot have SIMPLE recovery for log shipping to work properly."
            ),
        ));
    }
    let existing = primary_position(&state.instances[inst].msdb, &database);
    let kind = JobKind::Backup {
        database: database.clone(),
    };
    let primary_id = match existing {
        Some(_) if !overwrite => {
            return Err(log_shipping_error(
                32009,
                format!("A log shipping primary entry already exists for database {database}."),
            ));
        }
        Some(pos) => {
            // @overwrite = 1: the configuration is replaced, the primary keeps its id so its
            // secondaries stay linked.
            let old_job = state.instances[inst].msdb.log_shipping_primaries[pos]
                .backup_job_id
                .clone();
            let job_id = replace_job(state, inst, &old_job, &job_name, kind)?;
            let primary = &mut state.instances[inst].msdb.log_shipping_primaries[pos];
            primary.backup_directory = backup_directory;
            primary.backup_share = backup_share;
            primary.backup_retention_period = retention as i32;
            primary.backup_job_id = job_id;
            primary.backup_threshold = threshold as i32;
            primary.threshold_alert_enabled = alert;
            primary.history_retention_period = history as i32;
            primary.primary_id.clone()
        }
        None => {
            let job_id = new_job(state, inst, &job_name, kind)?;
            let primary_id = state.new_guid();
            state.instances[inst]
                .msdb
                .log_shipping_primaries
                .push(LogShippingPrimary {
                    primary_id: primary_id.clone(),
                    primary_database: database,
                    backup_directory,
                    backup_share,
                    backup_retention_period: retention as i32,
                    backup_job_id: job_id,
                    backup_threshold: threshold as i32,
                    threshold_alert_enabled: alert,
                    history_retention_period: history as i32,
                    last_backup_file: None,
                    last_backup_date: None,
                });
            primary_id
        }
    };
    let job_id = state.instances[inst]
        .msdb
        .log_shipping_primaries
        .iter()
        .find(|p| p.primary_id == primary_id)
        .map(|p| p.backup_job_id.clone())
        .unwrap_or_default();
    Ok(vec![
        ("@primary_id".into(), Value::NVarChar(primary_id)),
        ("@backup_job_id".into(), Value::NVarChar(job_id)),
    ])
}

/// What `sp_add_log_shipping_secondary_primary` configures on the secondary for one primary.
struct SecondaryConfig {
    primary_server: String,
    primary_database: String,
    source_directory: String,
    destination_directory: String,
    copy_job_name: String,
    restore_job_name: String,
    file_retention_period: i32,
}

/// The ids of a secondary's entry for a primary and of its copy and restore jobs.
struct SecondaryIds {
    secondary_id: String,
    copy_job_id: String,
    restore_job_id: String,
}

/// `sp_add_log_shipping_secondary_primary`: the secondary's entry for a primary, with its copy
/// and restore jobs.
fn add_secondary_primary(
    state: &mut State,
    inst: usize,
    args: &Args<'_>,
) -> Result<OutputValues, Failure> {
    let config = SecondaryConfig {
        primary_server: args.req_str("@primary_server")?,
        primary_database: args.req_str("@primary_database")?,
        source_directory: args.req_str("@backup_source_directory")?,
        destination_directory: args.req_str("@backup_destination_directory")?,
        copy_job_name: args.req_str("@copy_job_name")?,
        restore_job_name: args.req_str("@restore_job_name")?,
        file_retention_period: args.opt_int("@file_retention_period")?.unwrap_or(4320) as i32,
    };
    let overwrite = args.overwrite()?;
    let existing = secondary_position(
        &state.instances[inst].msdb,
        &config.primary_server,
        &config.primary_database,
    );
    let ids = match existing {
        Some(_) if !overwrite => {
            return Err(log_shipping_error(
                32024,
                format!(
                    "An entry for primary server {}, primary database {} already exists.",
                    config.primary_server, config.primary_database
                ),
            ));
        }
        Some(pos) => reconfigure_secondary(state, inst, pos, config)?,
        None => register_secondary(state, inst, config)?,
    };
    Ok(vec![
        ("@copy_job_id".into(), Value::NVarChar(ids.copy_job_id)),
        (
            "@restore_job_id".into(),
            Value::NVarChar(ids.restore_job_id),
        ),
        ("@secondary_id".into(), Value::NVarChar(ids.secondary_id)),
    ])
}

/// `@overwrite = 1` of an existing entry: the configuration is replaced in place and the entry
/// keeps its id, so its secondary databases stay linked.
fn reconfigure_secondary(
    state: &mut State,
    inst: usize,
    pos: usize,
    config: SecondaryConfig,
) -> Result<SecondaryIds, Failure> {
    let (secondary_id, old_copy, old_restore) = {
        let secondary = &state.instances[inst].msdb.log_shipping_secondaries[pos];
        (
            secondary.secondary_id.clone(),
            secondary.copy_job_id.clone(),
            secondary.restore_job_id.clone(),
        )
    };
    let copy_job_id = replace_job(
        state,
        inst,
        &old_copy,
        &config.copy_job_name,
        JobKind::Copy {
            secondary_id: secondary_id.clone(),
        },
    )?;
    let restore_job_id = replace_job(
        state,
        inst,
        &old_restore,
        &config.restore_job_name,
        JobKind::Restore {
            secondary_id: secondary_id.clone(),
        },
    )?;
    let secondary = &mut state.instances[inst].msdb.log_shipping_secondaries[pos];
    secondary.backup_source_directory = config.source_directory;
    secondary.backup_destination_directory = config.destination_directory;
    secondary.file_retention_period = config.file_retention_period;
    secondary.copy_job_id = copy_job_id.clone();
    secondary.restore_job_id = restore_job_id.clone();
    Ok(SecondaryIds {
        secondary_id,
        copy_job_id,
        restore_job_id,
    })
}

/// A new entry for a primary with new copy and restore jobs (neither is left behind when the
/// other cannot be created).
fn register_secondary(
    state: &mut State,
    inst: usize,
    config: SecondaryConfig,
) -> Result<SecondaryIds, Failure> {
    let secondary_id = state.new_guid();
    let copy_job_id = new_job(
        state,
        inst,
        &config.copy_job_name,
        JobKind::Copy {
            secondary_id: secondary_id.clone(),
        },
    )?;
    let restore_job_id = match new_job(
        state,
        inst,
        &config.restore_job_name,
        JobKind::Restore {
            secondary_id: secondary_id.clone(),
        },
    ) {
        Ok(id) => id,
        Err(f) => {
            drop_job(state, inst, &copy_job_id);
            return Err(f);
        }
    };
    state.instances[inst]
        .msdb
        .log_shipping_secondaries
        .push(LogShippingSecondary {
            secondary_id: secondary_id.clone(),
            primary_server: config.primary_server,
            primary_database: config.primary_database,
            backup_source_directory: config.source_directory,
            backup_destination_directory: config.destination_directory,
            file_retention_period: config.file_retention_period,
            copy_job_id: copy_job_id.clone(),
            restore_job_id: restore_job_id.clone(),
            restore_threshold: 45,
            last_copied_file: None,
            last_copied_date: None,
        });
    Ok(SecondaryIds {
        secondary_id,
        copy_job_id,
        restore_job_id,
    })
}

/// `sp_add_log_shipping_secondary_database`: a database restored from a registered primary.
fn add_secondary_database(
    state: &mut State,
    inst: usize,
    args: &Args<'_>,
) -> Result<OutputValues, Failure> {
    let secondary_database = args.req_str("@secondary_database")?;
    let primary_server = args.req_str("@primary_server")?;
    let primary_database = args.req_str("@primary_database")?;
    let restore_delay = args.opt_int("@restore_delay")?.unwrap_or(0);
    let restore_mode = args.opt_int("@restore_mode")?.unwrap_or(0);
    let disconnect = args.opt_int("@disconnect_users")?.unwrap_or(0) != 0;
    let restore_all = args.opt_int("@restore_all")?.unwrap_or(1) != 0;
    let threshold = args.opt_int("@restore_threshold")?.unwrap_or(45);
    let overwrite = args.overwrite()?;
    let mut restored = (None, None, None);
    if restore_mode != 0 {
        // STANDBY restores are not modelled; refusing beats restoring differently.
        return Err(log_shipping_error(
            32047,
            format!(
                "@restore_mode = {restore_mode} (STANDBY) is not supported by the simulator; use 0 (NORECOVERY)."
            ),
        ));
    }
    let msdb = &state.instances[inst].msdb;
    let Some(pos) = secondary_position(msdb, &primary_server, &primary_database) else {
        // Order rule: sp_add_log_shipping_secondary_primary must come first.
        return Err(log_shipping_error(
            32023,
            format!(
                "An entry for primary server {primary_server}, primary database {primary_database} does not exist on this secondary. Register the primary first."
            ),
        ));
    };
    let secondary_id = msdb.log_shipping_secondaries[pos].secondary_id.clone();
    if state.instances[inst].db(&secondary_database).is_none() {
        return Err(no_such_database(&secondary_database));
    }
    let existing = msdb.log_shipping_secondary_databases.iter().position(|d| {
        d.secondary_database
            .eq_ignore_ascii_case(&secondary_database)
    });
    let msdb = &mut state.instances[inst].msdb;
    if let Some(pos) = existing {
        if !overwrite {
            return Err(log_shipping_error(
                32013,
                format!(
                    "A log shipping entry already exists for secondary database {secondary_database}."
                ),
            ));
        }
        // @overwrite = 1: the old entry is replaced; when it follows the same primary, what it
        // restored stays known so the restore job does not start over.
        let old = msdb.log_shipping_secondary_databases.remove(pos);
        if old.secondary_id == secondary_id {
            restored = (
                old.last_restored_file,
                old.last_restored_date,
                old.last_restored_latency,
            );
        }
    }
    if let Some(secondary) = msdb
        .log_shipping_secondaries
        .iter_mut()
        .find(|s| s.secondary_id == secondary_id)
    {
        secondary.restore_threshold = threshold as i32;
    }
    msdb.log_shipping_secondary_databases
        .push(LogShippingSecondaryDatabase {
            secondary_database,
            secondary_id,
            restore_delay: restore_delay as i32,
            restore_all,
            restore_mode: restore_mode as i32,
            disconnect_users: disconnect,
            last_restored_file: restored.0,
            last_restored_date: restored.1,
            last_restored_latency: restored.2,
        });
    Ok(Vec::new())
}

/// `sp_add_log_shipping_primary_secondary`: the primary's record of one of its secondaries.
fn add_primary_secondary(
    state: &mut State,
    inst: usize,
    args: &Args<'_>,
) -> Result<OutputValues, Failure> {
    let primary_database = args.req_str("@primary_database")?;
    let secondary_server = args.req_str("@secondary_server")?;
    let secondary_database = args.req_str("@secondary_database")?;
    let overwrite = args.overwrite()?;
    let me = &state.instances[inst].name;
    let msdb = &state.instances[inst].msdb;
    let Some(pos) = primary_position(msdb, &primary_database) else {
        return Err(log_shipping_error(
            32010,
            format!(
                "Database {primary_database} is not a log shipping primary on server {me}. Run sp_add_log_shipping_primary_database first."
            ),
        ));
    };
    let primary_id = msdb.log_shipping_primaries[pos].primary_id.clone();
    if msdb.log_shipping_primary_secondaries.iter().any(|s| {
        s.primary_id == primary_id
            && s.secondary_server.eq_ignore_ascii_case(&secondary_server)
            && s.secondary_database
                .eq_ignore_ascii_case(&secondary_database)
    }) {
        if overwrite {
            // The entry holds nothing but its key: replacing it changes nothing.
            return Ok(Vec::new());
        }
        return Err(log_shipping_error(
            32012,
            format!(
                "Secondary {secondary_server}.{secondary_database} already exists for primary {primary_database}."
            ),
        ));
    }
    let secondary_id = state.new_guid();
    state.instances[inst]
        .msdb
        .log_shipping_primary_secondaries
        .push(LogShippingPrimarySecondary {
            secondary_id,
            primary_id,
            secondary_server,
            secondary_database,
        });
    Ok(Vec::new())
}

/// `sp_delete_log_shipping_primary_secondary`: forget one secondary of a primary.
fn delete_primary_secondary(
    state: &mut State,
    inst: usize,
    args: &Args<'_>,
) -> Result<OutputValues, Failure> {
    let primary_database = args.req_str("@primary_database")?;
    let secondary_server = args.req_str("@secondary_server")?;
    let secondary_database = args.req_str("@secondary_database")?;
    let instance = &mut state.instances[inst];
    let Some(pos) = primary_position(&instance.msdb, &primary_database) else {
        return Err(log_shipping_error(
            32010,
            format!(
                "Database {primary_database} is not a log shipping primary on server {}.",
                instance.name
            ),
        ));
    };
    let primary_id = instance.msdb.log_shipping_primaries[pos].primary_id.clone();
    instance.msdb.log_shipping_primary_secondaries.retain(|s| {
        !(s.primary_id == primary_id
            && s.secondary_server.eq_ignore_ascii_case(&secondary_server)
            && s.secondary_database
                .eq_ignore_ascii_case(&secondary_database))
    });
    Ok(Vec::new())
}

/// `sp_delete_log_shipping_secondary_database`: stop restoring a database. The last secondary
/// database of a primary also removes the secondary's entry for that primary and its copy and
/// restore jobs.
fn delete_secondary_database(
    state: &mut State,
    inst: usize,
    args: &Args<'_>,
) -> Result<OutputValues, Failure> {
    let secondary_database = args.req_str("@secondary_database")?;
    let msdb = &mut state.instances[inst].msdb;
    let Some(pos) = msdb.log_shipping_secondary_databases.iter().position(|d| {
        d.secondary_database
            .eq_ignore_ascii_case(&secondary_database)
    }) else {
        return Err(log_shipping_error(
            32014,
            format!("Database {secondary_database} does not exist as log shipping secondary."),
        ));
    };
    let secondary_id = msdb
        .log_shipping_secondary_databases
        .remove(pos)
        .secondary_id;
    if !msdb
        .log_shipping_secondary_databases
        .iter()
        .any(|d| d.secondary_id == secondary_id)
        && let Some(pos) = msdb
            .log_shipping_secondaries
            .iter()
            .position(|s| s.secondary_id == secondary_id)
    {
        remove_secondary(state, inst, pos);
    }
    Ok(Vec::new())
}

/// `sp_delete_log_shipping_secondary_primary`: remove the secondary's entry for a primary,
/// which must have no secondary databases left.
fn delete_secondary_primary(
    state: &mut State,
    inst: usize,
    args: &Args<'_>,
) -> Result<OutputValues, Failure> {
    let primary_server = args.req_str("@primary_server")?;
    let primary_database = args.req_str("@primary_database")?;
    let instance = &state.instances[inst];
    let Some(pos) = secondary_position(&instance.msdb, &primary_server, &primary_database) else {
        return Ok(Vec::new());
    };
    let secondary_id = &instance.msdb.log_shipping_secondaries[pos].secondary_id;
    if instance
        .msdb
        .log_shipping_secondary_databases
        .iter()
        .any(|d| d.secondary_id == *secondary_id)
    {
        return Err(log_shipping_error(
            32025,
            format!(
                "Primary Server {primary_server}, Database {primary_database} has active log shipping secondary database(s) on secondary server {}. Drop the secondary database(s) first.",
                instance.name
            ),
        ));
    }
    remove_secondary(state, inst, pos);
    Ok(Vec::new())
}

/// `sp_delete_log_shipping_primary_database`: remove a primary's configuration and its backup
/// job, once its secondaries are gone.
fn delete_primary_database(
    state: &mut State,
    inst: usize,
    args: &Args<'_>,
) -> Result<OutputValues, Failure> {
    let database = args.req_str("@database")?;
    let msdb = &mut state.instances[inst].msdb;
    let Some(pos) = primary_position(msdb, &database) else {
        return Ok(Vec::new());
    };
    let primary_id = &msdb.log_shipping_primaries[pos].primary_id;
    if msdb
        .log_shipping_primary_secondaries
        .iter()
        .any(|s| s.primary_id == *primary_id)
    {
        // Order rule: the primary-secondary links go first.
        return Err(log_shipping_error(
            32011,
            format!(
                "Primary Database {database} has active log shipping secondary database(s). Drop the secondary database(s) first."
            ),
        ));
    }
    let removed = msdb.log_shipping_primaries.remove(pos);
    drop_job(state, inst, &removed.backup_job_id);
    Ok(Vec::new())
}

/// Interval of a job kind, in milliseconds.
pub fn interval(state: &State, kind: &JobKind) -> u64 {
    match kind {
        JobKind::Backup { .. } => state.intervals.backup_ms,
        JobKind::Copy { .. } => state.intervals.copy_ms,
        JobKind::Restore { .. } => state.intervals.restore_ms,
    }
}

/// Run every due job on every up instance (called by the scheduler task).
pub fn run_due_jobs(state: &mut State) {
    for inst in 0..state.instances.len() {
        if !state.instances[inst].up {
            continue;
        }
        let due: Vec<usize> = state.instances[inst]
            .msdb
            .jobs
            .iter()
            .enumerate()
            .filter(|(_, j)| {
                j.run_requested
                    || (j.enabled
                        && super::agent::job_interval(state, inst, j, interval(state, &j.kind))
                            .is_some_and(|every| {
                                state.clock_ms.saturating_sub(j.last_run_ms.unwrap_or(0)) >= every
                            }))
            })
            .map(|(i, _)| i)
            .collect();
        if due.is_empty() {
            continue;
        }
        for j in due {
            run_job(state, inst, j);
        }
        // As after a statement: the sessions a job's restores or backups may have changed.
        super::mirroring::refresh_around(state, inst);
    }
}

/// Run job `j` of instance `inst` now and record the outcome in sysjobhistory.
pub fn run_job(state: &mut State, inst: usize, j: usize) {
    let job = state.instances[inst].msdb.jobs[j].clone();
    {
        let jm = &mut state.instances[inst].msdb.jobs[j];
        jm.run_requested = false;
        jm.last_run_ms = Some(state.clock_ms);
    }
    let outcome = match &job.kind {
        JobKind::Backup { database } => backup_job(state, inst, database),
        JobKind::Copy { secondary_id } => copy_job(state, inst, secondary_id),
        JobKind::Restore { secondary_id } => restore_job(state, inst, secondary_id),
    };
    let (status, message) = match outcome {
        Ok(m) => (1, format!("The job succeeded. {m}")),
        Err(m) => (0, format!("The job failed. {m}")),
    };
    let msdb = &mut state.instances[inst].msdb;
    let id = msdb.next_id();
    msdb.job_history.push(JobHistoryRow {
        instance_id: id,
        job_id: job.job_id,
        run_status: status,
        message,
        run_at: now(),
    });
    // Keep history bounded like msdb's default job history limits.
    if msdb.job_history.len() > 1000 {
        msdb.job_history.drain(..100);
    }
}

fn failure_text(f: &Failure) -> String {
    f.iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The timestamp a backup file name carries, if it is `<db>_yyyymmddhhmmss.trn`.
pub fn file_time(db: &str, file: &str) -> Option<NaiveDateTime> {
    let prefix = format!("{}_", db.to_ascii_lowercase());
    let lower = file.to_ascii_lowercase();
    let stamp = lower.strip_prefix(&prefix)?.strip_suffix(".trn")?;
    if stamp.len() != 14 || !stamp.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    NaiveDateTime::parse_from_str(stamp, "%Y%m%d%H%M%S").ok()
}

fn backup_job(state: &mut State, inst: usize, database: &str) -> Result<String, String> {
    let msdb = &state.instances[inst].msdb;
    let Some(p) =
        primary_position(msdb, database).map(|pos| msdb.log_shipping_primaries[pos].clone())
    else {
        return Err(format!("No log shipping primary entry for {database}."));
    };
    match state.instances[inst].db(database) {
        Some(d) if d.state == DbState::Online => {}
        Some(d) if d.mirroring.is_some() => {
            // sqllogship skips a mirror copy: its partner's job backs the log up.
            return Ok(format!(
                "Skipping log backup for database '{database}' because it is a mirror database."
            ));
        }
        Some(d) => {
            return Err(format!(
                "Database '{database}' is {}; the log cannot be backed up.",
                d.state.desc()
            ));
        }
        None => return Err(format!("Database '{database}' does not exist.")),
    }
    // File names carry the UTC second; never reuse or go back in time so name order stays
    // time order even when backups run more than once a second.
    // The newest stamp is this primary's last file or any file in the folder (the mirror
    // partner, after a failover, writes to the same share).
    let me = state.instances[inst].name.clone();
    let in_folder = paths::resolve(state, &me, &p.backup_directory)
        .map(|r| paths::list_files(&r.local))
        .unwrap_or_default();
    let newest = p
        .last_backup_file
        .iter()
        .map(|f| paths::file_name(f).to_string())
        .chain(in_folder)
        .filter_map(|f| file_time(database, &f))
        .max();
    let mut stamp = now().with_nanosecond_zero();
    if let Some(last) = newest
        && stamp <= last
    {
        stamp = last + Duration::seconds(1);
    }
    let file = format!("{}_{}.trn", database, stamp.format("%Y%m%d%H%M%S"));
    let disk = paths::join(&p.backup_directory, &file);
    let args = BackupArgs {
        log: true,
        database: database.to_string(),
        disk: disk.clone(),
        init: true,
        checksum: true,
        ..Default::default()
    };
    backup::backup(state, inst, None, &args).map_err(|f| failure_text(&f))?;
    if let Some(row) = state.instances[inst]
        .msdb
        .log_shipping_primaries
        .iter_mut()
        .find(|r| r.primary_id == p.primary_id)
    {
        row.last_backup_file = Some(disk.clone());
        row.last_backup_date = Some(now());
    }
    Ok(format!("Backed up the log of '{database}' to '{disk}'."))
}

trait SecondZero {
    fn with_nanosecond_zero(self) -> Self;
}

impl SecondZero for NaiveDateTime {
    fn with_nanosecond_zero(self) -> Self {
        use chrono::Timelike;
        self.with_nanosecond(0).unwrap_or(self)
    }
}

/// The secondary's entry `secondary_id`, as its copy and restore jobs read it.
fn secondary_entry(
    state: &State,
    inst: usize,
    secondary_id: &str,
) -> Result<LogShippingSecondary, String> {
    state.instances[inst]
        .msdb
        .log_shipping_secondaries
        .iter()
        .find(|s| s.secondary_id == secondary_id)
        .cloned()
        .ok_or_else(|| "No log shipping secondary entry.".to_string())
}

/// A job's folder (`which` is "source" or "destination") as the instance reaches it, or the
/// job's failure message with the operating system error.
fn job_directory(
    state: &State,
    inst: usize,
    which: &str,
    directory: &str,
) -> Result<paths::Resolved, String> {
    paths::resolve(state, &state.instances[inst].name, directory).map_err(|pe| {
        format!(
            "Could not access the backup {which} directory '{directory}'. Operating system error {}.",
            pe.os_error()
        )
    })
}

fn copy_job(state: &mut State, inst: usize, secondary_id: &str) -> Result<String, String> {
    let s = secondary_entry(state, inst, secondary_id)?;
    let src = job_directory(state, inst, "source", &s.backup_source_directory)?;
    let dst = job_directory(state, inst, "destination", &s.backup_destination_directory)?;
    std::fs::create_dir_all(&dst.local).map_err(|e| e.to_string())?;
    let last = s.last_copied_file.as_deref().map(paths::file_name);
    let mut copied = Vec::new();
    for f in paths::list_files(&src.local) {
        if file_time(&s.primary_database, &f).is_none() {
            continue;
        }
        if last.is_some_and(|l| f.as_str() <= l) {
            continue;
        }
        std::fs::copy(src.local.join(&f), dst.local.join(&f))
            .map_err(|e| format!("Copy of '{f}' failed: {e}"))?;
        copied.push(f);
    }
    if let Some(f) = copied.last() {
        let full = paths::join(&s.backup_destination_directory, f);
        if let Some(row) = state.instances[inst]
            .msdb
            .log_shipping_secondaries
            .iter_mut()
            .find(|r| r.secondary_id == secondary_id)
        {
            row.last_copied_file = Some(full);
            row.last_copied_date = Some(now());
        }
    }
    Ok(format!("Copied {} file(s).", copied.len()))
}

fn restore_job(state: &mut State, inst: usize, secondary_id: &str) -> Result<String, String> {
    let s = secondary_entry(state, inst, secondary_id)?;
    let dbs: Vec<LogShippingSecondaryDatabase> = state.instances[inst]
        .msdb
        .log_shipping_secondary_databases
        .iter()
        .filter(|d| d.secondary_id == secondary_id)
        .cloned()
        .collect();
    let dst = job_directory(state, inst, "destination", &s.backup_destination_directory)?;
    let mut restored = 0;
    for d in dbs {
        let last = d.last_restored_file.as_deref().map(paths::file_name);
        for f in paths::list_files(&dst.local) {
            if file_time(&s.primary_database, &f).is_none() || last.is_some_and(|l| f.as_str() <= l)
            {
                continue;
            }
            let disk = paths::join(&s.backup_destination_directory, &f);
            let set = backup::read_set(state, inst, &disk, 1, "RESTORE LOG")
                .map_err(|f| failure_text(&f))?;
            // @restore_delay: a backup is restored only once it is that many minutes old;
            // later files wait with it so the order is kept.
            if d.restore_delay > 0
                && now() - set.backup_finish_date < Duration::minutes(d.restore_delay as i64)
            {
                break;
            }
            let redo = state.instances[inst]
                .db(&d.secondary_database)
                .and_then(|db| db.redo_lsn);
            // sqllogship skips backups the database already contains.
            let skip = redo.is_some_and(|r| set.last_lsn <= r);
            if !skip {
                if d.disconnect_users {
                    for spid in state.instances[inst].sessions_in(&d.secondary_database, None) {
                        state.instances[inst].kill(spid);
                    }
                }
                let args = RestoreArgs {
                    what: RestoreWhat::Log,
                    database: d.secondary_database.clone(),
                    disk: Some(disk.clone()),
                    recovery: false,
                    replace: false,
                    file: 1,
                    moves: Vec::new(),
                };
                backup::restore(state, inst, None, &args).map_err(|f| failure_text(&f))?;
                restored += 1;
            }
            let latency = (now() - set.backup_finish_date).num_minutes().max(0) as i32;
            if let Some(row) = state.instances[inst]
                .msdb
                .log_shipping_secondary_databases
                .iter_mut()
                .find(|r| {
                    r.secondary_database
                        .eq_ignore_ascii_case(&d.secondary_database)
                })
            {
                row.last_restored_file = Some(disk);
                row.last_restored_date = Some(now());
                row.last_restored_latency = Some(latency);
            }
        }
    }
    Ok(format!("Restored {restored} file(s)."))
}
