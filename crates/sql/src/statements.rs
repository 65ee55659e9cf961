//! Each planner step as the T-SQL statements that carry it out, in the order they must run.
//!
//! A [`Statement`] is one request to one instance. Everything a step takes from the spec or
//! the observation reaches SQL Server either as an `sp_executesql` parameter (`@P1`, `@P2`, ...:
//! stored procedure arguments and the `DISK =` device of BACKUP/RESTORE, which T-SQL accepts as
//! a variable) or, where T-SQL takes no variable (database names in ALTER DATABASE, BACKUP and
//! RESTORE, the partner address of SET PARTNER, the session id of KILL), through
//! [`super::quote`]. Each statement lists the error numbers that mean "this was already done",
//! so the executor can repeat any statement of a step after a crash or a lost answer.
//!
//! The log-shipping procedures are called with their documented parameter names, and with
//! `@overwrite = 1` as SSMS scripts them, so that a repeated call replaces what an earlier, interrupted
//! one configured.

mod backup;
mod codes;
mod database;
mod log_shipping;
mod mirroring;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::Serialize;

use pchat_core::observe::{DatabaseFile, DefaultPaths, Observation};
use pchat_core::plan::Step;

pub use codes::*;

/// A value sent as an `sp_executesql` parameter.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(untagged)]
pub enum ParamValue {
    /// `nvarchar`: names, paths, job names.
    Text(String),
    /// `int`: retention periods in minutes.
    Int(i32),
}

/// One T-SQL request to one instance.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Statement {
    /// The instance (its name in the spec) the statement runs on.
    pub instance: String,
    /// The batch text. Values appear in it only as `@P1`, `@P2`, ... (see `params`); names that
    /// T-SQL cannot take as variables are quoted with `quote::ident` / `quote::nstring`.
    pub sql: String,
    /// The parameters, named `@P1`..`@Pn` in order: the placeholders tiberius's `Query::bind`
    /// fills positionally. Empty when the statement takes none.
    pub params: Vec<(String, ParamValue)>,
    /// What the statement does, in words for logs and status. Never holds a secret (no
    /// statement carries one).
    pub purpose: String,
    /// SQL Server error numbers that, raised by this statement, mean its effect is already in
    /// place, so the statement counts as done. Match them against the first (root) error of the
    /// answer: BACKUP and RESTORE follow it with the generic 3013, which is never listed here.
    pub done_if: Vec<u32>,
    /// Error numbers that mean "not now": run the same statement again on a later pass.
    pub retry_if: Vec<u32>,
    /// The stored procedure(s) whose return code the batch ends by selecting as
    /// `return_code` ([`RETURN_CODE`]): msdb's and master's procedures report some failures
    /// only by returning non-zero, which the executor turns into an error naming them.
    pub return_code_of: Option<String>,
}

/// The column a batch ends with when it reports a procedure's return code.
pub const RETURN_CODE: &str = "return_code";

/// What the executor knows that a step does not.
#[derive(Serialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct StatementContext {
    /// Each instance's own server name (`@@SERVERNAME`) by its name in the spec, as observed.
    /// Log shipping records servers under this name. An instance missing here is taken to be
    /// named as in the spec (the simulator and most installs name instances so).
    pub server_names: BTreeMap<String, String>,
    /// Each instance's default data and log folders, as observed.
    pub default_paths: BTreeMap<String, DefaultPaths>,
    /// The files of each observed copy, by instance then database (lower case), as observed.
    pub files: BTreeMap<String, BTreeMap<String, Vec<DatabaseFile>>>,
}

impl StatementContext {
    /// The server names the instances reported in `obs` (those that answered).
    pub fn from_observation(obs: &Observation) -> Self {
        StatementContext {
            server_names: obs
                .instances
                .iter()
                .filter_map(|i| Some((i.name.clone(), i.server_name.clone()?)))
                .collect(),
            default_paths: obs
                .instances
                .iter()
                .filter_map(|i| Some((i.name.clone(), i.default_paths.clone()?)))
                .collect(),
            files: obs
                .instances
                .iter()
                .map(|i| {
                    let copies = i
                        .databases
                        .iter()
                        .map(|d| (d.name.to_ascii_lowercase(), d.files.clone()))
                        .collect();
                    (i.name.clone(), copies)
                })
                .collect(),
        }
    }

