//! Log-shipping configuration and removal through the documented `master.dbo` procedures and
//! `msdb.dbo.sp_update_job`. Every argument taken from the step goes as an `sp_executesql`
//! parameter; OUTPUT arguments are local variables DECLAREd at the top of the batch.

use super::codes::*;
use super::{Batch, ParamValue, RETURN_CODE, Statement, StatementContext};
use pchat_core::plan::{LogShippingSide, job_schedule_name};

/// One argument of a procedure call.
enum Arg {
    /// A value from the step: sent as a parameter.
    Value(ParamValue),
    /// A fixed constant of this module, written into the text (`1`, `0`).
    Const(&'static str),
    /// An OUTPUT argument, received into a `uniqueidentifier` local of the same name.
    OutputId,
}

fn text(value: &str) -> Arg {
    Arg::Value(ParamValue::Text(value.to_string()))
}

/// `DECLARE @rc int[, @out uniqueidentifier, ...]; EXEC @rc = <procedure> @name = <arg>, ...;
/// SELECT @rc AS return_code`: the caller finishes it with [`Exec::on`], which has the
/// executor check the return code.
fn exec(procedure: &str, args: Vec<(&str, Arg)>) -> Exec {
    let outputs: String = args
        .iter()
        .filter(|(_, a)| matches!(a, Arg::OutputId))
        .map(|(name, _)| format!(", @{name} uniqueidentifier"))
        .collect();
    let mut batch = Batch::new(&format!("DECLARE @rc int{outputs}; "));
    batch = batch.sql(&format!("EXEC @rc = {procedure} "));
    for (i, (name, arg)) in args.into_iter().enumerate() {
        if i > 0 {
            batch = batch.sql(", ");
        }
        batch = batch.sql(&format!("@{name} = "));
        batch = match arg {
            Arg::Value(v) => batch.param(v),
            Arg::Const(c) => batch.sql(c),
            Arg::OutputId => batch.sql(&format!("@{name} OUTPUT")),
        };
    }
    Exec {
        batch: batch.sql(&format!("; SELECT @rc AS {RETURN_CODE}")),
        procedure: procedure.to_string(),
    }
}

/// A procedure call built by [`exec`], to be finished as a statement.
struct Exec {
    batch: Batch,
    procedure: String,
}

impl Exec {
    /// Finish as a statement for `instance` whose return code the executor checks.
    fn on(self, instance: &str, purpose: String) -> Statement {
        self.batch
            .on(instance, purpose)
            .returning_code_of(&self.procedure)
    }
}

/// `msdb.dbo.sp_update_job @job_name, @enabled = 1`: log-shipping jobs are created disabled.
/// Enabling an enabled job is no error, so the statement repeats safely as it is.
fn enable_job(instance: &str, job_name: &str) -> Statement {
    exec(
        "msdb.dbo.sp_update_job",
        vec![("job_name", text(job_name)), ("enabled", Arg::Const("1"))],
    )
    .on(
        instance,
        format!("enable the SQL Agent job {job_name} on {instance}"),
    )
}

/// What ConfigureLogShipping needs from its step.
pub(super) struct Shipping<'a> {
    /// The primary-site instances that get a primary row (the planner names the principal
    /// only); the first is the server the secondary copies from.
    pub primaries: &'a [String],
    pub secondary: &'a str,
    pub database: &'a str,
    pub backup_share: &'a str,
    pub copy_destination: &'a str,
    pub retention_seconds: u64,
    /// `spec.logShipping.backupInterval`: how often the backup job runs, and (as the
    /// deployment rules ask) the copy and restore jobs too.
    pub interval_seconds: u64,
}

/// Whole minutes, rounded up, at least one, as the procedures' `*_retention_period` take them.
fn minutes(seconds: u64) -> i32 {
    let m = seconds.div_ceil(60).max(1);
    i32::try_from(m).unwrap_or(i32::MAX)
}

/// A SQL Agent schedule's `@freq_subday_type` and `@freq_subday_interval` for "every
/// `seconds`": in hours or minutes when the interval is a whole number of them, else in
/// seconds (0x2, which SQL Agent accepts though the older documentation lists only 0x1, 0x4
/// and 0x8).
fn subday(seconds: u64) -> (i32, i32) {
    let seconds = seconds.max(1);
    let clamp = |n: u64| i32::try_from(n).unwrap_or(i32::MAX);
    if seconds.is_multiple_of(3600) {
        (8, clamp(seconds / 3600))
    } else if seconds.is_multiple_of(60) {
        (4, clamp(seconds / 60))
    } else {
        (2, clamp(seconds))
    }
}

