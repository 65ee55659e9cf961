//! Why the planner sends nothing: waiting for something outside the operator, or blocked on a
//! decision only a person can make. The Display texts name instances, databases, files and
//! figures so the person reading them can act.

use serde::Serialize;

use crate::observe::Lsn;

/// Something outside the operator must happen first; the planner will move on by itself.
#[derive(Serialize, Clone, Debug, PartialEq, Eq, strum::IntoStaticStr)]
#[serde(tag = "kind", rename_all_fields = "camelCase")]
pub enum WaitReason {
    /// `spec.suspend` is true: observing only, nothing is sent (the suspend decision).
    Suspended,
    /// Chat servers still hold sessions on the chat databases after the list was cleared.
    Draining {
        instance: String,
        sessions: usize,
        seconds_left: i64,
    },
    /// An instance the next step needs did not answer.
    InstanceUnreachable {
        instance: String,
        site: String,
        reason: String,
    },
    /// The whole old primary site is unreachable, but not yet for `unreachableAfter`.
    PrimarySiteUnreachable { site: String, seconds_left: i64 },
    /// A BACKUP or RESTORE is still running on an instance the next step would send to; the
    /// step waits rather than resend or end it (its session would be KILLed as one "still on
    /// the database").
    OperationRunning {
        instance: String,
        command: String,
        percent_complete: u8,
        session_id: i32,
        program_name: String,
    },
    /// A share or copy folder that holds a needed backup cannot be listed.
    LocationUnreadable {
        instance: String,
        /// What the instance cannot do, in words ("catch up", "salvage", ...).
        action: String,
        database: String,
        file: Option<String>,
        location: String,
        reason: String,
    },
}

impl std::fmt::Display for WaitReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WaitReason::Suspended => write!(
                f,
                "spec.suspend is true: observing only, no statement is sent"
            ),
            WaitReason::Draining {
                instance,
                sessions,
                seconds_left,
            } => write!(
                f,
                "draining: {sessions} chat-server session(s) still on {instance}; they are ended in {seconds_left}s (failover.drainTimeout)"
            ),
            WaitReason::InstanceUnreachable {
                instance,
                site,
                reason,
            } => write!(
                f,
                "{instance} ({site}) is unreachable: {reason}; its steps wait until it answers"
            ),
            WaitReason::OperationRunning {
                instance,
                command,
                percent_complete,
                session_id,
                program_name,
            } => write!(
                f,
                "{command} running on {instance} ({percent_complete}% complete, session {session_id}, program {}): the next step waits for it to end",
                if program_name.is_empty() {
                    "unknown"
                } else {
                    program_name
                }
            ),
            WaitReason::PrimarySiteUnreachable { site, seconds_left } => write!(
                f,
                "no instance of {site} answers; it is treated as down in {seconds_left}s (failover.unreachableAfter)"
            ),
            WaitReason::LocationUnreadable {
                instance,
                action,
                database,
                file,
                location,
                reason,
            } => match file {
                Some(file) => {
                    // The file's name is enough when it lives on the location named anyway.
                    let name = file
                        .strip_prefix(location.as_str())
                        .map(|n| n.trim_start_matches('\\'))
                        .unwrap_or(file);
                    let what = if name.ends_with(".trn") {
                        "log backup"
                    } else {
                        "backup"
                    };
                    write!(
                        f,
                        "{instance} cannot {action} {database}: {what} {name} on {location} is unreadable ({reason})"
                    )
                }
                None => write!(
                    f,
                    "{instance} cannot {action} {database}: {location} is unreadable ({reason})"
                ),
            },
        }
    }
}

/// What a copy's end of log was compared with to decide it may hold writes the primary lacks.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(tag = "kind", content = "lsn")]
pub enum NewerBasis {
    /// The primary's fork point: writes past it on another copy are not the primary's.
    PrimaryFork(Lsn),
    /// The copy's own fork point (the primary never forked): writes past it are the copy's own.
    OwnFork(Lsn),
    /// Neither copy records a recovery fork: where their histories split is unknown, so
    /// nothing in the copy's log is known to be the primary's too.
    NoForkPoint,
}

