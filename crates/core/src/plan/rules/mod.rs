//! The decision rules: from (spec, observation, now) to the next safe step. Every rule reads
//! only the observation; the order of the rules is the order of the procedure. `transition`
//! handles a primary site without a writable chat copy, `steady` one with it; the removals and
//! the overwrite policy here serve both.

mod steady;
mod transition;

pub(crate) use transition::{candidate, loss_estimate, observed_tail};

use jiff::Timestamp;

use crate::api::{PersistentChatPoolSpec, Site};
use crate::observe::{
    BackupFile, BackupType, DatabaseObservation, DatabaseState, LocationKind, Lsn, MirroringRole,
    Observation, RecoveryModel,
};

use super::Decision;
use super::facts::{self, db, elapsed, reachable, secs};
use super::lsn;
use super::reason::{BlockReason, NewerBasis, WaitReason};
use super::step::{LogShippingConfiguration, LogShippingSide, ScheduleToChange, Step, backup_path};

/// The pool as the rules see it at `now`: its spec, its observation, and what the spec names
/// resolved once.
pub(crate) struct PoolView<'a> {
    pub spec: &'a PersistentChatPoolSpec,
    pub obs: &'a Observation,
    pub now: Timestamp,
    /// The declared primary site.
    pub primary_site: &'a Site,
    /// The other site.
    pub other_site: &'a Site,
    /// The chat database's name.
    pub chat_database: &'a str,
    /// The compliance database's name, when compliance is deployed.
    pub compliance_database: Option<&'a str>,
}

impl<'a> PoolView<'a> {
    pub fn new(
        spec: &'a PersistentChatPoolSpec,
        obs: &'a Observation,
        now: Timestamp,
    ) -> Option<PoolView<'a>> {
        Some(PoolView {
            spec,
            obs,
            now,
            primary_site: spec.site(&spec.primary_site)?,
            other_site: spec.other_site(&spec.primary_site)?,
            chat_database: &spec.databases.chat,
            compliance_database: spec.databases.compliance.as_deref(),
        })
    }

    /// A backup file name on `share` in the log-shipping convention, stamped with `now`; when a
    /// file of that name is already listed anywhere in the observation, the stamp moves on a
    /// second at a time. A BACKUP to an existing file appends a second backup set that a RESTORE
    /// without `FILE =` never reads, so two backups must never share a name.
    pub fn backup_path(&self, share: &str, database: &str, infix: &str, ext: &str) -> String {
        let taken = |path: &str| {
            self.obs
                .backup_locations
                .iter()
                .flat_map(|l| l.files.iter())
                .any(|f| f.path.eq_ignore_ascii_case(path))
        };
        let mut stamp = self.now;
        loop {
            let path = backup_path(share, database, infix, stamp, ext);
            if !taken(&path) {
                return path;
            }
            stamp += jiff::SignedDuration::from_secs(1);
        }
    }

    fn wait_unreachable(&self, site: &Site, instance: &str) -> Decision {
        Decision::Wait(WaitReason::InstanceUnreachable {
            instance: instance.to_string(),
            site: site.name.clone(),
            reason: facts::unreachable_reason(self.obs, instance),
        })
    }

    fn share_readable(&self, site: &Site) -> Result<(), (String, String)> {
        match facts::location(
            self.obs,
            &LocationKind::Share {
                site: site.name.clone(),
            },
        ) {
            Some(l) if !l.readable => Err((
                l.path.clone(),
                l.reason.clone().unwrap_or_else(|| "unreadable".to_string()),
            )),
            _ => Ok(()),
        }
    }

    /// Wait when `site`'s share cannot be listed: `instance` cannot `action` `database`.
    fn wait_share(
        &self,
        site: &Site,
        instance: &str,
        action: &str,
        database: &str,
        file: Option<String>,
    ) -> Option<Decision> {
        self.share_readable(site).err().map(|(location, reason)| {
            Decision::Wait(WaitReason::LocationUnreadable {
                instance: instance.to_string(),
                action: action.to_string(),
                database: database.to_string(),
                file,
                location,
                reason,
            })
        })
    }
}

/// The writable chat copy on the primary site, if any: the instance whose chat database is
/// ONLINE, MULTI_USER and a principal or unmirrored. Roles are observed, never assumed.
pub(crate) fn primary_instance<'a>(pool: &PoolView<'a>) -> Option<&'a str> {
    let mut best: Option<(&str, bool)> = None;
    for name in facts::names(pool.primary_site) {
        if let Some(d) = db(pool.obs, name, pool.chat_database)
            .filter(|d| facts::is_writable(d) && facts::is_online(d))
        {
            let principal = d
                .mirroring
                .as_ref()
                .is_some_and(|m| m.role == MirroringRole::Principal);
            // A principal beats an unmirrored copy; otherwise declaration order.
            if best.is_none_or(|(_, bp)| principal && !bp) {
                best = Some((name, principal));
            }
        }
    }
    best.map(|(n, _)| n)
}

