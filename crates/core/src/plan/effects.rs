//! The model executor: what each step is EXPECTED to do to the observed state. `project` uses it
//! to lay out the whole remaining plan, and the property tests use it as the world the planner
//! acts on. It models SQL Server's documented behaviour, not the simulator's code.

use jiff::Timestamp;

use crate::api::PersistentChatPoolSpec;
use crate::observe::{
    BackupFile, BackupLocation, BackupType, DatabaseObservation, DatabaseState, LocationKind,
    LogShippingLink, LogShippingPrimary, LogShippingSecondary, Lsn, LsnPosition,
    MirroringObservation, MirroringRole, MirroringSafety, MirroringState, Observation, Published,
    RecoveryModel, UserAccess,
};

use super::step::{
    LogFile, LogShippingConfiguration, LogShippingSide, ScheduleToChange, Step, job_schedule_name,
};

/// Apply a step's expected effect to `obs`, as if it ran at `now`.
pub fn apply(spec: &PersistentChatPoolSpec, step: &Step, obs: &mut Observation, now: Timestamp) {
    // One arm per step, handing the fields its effect needs to the function that models it: the
    // match keeps the compiler checking that every step of the catalogue has a modelled effect.
    match step {
        Step::PublishActiveServers {
            servers,
            pool_state,
            ..
        } => {
            obs.published = Some(Published {
                active_servers: servers.clone(),
                pool_state: *pool_state,
                published_at: now,
            });
        }
        Step::KillChatSessions {
            instance,
            session_ids,
            ..
        } => kill_sessions(obs, instance, session_ids),
        Step::RemoveMirroring {
            instance,
            databases,
            ..
        } => {
            for database in databases {
                remove_mirroring(obs, instance, database);
            }
        }
        Step::DemoteOldPrimary {
            site,
            instance,
            database,
            file,
        } => demote_old_primary(spec, obs, site, instance, database, file, now),
        Step::CatchUp {
            instance,
            database,
            files,
            ..
        } => catch_up(obs, instance, database, files, now),
        Step::RemoveLogShipping {
            database,
            configurations,
            ..
        } => remove_log_shipping(obs, database, configurations),
        Step::Recover {
            instance, database, ..
        } => recover(obs, instance, database),
        Step::FenceStaleCopy {
            instance, database, ..
        } => fence_stale_copy(obs, instance, database),
        Step::SalvageStaleCopy {
            site,
            instance,
            database,
            file,
        } => salvage_stale_copy(spec, obs, site, instance, database, file, now),
        Step::Reseed {
            instance,
            database,
            source_instance,
            full_backup: full,
            log_backup,
            ..
        }
        | Step::BootstrapSecondary {
            instance,
            database,
            source_instance,
            full_backup: full,
            log_backup,
            ..
        }
        | Step::SeedMirror {
            mirror: instance,
            database,
            principal: source_instance,
            full_backup: full,
            log_backup,
            ..
        } => seed(
            spec,
            obs,
            source_instance,
            instance,
            database,
            full,
            log_backup,
            now,
        ),
        Step::CreateComplianceDatabase {
            instance, database, ..
        } => create_database(obs, instance, database),
        Step::EstablishMirroring {
            principal,
            mirror,
            database,
            principal_endpoint,
            mirror_endpoint,
            ..
        } => establish_mirroring(
            obs,
            (principal, principal_endpoint),
            (mirror, mirror_endpoint),
            database,
        ),
        Step::RescheduleLogShippingJobs {
            database,
            schedules,
            interval_seconds,
            ..
        } => reschedule_log_shipping_jobs(obs, database, schedules, *interval_seconds),
        Step::ConfigureLogShipping {
            primary_instances,
            secondary_instance,
            database,
            backup_share,
            copy_destination,
            ..
        } => {
            for primary in primary_instances {
                configure_log_shipping_primary(
                    obs,
                    primary,
                    secondary_instance,
                    database,
                    backup_share,
                );
            }
            let primary = primary_instances.first().map_or("", String::as_str);
            configure_log_shipping_secondary(
                obs,
                (primary, secondary_instance),
                database,
                (backup_share, copy_destination),
            );
        }
    }
}

