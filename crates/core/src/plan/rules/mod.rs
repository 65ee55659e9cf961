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

/// Everything a rule needs, resolved once.
pub(crate) struct Ctx<'a> {
    pub spec: &'a PersistentChatPoolSpec,
    pub obs: &'a Observation,
    pub now: Timestamp,
    /// The declared primary site.
    pub p: &'a Site,
    /// The other site.
    pub s: &'a Site,
    pub chat: &'a str,
    pub comp: Option<&'a str>,
}

impl<'a> Ctx<'a> {
    pub fn new(
        spec: &'a PersistentChatPoolSpec,
        obs: &'a Observation,
        now: Timestamp,
    ) -> Option<Ctx<'a>> {
        let p = spec.site(&spec.primary_site)?;
        let s = spec.other_site(&spec.primary_site)?;
        Some(Ctx {
            spec,
            obs,
            now,
            p,
            s,
            chat: &spec.databases.chat,
            comp: spec.databases.compliance.as_deref(),
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
pub(crate) fn primary_instance<'a>(cx: &Ctx<'a>) -> Option<&'a str> {
    let mut best: Option<(&str, bool)> = None;
    for name in facts::names(cx.p) {
        if let Some(d) =
            db(cx.obs, name, cx.chat).filter(|d| facts::is_writable(d) && facts::is_online(d))
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
pub(crate) fn decide(cx: &Ctx) -> Decision {
    if cx.spec.suspend {
        return Decision::Wait(WaitReason::Suspended);
    }
    match primary_instance(cx) {
        Some(pi) => steady::steady(cx, pi),
        None => transition::transition(cx),
    }
}

/// `SET PARTNER OFF` for the mirroring sessions of the pool's databases on a site's reachable
/// instances, one instance at a time (one statement ends a session on both partners).
fn remove_site_mirroring(cx: &Ctx, site: &Site) -> Option<Decision> {
    facts::names(site)
        .into_iter()
        .find_map(|n| remove_mirroring_on(cx, site, n))
}

/// `SET PARTNER OFF` for every mirrored pool database on `instance`, in one step.
fn remove_mirroring_on(cx: &Ctx, site: &Site, instance: &str) -> Option<Decision> {
    let databases: Vec<String> = cx
        .spec
        .database_names()
        .into_iter()
        .filter(|dbn| db(cx.obs, instance, dbn).is_some_and(|d| d.mirroring.is_some()))
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
fn ls_secondaries(cx: &Ctx, site: &Site) -> Vec<LogShippingConfiguration> {
    facts::names(site)
        .into_iter()
        .filter_map(|n| {
            let lss = db(cx.obs, n, cx.chat)?.log_shipping_secondary.as_ref()?;
            Some(LogShippingConfiguration::secondary(n, &lss.primary_server))
        })
        .collect()
}

/// The log-shipping primary configurations of the chat database on a site's reachable
/// instances.
fn ls_primaries(cx: &Ctx, site: &Site) -> Vec<LogShippingConfiguration> {
    facts::names(site)
        .into_iter()
        .filter_map(|n| ls_primary(cx, n))
        .collect()
}

/// The log-shipping primary configuration of the chat database on `instance`, if it has one.
fn ls_primary(cx: &Ctx, instance: &str) -> Option<LogShippingConfiguration> {
    let lsp = db(cx.obs, instance, cx.chat)?
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
/// primary site `cx.p` (the previous direction's target), then, when `old_side_too`, the primary
/// configurations on the secondary site `cx.s`. The step is reported under the site whose
/// configuration it removes first.
fn remove_log_shipping(cx: &Ctx, old_side_too: bool) -> Option<Decision> {
    let mut configurations = ls_secondaries(cx, cx.p);
    let site = if configurations.is_empty() {
        cx.s
    } else {
        cx.p
    };
    if old_side_too {
        configurations.extend(ls_primaries(cx, cx.s));
    }
    (!configurations.is_empty()).then(|| {
        Decision::Step(Step::RemoveLogShipping {
            site: site.name.clone(),
            database: cx.chat.to_string(),
            configurations,
        })
    })
}

/// Whether overwriting this ONLINE copy could lose writes the primary lacks, and on what basis.
/// With the primary forked at `f`, anything another copy holds past `f` is not the primary's.
/// A primary that never forked is the original history: a copy that forked at `fd` holds writes
/// of its own past `fd`. Without any fork information the ends of log are compared: on first
/// sight of a pool, a copy whose log reaches further may hold writes the primary lacks.
pub(crate) fn may_be_newer(
    pd: &DatabaseObservation,
    d: &DatabaseObservation,
) -> (bool, NewerBasis) {
    let end = facts::position(d);
    match (pd.lsn.fork_point, d.lsn.fork_point) {
        (Some(f), _) => (end > f, NewerBasis::PrimaryFork(f)),
        (None, Some(fd)) => (end > fd, NewerBasis::OwnFork(fd)),
        (None, None) => {
            let pe = facts::position(pd);
            (end > pe, NewerBasis::PrimaryEnd(pe))
        }
    }
}

fn overwrite_approved(cx: &Ctx, instance: &str) -> bool {
    cx.spec.failover.allow_data_loss
        || cx
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
        let cx = Ctx::new(&spec, &obs, now).unwrap();
        assert_eq!(
            cx.backup_path(r"\\atl-fs\pchat-ls", "mgc", "", "trn"),
            r"\\atl-fs\pchat-ls\mgc_20261126120511.trn"
        );
    }

    #[test]
    fn backup_name_that_is_free_keeps_the_current_second() {
        let now: Timestamp = "2026-11-26T12:05:09Z".parse().unwrap();
        let spec = spec();
        let obs = listed(&[r"\\atl-fs\pchat-ls\mgc_20261126120500.trn"], now);
        let cx = Ctx::new(&spec, &obs, now).unwrap();
        assert_eq!(
            cx.backup_path(r"\\atl-fs\pchat-ls", "mgc", "", "trn"),
            r"\\atl-fs\pchat-ls\mgc_20261126120509.trn"
        );
    }
}