/// A person must decide (change the spec or the failover policy, or repair something).
#[derive(Serialize, Clone, Debug, PartialEq, Eq, strum::IntoStaticStr)]
#[serde(tag = "kind", rename_all_fields = "camelCase")]
pub enum BlockReason {
    /// Forced failover needed but `failover.allowDataLoss` is false.
    DataLossNotAllowed {
        from_site: String,
        to_instance: String,
        estimated_seconds: u64,
        last_file: Option<String>,
    },
    /// Forced failover would lose more than `failover.maxDataLoss`.
    DataLossTooLarge {
        from_site: String,
        to_instance: String,
        estimated_seconds: u64,
        max_seconds: u64,
    },
    /// Forced failover needed but no log backup tells how much would be lost.
    DataLossUnknown {
        from_site: String,
        to_instance: String,
    },
    /// A copy that may hold writes the primary lacks; overwriting it needs approval.
    StaleCopyMayBeNewer {
        instance: String,
        database: String,
        end_of_log: Lsn,
        primary_instance: String,
        /// The point its end of log was compared with, and why.
        basis: NewerBasis,
        salvage_file: Option<String>,
    },
    /// The log chain the catch-up needs has a gap.
    LogChainBroken {
        instance: String,
        database: String,
        redo_point: Lsn,
        target: Option<Lsn>,
    },
    /// The primary site holds no copy the operator could bring online.
    NoCopyOnPrimarySite {
        site: String,
        database: String,
        detail: String,
    },
    /// No copy is ONLINE and none was demoted with a tail-log backup: which copy wins is a
    /// person's decision.
    NoServingCopy { database: String },
    /// Mirroring and log shipping need the FULL recovery model.
    RecoveryModelNotFull {
        instance: String,
        database: String,
        model: String,
    },
    /// An instance reports a `@@SERVERNAME` other than the name the spec gives it. SQL Server
    /// records log shipping (msdb's `log_shipping_*` tables, the monitor) and backup history
    /// (`msdb.dbo.backupset.server_name`) under `@@SERVERNAME`: read against the spec's name,
    /// every configuration would look absent and be written again on every pass.
    ServerNameMismatch {
        instance: String,
        server_name: String,
    },
    /// A database is in a state the operator does not repair (SUSPECT, EMERGENCY, ...).
    DatabaseState {
        instance: String,
        database: String,
        state: String,
    },
}

impl std::fmt::Display for BlockReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlockReason::DataLossNotAllowed {
                from_site,
                to_instance,
                estimated_seconds,
                last_file,
            } => write!(
                f,
                "{from_site} is down; a forced failover to {to_instance} would lose an estimated {estimated_seconds}s of chat (last restorable log backup: {}); set failover.allowDataLoss: true to accept it",
                last_file.as_deref().unwrap_or("unknown")
            ),
            BlockReason::DataLossTooLarge {
                from_site,
                to_instance,
                estimated_seconds,
                max_seconds,
            } => write!(
                f,
                "{from_site} is down; a forced failover to {to_instance} would lose an estimated {estimated_seconds}s of chat, more than failover.maxDataLoss ({max_seconds}s)"
            ),
            BlockReason::DataLossUnknown {
                from_site,
                to_instance,
            } => write!(
                f,
                "{from_site} is down and no log backup restored on {to_instance} has a known finish time, so the data loss of a forced failover cannot be estimated"
            ),
            BlockReason::StaleCopyMayBeNewer {
                instance,
                database,
                end_of_log,
                primary_instance,
                basis,
                salvage_file,
            } => {
                let why = match basis {
                    NewerBasis::PrimaryFork(l) => {
                        format!(
                            "end of log {end_of_log} is beyond the fork point {l} of {primary_instance}"
                        )
                    }
                    NewerBasis::OwnFork(l) => format!(
                        "end of log {end_of_log} is beyond its own fork point {l}, which {primary_instance} never restored past"
                    ),
                    NewerBasis::NoForkPoint => format!(
                        "end of log {end_of_log}; neither it nor {primary_instance} records a recovery fork, so where their histories split is unknown"
                    ),
                };
                write!(
                    f,
                    "{database} on {instance} may hold writes that the primary lacks ({why}); it is kept{}; add {instance} to failover.approveOverwrite to overwrite it",
                    salvage_file
                        .as_ref()
                        .map(|s| format!(" and salvaged in {s}"))
                        .unwrap_or_default()
                )
            }
            BlockReason::LogChainBroken {
                instance,
                database,
                redo_point,
                target,
            } => write!(
                f,
                "{instance} cannot catch up {database}: no log backup on its copy folder or the other site's share contains LSN {redo_point}{}",
                target
                    .map(|t| format!(" (tail LSN {t} needed)"))
                    .unwrap_or_default()
            ),
            BlockReason::NoCopyOnPrimarySite {
                site,
                database,
                detail,
            } => write!(
                f,
                "{site} holds no copy of {database} that can become primary: {detail}"
            ),
            BlockReason::NoServingCopy { database } => write!(
                f,
                "no copy of {database} is ONLINE and none was demoted with a tail-log backup: choose the copy to keep and recover it by hand"
            ),
            BlockReason::RecoveryModelNotFull {
                instance,
                database,
                model,
            } => write!(
                f,
                "{database} on {instance} uses the {model} recovery model; mirroring and log shipping need FULL: run ALTER DATABASE [{database}] SET RECOVERY FULL and take a full backup"
            ),
            BlockReason::ServerNameMismatch {
                instance,
                server_name,
            } => write!(
                f,
                "{instance} reports @@SERVERNAME {server_name}: the spec must name each instance as the server names itself (host or host\\instance), because log shipping and backup history are recorded under @@SERVERNAME; correct the name in spec.sites[].instances, or, if the server was renamed, run sp_dropserver and sp_addserver @local = 'local' on it and restart SQL Server"
            ),
            BlockReason::DatabaseState {
                instance,
                database,
                state,
            } => write!(
                f,
                "{database} on {instance} is {state}: repair it by hand, the operator does not"
            ),
        }
    }
}