/// KILL of each listed session.
fn kill_sessions(obs: &mut Observation, instance: &str, session_ids: &[i32]) {
    if let Some(observed) = instance_mut(obs, instance) {
        observed
            .sessions
            .retain(|s| !session_ids.contains(&s.session_id));
    }
}

/// SET READ_ONLY WITH ROLLBACK IMMEDIATE, which ends every other session in the database.
fn fence_stale_copy(obs: &mut Observation, instance: &str, database: &str) {
    drop_sessions(obs, instance, database);
    if let Some(copy) = db_mut(obs, instance, database) {
        copy.read_only = true;
    }
}

/// Tail-log backup WITH NORECOVERY: the copy becomes RESTORING at its end of log, and the
/// backup lands on the site's share.
fn demote_old_primary(
    spec: &PersistentChatPoolSpec,
    obs: &mut Observation,
    site: &str,
    instance: &str,
    database: &str,
    file: &str,
    now: Timestamp,
) {
    let Some(copy) = db_mut(obs, instance, database) else {
        return;
    };
    let end = copy.lsn.end_of_log.unwrap_or(Lsn(0));
    let tail = BackupFile {
        path: file.to_string(),
        database: database.to_string(),
        backup_type: BackupType::Log,
        first_lsn: chain_start(copy),
        last_lsn: end,
        database_backup_lsn: None,
        finished_at: now,
        copy_only: false,
        force_offline: true,
        server_name: instance.to_string(),
    };
    copy.state = DatabaseState::Restoring;
    copy.lsn.redo_start = Some(end);
    copy.lsn.end_of_log = None;
    copy.last_log_backup = Some(tail.clone());
    drop_sessions(obs, instance, database);
    add_file(spec, obs, site, tail);
}

/// RESTORE LOG of each file in order, moving the redo point past the ones that continue it.
fn catch_up(
    obs: &mut Observation,
    instance: &str,
    database: &str,
    files: &[LogFile],
    now: Timestamp,
) {
    let Some(copy) = db_mut(obs, instance, database) else {
        return;
    };
    let mut redo_start = copy.lsn.redo_start.unwrap_or(Lsn(0));
    for file in files {
        // The executor skips what the redo point passed; a gap stops it (error 4305).
        if file.last_lsn <= redo_start {
            continue;
        }
        if file.first_lsn > redo_start {
            break;
        }
        redo_start = file.last_lsn;
        if let Some(secondary) = copy.log_shipping_secondary.as_mut() {
            secondary.last_restored_file = Some(file.path.clone());
            secondary.last_restored_date = Some(now);
        }
    }
    copy.lsn.redo_start = Some(redo_start);
}

fn remove_log_shipping(
    obs: &mut Observation,
    database: &str,
    configurations: &[LogShippingConfiguration],
) {
    for configuration in configurations {
        if let Some(copy) = db_mut(obs, &configuration.instance, database) {
            match configuration.side {
                LogShippingSide::Secondary => copy.log_shipping_secondary = None,
                LogShippingSide::Primary => copy.log_shipping_primary = None,
            }
        }
    }
}

/// RESTORE WITH RECOVERY: the copy comes ONLINE where its redo point stood, which is also the
/// point a new recovery fork starts.
fn recover(obs: &mut Observation, instance: &str, database: &str) {
    drop_sessions(obs, instance, database);
    let Some(copy) = db_mut(obs, instance, database) else {
        return;
    };
    let recovered_at = copy
        .lsn
        .redo_start
        .or(copy.lsn.end_of_log)
        .unwrap_or(Lsn(0));
    copy.state = DatabaseState::Online;
    copy.user_access = UserAccess::MultiUser;
    copy.mirroring = None;
    copy.lsn = LsnPosition {
        redo_start: None,
        end_of_log: Some(recovered_at),
        fork_point: Some(recovered_at),
    };
}

