//! SQL Agent schedules: `msdb.dbo.sp_add_schedule`, `sp_attach_schedule`, `sp_add_jobschedule`
//! and `sp_update_schedule` (Microsoft's pages of those names), and the interval at which each
//! job therefore runs.

use std::collections::HashMap;

use super::errors::{self as e, Failure, SqlError};
use super::model::{Job, Schedule, State};
use crate::backend::Value;

/// The schedule procedures and the parameters each accepts (anything else is error 8145).
pub fn known_params(proc_name: &str) -> Option<&'static [&'static str]> {
    Some(match proc_name {
        "sp_add_schedule" => &[
            "@schedule_name",
            "@enabled",
            "@freq_type",
            "@freq_interval",
            "@freq_subday_type",
            "@freq_subday_interval",
            "@freq_relative_interval",
            "@freq_recurrence_factor",
            "@active_start_date",
            "@active_end_date",
            "@active_start_time",
            "@active_end_time",
            "@owner_login_name",
            "@schedule_uid",
            "@schedule_id",
            "@originating_server",
        ],
        "sp_attach_schedule" => &[
            "@job_id",
            "@job_name",
            "@schedule_id",
            "@schedule_name",
            "@automatic_post",
        ],
        "sp_update_schedule" => &[
            "@schedule_id",
            "@name",
            "@new_name",
            "@enabled",
            "@freq_type",
            "@freq_interval",
            "@freq_subday_type",
            "@freq_subday_interval",
            "@freq_relative_interval",
            "@freq_recurrence_factor",
            "@active_start_date",
            "@active_end_date",
            "@active_start_time",
            "@active_end_time",
            "@owner_login_name",
            "@automatic_post",
        ],
        "sp_add_jobschedule" => &[
            "@job_id",
            "@job_name",
            "@name",
            "@enabled",
            "@freq_type",
            "@freq_interval",
            "@freq_subday_type",
            "@freq_subday_interval",
            "@freq_relative_interval",
            "@freq_recurrence_factor",
            "@active_start_date",
            "@active_end_date",
            "@active_start_time",
            "@active_end_time",
            "@schedule_id",
            "@automatic_post",
            "@schedule_uid",
        ],
        _ => return None,
    })
}

fn int_arg(named: &HashMap<String, Value>, name: &str, default: i64) -> Result<i64, Failure> {
    Ok(super::logship::int_param(named, name)?.unwrap_or(default))
}

fn str_arg(named: &HashMap<String, Value>, name: &str) -> Option<String> {
    match named.get(name) {
        Some(Value::NVarChar(s)) => Some(s.clone()),
        _ => None,
    }
}

/// Error 14278, as msdb's sp_verify_schedule raises it for a value outside its valid set:
/// "The schedule for this job is invalid", the reason being message 14266 formatted.
fn invalid(param: &str, valid: &str) -> Failure {
    invalid_because(&format!(
        "The specified '{param}' is invalid (valid values are: {valid})."
    ))
}

/// Error 14278 with `reason` (msdb's sp_verify_schedule formats 14266 or 14200 into it).
fn invalid_because(reason: &str) -> Failure {
    vec![SqlError::new(
        14278,
        format!("The schedule for this job is invalid (reason: {reason})."),
    )]
}

/// Build a schedule from the `@freq_*` / `@active_*` arguments, validating what SQL Agent
/// validates (sp_verify_schedule) for the daily schedules the model runs.
fn schedule_from(
    state: &mut State,
    inst: usize,
    name: String,
    named: &HashMap<String, Value>,
) -> Result<Schedule, Failure> {
    let clock_date: i32 = super::model::now()
        .format("%Y%m%d")
        .to_string()
        .parse()
        .unwrap_or(0);
    // What SQL Agent takes for an argument left out; @freq_type has no default.
    let defaults = Schedule {
        schedule_id: 0,
        schedule_uid: String::new(),
        name,
        enabled: true,
        freq_type: 0,
        freq_interval: 1,
        freq_subday_type: 1,
        freq_subday_interval: 0,
        active_start_date: clock_date,
        active_end_date: 99_991_231,
        active_start_time: 0,
        active_end_time: 235_959,
    };
    let mut s = with_arguments(&defaults, named)?;
    let msdb = &mut state.instances[inst].msdb;
    msdb.next_schedule_id += 1;
    s.schedule_id = msdb.next_schedule_id;
    s.schedule_uid = state.new_guid();
    Ok(s)
}

