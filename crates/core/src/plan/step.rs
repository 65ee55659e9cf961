//! The step catalogue: every write the operator can make, each carrying exactly what the
//! executor needs to send its T-SQL (or to publish), and nothing it would have to look up.

use serde::Serialize;

use crate::api::PoolState;
use crate::observe::Lsn;

/// One log backup to restore, with the LSN range that lets the executor skip it when the
/// copy's redo point already passed it (which makes a repeated CatchUp safe).
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct LogFile {
    pub path: String,
    pub first_lsn: Lsn,
    pub last_lsn: Lsn,
}

/// Which side of a log-shipping configuration a removal acts on.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogShippingSide {
    /// `sp_delete_log_shipping_secondary_database` then `sp_delete_log_shipping_secondary_primary`.
    Secondary,
    /// `sp_delete_log_shipping_primary_secondary` then `sp_delete_log_shipping_primary_database`.
    Primary,
}

/// One instance's log-shipping configuration to remove, and the other end it names.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct LogShippingConfiguration {
    pub instance: String,
    pub side: LogShippingSide,
    /// The other end: the primary server (secondary side) or the secondary servers (primary
    /// side) named in the configuration being removed.
    pub partners: Vec<String>,
}

/// A SQL Agent schedule of a log-shipping job that does not run its job every `backupInterval`.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleToChange {
    pub instance: String,
    pub job_name: String,
    pub schedule_id: i32,
    /// How often it runs the job now (None: not a daily repeating schedule).
    pub every_seconds: Option<u64>,
}

/// One step of the catalogue: one kind of write the planner can choose.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "step", rename_all_fields = "camelCase")]
pub enum Step {
    /// `Set-CsPersistentChatActiveServer` + `Set-CsPersistentChatState`; an empty list drains.
    PublishActiveServers {
        site: String,
        servers: Vec<String>,
        pool_state: PoolState,
    },
    /// `KILL <spid>` for chat-server sessions still on the chat databases after the drain timeout.
    KillChatSessions {
        site: String,
        instance: String,
        session_ids: Vec<i32>,
    },
    /// `ALTER DATABASE [db] SET PARTNER OFF` for each database, on one instance (either
    /// partner ends the session for both). One step for the chat and compliance databases
    /// together: each observation pass between steps lengthens the outage.
    RemoveMirroring {
        site: String,
        instance: String,
        databases: Vec<String>,
    },
    /// Tail-log backup `BACKUP LOG [db] TO DISK = file WITH NORECOVERY`: the old primary becomes
    /// RESTORING at a known LSN.
    DemoteOldPrimary {
        site: String,
        instance: String,
        database: String,
        file: String,
    },
    /// `RESTORE LOG [db] FROM DISK = file WITH NORECOVERY` for each file, in LSN order.
    CatchUp {
        site: String,
        instance: String,
        database: String,
        files: Vec<LogFile>,
    },
    /// Log-shipping removal for one database, both sides in one step (the inverse of
    /// ConfigureLogShipping): the secondary configurations first, so that no restore job runs
    /// on a copy about to be recovered, then the primary ones.
    RemoveLogShipping {
        site: String,
        database: String,
        configurations: Vec<LogShippingConfiguration>,
    },
    /// `KILL` the sessions on the database, then `RESTORE DATABASE [db] WITH RECOVERY`.
    Recover {
        site: String,
        instance: String,
        database: String,
        kill_session_ids: Vec<i32>,
    },
    /// `ALTER DATABASE [db] SET READ_ONLY WITH ROLLBACK IMMEDIATE`: takes chat servers off
    /// a copy that must not be written.
    FenceStaleCopy {
        site: String,
        instance: String,
        database: String,
    },
    /// `BACKUP DATABASE [db] TO DISK = file WITH COPY_ONLY, INIT, CHECKSUM` before anything
    /// overwrites the copy.
    SalvageStaleCopy {
        site: String,
        instance: String,
        database: String,
        file: String,
    },
    /// Full + log backup of the primary to its site's share, restored on the target WITH
    /// NORECOVERY; `replace` when a copy exists there (RESTORE ... WITH REPLACE).
    Reseed {
        site: String,
        instance: String,
        database: String,
        source_instance: String,
        full_backup: String,
        log_backup: String,
        replace: bool,
    },
    /// Like Reseed, for a secondary that has no copy at all (the installer's state).
    BootstrapSecondary {
        site: String,
        instance: String,
        database: String,
        source_instance: String,
        full_backup: String,
        log_backup: String,
    },
    /// `CREATE DATABASE [db]` (recovery model FULL): the compliance database on a new primary
    /// site that has none. Its contents are transient, so it is created, not failed over.
    CreateComplianceDatabase {
        site: String,
        instance: String,
        database: String,
    },
    /// Full + log backup on the principal to the site's share, restored WITH NORECOVERY (and
    /// REPLACE) on the mirror instance.
    SeedMirror {
        site: String,
        principal: String,
        mirror: String,
        database: String,
        full_backup: String,
        log_backup: String,
    },
    /// `SET PARTNER = principal endpoint` on the mirror, then `SET PARTNER = mirror endpoint` on
    /// the principal (SAFETY FULL).
    EstablishMirroring {
        site: String,
        principal: String,
        mirror: String,
        database: String,
        principal_endpoint: String,
        mirror_endpoint: String,
    },
    /// Log shipping from the primary site to the secondary instance: a primary row on the
    /// principal (an ONLINE copy: SQL Server cannot open a mirror to configure it), the
    /// secondary configuration on the target.
    ConfigureLogShipping {
        site: String,
        primary_instances: Vec<String>,
        secondary_site: String,
        secondary_instance: String,
        database: String,
        backup_share: String,
        copy_destination: String,
        backup_interval_seconds: u64,
        retention_seconds: u64,
    },
    /// `msdb.dbo.sp_update_schedule` for each schedule of the log-shipping jobs (backup on the
    /// primary instances, copy and restore on the secondary) that does not run its job every
    /// `spec.logShipping.backupInterval`: the spec changed after log shipping was configured.
    RescheduleLogShippingJobs {
        site: String,
        database: String,
        schedules: Vec<ScheduleToChange>,
        interval_seconds: u64,
    },
}