/// A COPY_ONLY full backup of the stale copy on the site's share.
fn salvage_stale_copy(
    spec: &PersistentChatPoolSpec,
    obs: &mut Observation,
    site: &str,
    instance: &str,
    database: &str,
    file: &str,
    now: Timestamp,
) {
    let Some(copy) = db_mut(obs, instance, database) else {
        return;
    };
    let end = copy.lsn.end_of_log.unwrap_or(Lsn(0));
    let backup = full_backup(file, database, instance, end, now, true);
    add_file(spec, obs, site, backup);
}

/// CREATE DATABASE: an empty ONLINE database in the FULL recovery model, replacing any copy of
/// that name.
fn create_database(obs: &mut Observation, instance: &str, database: &str) {
    if let Some(observed) = instance_mut(obs, instance) {
        observed.databases.retain(|d| d.name != *database);
        observed.databases.push(DatabaseObservation {
            name: database.to_string(),
            state: DatabaseState::Online,
            read_only: false,
            standby: false,
            user_access: UserAccess::MultiUser,
            recovery_model: RecoveryModel::Full,
            mirroring: None,
            log_shipping_primary: None,
            log_shipping_secondary: None,
            lsn: LsnPosition {
                redo_start: None,
                end_of_log: Some(Lsn(1)),
                fork_point: None,
            },
            last_log_backup: None,
            files: Vec::new(),
        });
    }
}

/// SET PARTNER on both sides: a SYNCHRONIZED session in which the mirror has redone the
/// principal's log up to its end. Each side is `(instance, endpoint)`.
fn establish_mirroring(
    obs: &mut Observation,
    (principal, principal_endpoint): (&str, &str),
    (mirror, mirror_endpoint): (&str, &str),
    database: &str,
) {
    let end = db_mut(obs, principal, database).and_then(|copy| copy.lsn.end_of_log);
    if let Some(copy) = db_mut(obs, mirror, database) {
        copy.mirroring = Some(mirroring(
            MirroringRole::Mirror,
            principal_endpoint,
            principal,
        ));
        copy.lsn.redo_start = end.or(copy.lsn.redo_start);
    }
    if let Some(copy) = db_mut(obs, principal, database) {
        copy.mirroring = Some(mirroring(MirroringRole::Principal, mirror_endpoint, mirror));
    }
}

/// sp_update_schedule: each listed schedule repeats every `interval_seconds` and takes the
/// name of that interval.
fn reschedule_log_shipping_jobs(
    obs: &mut Observation,
    database: &str,
    schedules: &[ScheduleToChange],
    interval_seconds: u64,
) {
    for change in schedules {
        let Some(copy) = db_mut(obs, &change.instance, database) else {
            continue;
        };
        let lists = [
            copy.log_shipping_primary
                .as_mut()
                .map(|l| &mut l.job_schedules),
            copy.log_shipping_secondary
                .as_mut()
                .map(|l| &mut l.job_schedules),
        ];
        for schedule in lists.into_iter().flatten().flatten() {
            if schedule.schedule_id == change.schedule_id {
                schedule.every_seconds = Some(interval_seconds);
                schedule.schedule_name = job_schedule_name(&schedule.job_name, interval_seconds);
            }
        }
    }
}

/// The primary side of ConfigureLogShipping on one primary-site instance.
fn configure_log_shipping_primary(
    obs: &mut Observation,
    primary_instance: &str,
    secondary_instance: &str,
    database: &str,
    backup_share: &str,
) {
    let Some(copy) = db_mut(obs, primary_instance, database) else {
        return;
    };
    // `@overwrite = 1` keeps an existing job and its schedules (a schedule of another name is
    // added beside them; the model leaves that one out: it is not observed yet).
    let job_schedules = copy
        .log_shipping_primary
        .take()
        .map(|l| l.job_schedules)
        .unwrap_or_default();
    copy.log_shipping_primary = Some(LogShippingPrimary {
        backup_directory: backup_share.to_string(),
        backup_share: backup_share.to_string(),
        last_backup_file: None,
        last_backup_date: None,
        secondaries: vec![LogShippingLink {
            secondary_server: secondary_instance.to_string(),
            secondary_database: database.to_string(),
        }],
        job_schedules,
    });
}