/// A daily schedule running `job_name` every `interval_seconds` all day, attached to the job
/// unless the job already has one under that name: one batch that looks first, then
/// `msdb.dbo.sp_add_schedule` and `msdb.dbo.sp_attach_schedule`. Log-shipping procedures
/// create their jobs without a schedule (Microsoft's configuration scripts add one the same
/// way), and SQL Agent never runs a job that has none. `sp_add_jobschedule` is not used: it is
/// deprecated and adds another schedule on every call (schedule names need not be unique), so
/// a repeated step would run the job twice as often. The look-up in the same batch makes the
/// repeat harmless; a job keeps its schedules across `@overwrite = 1`. The return code of the
/// procedure that ran last is selected, and a non-zero one fails the step.
fn schedule_job(instance: &str, job_name: &str, interval_seconds: u64) -> Statement {
    let schedule_name = job_schedule_name(job_name, interval_seconds);
    let (unit, every) = subday(interval_seconds);
    Batch::new(
        "DECLARE @schedule_id int, @rc int; SET @rc = 0; \
         IF NOT EXISTS (SELECT 1 FROM msdb.dbo.sysjobs j \
         JOIN msdb.dbo.sysjobschedules js ON js.job_id = j.job_id \
         JOIN msdb.dbo.sysschedules s ON s.schedule_id = js.schedule_id \
         WHERE j.name = ",
    )
    .text(job_name)
    .sql(" AND s.name = ")
    .text(&schedule_name)
    .sql(") BEGIN EXEC @rc = msdb.dbo.sp_add_schedule @schedule_name = ")
    .text(&schedule_name)
    .sql(", @enabled = 1, @freq_type = 4, @freq_interval = 1, @freq_subday_type = ")
    .param(ParamValue::Int(unit))
    .sql(", @freq_subday_interval = ")
    .param(ParamValue::Int(every))
    .sql(
        ", @schedule_id = @schedule_id OUTPUT; \
         IF @rc = 0 EXEC @rc = msdb.dbo.sp_attach_schedule @job_name = ",
    )
    .text(job_name)
    .sql(&format!(
        ", @schedule_id = @schedule_id; END; SELECT @rc AS {RETURN_CODE}"
    ))
    .on(
        instance,
        format!("run the SQL Agent job {job_name} on {instance} every {interval_seconds} s"),
    )
    .returning_code_of("msdb.dbo.sp_add_schedule or msdb.dbo.sp_attach_schedule")
}