impl Step {
    /// The catalogue name, as status reports it.
    pub fn name(&self) -> &'static str {
        match self {
            Step::PublishActiveServers { .. } => "PublishActiveServers",
            Step::KillChatSessions { .. } => "KillChatSessions",
            Step::RemoveMirroring { .. } => "RemoveMirroring",
            Step::DemoteOldPrimary { .. } => "DemoteOldPrimary",
            Step::CatchUp { .. } => "CatchUp",
            Step::RemoveLogShipping { .. } => "RemoveLogShipping",
            Step::Recover { .. } => "Recover",
            Step::FenceStaleCopy { .. } => "FenceStaleCopy",
            Step::SalvageStaleCopy { .. } => "SalvageStaleCopy",
            Step::Reseed { .. } => "Reseed",
            Step::BootstrapSecondary { .. } => "BootstrapSecondary",
            Step::CreateComplianceDatabase { .. } => "CreateComplianceDatabase",
            Step::SeedMirror { .. } => "SeedMirror",
            Step::EstablishMirroring { .. } => "EstablishMirroring",
            Step::ConfigureLogShipping { .. } => "ConfigureLogShipping",
            Step::RescheduleLogShippingJobs { .. } => "RescheduleLogShippingJobs",
        }
    }

    /// The copy (instance, database) the step replaces with a restore of another copy's
    /// backup: whatever that copy held is gone unless it was salvaged first.
    pub fn overwrites(&self) -> Option<(&str, &str)> {
        match self {
            Step::Reseed {
                instance, database, ..
            }
            | Step::BootstrapSecondary {
                instance, database, ..
            }
            | Step::SeedMirror {
                mirror: instance,
                database,
                ..
            } => Some((instance, database)),
            _ => None,
        }
    }

    /// Whether the step publishes an empty active-server list: the drain that starts a
    /// switch's chat outage.
    pub fn is_drain(&self) -> bool {
        matches!(self, Step::PublishActiveServers { servers, .. } if servers.is_empty())
    }

    /// The site the step acts on.
    pub fn site(&self) -> &str {
        match self {
            Step::PublishActiveServers { site, .. }
            | Step::KillChatSessions { site, .. }
            | Step::RemoveMirroring { site, .. }
            | Step::DemoteOldPrimary { site, .. }
            | Step::CatchUp { site, .. }
            | Step::RemoveLogShipping { site, .. }
            | Step::Recover { site, .. }
            | Step::FenceStaleCopy { site, .. }
            | Step::SalvageStaleCopy { site, .. }
            | Step::Reseed { site, .. }
            | Step::BootstrapSecondary { site, .. }
            | Step::CreateComplianceDatabase { site, .. }
            | Step::SeedMirror { site, .. }
            | Step::EstablishMirroring { site, .. }
            | Step::ConfigureLogShipping { site, .. }
            | Step::RescheduleLogShippingJobs { site, .. } => site,
        }
    }

    /// Every SQL instance the step sends a statement to (empty for publishing).
    pub fn instances(&self) -> Vec<&str> {
        match self {
            Step::PublishActiveServers { .. } => vec![],
            Step::KillChatSessions { instance, .. }
            | Step::RemoveMirroring { instance, .. }
            | Step::DemoteOldPrimary { instance, .. }
            | Step::CatchUp { instance, .. }
            | Step::Recover { instance, .. }
            | Step::FenceStaleCopy { instance, .. }
            | Step::SalvageStaleCopy { instance, .. }
            | Step::CreateComplianceDatabase { instance, .. } => vec![instance],
            Step::Reseed {
                instance,
                source_instance,
                ..
            }
            | Step::BootstrapSecondary {
                instance,
                source_instance,
                ..
            } => vec![source_instance, instance],
            Step::SeedMirror {
                principal, mirror, ..
            }
            | Step::EstablishMirroring {
                principal, mirror, ..
            } => vec![principal, mirror],
            Step::ConfigureLogShipping {
                primary_instances,
                secondary_instance,
                ..
            } => {
                let mut v: Vec<&str> = primary_instances.iter().map(String::as_str).collect();
                v.push(secondary_instance);
                v
            }
            Step::RemoveLogShipping { configurations, .. } => {
                distinct(configurations.iter().map(|c| c.instance.as_str()))
            }
            Step::RescheduleLogShippingJobs { schedules, .. } => {
                distinct(schedules.iter().map(|s| s.instance.as_str()))
            }
        }
    }

    /// The databases the step acts on (none for publishing and KILL).
    pub fn databases(&self) -> Vec<&str> {
        match self {
            Step::PublishActiveServers { .. } | Step::KillChatSessions { .. } => vec![],
            Step::RemoveMirroring { databases, .. } => {
                databases.iter().map(String::as_str).collect()
            }
            Step::DemoteOldPrimary { database, .. }
            | Step::CatchUp { database, .. }
            | Step::RemoveLogShipping { database, .. }
            | Step::Recover { database, .. }
            | Step::FenceStaleCopy { database, .. }
            | Step::SalvageStaleCopy { database, .. }
            | Step::Reseed { database, .. }
            | Step::BootstrapSecondary { database, .. }
            | Step::CreateComplianceDatabase { database, .. }
            | Step::SeedMirror { database, .. }
            | Step::EstablishMirroring { database, .. }
            | Step::ConfigureLogShipping { database, .. }
            | Step::RescheduleLogShippingJobs { database, .. } => vec![database],
        }
    }

    /// What the step does, in words for people.
    pub fn describe(&self) -> String {
        match self {
            Step::PublishActiveServers {
                servers,
                pool_state,
                ..
            } => describe_publish(servers, *pool_state),
            Step::KillChatSessions {
                instance,
                session_ids,
                ..
            } => format!(
                "end chat-server sessions {} on {instance} (drain timeout passed)",
                join_ids(session_ids)
            ),
            Step::RemoveMirroring {
                instance,
                databases,
                ..
            } => format!(
                "remove database mirroring of {} on {instance}",
                databases.join(" and ")
            ),
            Step::DemoteOldPrimary {
                instance,
                database,
                file,
                ..
            } => format!(
                "take the tail-log backup of {database} on {instance} to {file}, leaving it RESTORING"
            ),
            Step::CatchUp {
                instance,
                database,
                files,
                ..
            } => describe_catch_up(instance, database, files),
            Step::RemoveLogShipping {
                database,
                configurations,
                ..
            } => format!(
                "remove log shipping of {database}: {}",
                join_described(configurations, LogShippingConfiguration::describe, "; ")
            ),
            Step::Recover {
                instance,
                database,
                kill_session_ids,
                ..
            } => describe_recover(instance, database, kill_session_ids),
            Step::FenceStaleCopy {
                instance, database, ..
            } => format!(
                "set {database} on {instance} READ_ONLY so no chat server (not even a sysadmin or db_owner login) can write to this stale copy"
            ),
            Step::SalvageStaleCopy {
                instance,
                database,
                file,
                ..
            } => format!(
                "take a COPY_ONLY full backup of {database} on {instance} to {file} before it is overwritten"
            ),
            Step::Reseed {
                instance,
                database,
                source_instance,
                full_backup,
                replace,
                ..
            } => format!(
                "reseed {database} on {instance} from {source_instance} ({full_backup} + log){} WITH NORECOVERY",
                if *replace { " WITH REPLACE," } else { "," }
            ),
            Step::BootstrapSecondary {
                instance,
                database,
                source_instance,
                full_backup,
                ..
            } => format!(
                "seed {database} on {instance} from {source_instance} ({full_backup} + log) WITH NORECOVERY"
            ),
            Step::CreateComplianceDatabase {
                instance, database, ..
            } => format!("create an empty {database} on {instance} (compliance data is transient)"),
            Step::SeedMirror {
                principal,
                mirror,
                database,
                ..
            } => format!(
                "back up {database} on {principal} (full + log) and restore it on {mirror} WITH NORECOVERY"
            ),
            Step::EstablishMirroring {
                principal,
                mirror,
                database,
                ..
            } => format!(
                "mirror {database} from {principal} to {mirror} (SET PARTNER on the mirror, then the principal, SAFETY FULL)"
            ),
            Step::ConfigureLogShipping {
                primary_instances,
                secondary_instance,
                database,
                backup_share,
                ..
            } => format!(
                "configure log shipping of {database} from {} via {backup_share} to {secondary_instance}",
                primary_instances.join(", ")
            ),
            Step::RescheduleLogShippingJobs {
                database,
                schedules,
                interval_seconds,
                ..
            } => format!(
                "run the log-shipping jobs of {database} every {interval_seconds} s: {}",
                join_described(schedules, ScheduleToChange::describe, ", ")
            ),
        }
    }

    /// The class of statement the step sends, for people reading a plan.
    pub fn tsql_class(&self) -> &'static str {
        match self {
            Step::PublishActiveServers { .. } => {
                "Set-CsPersistentChatActiveServer / Set-CsPersistentChatState"
            }
            Step::KillChatSessions { .. } => "KILL",
            Step::RemoveMirroring { .. } => "ALTER DATABASE SET PARTNER OFF",
            Step::DemoteOldPrimary { .. } => "BACKUP LOG WITH NORECOVERY",
            Step::CatchUp { .. } => "RESTORE LOG WITH NORECOVERY",
            Step::RemoveLogShipping { .. } => {
                "EXEC sp_delete_log_shipping_secondary_database + _secondary_primary / sp_delete_log_shipping_primary_secondary + _primary_database"
            }
            Step::Recover { .. } => "KILL + RESTORE DATABASE WITH RECOVERY",
            Step::FenceStaleCopy { .. } => "ALTER DATABASE SET READ_ONLY WITH ROLLBACK IMMEDIATE",
            Step::SalvageStaleCopy { .. } => "BACKUP DATABASE WITH COPY_ONLY",
            Step::Reseed { .. } => {
                "BACKUP DATABASE + BACKUP LOG + RESTORE WITH REPLACE, NORECOVERY"
            }
            Step::BootstrapSecondary { .. } => {
                "BACKUP DATABASE + BACKUP LOG + RESTORE WITH NORECOVERY"
            }
            Step::CreateComplianceDatabase { .. } => "CREATE DATABASE",
            Step::SeedMirror { .. } => "BACKUP DATABASE + BACKUP LOG + RESTORE WITH NORECOVERY",
            Step::EstablishMirroring { .. } => "ALTER DATABASE SET PARTNER",
            Step::ConfigureLogShipping { .. } => {
                "EXEC sp_add_log_shipping_primary_database / _secondary_primary / _secondary_database / _primary_secondary"
            }
            Step::RescheduleLogShippingJobs { .. } => "EXEC msdb.dbo.sp_update_schedule",
        }
    }
}