/// The secondary side of ConfigureLogShipping on the target instance: it copies from
/// `backup_share` to `copy_destination`.
fn configure_log_shipping_secondary(
    obs: &mut Observation,
    (primary_instance, secondary_instance): (&str, &str),
    database: &str,
    (backup_share, copy_destination): (&str, &str),
) {
    let Some(copy) = db_mut(obs, secondary_instance, database) else {
        return;
    };
    // `@overwrite = 1` keeps the copy and restore jobs' schedules, as on the primary side.
    let job_schedules = copy
        .log_shipping_secondary
        .take()
        .map(|l| l.job_schedules)
        .unwrap_or_default();
    copy.log_shipping_secondary = Some(LogShippingSecondary {
        primary_server: primary_instance.to_string(),
        primary_database: database.to_string(),
        backup_source_directory: backup_share.to_string(),
        backup_destination_directory: copy_destination.to_string(),
        last_copied_file: None,
        last_copied_date: None,
        last_restored_file: None,
        last_restored_date: None,
        last_restored_latency_minutes: None,
        job_schedules,
    });
}

/// Where the next log backup of a copy starts: the end of the last one, or the point the copy
/// was last brought online (a restored chain continues from there).
pub fn chain_start(copy: &DatabaseObservation) -> Lsn {
    let last = copy.last_log_backup.as_ref().map(|b| b.last_lsn);
    last.max(copy.lsn.fork_point).unwrap_or(Lsn(1))
}

fn mirroring(role: MirroringRole, partner_endpoint: &str, partner: &str) -> MirroringObservation {
    MirroringObservation {
        role,
        state: MirroringState::Synchronized,
        safety: MirroringSafety::Full,
        partner_name: partner_endpoint.to_string(),
        partner_instance: partner.to_string(),
        witness_name: None,
        failover_lsn: None,
    }
}

fn full_backup(
    path: &str,
    database: &str,
    server: &str,
    end: Lsn,
    now: Timestamp,
    copy_only: bool,
) -> BackupFile {
    BackupFile {
        path: path.to_string(),
        database: database.to_string(),
        backup_type: BackupType::Full,
        first_lsn: Lsn(end.0.saturating_sub(1)),
        last_lsn: end,
        database_backup_lsn: None,
        finished_at: now,
        copy_only,
        force_offline: false,
        server_name: server.to_string(),
    }
}

/// Full + log backup of `source` to its site's share, restored WITH NORECOVERY on `target`.
#[allow(clippy::too_many_arguments)]
fn seed(
    spec: &PersistentChatPoolSpec,
    obs: &mut Observation,
    source: &str,
    target: &str,
    database: &str,
    full: &str,
    log: &str,
    now: Timestamp,
) {
    let Some(source_copy) = db_mut(obs, source, database) else {
        return;
    };
    let end = source_copy.lsn.end_of_log.unwrap_or(Lsn(1));
    let fork = source_copy.lsn.fork_point;
    let log_file = BackupFile {
        path: log.to_string(),
        database: database.to_string(),
        backup_type: BackupType::Log,
        first_lsn: chain_start(source_copy),
        last_lsn: end,
        database_backup_lsn: None,
        finished_at: now,
        copy_only: false,
        force_offline: false,
        server_name: source.to_string(),
    };
    source_copy.last_log_backup = Some(log_file.clone());
    let site = spec
        .site_of_instance(source)
        .map(|s| s.name.clone())
        .unwrap_or_default();
    add_file(
        spec,
        obs,
        &site,
        full_backup(full, database, source, end, now, false),
    );
    add_file(spec, obs, &site, log_file);
    drop_sessions(obs, target, database);
    if let Some(observed) = instance_mut(obs, target) {
        observed.databases.retain(|copy| copy.name != database);
        observed.databases.push(DatabaseObservation {
            name: database.to_string(),
            state: DatabaseState::Restoring,
            read_only: false,
            standby: false,
            user_access: UserAccess::MultiUser,
            recovery_model: RecoveryModel::Full,
            mirroring: None,
            log_shipping_primary: None,
            log_shipping_secondary: None,
            lsn: LsnPosition {
                redo_start: Some(end),
                end_of_log: None,
                fork_point: fork,
            },
            last_log_backup: None,
            files: Vec::new(),
        });
    }
}

