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

use super::step::{LogShippingSide, Step, job_schedule_name};

/// Apply a step's expected effect to `obs`, as if it ran at `now`.
pub fn apply(spec: &PersistentChatPoolSpec, step: &Step, obs: &mut Observation, now: Timestamp) {
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
        } => {
            if let Some(i) = instance_mut(obs, instance) {
                i.sessions.retain(|s| !session_ids.contains(&s.session_id));
            }
        }
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
        } => {
            let Some(d) = db_mut(obs, instance, database) else {
                return;
            };
            let end = d.lsn.end_of_log.unwrap_or(Lsn(0));
            let tail = BackupFile {
                path: file.clone(),
                database: database.clone(),
                backup_type: BackupType::Log,
                first_lsn: chain_start(d),
                last_lsn: end,
                database_backup_lsn: None,
                finished_at: now,
                copy_only: false,
                force_offline: true,
                server_name: instance.clone(),
            };
            d.state = DatabaseState::Restoring;
            d.lsn.redo_start = Some(end);
            d.lsn.end_of_log = None;
            d.last_log_backup = Some(tail.clone());
            drop_sessions(obs, instance, database);
            add_file(spec, obs, site, tail);
        }
        Step::CatchUp {
            instance,
            database,
            files,
            ..
        } => {
            let Some(d) = db_mut(obs, instance, database) else {
                return;
            };
            let mut r = d.lsn.redo_start.unwrap_or(Lsn(0));
            for f in files {
                // The executor skips what the redo point passed; a gap stops it (error 4305).
                if f.last_lsn <= r {
                    continue;
                }
                if f.first_lsn > r {
                    break;
                }
                r = f.last_lsn;
                if let Some(lss) = d.log_shipping_secondary.as_mut() {
                    lss.last_restored_file = Some(f.path.clone());
                    lss.last_restored_date = Some(now);
                }
            }
            d.lsn.redo_start = Some(r);
        }
        Step::RemoveLogShipping {
            database,
            configurations,
            ..
        } => {
            for c in configurations {
                if let Some(d) = db_mut(obs, &c.instance, database) {
                    match c.side {
                        LogShippingSide::Secondary => d.log_shipping_secondary = None,
                        LogShippingSide::Primary => d.log_shipping_primary = None,
                    }
                }
            }
        }
        Step::Recover {
            instance, database, ..
        } => {
            drop_sessions(obs, instance, database);
            let Some(d) = db_mut(obs, instance, database) else {
                return;
            };
            let r = d.lsn.redo_start.or(d.lsn.end_of_log).unwrap_or(Lsn(0));
            d.state = DatabaseState::Online;
            d.user_access = UserAccess::MultiUser;
            d.mirroring = None;
            d.lsn = LsnPosition {
                redo_start: None,
                end_of_log: Some(r),
                fork_point: Some(r),
            };
        }
        Step::FenceStaleCopy {
            instance, database, ..
        } => {
            // ROLLBACK IMMEDIATE ends every session that is not entitled to stay.
            drop_sessions(obs, instance, database);
            if let Some(d) = db_mut(obs, instance, database) {
                d.user_access = UserAccess::RestrictedUser;
            }
        }
        Step::SalvageStaleCopy {
            site,
            instance,
            database,
            file,
        } => {
            let Some(d) = db_mut(obs, instance, database) else {
                return;
            };
            let end = d.lsn.end_of_log.unwrap_or(Lsn(0));
            let f = full_backup(file, database, instance, end, now, true);
            add_file(spec, obs, site, f);
        }
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
        } => {
            if let Some(i) = instance_mut(obs, instance) {
                i.databases.retain(|d| d.name != *database);
                i.databases.push(DatabaseObservation {
                    name: database.clone(),
                    state: DatabaseState::Online,
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
                });
            }
        }
        Step::EstablishMirroring {
            principal,
            mirror,
            database,
            principal_endpoint,
            mirror_endpoint,
            ..
        } => {
            let end = db_mut(obs, principal, database).and_then(|d| d.lsn.end_of_log);
            if let Some(d) = db_mut(obs, mirror, database) {
                d.mirroring = Some(mirroring(
                    MirroringRole::Mirror,
                    principal_endpoint,
                    principal,
                ));
                d.lsn.redo_start = end.or(d.lsn.redo_start);
            }
            if let Some(d) = db_mut(obs, principal, database) {
                d.mirroring = Some(mirroring(MirroringRole::Principal, mirror_endpoint, mirror));
            }
        }
        Step::RescheduleLogShippingJobs {
            database,
            schedules,
            interval_seconds,
            ..
        } => {
            for change in schedules {
                let Some(d) = db_mut(obs, &change.instance, database) else {
                    continue;
                };
                let lists = [
                    d.log_shipping_primary
                        .as_mut()
                        .map(|l| &mut l.job_schedules),
                    d.log_shipping_secondary
                        .as_mut()
                        .map(|l| &mut l.job_schedules),
                ];
                for s in lists.into_iter().flatten().flatten() {
                    if s.schedule_id == change.schedule_id {
                        s.every_seconds = Some(*interval_seconds);
                        s.schedule_name = job_schedule_name(&s.job_name, *interval_seconds);
                    }
                }
            }
        }
        Step::ConfigureLogShipping {
            primary_instances,
            secondary_instance,
            database,
            backup_share,
            copy_destination,
            ..
        } => {
            // `@overwrite = 1` keeps an existing job and its schedules (a schedule of another
            // name is added beside them; the model leaves that one out: it is not observed yet).
            for p in primary_instances {
                if let Some(d) = db_mut(obs, p, database) {
                    let job_schedules = d
                        .log_shipping_primary
                        .take()
                        .map(|l| l.job_schedules)
                        .unwrap_or_default();
                    d.log_shipping_primary = Some(LogShippingPrimary {
                        backup_directory: backup_share.clone(),
                        backup_share: backup_share.clone(),
                        last_backup_file: None,
                        last_backup_date: None,
                        secondaries: vec![LogShippingLink {
                            secondary_server: secondary_instance.clone(),
                            secondary_database: database.clone(),
                        }],
                        job_schedules,
                    });
                }
            }
            let primary = primary_instances.first().cloned().unwrap_or_default();
            if let Some(d) = db_mut(obs, secondary_instance, database) {
                let job_schedules = d
                    .log_shipping_secondary
                    .take()
                    .map(|l| l.job_schedules)
                    .unwrap_or_default();
                d.log_shipping_secondary = Some(LogShippingSecondary {
                    primary_server: primary,
                    primary_database: database.clone(),
                    backup_source_directory: backup_share.clone(),
                    backup_destination_directory: copy_destination.clone(),
                    last_copied_file: None,
                    last_copied_date: None,
                    last_restored_file: None,
                    last_restored_date: None,
                    last_restored_latency_minutes: None,
                    job_schedules,
                });
            }
        }
    }
}