    /// `WITH MOVE` for restoring a backup of `database` taken on `source` onto `target`:
    /// each of the source copy's files to the target's default folder for its kind, under
    /// the same file name. Empty when either side is not known (the restore then keeps the
    /// backup's paths, which works where every instance uses the same folders).
    pub fn moves(&self, source: &str, target: &str, database: &str) -> Vec<(String, String)> {
        let (Some(paths), Some(files)) = (
            self.default_paths.get(target),
            self.files
                .get(source)
                .and_then(|copies| copies.get(&database.to_ascii_lowercase())),
        ) else {
            return Vec::new();
        };
        files
            .iter()
            .map(|f| {
                let folder = if f.log { &paths.log } else { &paths.data };
                (
                    f.logical_name.clone(),
                    crate::observe::join(folder, f.file_name()),
                )
            })
            .collect()
    }

    /// The server name SQL Server knows `instance` by.
    pub fn server_name<'a>(&'a self, instance: &'a str) -> &'a str {
        self.server_names
            .get(instance)
            .map(String::as_str)
            .unwrap_or(instance)
    }
}

/// The statements that carry out `step`, in the order they must run. Run them one after the
/// other, each through [`Statement::query`]; a statement whose root error is in its `done_if`
/// counts as run, one whose error is in its `retry_if` ends the step for this pass (the next
/// pass re-plans from what it observes), and any other error ends it as a failure.
///
/// `PublishActiveServers` produces none: publishing the active server list and pool state is
/// the engine's job (a ConfigMap in Kubernetes, a file locally), not SQL Server's.
pub fn statements(step: &Step, ctx: &StatementContext) -> Vec<Statement> {
    // One arm per step, handing its fields to the family module that writes its T-SQL: the
    // match keeps the compiler checking that every step of the catalogue has its statements.
    match step {
        Step::PublishActiveServers { .. } => Vec::new(),
        Step::KillChatSessions {
            instance,
            session_ids,
            ..
        } => database::kill_sessions(instance, session_ids),
        Step::RemoveMirroring {
            instance,
            databases,
            ..
        } => databases
            .iter()
            .map(|database| mirroring::partner_off(instance, database))
            .collect(),
        Step::DemoteOldPrimary {
            instance,
            database,
            file,
            ..
        } => vec![backup::tail_log(instance, database, file)],
        Step::CatchUp {
            instance,
            database,
            files,
            ..
        } => backup::catch_up(instance, database, files),
        Step::RescheduleLogShippingJobs {
            schedules,
            interval_seconds,
            ..
        } => schedules
            .iter()
            .map(|s| {
                log_shipping::reschedule(&s.instance, &s.job_name, s.schedule_id, *interval_seconds)
            })
            .collect(),
        Step::RemoveLogShipping {
            database,
            configurations,
            ..
        } => configurations
            .iter()
            .flat_map(|c| log_shipping::remove(&c.instance, database, c.side, &c.partners))
            .collect(),
        Step::Recover {
            instance,
            database,
            kill_session_ids,
            ..
        } => database::recover(instance, database, kill_session_ids),
        Step::FenceStaleCopy {
            instance, database, ..
        } => vec![database::fence(instance, database)],
        Step::SalvageStaleCopy {
            instance,
            database,
            file,
            ..
        } => vec![backup::salvage(instance, database, file)],
        Step::Reseed {
            instance,
            database,
            source_instance,
            full_backup,
            log_backup,
            replace,
            ..
        } => backup::seed(&backup::Seed {
            source: source_instance,
            target: instance,
            database,
            full_backup,
            log_backup,
            replace: *replace,
            moves: ctx.moves(source_instance, instance, database),
        }),
        Step::BootstrapSecondary {
            instance,
            database,
            source_instance,
            full_backup,
            log_backup,
            ..
        } => backup::seed(&backup::Seed {
            source: source_instance,
            target: instance,
            database,
            full_backup,
            log_backup,
            replace: false,
            moves: ctx.moves(source_instance, instance, database),
        }),
        Step::CreateComplianceDatabase {
            instance, database, ..
        } => database::create(instance, database),
        // The mirror instance may hold an old copy (a salvaged stale one, or the RESTORING
        // leftover of an earlier session): the planner salvaged what needed it, so REPLACE.
        Step::SeedMirror {
            principal,
            mirror,
            database,
            full_backup,
            log_backup,
            ..
        } => backup::seed(&backup::Seed {
            source: principal,
            target: mirror,
            database,
            full_backup,
            log_backup,
            replace: true,
            moves: ctx.moves(principal, mirror, database),
        }),
        Step::EstablishMirroring {
            principal,
            mirror,
            database,
            principal_endpoint,
            mirror_endpoint,
            ..
        } => mirroring::establish(&mirroring::Partners {
            principal,
            mirror,
            database,
            principal_endpoint,
            mirror_endpoint,
        }),
        Step::ConfigureLogShipping {
            primary_instances,
            secondary_instance,
            database,
            backup_share,
            copy_destination,
            backup_interval_seconds,
            retention_seconds,
            ..
        } => log_shipping::configure(
            &log_shipping::Shipping {
                primaries: primary_instances,
                secondary: secondary_instance,
                database,
                backup_share,
                copy_destination,
                retention_seconds: *retention_seconds,
                interval_seconds: *backup_interval_seconds,
            },
            ctx,
        ),
    }
}