/// `base` with the `@freq_*`, `@active_*` and `@enabled` arguments given applied, validated
/// as sp_verify_schedule does for the daily schedules the model runs.
fn with_arguments(base: &Schedule, named: &HashMap<String, Value>) -> Result<Schedule, Failure> {
    let arg = |name: &str, current: i32| int_arg(named, name, current as i64);
    let freq_type = arg("@freq_type", base.freq_type)?;
    if freq_type != 4 {
        // Only daily schedules are modelled; refusing beats running a job at the wrong time.
        return Err(invalid(
            "@freq_type",
            "4 (daily; the only type the simulator runs)",
        ));
    }
    let freq_interval = arg("@freq_interval", base.freq_interval)?;
    if freq_interval < 1 {
        return Err(invalid("@freq_interval", "1 or more days"));
    }
    let subday_type = arg("@freq_subday_type", base.freq_subday_type)?;
    if ![1, 2, 4, 8].contains(&subday_type) {
        return Err(invalid("@freq_subday_type", "0x1, 0x2, 0x4, 0x8"));
    }
    let subday_interval = arg("@freq_subday_interval", base.freq_subday_interval)?;
    // sp_verify_schedule: at least 1 of any unit, and at least 10 seconds (SQL Agent's
    // MIN_SCHEDULE_GRANULARITY): message 14200 as the reason.
    if (subday_type != 1 && subday_interval < 1) || (subday_type == 2 && subday_interval < 10) {
        return Err(invalid_because(
            "The specified '@freq_subday_interval' is invalid.",
        ));
    }
    Ok(Schedule {
        schedule_id: base.schedule_id,
        schedule_uid: base.schedule_uid.clone(),
        name: base.name.clone(),
        enabled: arg("@enabled", base.enabled as i32)? != 0,
        freq_type: freq_type as i32,
        freq_interval: freq_interval as i32,
        freq_subday_type: subday_type as i32,
        freq_subday_interval: subday_interval as i32,
        active_start_date: arg("@active_start_date", base.active_start_date)? as i32,
        active_end_date: arg("@active_end_date", base.active_end_date)? as i32,
        active_start_time: arg("@active_start_time", base.active_start_time)? as i32,
        active_end_time: arg("@active_end_time", base.active_end_time)? as i32,
    })
}

/// Whether `job` is the one a job procedure names: by `@job_name` when given, otherwise by
/// `@job_id` as text or as a uniqueidentifier.
pub fn job_matches(job: &Job, name: Option<&str>, id: Option<&Value>) -> bool {
    match (name, id) {
        (Some(n), _) => job.name.eq_ignore_ascii_case(n),
        (None, Some(Value::NVarChar(id))) => job.job_id.eq_ignore_ascii_case(id),
        (None, Some(Value::UniqueIdentifier(b))) => {
            super::backup::guid_bytes(&job.job_id) == Value::UniqueIdentifier(*b)
        }
        _ => false,
    }
}

/// The job named by `@job_name` or `@job_id` (exactly one of them, 14294 otherwise; 14262
/// when there is no such job).
fn find_job(state: &State, inst: usize, named: &HashMap<String, Value>) -> Result<usize, Failure> {
    let jobs = &state.instances[inst].msdb.jobs;
    let by_name = str_arg(named, "@job_name");
    let by_id = match named.get("@job_id") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.clone()),
    };
    match (&by_name, &by_id) {
        (Some(_), Some(_)) | (None, None) => Err(vec![SqlError::new(
            14294,
            "Supply either @job_id or @job_name to identify the job.",
        )]),
        _ => jobs
            .iter()
            .position(|j| job_matches(j, by_name.as_deref(), by_id.as_ref()))
            .ok_or_else(|| {
                let shown = by_name.clone().unwrap_or_else(|| format!("{by_id:?}"));
                vec![e::no_such_job(&shown)]
            }),
    }
}

/// The schedule named by `@schedule_id` or by `name_param` (exactly one of them, 14373
/// otherwise; 14262 when there is no such schedule, 14371 when the name is not unique).
fn find_schedule(
    state: &State,
    inst: usize,
    named: &HashMap<String, Value>,
    name_param: &str,
) -> Result<i32, Failure> {
    let schedules = &state.instances[inst].msdb.schedules;
    match (
        named.get("@schedule_id").filter(|v| **v != Value::Null),
        str_arg(named, name_param),
    ) {
        (Some(_), Some(_)) | (None, None) => Err(vec![SqlError::new(
            14373,
            format!("Supply either @schedule_id or {name_param} to identify the schedule."),
        )]),
        (Some(_), None) => {
            let id = int_arg(named, "@schedule_id", 0)? as i32;
            if schedules.iter().any(|s| s.schedule_id == id) {
                Ok(id)
            } else {
                Err(vec![SqlError::new(
                    14262,
                    format!("The specified @schedule_id ('{id}') does not exist."),
                )])
            }
        }
        (None, Some(name)) => {
            let found: Vec<i32> = schedules
                .iter()
                .filter(|s| s.name.eq_ignore_ascii_case(&name))
                .map(|s| s.schedule_id)
                .collect();
            match found.as_slice() {
                [id] => Ok(*id),
                [] => Err(vec![SqlError::new(
                    14262,
                    format!("The specified {name_param} ('{name}') does not exist."),
                )]),
                _ => Err(vec![SqlError::new(
                    14371,
                    format!(
                        "There are two or more schedules named \"{name}\". Specify @schedule_id instead of {name_param} to uniquely identify the schedule."
                    ),
                )]),
            }
        }
    }
}