impl LogShippingConfiguration {
    /// The secondary side of `database` on `instance`, whose primary is `primary_server`.
    pub fn secondary(instance: &str, primary_server: &str) -> Self {
        LogShippingConfiguration {
            instance: instance.to_string(),
            side: LogShippingSide::Secondary,
            partners: vec![primary_server.to_string()],
        }
    }

    fn describe(&self) -> String {
        let instance = &self.instance;
        match self.side {
            LogShippingSide::Secondary => format!(
                "the secondary configuration on {instance} (primary {})",
                self.partners.join(", ")
            ),
            LogShippingSide::Primary => format!(
                "the primary configuration on {instance} (secondaries {})",
                if self.partners.is_empty() {
                    "none".to_string()
                } else {
                    self.partners.join(", ")
                }
            ),
        }
    }
}

impl ScheduleToChange {
    fn describe(&self) -> String {
        let now = self
            .every_seconds
            .map_or_else(|| "not repeating".to_string(), |e| format!("every {e} s"));
        format!("{} on {} (now {now})", self.job_name, self.instance)
    }
}

fn describe_publish(servers: &[String], pool_state: PoolState) -> String {
    if servers.is_empty() {
        format!("clear the active server list (drain chat servers), pool state {pool_state:?}")
    } else {
        format!(
            "publish active servers {} with pool state {pool_state:?}",
            servers.join(", ")
        )
    }
}