/// Statement text under construction: literal T-SQL plus parameters numbered `@P1`, `@P2`, ...
/// in the order they are added.
#[derive(Default)]
struct Batch {
    sql: String,
    params: Vec<(String, ParamValue)>,
}

impl Batch {
    fn new(sql: &str) -> Self {
        Batch {
            sql: sql.to_string(),
            params: Vec::new(),
        }
    }

    /// Append T-SQL text as is: only constants and already-quoted names go here.
    fn sql(mut self, text: &str) -> Self {
        self.sql.push_str(text);
        self
    }

    /// Append a placeholder for `value`.
    fn param(mut self, value: ParamValue) -> Self {
        let name = format!("@P{}", self.params.len() + 1);
        self.sql.push_str(&name);
        self.params.push((name, value));
        self
    }

    fn text(self, value: &str) -> Self {
        self.param(ParamValue::Text(value.to_string()))
    }

    /// Finish as a statement for `instance`.
    fn on(self, instance: &str, purpose: String) -> Statement {
        Statement {
            instance: instance.to_string(),
            sql: self.sql,
            params: self.params,
            purpose,
            done_if: Vec::new(),
            retry_if: Vec::new(),
            return_code_of: None,
        }
    }
}

impl Statement {
    /// BACKUP and RESTORE, which take as long as the data does (a restore's redo included):
    /// the executor sends them without the command timeout.
    pub fn runs_long(&self) -> bool {
        let head = self.sql.trim_start();
        ["BACKUP ", "RESTORE "].iter().any(|k| {
            head.get(..k.len())
                .is_some_and(|h| h.eq_ignore_ascii_case(k))
        })
    }

    /// The statement as a tiberius query (sent through `sp_executesql`), its parameters bound
    /// in `@P1`..`@Pn` order.
    pub fn query(&self) -> tiberius::Query<'_> {
        let mut q = tiberius::Query::new(self.sql.as_str());
        for (_, value) in &self.params {
            match value {
                ParamValue::Text(t) => q.bind(t.as_str()),
                ParamValue::Int(i) => q.bind(*i),
            }
        }
        q
    }

    fn done_if(mut self, numbers: &[u32]) -> Self {
        self.done_if = numbers.to_vec();
        self
    }

    fn retry_if(mut self, numbers: &[u32]) -> Self {
        self.retry_if = numbers.to_vec();
        self
    }

    /// The batch selects `procedure`'s return code last, as [`RETURN_CODE`].
    fn returning_code_of(mut self, procedure: &str) -> Self {
        self.return_code_of = Some(procedure.to_string());
        self
    }
}