/// Attach schedule `schedule_id` to job `j` (attaching it again changes nothing).
fn attach(state: &mut State, inst: usize, j: usize, schedule_id: i32) {
    let msdb = &mut state.instances[inst].msdb;
    let job_id = msdb.jobs[j].job_id.clone();
    if !msdb
        .job_schedules
        .iter()
        .any(|(jid, sid)| *jid == job_id && *sid == schedule_id)
    {
        msdb.job_schedules.push((job_id, schedule_id));
    }
}

/// Run one of the schedule procedures. Returns OUTPUT parameter values by `@name`.
pub fn run(
    state: &mut State,
    inst: usize,
    proc_name: &str,
    named: &HashMap<String, Value>,
) -> Result<Vec<(String, Value)>, Failure> {
    match proc_name {
        "sp_add_schedule" => {
            let name = str_arg(named, "@schedule_name")
                .ok_or_else(|| vec![e::missing_param(proc_name, "@schedule_name")])?;
            let s = schedule_from(state, inst, name, named)?;
            let out = vec![
                ("@schedule_id".to_string(), Value::Int(s.schedule_id)),
                (
                    "@schedule_uid".to_string(),
                    Value::NVarChar(s.schedule_uid.clone()),
                ),
            ];
            state.instances[inst].msdb.schedules.push(s);
            Ok(out)
        }
        "sp_add_jobschedule" => {
            let name = str_arg(named, "@name")
                .ok_or_else(|| vec![e::missing_param(proc_name, "@name")])?;
            let j = find_job(state, inst, named)?;
            // msdb's sp_add_jobschedule is sp_add_schedule then sp_attach_schedule, with no
            // look at the job's schedules first: schedule names need not be unique, so every
            // call adds and attaches one more schedule, even under a name the job already has.
            let s = schedule_from(state, inst, name, named)?;
            let out = vec![
                ("@schedule_id".to_string(), Value::Int(s.schedule_id)),
                (
                    "@schedule_uid".to_string(),
                    Value::NVarChar(s.schedule_uid.clone()),
                ),
            ];
            let id = s.schedule_id;
            state.instances[inst].msdb.schedules.push(s);
            attach(state, inst, j, id);
            Ok(out)
        }
        "sp_attach_schedule" => {
            let j = find_job(state, inst, named)?;
            let schedule_id = find_schedule(state, inst, named, "@schedule_name")?;
            attach(state, inst, j, schedule_id);
            Ok(Vec::new())
        }
        "sp_update_schedule" => {
            let id = find_schedule(state, inst, named, "@name")?;
            let schedules = &mut state.instances[inst].msdb.schedules;
            let s = schedules
                .iter_mut()
                .find(|s| s.schedule_id == id)
                .expect("found above");
            let mut updated = with_arguments(s, named)?;
            if let Some(new_name) = str_arg(named, "@new_name") {
                updated.name = new_name;
            }
            *s = updated;
            Ok(Vec::new())
        }
        _ => Err(vec![e::no_such_procedure(proc_name)]),
    }
}

/// How often a job runs on its own: the shortest interval of its enabled schedules, `None`
/// when it has schedules but all are disabled, and `default_ms` (the topology's interval for
/// its kind) when it has none. Real SQL Agent never runs a job without a schedule; the model
/// does, so that topologies and tests need not create schedules for every job.
pub fn job_interval(state: &State, inst: usize, job: &Job, default_ms: u64) -> Option<u64> {
    let msdb = &state.instances[inst].msdb;
    let attached: Vec<&Schedule> = msdb
        .job_schedules
        .iter()
        .filter(|(jid, _)| *jid == job.job_id)
        .filter_map(|(_, sid)| msdb.schedules.iter().find(|s| s.schedule_id == *sid))
        .collect();
    if attached.is_empty() {
        return Some(default_ms);
    }
    let speedup = state.intervals.schedule_speedup.max(1);
    attached
        .iter()
        .filter(|s| s.enabled)
        .map(|s| s.interval_ms() / speedup)
        .min()
}

/// Forget a deleted job's schedule links, and the schedules no other job uses (as
/// `sp_delete_job` does with its default `@delete_unused_schedule = 1`).
pub fn job_deleted(state: &mut State, inst: usize, job_id: &str) {
    let msdb = &mut state.instances[inst].msdb;
    let mine: Vec<i32> = msdb
        .job_schedules
        .iter()
        .filter(|(jid, _)| jid == job_id)
        .map(|(_, sid)| *sid)
        .collect();
    msdb.job_schedules.retain(|(jid, _)| jid != job_id);
    for sid in mine {
        if !msdb.job_schedules.iter().any(|(_, s)| *s == sid) {
            msdb.schedules.retain(|s| s.schedule_id != sid);
        }
    }
}

/// The shortest interval any enabled schedule asks for (the scheduler ticks often enough).
pub fn shortest_schedule_ms(state: &State) -> Option<u64> {
    state
        .instances
        .iter()
        .flat_map(|i| i.msdb.schedules.iter())
        .filter(|s| s.enabled)
        .map(|s| s.interval_ms())
        .min()
}