/// The next decision (see `plan::next`).
pub(crate) fn decide(pool: &PoolView) -> Decision {
    if pool.spec.suspend {
        return Decision::Wait(WaitReason::Suspended);
    }
    if let Some(mismatch) = server_name_mismatch(pool) {
        return Decision::Blocked(mismatch);
    }
    let decision = match primary_instance(pool) {
        Some(primary_instance) => steady::steady(pool, primary_instance),
        None => transition::transition(pool),
    };
    match &decision {
        Decision::Step(step) => operation_running(pool, step).unwrap_or(decision),
        _ => decision,
    }
}

/// Wait when a BACKUP or RESTORE runs on an instance `step` sends to. Most often it is the
/// operator's own statement from an earlier pass that outlived its command timeout (or a
/// replica that restarted): resending it would fail on the database in use, and the step's
/// KILL of sessions still on the database would end it. Publishing sends nothing and never
/// waits.
fn operation_running(pool: &PoolView, step: &Step) -> Option<Decision> {
    step.instances().into_iter().find_map(|instance| {
        let operation = pool.obs.instance(instance)?.running_operations.first()?;
        Some(Decision::Wait(WaitReason::OperationRunning {
            instance: instance.to_string(),
            command: operation.command.clone(),
            percent_complete: operation.percent_complete,
            session_id: operation.session_id,
            program_name: operation.program_name.clone(),
        }))
    })
}

/// The first reachable instance whose `@@SERVERNAME` is not the spec's name for it (compared
/// without case, as SQL Server compares server names). Nothing is written to a pool whose
/// names do not match: every msdb record the planner reads is keyed by `@@SERVERNAME`.
fn server_name_mismatch(pool: &PoolView) -> Option<BlockReason> {
    pool.obs.instances.iter().find_map(|observed| {
        let reported = observed.server_name.as_deref()?;
        (!reported.eq_ignore_ascii_case(&observed.name)).then(|| BlockReason::ServerNameMismatch {
            instance: observed.name.clone(),
            server_name: reported.to_string(),
        })
    })
}

/// `SET PARTNER OFF` for the mirroring sessions of the pool's databases on a site's reachable
/// instances, one instance at a time (one statement ends a session on both partners).
fn remove_site_mirroring(pool: &PoolView, site: &Site) -> Option<Decision> {
    facts::names(site)
        .into_iter()
        .find_map(|n| remove_mirroring_on(pool, site, n))
}

/// `SET PARTNER OFF` for every mirrored pool database on `instance`, in one step.
fn remove_mirroring_on(pool: &PoolView, site: &Site, instance: &str) -> Option<Decision> {
    let databases: Vec<String> = pool
        .spec
        .database_names()
        .into_iter()
        .filter(|dbn| db(pool.obs, instance, dbn).is_some_and(|d| d.mirroring.is_some()))
        .map(str::to_string)
        .collect();
    (!databases.is_empty()).then(|| {
        Decision::Step(Step::RemoveMirroring {
            site: site.name.clone(),
            instance: instance.to_string(),
            databases,
        })
    })
}

/// The log-shipping secondary configurations of the chat database on a site's reachable
/// instances.
fn ls_secondaries(pool: &PoolView, site: &Site) -> Vec<LogShippingConfiguration> {
    facts::names(site)
        .into_iter()
        .filter_map(|n| {
            let lss = db(pool.obs, n, pool.chat_database)?
                .log_shipping_secondary
                .as_ref()?;
            Some(LogShippingConfiguration::secondary(n, &lss.primary_server))
        })
        .collect()
}

/// The log-shipping primary configurations of the chat database on a site's reachable
/// instances.
fn ls_primaries(pool: &PoolView, site: &Site) -> Vec<LogShippingConfiguration> {
    facts::names(site)
        .into_iter()
        .filter_map(|n| ls_primary(pool, n))
        .collect()
}

/// The log-shipping primary configuration of the chat database on `instance`, if it has one.
fn ls_primary(pool: &PoolView, instance: &str) -> Option<LogShippingConfiguration> {
    let lsp = db(pool.obs, instance, pool.chat_database)?
        .log_shipping_primary
        .as_ref()?;
    Some(LogShippingConfiguration {
        instance: instance.to_string(),
        side: LogShippingSide::Primary,
        partners: lsp
            .secondaries
            .iter()
            .map(|l| l.secondary_server.clone())
            .collect(),
    })
}