/// The schedule arguments of "daily, all day, every `interval_seconds`".
fn daily_every(interval_seconds: u64) -> [(&'static str, Arg); 4] {
    let (unit, every) = subday(interval_seconds);
    [
        ("freq_type", Arg::Const("4")),
        ("freq_interval", Arg::Const("1")),
        ("freq_subday_type", Arg::Value(ParamValue::Int(unit))),
        ("freq_subday_interval", Arg::Value(ParamValue::Int(every))),
    ]
}

/// RescheduleLogShippingJobs, one schedule: `msdb.dbo.sp_update_schedule` makes it daily,
/// every `interval_seconds`, under the name of that interval. Setting the same values again
/// is no error. A schedule gone with its job since the observation (14262) fails the step;
/// the next pass observes that and asks for nothing.
pub(super) fn reschedule(
    instance: &str,
    job_name: &str,
    schedule_id: i32,
    interval_seconds: u64,
) -> Statement {
    let mut args = vec![
        ("schedule_id", Arg::Value(ParamValue::Int(schedule_id))),
        (
            "new_name",
            text(&job_schedule_name(job_name, interval_seconds)),
        ),
    ];
    args.extend(daily_every(interval_seconds));
    exec("msdb.dbo.sp_update_schedule", args)
    .on(
        instance,
        format!("run the SQL Agent job {job_name} on {instance} every {interval_seconds} s (schedule {schedule_id})"),
    )
}

/// ConfigureLogShipping, in the documented order: on every primary instance the primary row
/// and its backup job (enabled); on the secondary the primary entry (copy and restore jobs),
/// the secondary database and both jobs enabled; then on every primary instance the link to
/// the secondary. `@overwrite = 1` makes each procedure replace what an earlier, interrupted
/// run left, so the whole step repeats safely.
///
/// The backup job writes straight to the share (`@backup_directory` = `@backup_share`), so
/// the principal and the mirror back up to the same place whichever of them is serving.
pub(super) fn configure(s: &Shipping, ctx: &StatementContext) -> Vec<Statement> {
    let db = s.database;
    let retention = minutes(s.retention_seconds);
    let backup_job = format!("LSBackup_{db}");
    let mut out = Vec::new();
    for p in s.primaries {
        out.push(
            exec(
                "master.dbo.sp_add_log_shipping_primary_database",
                vec![
                    ("database", text(db)),
                    ("backup_directory", text(s.backup_share)),
                    ("backup_share", text(s.backup_share)),
                    ("backup_job_name", text(&backup_job)),
                    (
                        "backup_retention_period",
                        Arg::Value(ParamValue::Int(retention)),
                    ),
                    ("overwrite", Arg::Const("1")),
                    ("backup_job_id", Arg::OutputId),
                    ("primary_id", Arg::OutputId),
                ],
            )
            .on(
                p,
                format!(
                    "make {db} on {p} a log-shipping primary backing up to {}",
                    s.backup_share
                ),
            )
            .done_if(&[LS_PRIMARY_EXISTS]),
        );
        out.push(schedule_job(p, &backup_job, s.interval_seconds));
        out.push(enable_job(p, &backup_job));
    }

    let Some(principal) = s.primaries.first() else {
        return out;
    };
    let primary_server = ctx.server_name(principal);
    let secondary = s.secondary;
    let copy_job = format!("LSCopy_{primary_server}_{db}");
    let restore_job = format!("LSRestore_{primary_server}_{db}");
    out.push(
        exec(
            "master.dbo.sp_add_log_shipping_secondary_primary",
            vec![
                ("primary_server", text(primary_server)),
                ("primary_database", text(db)),
                ("backup_source_directory", text(s.backup_share)),
                ("backup_destination_directory", text(s.copy_destination)),
                ("copy_job_name", text(&copy_job)),
                ("restore_job_name", text(&restore_job)),
                (
                    "file_retention_period",
                    Arg::Value(ParamValue::Int(retention)),
                ),
                ("overwrite", Arg::Const("1")),
                ("copy_job_id", Arg::OutputId),
                ("restore_job_id", Arg::OutputId),
                ("secondary_id", Arg::OutputId),
            ],
        )
        .on(
            secondary,
            format!(
                "register primary {primary_server}.{db} on {secondary}: copy {} to {}",
                s.backup_share, s.copy_destination
            ),
        )
        .done_if(&[LS_SECONDARY_PRIMARY_EXISTS]),
    );
    out.push(
        exec(
            "master.dbo.sp_add_log_shipping_secondary_database",
            vec![
                ("secondary_database", text(db)),
                ("primary_server", text(primary_server)),
                ("primary_database", text(db)),
                ("restore_delay", Arg::Const("0")),
                ("restore_mode", Arg::Const("0")),
                ("disconnect_users", Arg::Const("0")),
                ("overwrite", Arg::Const("1")),
            ],
        )
        .on(
            secondary,
            format!(
                "make {db} on {secondary} the log-shipping secondary of {primary_server} (NORECOVERY, no delay)"
            ),
        )
        .done_if(&[LS_SECONDARY_DATABASE_EXISTS]),
    );
    out.push(schedule_job(secondary, &copy_job, s.interval_seconds));
    out.push(schedule_job(secondary, &restore_job, s.interval_seconds));
    out.push(enable_job(secondary, &copy_job));
    out.push(enable_job(secondary, &restore_job));

    let secondary_server = ctx.server_name(secondary);
    for p in s.primaries {
        out.push(
            exec(
                "master.dbo.sp_add_log_shipping_primary_secondary",
                vec![
                    ("primary_database", text(db)),
                    ("secondary_server", text(secondary_server)),
                    ("secondary_database", text(db)),
                    ("overwrite", Arg::Const("1")),
                ],
            )
            .on(
                p,
                format!("link primary {db} on {p} to secondary {secondary_server}.{db}"),
            )
            .done_if(&[LS_PRIMARY_SECONDARY_EXISTS]),
        );
    }
    out
}

/// RemoveLogShipping on one instance. Secondary side: the secondary database, then the entry
/// for each primary server. Primary side: the link to each secondary server, then the primary
/// row (SQL Server refuses it while links remain). The partner databases have the pool's name
/// on both sides. Each statement counts as done when its configuration is already gone.
pub(super) fn remove(
    instance: &str,
    database: &str,
    side: LogShippingSide,
    partners: &[String],
) -> Vec<Statement> {
    let mut out = Vec::new();
    match side {
        LogShippingSide::Secondary => {
            out.push(
                exec(
                    "master.dbo.sp_delete_log_shipping_secondary_database",
                    vec![("secondary_database", text(database))],
                )
                .on(
                    instance,
                    format!("remove the log-shipping secondary configuration of {database} on {instance}"),
                )
                .done_if(&[LS_NOT_SECONDARY]),
            );
            for primary in partners {
                out.push(
                    exec(
                        "master.dbo.sp_delete_log_shipping_secondary_primary",
                        vec![
                            ("primary_server", text(primary)),
                            ("primary_database", text(database)),
                        ],
                    )
                    .on(
                        instance,
                        format!("remove primary {primary}.{database} and its copy and restore jobs from {instance}"),
                    )
                    // Removing the last secondary database may already have removed it.
                    .done_if(&[LS_SECONDARY_PRIMARY_ABSENT]),
                );
            }
        }
        LogShippingSide::Primary => {
            for secondary in partners {
                out.push(
                    exec(
                        "master.dbo.sp_delete_log_shipping_primary_secondary",
                        vec![
                            ("primary_database", text(database)),
                            ("secondary_server", text(secondary)),
                            ("secondary_database", text(database)),
                        ],
                    )
                    .on(
                        instance,
                        format!("unlink secondary {secondary}.{database} from primary {database} on {instance}"),
                    )
                    .done_if(&[LS_NOT_PRIMARY]),
                );
            }
            out.push(
                exec(
                    "master.dbo.sp_delete_log_shipping_primary_database",
                    vec![("database", text(database))],
                )
                .on(
                    instance,
                    format!("remove the log-shipping primary configuration and backup job of {database} on {instance}"),
                )
                .done_if(&[LS_NOT_PRIMARY]),
            );
        }
    }
    out
}