fn remove_mirroring(obs: &mut Observation, instance: &str, database: &str) {
    let Some(copy) = db_mut(obs, instance, database) else {
        return;
    };
    let Some(session) = copy.mirroring.take() else {
        return;
    };
    let here_end = copy.lsn.end_of_log;
    let partner = session.partner_instance.clone();
    let partner_end =
        db_mut(obs, &partner, database).and_then(|partner_copy| partner_copy.lsn.end_of_log);
    let principal_end = here_end.or(partner_end);
    let synchronized = session.state == MirroringState::Synchronized;
    // SET PARTNER OFF on either partner ends the session on both; the mirror copy stays
    // RESTORING where the session left it.
    let reachable = obs
        .instances
        .iter()
        .any(|observed| observed.name.eq_ignore_ascii_case(&partner) && observed.is_reachable());
    if reachable && let Some(partner_copy) = db_mut(obs, &partner, database) {
        if partner_copy
            .mirroring
            .as_ref()
            .is_some_and(|partner_session| {
                partner_session
                    .partner_instance
                    .eq_ignore_ascii_case(instance)
            })
        {
            partner_copy.mirroring = None;
        }
        if partner_copy.state == DatabaseState::Restoring && synchronized {
            partner_copy.lsn.redo_start = principal_end.or(partner_copy.lsn.redo_start);
        }
    }
    if let Some(copy) = db_mut(obs, instance, database)
        && copy.state == DatabaseState::Restoring
        && synchronized
    {
        copy.lsn.redo_start = partner_end.or(copy.lsn.redo_start);
    }
}

fn instance_mut<'a>(
    obs: &'a mut Observation,
    name: &str,
) -> Option<&'a mut crate::observe::InstanceObservation> {
    // SQL Server reports partner and server names in its own case.
    obs.instances
        .iter_mut()
        .find(|i| i.name.eq_ignore_ascii_case(name))
}

fn db_mut<'a>(
    obs: &'a mut Observation,
    instance: &str,
    database: &str,
) -> Option<&'a mut DatabaseObservation> {
    instance_mut(obs, instance)?
        .databases
        .iter_mut()
        .find(|d| d.name == database)
}

fn drop_sessions(obs: &mut Observation, instance: &str, database: &str) {
    if let Some(observed) = instance_mut(obs, instance) {
        observed.sessions.retain(|session| {
            !session
                .database
                .as_deref()
                .is_some_and(|name| name.eq_ignore_ascii_case(database))
        });
    }
}

/// Put a file on a site's share (creating the location entry the first time).
fn add_file(spec: &PersistentChatPoolSpec, obs: &mut Observation, site: &str, file: BackupFile) {
    let kind = LocationKind::Share {
        site: site.to_string(),
    };
    if let Some(location) = obs
        .backup_locations
        .iter_mut()
        .find(|location| location.kind == kind)
    {
        // Same-second names can repeat inside a projection (its clock stands still); keep both.
        location.files.push(file);
        return;
    }
    let path = spec
        .site(site)
        .map(|s| s.backup_share.clone())
        .unwrap_or_default();
    obs.backup_locations.push(BackupLocation {
        kind,
        path,
        readable: true,
        reason: None,
        files: vec![file],
    });
}