/// One RemoveLogShipping step for the chat database: the secondary configurations on the
/// primary site `pool.primary_site` (the previous direction's target), then, when `old_side_too`, the primary
/// configurations on the secondary site `pool.other_site`. The step is reported under the site whose
/// configuration it removes first.
fn remove_log_shipping(pool: &PoolView, old_side_too: bool) -> Option<Decision> {
    let mut configurations = ls_secondaries(pool, pool.primary_site);
    let site = if configurations.is_empty() {
        pool.other_site
    } else {
        pool.primary_site
    };
    if old_side_too {
        configurations.extend(ls_primaries(pool, pool.other_site));
    }
    (!configurations.is_empty()).then(|| {
        Decision::Step(Step::RemoveLogShipping {
            site: site.name.clone(),
            database: pool.chat_database.to_string(),
            configurations,
        })
    })
}

/// Whether overwriting this ONLINE copy could lose writes the primary lacks, and on what basis.
///
/// The answer errs towards "may": a wrong "no" loses chat, a wrong "yes" asks a person. The
/// LSNs of two copies are comparable only up to where their histories split, and SQL Server
/// records that point as a recovery fork (`sys.database_recovery_status.fork_point_lsn`):
/// - the primary forked at `f` (recovered after restoring the log up to `f`): whatever another
///   copy of that history holds past `f` is not the primary's;
/// - the primary never forked but the copy did: the copy's log past its own fork is its own;
/// - neither forked: where they split is unknown (two histories that never met, or a mirror
///   forced into service), so the copy may hold anything.
///
/// Log records past the split are counted whatever they are: SQL Server also writes them for
/// checkpoints, crash recovery and the fence's own `SET READ_ONLY`, and no documented view
/// tells those from a committed chat message. So on a real server an old primary that served
/// after the split practically always "may be newer": it is kept, salvaged and waits for
/// `failover.approveOverwrite` (or `allowDataLoss`), never overwritten on a guess.
pub(crate) fn may_be_newer(
    primary_database: &DatabaseObservation,
    copy: &DatabaseObservation,
) -> (bool, NewerBasis) {
    let end = facts::position(copy);
    match (primary_database.lsn.fork_point, copy.lsn.fork_point) {
        (Some(f), _) => (end > f, NewerBasis::PrimaryFork(f)),
        (None, Some(copy_fork)) => (end > copy_fork, NewerBasis::OwnFork(copy_fork)),
        (None, None) => (true, NewerBasis::NoForkPoint),
    }
}

fn overwrite_approved(pool: &PoolView, instance: &str) -> bool {
    pool.spec.failover.allow_data_loss
        || pool
            .spec
            .failover
            .approve_overwrite
            .iter()
            .any(|a| a.eq_ignore_ascii_case(instance))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::{BackupFile, BackupLocation, BackupType, Lsn};

    fn spec() -> PersistentChatPoolSpec {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/pool.yaml"
        ))
        .unwrap();
        crate::api::load_pool_yaml(&text).unwrap().spec
    }

    fn listed(paths: &[&str], now: Timestamp) -> Observation {
        Observation {
            taken_at: now,
            instances: Vec::new(),
            backup_locations: vec![BackupLocation {
                kind: LocationKind::Share {
                    site: "atlanta".into(),
                },
                path: r"\\atl-fs\pchat-ls".into(),
                readable: true,
                reason: None,
                files: paths
                    .iter()
                    .map(|p| BackupFile {
                        path: p.to_string(),
                        database: "mgc".into(),
                        backup_type: BackupType::Log,
                        first_lsn: Lsn(1),
                        last_lsn: Lsn(2),
                        database_backup_lsn: None,
                        finished_at: now,
                        copy_only: false,
                        force_offline: false,
                        server_name: "atl-sql1".into(),
                    })
                    .collect(),
            }],
            published: None,
        }
    }

    #[test]
    fn backup_name_taken_in_the_same_second_moves_to_the_next_free_second() {
        let now: Timestamp = "2026-11-26T12:05:09Z".parse().unwrap();
        let spec = spec();
        let obs = listed(
            &[
                r"\\atl-fs\pchat-ls\mgc_20261126120509.trn",
                r"\\ATL-FS\pchat-ls\MGC_20261126120510.TRN",
            ],
            now,
        );
        let pool = PoolView::new(&spec, &obs, now).unwrap();
        assert_eq!(
            pool.backup_path(r"\\atl-fs\pchat-ls", "mgc", "", "trn"),
            r"\\atl-fs\pchat-ls\mgc_20261126120511.trn"
        );
    }

    #[test]
    fn backup_name_that_is_free_keeps_the_current_second() {
        let now: Timestamp = "2026-11-26T12:05:09Z".parse().unwrap();
        let spec = spec();
        let obs = listed(&[r"\\atl-fs\pchat-ls\mgc_20261126120500.trn"], now);
        let pool = PoolView::new(&spec, &obs, now).unwrap();
        assert_eq!(
            pool.backup_path(r"\\atl-fs\pchat-ls", "mgc", "", "trn"),
            r"\\atl-fs\pchat-ls\mgc_20261126120509.trn"
        );
    }
}