/// Where the next log backup of a copy starts: the end of the last one, or the point the copy
/// was last brought online (a restored chain continues from there).
pub fn chain_start(d: &DatabaseObservation) -> Lsn {
    let last = d.last_log_backup.as_ref().map(|b| b.last_lsn);
    last.max(d.lsn.fork_point).unwrap_or(Lsn(1))
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
    let Some(src) = db_mut(obs, source, database) else {
        return;
    };
    let end = src.lsn.end_of_log.unwrap_or(Lsn(1));
    let fork = src.lsn.fork_point;
    let log_file = BackupFile {
        path: log.to_string(),
        database: database.to_string(),
        backup_type: BackupType::Log,
        first_lsn: chain_start(src),
        last_lsn: end,
        database_backup_lsn: None,
        finished_at: now,
        copy_only: false,
        force_offline: false,
        server_name: source.to_string(),
    };
    src.last_log_backup = Some(log_file.clone());
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
    if let Some(i) = instance_mut(obs, target) {
        i.databases.retain(|d| d.name != database);
        i.databases.push(DatabaseObservation {
            name: database.to_string(),
            state: DatabaseState::Restoring,
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
        });
    }
}

fn remove_mirroring(obs: &mut Observation, instance: &str, database: &str) {
    let Some(d) = db_mut(obs, instance, database) else {
        return;
    };
    let Some(m) = d.mirroring.take() else {
        return;
    };
    let here_end = d.lsn.end_of_log;
    let partner = m.partner_instance.clone();
    let partner_end = db_mut(obs, &partner, database).and_then(|p| p.lsn.end_of_log);
    let principal_end = here_end.or(partner_end);
    let synchronized = m.state == MirroringState::Synchronized;
    // SET PARTNER OFF on either partner ends the session on both; the mirror copy stays
    // RESTORING where the session left it.
    let reachable = obs
        .instances
        .iter()
        .any(|i| i.name.eq_ignore_ascii_case(&partner) && i.is_reachable());
    if reachable && let Some(p) = db_mut(obs, &partner, database) {
        if p.mirroring
            .as_ref()
            .is_some_and(|pm| pm.partner_instance.eq_ignore_ascii_case(instance))
        {
            p.mirroring = None;
        }
        if p.state == DatabaseState::Restoring && synchronized {
            p.lsn.redo_start = principal_end.or(p.lsn.redo_start);
        }
    }
    if let Some(d) = db_mut(obs, instance, database)
        && d.state == DatabaseState::Restoring
        && synchronized
    {
        d.lsn.redo_start = partner_end.or(d.lsn.redo_start);
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
    if let Some(i) = instance_mut(obs, instance) {
        i.sessions.retain(|s| {
            !s.database
                .as_deref()
                .is_some_and(|d| d.eq_ignore_ascii_case(database))
        });
    }
}

/// Put a file on a site's share (creating the location entry the first time).
fn add_file(spec: &PersistentChatPoolSpec, obs: &mut Observation, site: &str, file: BackupFile) {
    let kind = LocationKind::Share {
        site: site.to_string(),
    };
    if let Some(l) = obs.backup_locations.iter_mut().find(|l| l.kind == kind) {
        // Same-second names can repeat inside a projection (its clock stands still); keep both.
        l.files.push(file);
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