fn describe_catch_up(instance: &str, database: &str, files: &[LogFile]) -> String {
    let last = files
        .last()
        .map(|f| f.last_lsn.to_string())
        .unwrap_or_default();
    format!(
        "restore {} log backup(s) into {database} on {instance} WITH NORECOVERY, up to LSN {last}",
        files.len()
    )
}

fn describe_recover(instance: &str, database: &str, kill_session_ids: &[i32]) -> String {
    if kill_session_ids.is_empty() {
        format!("bring {database} on {instance} ONLINE (RESTORE WITH RECOVERY)")
    } else {
        format!(
            "end sessions {} on {database}, then bring {database} on {instance} ONLINE",
            join_ids(kill_session_ids)
        )
    }
}

/// Each item described, separated by the delimiter the step's sentence uses for it.
fn join_described<T>(items: &[T], describe: fn(&T) -> String, separator: &str) -> String {
    items
        .iter()
        .map(describe)
        .collect::<Vec<_>>()
        .join(separator)
}

/// Each name once, in the order first seen.
fn distinct<'a>(names: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut v: Vec<&str> = Vec::new();
    for n in names {
        if !v.contains(&n) {
            v.push(n);
        }
    }
    v
}

fn join_ids(ids: &[i32]) -> String {
    ids.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The name ConfigureLogShipping gives a log-shipping job's schedule, and
/// RescheduleLogShippingJobs gives it back after changing its interval: a repeated
/// ConfigureLogShipping then finds the name taken (14261) and adds no second schedule.
pub fn job_schedule_name(job_name: &str, interval_seconds: u64) -> String {
    format!("{job_name}_every_{interval_seconds}s")
}

/// `<db>_yyyymmddhhmmss.<ext>` on `share`, UTC, the log-shipping naming convention (name order
/// is time order).
pub fn backup_path(
    share: &str,
    database: &str,
    infix: &str,
    now: jiff::Timestamp,
    ext: &str,
) -> String {
    let stamp = now.strftime("%Y%m%d%H%M%S");
    let share = share.trim_end_matches('\\');
    format!("{share}\\{database}_{infix}{stamp}.{ext}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_names_follow_the_log_shipping_convention_in_utc() {
        let now: jiff::Timestamp = "2026-11-26T12:05:09Z".parse().unwrap();
        assert_eq!(
            backup_path(r"\\atl-fs\pchat-ls\", "mgc", "", now, "trn"),
            r"\\atl-fs\pchat-ls\mgc_20261126120509.trn"
        );
        assert_eq!(
            backup_path(r"\\dal-fs\pchat-ls", "mgc", "salvage_dal-sql1_", now, "bak"),
            r"\\dal-fs\pchat-ls\mgc_salvage_dal-sql1_20261126120509.bak"
        );
    }
}
