//! The decision rules: from (spec, observation, now) to the next safe step. Every rule reads
//! only the observation; the order of the rules is the order of the procedure.

use jiff::Timestamp;

use crate::api::{PersistentChatPoolSpec, Site};
use crate::observe::{
    BackupFile, BackupType, DatabaseObservation, DatabaseState, LocationKind, Lsn, MirroringRole,
    Observation,
};

use super::Decision;
use super::facts::{self, db, elapsed, reachable, secs};
use super::lsn;
use super::reason::{BlockReason, WaitReason};
use super::step::{LogShippingSide, Step, backup_path};

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

    fn wait_share(
        &self,
        site: &Site,
        instance: &str,
        database: &str,
        file: Option<String>,
    ) -> Option<Decision> {
        self.share_readable(site).err().map(|(location, reason)| {
            Decision::Wait(WaitReason::LocationUnreadable {
                instance: instance.to_string(),
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
        Some(pi) => steady(cx, pi),
        None => transition(cx),
    }
}

// ---------------------------------------------------------------------------------------------
// Transition: the primary site has no writable chat copy yet.
// ---------------------------------------------------------------------------------------------

/// Whether a RESTORING copy at redo point `redo` shares the history of `source` (a copy of
/// the site `source_site`), so that source's log backups can roll it forward. A copy that
/// stopped at or before source's fork point shares its history; past the fork it must have
/// been rolled forward by a backup source's lineage took after the fork. Without fork
/// information every copy is taken to share it (nothing better is known).
fn on_lineage(cx: &Ctx, source_site: &Site, source: &DatabaseObservation, redo: Lsn) -> bool {
    let Some(f) = source.lsn.fork_point else {
        return true;
    };
    if redo <= f {
        return true;
    }
    let names = facts::names(source_site);
    facts::all_files(cx.obs).any(|b| {
        b.database.eq_ignore_ascii_case(cx.chat)
            && b.last_lsn == redo
            && b.first_lsn >= f
            && names.iter().any(|n| b.server_name.eq_ignore_ascii_case(n))
    })
}

/// The primary-site instance whose RESTORING copy becomes the new primary: the log-shipping
/// secondary if there is one, else the copy that reached furthest; only copies that share the
/// history of `source` (the old primary's copy, when observed) qualify.
fn candidate<'a>(
    cx: &Ctx<'a>,
    source: Option<&DatabaseObservation>,
) -> Result<(&'a str, &'a DatabaseObservation), Box<Decision>> {
    let names = facts::names(cx.p);
    let fits = |d: &DatabaseObservation| {
        facts::is_plain_restoring(d)
            && source.is_none_or(|src| {
                d.lsn
                    .redo_start
                    .is_some_and(|r| on_lineage(cx, cx.s, src, r))
            })
    };
    for &n in &names {
        let lss = cx
            .obs
            .instance(n)
            .and_then(|i| i.database(cx.chat))
            .is_some_and(|d| d.log_shipping_secondary.is_some());
        if lss {
            match db(cx.obs, n, cx.chat) {
                Some(d) if fits(d) => return Ok((n, d)),
                Some(_) => {}
                None => return Err(Box::new(cx.wait_unreachable(cx.p, n))),
            }
        }
    }
    let mut best: Option<(&str, &DatabaseObservation)> = None;
    for &n in &names {
        if let Some(d) = db(cx.obs, n, cx.chat).filter(|d| fits(d))
            && best.is_none_or(|(_, b)| d.lsn.redo_start > b.lsn.redo_start)
        {
            best = Some((n, d));
        }
    }
    if let Some(b) = best {
        return Ok(b);
    }
    if let Some(&down) = names.iter().find(|n| !reachable(cx.obs, n)) {
        return Err(Box::new(cx.wait_unreachable(cx.p, down)));
    }
    let detail = names
        .iter()
        .map(|n| match db(cx.obs, n, cx.chat) {
            None => format!("{n} has no {}", cx.chat),
            Some(d) if d.state == DatabaseState::Online => {
                format!("{n} holds it ONLINE but fenced ({:?})", d.user_access)
            }
            Some(d) if d.mirroring.is_some() => format!("{n} holds a mirror copy"),
            Some(d) if d.state == DatabaseState::Restoring => format!(
                "{n} holds it RESTORING at LSN {}, which the old primary's log backups cannot roll forward",
                facts::position(d)
            ),
            Some(d) => format!("{n} holds it {:?}", d.state),
        })
        .collect::<Vec<_>>()
        .join("; ");
    Err(Box::new(Decision::Blocked(
        BlockReason::NoCopyOnPrimarySite {
            site: cx.p.name.clone(),
            database: cx.chat.to_string(),
            detail,
        },
    )))
}

/// Before a planned switch to a site with no copy that can catch up: reseed one of its
/// instances from the serving copy, while that copy still serves (no outage yet).
fn prepare_target(cx: &Ctx, old: &str, od: &DatabaseObservation) -> Decision {
    let names = facts::names(cx.p);
    let restorable_slot = |n: &&&str| {
        reachable(cx.obs, n)
            && db(cx.obs, n, cx.chat).is_none_or(|d| d.state == DatabaseState::Restoring)
    };
    let online_slot =
        |n: &&&str| db(cx.obs, n, cx.chat).is_some_and(|d| d.state == DatabaseState::Online);
    let Some(&t) = names
        .iter()
        .find(restorable_slot)
        .or_else(|| names.iter().find(online_slot))
    else {
        if let Some(&down) = names.iter().find(|n| !reachable(cx.obs, n)) {
            return cx.wait_unreachable(cx.p, down);
        }
        let n = names.first().copied().unwrap_or_default();
        return Decision::Blocked(BlockReason::DatabaseState {
            instance: n.to_string(),
            database: cx.chat.to_string(),
            state: db(cx.obs, n, cx.chat)
                .map(|d| format!("{:?}", d.state))
                .unwrap_or_default(),
        });
    };
    let td = db(cx.obs, t, cx.chat);
    if let Some(td) = td {
        if td.mirroring.is_some() {
            return Decision::Step(Step::RemoveMirroring {
                site: cx.p.name.clone(),
                instance: t.to_string(),
                database: cx.chat.to_string(),
            });
        }
        if td.state == DatabaseState::Online {
            let salvage = facts::salvage_of(cx.obs, t, cx.chat, facts::position(td));
            if salvage.is_none() {
                let file = backup_path(
                    &cx.p.backup_share,
                    cx.chat,
                    &format!("salvage_{t}_"),
                    cx.now,
                    "bak",
                );
                if let Some(w) = cx.wait_share(cx.p, t, cx.chat, Some(file.clone())) {
                    return w;
                }
                return Decision::Step(Step::SalvageStaleCopy {
                    site: cx.p.name.clone(),
                    instance: t.to_string(),
                    database: cx.chat.to_string(),
                    file,
                });
            }
            let (newer, point, fork_known) = may_be_newer(od, td);
            if newer && !overwrite_approved(cx, t) {
                return Decision::Blocked(BlockReason::StaleCopyMayBeNewer {
                    instance: t.to_string(),
                    database: cx.chat.to_string(),
                    end_of_log: facts::position(td),
                    primary_instance: old.to_string(),
                    primary_point: point,
                    fork_known,
                    salvage_file: salvage.map(|f| f.path.clone()),
                });
            }
        }
    }
    if let Some(w) = cx.wait_share(cx.s, t, cx.chat, None) {
        return w;
    }
    let full_backup = backup_path(
        &cx.s.backup_share,
        cx.chat,
        &format!("seed_{t}_"),
        cx.now,
        "bak",
    );
    let log_backup = backup_path(&cx.s.backup_share, cx.chat, "", cx.now, "trn");
    Decision::Step(match td {
        Some(_) => Step::Reseed {
            site: cx.p.name.clone(),
            instance: t.to_string(),
            database: cx.chat.to_string(),
            source_instance: old.to_string(),
            full_backup,
            log_backup,
            replace: true,
        },
        None => Step::BootstrapSecondary {
            site: cx.p.name.clone(),
            instance: t.to_string(),
            database: cx.chat.to_string(),
            source_instance: old.to_string(),
            full_backup,
            log_backup,
        },
    })
}

/// Log backups the candidate may restore, local copy folder first, then the other site's share,
/// then the primary site's own share. With `source` (the old primary's copy, when observed)
/// only backups of source's history qualify: a backup another copy took past source's fork
/// point belongs to another history, and SQL Server refuses it.
fn restorable<'a>(
    cx: &Ctx<'a>,
    instance: &str,
    source: Option<&DatabaseObservation>,
) -> Vec<&'a BackupFile> {
    let fork = source.and_then(|d| d.lsn.fork_point);
    let s_names = facts::names(cx.s);
    facts::copy_files(cx.obs, instance)
        .iter()
        .chain(facts::share_files(cx.obs, &cx.s.name))
        .chain(facts::share_files(cx.obs, &cx.p.name))
        .filter(|f| match fork {
            None => true,
            Some(fp) => {
                f.last_lsn <= fp
                    || (f.first_lsn >= fp
                        && s_names
                            .iter()
                            .any(|n| f.server_name.eq_ignore_ascii_case(n)))
            }
        })
        .collect()
}

/// The tail-log backup of the demoted old primary, when the demoted copy is observed RESTORING
/// at exactly that point on a reachable old-site instance.
pub(crate) fn observed_tail<'a>(cx: &Ctx<'a>) -> Option<(&'a str, &'a BackupFile)> {
    facts::names(cx.s)
        .into_iter()
        .filter_map(|n| {
            let d = db(cx.obs, n, cx.chat)?;
            let t = d.last_log_backup.as_ref()?;
            (facts::is_plain_restoring(d)
                && t.force_offline
                && d.lsn.redo_start == Some(t.last_lsn))
            .then_some((n, t))
        })
        .max_by_key(|(_, t)| t.last_lsn)
}

fn drain_pool_state(cx: &Ctx) -> crate::api::PoolState {
    cx.obs
        .published
        .as_ref()
        .map(|p| p.pool_state)
        .unwrap_or_else(|| facts::pool_state_for(cx.spec, &cx.s.name))
}

/// Publish an empty list unless it already is.
fn drain_published(cx: &Ctx) -> Option<Decision> {
    match &cx.obs.published {
        Some(p) if p.active_servers.is_empty() => None,
        _ => Some(Decision::Step(Step::PublishActiveServers {
            site: cx.p.name.clone(),
            servers: vec![],
            pool_state: drain_pool_state(cx),
        })),
    }
}

/// Wait for, then end, chat-server sessions on the pool's databases anywhere.
fn drain_sessions(cx: &Ctx) -> Option<Decision> {
    let published_at = cx.obs.published.as_ref()?.published_at;
    for (site, inst) in cx.spec.instances() {
        let sessions = facts::chat_sessions(cx.spec, cx.obs, &inst.name);
        if sessions.is_empty() {
            continue;
        }
        let left = secs(cx.spec.failover.drain_timeout) - elapsed(published_at, cx.now);
        if left > 0 {
            return Some(Decision::Wait(WaitReason::Draining {
                instance: inst.name.clone(),
                sessions: sessions.len(),
                seconds_left: left,
            }));
        }
        return Some(Decision::Step(Step::KillChatSessions {
            site: site.name.clone(),
            instance: inst.name.clone(),
            session_ids: sessions.iter().map(|s| s.session_id).collect(),
        }));
    }
    None
}

fn transition(cx: &Ctx) -> Decision {
    // An unreachable primary-site instance may hold the writable copy (the principal of a
    // mirroring session, say): bringing another copy online could make a second one.
    if let Some(down) = facts::names(cx.p)
        .into_iter()
        .find(|n| !reachable(cx.obs, n))
    {
        return cx.wait_unreachable(cx.p, down);
    }
    let s_names = facts::names(cx.s);
    // A writable copy on a reachable old-site instance: the planned switch.
    let old = s_names.iter().copied().find(|n| {
        db(cx.obs, n, cx.chat).is_some_and(|d| facts::is_writable(d) && facts::is_online(d))
    });
    let tail = observed_tail(cx);
    let source = old
        .or(tail.map(|(n, _)| n))
        .and_then(|n| db(cx.obs, n, cx.chat));
    let cand = match candidate(cx, source) {
        Ok(c) => c,
        Err(d)
            if old.is_some()
                && matches!(
                    *d,
                    Decision::Blocked(BlockReason::NoCopyOnPrimarySite { .. })
                ) =>
        {
            let old = old.expect("checked");
            return prepare_target(cx, old, source.expect("observed"));
        }
        Err(d) => return *d,
    };
    if let Some(old) = old {
        return planned_before_demote(cx, cand, old);
    }
    if let Some((_, tail)) = tail {
        return planned_after_demote(cx, cand, tail, source);
    }
    let down: Vec<&str> = s_names
        .iter()
        .copied()
        .filter(|n| !reachable(cx.obs, n))
        .collect();
    if down.len() == s_names.len() {
        return forced(cx, cand);
    }
    if let Some(d) = down.first() {
        // It may hold the serving copy: nothing may be recovered until it is seen.
        return cx.wait_unreachable(cx.s, d);
    }
    // A switch away from this site was abandoned after its tail-log backup: the demoted copy
    // holds everything ever written and nothing else is writable, so it comes back online.
    let demoted = facts::names(cx.p).into_iter().find(|n| {
        db(cx.obs, n, cx.chat).is_some_and(|d| {
            facts::is_plain_restoring(d)
                && d.last_log_backup
                    .as_ref()
                    .is_some_and(|t| t.force_offline && d.lsn.redo_start == Some(t.last_lsn))
        })
    });
    if let Some(ci) = demoted {
        return finish_transition(cx, ci, true);
    }
    Decision::Blocked(BlockReason::NoServingCopy {
        database: cx.chat.to_string(),
    })
}

fn planned_before_demote(cx: &Ctx, (ci, cd): (&str, &DatabaseObservation), old: &str) -> Decision {
    let od = db(cx.obs, old, cx.chat).expect("old primary observed");
    // Refuse to start the outage when the candidate could not catch up afterwards: the tail
    // will start where the old primary's last log backup ended.
    if let (Some(r), Some(last)) = (cd.lsn.redo_start, od.last_log_backup.as_ref()) {
        let reach = lsn::chain(
            restorable(cx, ci, Some(od)),
            cx.chat,
            r,
            Some(last.last_lsn),
        )
        .last()
        .map_or(r, |f| f.last_lsn);
        if reach < last.last_lsn {
            if let Some(w) = cx.wait_share(cx.s, ci, cx.chat, None) {
                return w;
            }
            return Decision::Blocked(BlockReason::LogChainBroken {
                instance: ci.to_string(),
                database: cx.chat.to_string(),
                redo_point: reach,
                target: Some(last.last_lsn),
            });
        }
    }
    if let Some(d) = drain_published(cx).or_else(|| drain_sessions(cx)) {
        return d;
    }
    if od.mirroring.is_some() {
        return Decision::Step(Step::RemoveMirroring {
            site: cx.s.name.clone(),
            instance: old.to_string(),
            database: cx.chat.to_string(),
        });
    }
    if let Some(d) = remove_site_mirroring(cx, cx.s) {
        return d;
    }
    let file = backup_path(&cx.s.backup_share, cx.chat, "", cx.now, "trn");
    if let Some(w) = cx.wait_share(cx.s, old, cx.chat, Some(file.clone())) {
        return w;
    }
    Decision::Step(Step::DemoteOldPrimary {
        site: cx.s.name.clone(),
        instance: old.to_string(),
        database: cx.chat.to_string(),
        file,
    })
}

fn planned_after_demote(
    cx: &Ctx,
    (ci, cd): (&str, &DatabaseObservation),
    tail: &BackupFile,
    source: Option<&DatabaseObservation>,
) -> Decision {
    if let Some(d) = drain_published(cx).or_else(|| drain_sessions(cx)) {
        return d;
    }
    let r = cd.lsn.redo_start.unwrap_or(Lsn(0));
    if r < tail.last_lsn {
        let files = lsn::chain(restorable(cx, ci, source), cx.chat, r, Some(tail.last_lsn));
        if files.is_empty() {
            if let Some(w) = cx.wait_share(cx.s, ci, cx.chat, Some(tail.path.clone())) {
                return w;
            }
            return Decision::Blocked(BlockReason::LogChainBroken {
                instance: ci.to_string(),
                database: cx.chat.to_string(),
                redo_point: r,
                target: Some(tail.last_lsn),
            });
        }
        return Decision::Step(Step::CatchUp {
            site: cx.p.name.clone(),
            instance: ci.to_string(),
            database: cx.chat.to_string(),
            files,
        });
    }
    finish_transition(cx, ci, true)
}

/// After the catch-up: remove log shipping on both sides, then recover.
fn finish_transition(cx: &Ctx, ci: &str, old_side_too: bool) -> Decision {
    // A planned recovery needs the whole old site in sight: an instance out of sight may hold
    // a writable copy. (A forced one runs only when the whole old site is down.)
    if old_side_too
        && let Some(down) = facts::names(cx.s)
            .into_iter()
            .find(|n| !reachable(cx.obs, n))
    {
        return cx.wait_unreachable(cx.s, down);
    }
    if let Some(d) = remove_ls_secondary(cx, cx.p) {
        return d;
    }
    if old_side_too && let Some(d) = remove_ls_primary(cx, cx.s) {
        return d;
    }
    Decision::Step(Step::Recover {
        site: cx.p.name.clone(),
        instance: ci.to_string(),
        database: cx.chat.to_string(),
        kill_session_ids: facts::sessions_on(cx.obs, ci, cx.chat),
    })
}

/// The estimated data-loss window of a forced failover to `ci` (see `plan::assess`).
pub(crate) fn loss_estimate(
    cx: &Ctx,
    ci: &str,
    cd: &DatabaseObservation,
) -> Option<(u64, Option<String>)> {
    let down_at = facts::names(cx.s)
        .into_iter()
        .filter_map(|n| facts::unreachable_since(cx.obs, n))
        .max()?;
    let r = cd.lsn.redo_start.unwrap_or(Lsn(0));
    let files = restorable(cx, ci, None);
    let chain = lsn::chain(files.iter().copied(), cx.chat, r, None);
    let last_lsn = chain.last().map_or(r, |f| f.last_lsn);
    let reached = files
        .iter()
        .chain(facts::all_files(cx.obs).collect::<Vec<_>>().iter())
        .find(|f| {
            f.backup_type == BackupType::Log
                && f.database.eq_ignore_ascii_case(cx.chat)
                && f.last_lsn == last_lsn
        })
        .map(|f| (f.finished_at, Some(f.path.clone())));
    let reached = reached.or_else(|| {
        let lss = cd.log_shipping_secondary.as_ref()?;
        Some((lss.last_restored_date?, lss.last_restored_file.clone()))
    })?;
    Some((elapsed(reached.0, down_at).max(0) as u64, reached.1))
}

fn forced(cx: &Ctx, (ci, cd): (&str, &DatabaseObservation)) -> Decision {
    let latest_since = facts::names(cx.s)
        .into_iter()
        .filter_map(|n| facts::unreachable_since(cx.obs, n))
        .max()
        .unwrap_or(cx.now);
    let left = secs(cx.spec.failover.unreachable_after) - elapsed(latest_since, cx.now);
    if left > 0 {
        return Decision::Wait(WaitReason::PrimarySiteUnreachable {
            site: cx.s.name.clone(),
            seconds_left: left,
        });
    }
    let Some((loss, last_file)) = loss_estimate(cx, ci, cd) else {
        return Decision::Blocked(BlockReason::DataLossUnknown {
            from_site: cx.s.name.clone(),
            to_instance: ci.to_string(),
        });
    };
    if !cx.spec.failover.allow_data_loss {
        return Decision::Blocked(BlockReason::DataLossNotAllowed {
            from_site: cx.s.name.clone(),
            to_instance: ci.to_string(),
            estimated_seconds: loss,
            last_file,
        });
    }
    let max = secs(cx.spec.failover.max_data_loss).max(0) as u64;
    if loss > max {
        return Decision::Blocked(BlockReason::DataLossTooLarge {
            from_site: cx.s.name.clone(),
            to_instance: ci.to_string(),
            estimated_seconds: loss,
            max_seconds: max,
        });
    }
    // Nobody can be drained on a site that does not answer, but clearing the list first means
    // no chat server is pointed at the old site when the new copy comes online.
    if let Some(d) = drain_published(cx) {
        return d;
    }
    let r = cd.lsn.redo_start.unwrap_or(Lsn(0));
    let files = lsn::chain(restorable(cx, ci, None), cx.chat, r, None);
    if !files.is_empty() {
        return Decision::Step(Step::CatchUp {
            site: cx.p.name.clone(),
            instance: ci.to_string(),
            database: cx.chat.to_string(),
            files,
        });
    }
    finish_transition(cx, ci, false)
}

// ---------------------------------------------------------------------------------------------
// Shared removals
// ---------------------------------------------------------------------------------------------

/// `SET PARTNER OFF` for every mirroring session of the pool's databases on a site's reachable
/// instances (one statement ends it on both partners).
fn remove_site_mirroring(cx: &Ctx, site: &Site) -> Option<Decision> {
    for n in facts::names(site) {
        for dbn in cx.spec.database_names() {
            if db(cx.obs, n, dbn).is_some_and(|d| d.mirroring.is_some()) {
                return Some(Decision::Step(Step::RemoveMirroring {
                    site: site.name.clone(),
                    instance: n.to_string(),
                    database: dbn.to_string(),
                }));
            }
        }
    }
    None
}

/// Log-shipping secondary configuration of the chat database on a site's reachable instances.
fn remove_ls_secondary(cx: &Ctx, site: &Site) -> Option<Decision> {
    facts::names(site).into_iter().find_map(|n| {
        let lss = db(cx.obs, n, cx.chat)?.log_shipping_secondary.as_ref()?;
        Some(Decision::Step(Step::RemoveLogShipping {
            site: site.name.clone(),
            instance: n.to_string(),
            database: cx.chat.to_string(),
            side: LogShippingSide::Secondary,
            partners: vec![lss.primary_server.clone()],
        }))
    })
}

/// Log-shipping primary configuration of the chat database on a site's reachable instances.
fn remove_ls_primary(cx: &Ctx, site: &Site) -> Option<Decision> {
    facts::names(site).into_iter().find_map(|n| {
        let lsp = db(cx.obs, n, cx.chat)?.log_shipping_primary.as_ref()?;
        Some(Decision::Step(Step::RemoveLogShipping {
            site: site.name.clone(),
            instance: n.to_string(),
            database: cx.chat.to_string(),
            side: LogShippingSide::Primary,
            partners: lsp
                .secondaries
                .iter()
                .map(|l| l.secondary_server.clone())
                .collect(),
        }))
    })
}

// ---------------------------------------------------------------------------------------------
// Steady state: the primary site has its writable chat copy on `pi`.
// ---------------------------------------------------------------------------------------------

/// A reachable instance's ONLINE chat copy other than the primary's: it must not be written and
/// may be overwritten only after a salvage.
pub(crate) fn stale_copies<'a>(
    cx: &Ctx<'a>,
    pi: &str,
) -> Vec<(&'a Site, &'a str, &'a DatabaseObservation)> {
    cx.spec
        .instances()
        .filter(|(_, i)| i.name != pi)
        .filter_map(|(s, i)| {
            let d = db(cx.obs, &i.name, cx.chat)?;
            (d.state == DatabaseState::Online).then_some((s, i.name.as_str(), d))
        })
        .collect()
}

/// Whether a backup taken on a primary-site instance after the primary's fork ends exactly
/// at `redo`: the copy was seeded (or log-shipped) from this primary's lineage.
fn seeded_from_primary(cx: &Ctx, pd: &DatabaseObservation, database: &str, redo: Lsn) -> bool {
    if pd.lsn.fork_point.is_some_and(|f| redo < f) || redo > facts::position(pd) {
        return false;
    }
    let p_names = facts::names(cx.p);
    facts::share_files(cx.obs, &cx.p.name).iter().any(|f| {
        f.database.eq_ignore_ascii_case(database)
            && f.last_lsn == redo
            && p_names
                .iter()
                .any(|n| f.server_name.eq_ignore_ascii_case(n))
    })
}

/// The secondary-site instance that receives log shipping, and whether its copy can continue
/// from the primary's log backups as it is.
fn ls_target<'a>(cx: &Ctx<'a>, pd: &DatabaseObservation) -> Option<(&'a str, bool)> {
    let p_names = facts::names(cx.p);
    let names = facts::names(cx.s);
    for &n in &names {
        let configured = cx
            .obs
            .instance(n)
            .and_then(|i| i.database(cx.chat))
            .and_then(|d| d.log_shipping_secondary.as_ref())
            .is_some_and(|l| {
                p_names
                    .iter()
                    .any(|p| l.primary_server.eq_ignore_ascii_case(p))
                    && l.primary_database.eq_ignore_ascii_case(cx.chat)
            });
        if configured {
            return Some((n, true));
        }
    }
    let continuable = |n: &str| {
        db(cx.obs, n, cx.chat).is_some_and(|d| {
            facts::is_plain_restoring(d)
                && d.lsn.redo_start.is_some_and(|r| {
                    pd.lsn.fork_point == Some(r) || seeded_from_primary(cx, pd, cx.chat, r)
                })
        })
    };
    let demoted = |n: &str| {
        db(cx.obs, n, cx.chat)
            .and_then(|d| d.last_log_backup.as_ref())
            .is_some_and(|b| b.force_offline)
    };
    if let Some(&n) = names.iter().filter(|n| continuable(n)).max_by_key(|n| {
        (
            demoted(n),
            std::cmp::Reverse(names.iter().position(|x| x == *n)),
        )
    }) {
        return Some((n, true));
    }
    names
        .iter()
        .copied()
        .find(|n| reachable(cx.obs, n))
        .map(|n| (n, false))
}

/// Whether overwriting this ONLINE copy could lose writes the primary lacks.
pub(crate) fn may_be_newer(pd: &DatabaseObservation, d: &DatabaseObservation) -> (bool, Lsn, bool) {
    let end = facts::position(d);
    match pd.lsn.fork_point {
        Some(f) => (end > f, f, true),
        None => {
            let pe = facts::position(pd);
            (end > pe, pe, false)
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

/// The other instance of a two-instance primary site.
fn mirror_instance<'a>(cx: &Ctx<'a>, principal: &str) -> Option<&'a str> {
    facts::names(cx.p).into_iter().find(|n| *n != principal)
}

fn steady(cx: &Ctx, pi: &str) -> Decision {
    let pd = db(cx.obs, pi, cx.chat).expect("primary observed");
    let stale = stale_copies(cx, pi);

    // 1. Nobody may write a stale copy: fence it first, whatever else is pending.
    if let Some((site, n, _)) = stale.iter().find(|(_, _, d)| facts::is_writable(d)) {
        return Decision::Step(Step::FenceStaleCopy {
            site: site.name.clone(),
            instance: n.to_string(),
            database: cx.chat.to_string(),
        });
    }
    // 2. Salvage every stale copy before anything can overwrite it.
    for (site, n, d) in &stale {
        if facts::salvage_of(cx.obs, n, cx.chat, facts::position(d)).is_none() {
            let file = backup_path(
                &site.backup_share,
                cx.chat,
                &format!("salvage_{n}_"),
                cx.now,
                "bak",
            );
            if let Some(w) = cx.wait_share(site, n, cx.chat, Some(file.clone())) {
                return w;
            }
            return Decision::Step(Step::SalvageStaleCopy {
                site: site.name.clone(),
                instance: n.to_string(),
                database: cx.chat.to_string(),
                file,
            });
        }
    }
    // 2b. A stale copy that may hold writes the primary lacks waits for a person's approval
    // (it is fenced and salvaged already), before service moves or anything is overwritten.
    for (_, n, d) in &stale {
        let (newer, point, fork_known) = may_be_newer(pd, d);
        if newer && !overwrite_approved(cx, n) {
            return Decision::Blocked(BlockReason::StaleCopyMayBeNewer {
                instance: n.to_string(),
                database: cx.chat.to_string(),
                end_of_log: facts::position(d),
                primary_instance: pi.to_string(),
                primary_point: point,
                fork_known,
                salvage_file: facts::salvage_of(cx.obs, n, cx.chat, facts::position(d))
                    .map(|f| f.path.clone()),
            });
        }
    }
    // 3. The secondary site takes part in no mirroring session.
    if let Some(d) = remove_site_mirroring(cx, cx.s) {
        return d;
    }
    // 4. Service first: a switch left the list empty; publish as soon as the primary is
    // writable and alone. A bootstrap (nothing ever published) publishes last.
    let desired_servers = cx.p.chat_servers.clone();
    let desired_state = facts::pool_state_for(cx.spec, &cx.p.name);
    let published_ok = cx.obs.published.as_ref().is_some_and(|p| {
        p.pool_state == desired_state && same_servers(&p.active_servers, &desired_servers)
    });
    let publish = Decision::Step(Step::PublishActiveServers {
        site: cx.p.name.clone(),
        servers: desired_servers,
        pool_state: desired_state,
    });
    if cx.obs.published.is_some() && !published_ok {
        return publish;
    }
    // 5. Leftover log-shipping configuration from the previous direction.
    if let Some(d) = remove_ls_secondary(cx, cx.p).or_else(|| remove_ls_primary(cx, cx.s)) {
        return d;
    }
    if let Some(d) = foreign_ls_secondary(cx, cx.s) {
        return d;
    }
    let mut waiting: Option<Decision> = None;
    // 6. The compliance database lives on the primary site only, mirrored inside it.
    if let Some(comp) = cx.comp {
        match compliance(cx, pi, comp) {
            Progress::Act(d) => return d,
            Progress::Wait(d) => waiting = waiting.or(Some(d)),
            Progress::Done => {}
        }
    }
    // 7. Mirror the chat database inside the primary site.
    match mirror(cx, pi, cx.chat, true) {
        Progress::Act(d) => return d,
        Progress::Wait(d) => waiting = waiting.or(Some(d)),
        Progress::Done => {}
    }
    // 8. Log shipping to the secondary site.
    match log_shipping(cx, pi, pd) {
        Progress::Act(d) => return d,
        Progress::Wait(d) => waiting = waiting.or(Some(d)),
        Progress::Done => {}
    }
    if !published_ok {
        return publish;
    }
    waiting.unwrap_or(Decision::Converged)
}

enum Progress {
    Done,
    Act(Decision),
    /// Cannot act now (unreachable instance, unreadable share); other work may go on.
    Wait(Decision),
}

fn same_servers(a: &[String], b: &[String]) -> bool {
    let norm = |v: &[String]| {
        let mut v: Vec<String> = v.iter().map(|s| s.trim().to_ascii_lowercase()).collect();
        v.sort();
        v.dedup();
        v
    };
    norm(a) == norm(b)
}

/// A secondary-site log-shipping configuration whose primary is not on the primary site.
fn foreign_ls_secondary(cx: &Ctx, site: &Site) -> Option<Decision> {
    let p_names = facts::names(cx.p);
    facts::names(site).into_iter().find_map(|n| {
        let lss = db(cx.obs, n, cx.chat)?.log_shipping_secondary.as_ref()?;
        let ok = p_names
            .iter()
            .any(|p| lss.primary_server.eq_ignore_ascii_case(p));
        (!ok).then(|| {
            Decision::Step(Step::RemoveLogShipping {
                site: site.name.clone(),
                instance: n.to_string(),
                database: cx.chat.to_string(),
                side: LogShippingSide::Secondary,
                partners: vec![lss.primary_server.clone()],
            })
        })
    })
}

fn compliance(cx: &Ctx, pi: &str, comp: &str) -> Progress {
    let names = facts::names(cx.p);
    let online = names
        .iter()
        .copied()
        .find(|n| db(cx.obs, n, comp).is_some_and(facts::is_online));
    let principal = match online {
        Some(n) => n,
        None => {
            // The compliance principal may be on an instance out of sight.
            if let Some(down) = names.iter().find(|n| !reachable(cx.obs, n)) {
                return Progress::Wait(cx.wait_unreachable(cx.p, down));
            }
            return match db(cx.obs, pi, comp) {
                Some(d) if facts::is_plain_restoring(d) => {
                    Progress::Act(Decision::Step(Step::Recover {
                        site: cx.p.name.clone(),
                        instance: pi.to_string(),
                        database: comp.to_string(),
                        kill_session_ids: facts::sessions_on(cx.obs, pi, comp),
                    }))
                }
                None => Progress::Act(Decision::Step(Step::CreateComplianceDatabase {
                    site: cx.p.name.clone(),
                    instance: pi.to_string(),
                    database: comp.to_string(),
                })),
                Some(d) if facts::is_broken(d) => {
                    Progress::Act(Decision::Blocked(BlockReason::DatabaseState {
                        instance: pi.to_string(),
                        database: comp.to_string(),
                        state: format!("{:?}", d.state),
                    }))
                }
                // A mirror copy whose principal is unreachable: nothing to do from here.
                Some(_) => match names.iter().find(|n| !reachable(cx.obs, n)) {
                    Some(n) => Progress::Wait(cx.wait_unreachable(cx.p, n)),
                    None => Progress::Done,
                },
            };
        }
    };
    mirror(cx, principal, comp, false)
}

/// Seed and establish mirroring of `database` from `principal` to the other primary-site
/// instance.
fn mirror(cx: &Ctx, principal: &str, database: &str, is_chat: bool) -> Progress {
    let Some(m) = mirror_instance(cx, principal) else {
        return Progress::Done;
    };
    let Some(pd) = db(cx.obs, principal, database) else {
        return Progress::Done;
    };
    if let Some(mo) = &pd.mirroring {
        if mo.partner_instance.eq_ignore_ascii_case(m) {
            return Progress::Done;
        }
        return Progress::Act(Decision::Step(Step::RemoveMirroring {
            site: cx.p.name.clone(),
            instance: principal.to_string(),
            database: database.to_string(),
        }));
    }
    if !reachable(cx.obs, m) {
        return Progress::Wait(cx.wait_unreachable(cx.p, m));
    }
    let md = db(cx.obs, m, database);
    if let Some(md) = md {
        if md.mirroring.is_some() {
            // The mirror copy still belongs to an old session.
            return Progress::Act(Decision::Step(Step::RemoveMirroring {
                site: cx.p.name.clone(),
                instance: m.to_string(),
                database: database.to_string(),
            }));
        }
        if md.state == DatabaseState::Online {
            // Chat copies were salvaged and checked by the stale-copy rules; a compliance copy
            // is salvaged here, before SeedMirror replaces it.
            if !is_chat && facts::is_writable(md) {
                // Fenced first, so that the salvage covers everything it will ever hold.
                return Progress::Act(Decision::Step(Step::FenceStaleCopy {
                    site: cx.p.name.clone(),
                    instance: m.to_string(),
                    database: database.to_string(),
                }));
            }
            if !is_chat && facts::salvage_of(cx.obs, m, database, facts::position(md)).is_none() {
                let file = backup_path(
                    &cx.p.backup_share,
                    database,
                    &format!("salvage_{m}_"),
                    cx.now,
                    "bak",
                );
                return Progress::Act(Decision::Step(Step::SalvageStaleCopy {
                    site: cx.p.name.clone(),
                    instance: m.to_string(),
                    database: database.to_string(),
                    file,
                }));
            }
        } else if facts::is_plain_restoring(md)
            && md
                .lsn
                .redo_start
                .is_some_and(|r| seeded_from_primary(cx, pd, database, r))
        {
            let endpoint = |n: &str| {
                cx.p.instances
                    .iter()
                    .find(|i| i.name == n)
                    .map(|i| i.mirroring_endpoint.clone())
                    .unwrap_or_default()
            };
            return Progress::Act(Decision::Step(Step::EstablishMirroring {
                site: cx.p.name.clone(),
                principal: principal.to_string(),
                mirror: m.to_string(),
                database: database.to_string(),
                principal_endpoint: endpoint(principal),
                mirror_endpoint: endpoint(m),
            }));
        }
    }
    if let Some(w) = cx.wait_share(cx.p, m, database, None) {
        return Progress::Wait(w);
    }
    Progress::Act(Decision::Step(Step::SeedMirror {
        site: cx.p.name.clone(),
        principal: principal.to_string(),
        mirror: m.to_string(),
        database: database.to_string(),
        full_backup: backup_path(
            &cx.p.backup_share,
            database,
            &format!("seed_{m}_"),
            cx.now,
            "bak",
        ),
        log_backup: backup_path(&cx.p.backup_share, database, "", cx.now, "trn"),
    }))
}

fn log_shipping(cx: &Ctx, pi: &str, pd: &DatabaseObservation) -> Progress {
    let Some((t, continuable)) = ls_target(cx, pd) else {
        let first = facts::names(cx.s).into_iter().next().unwrap_or_default();
        return Progress::Wait(cx.wait_unreachable(cx.s, first));
    };
    if !reachable(cx.obs, t) {
        return Progress::Wait(cx.wait_unreachable(cx.s, t));
    }
    if !continuable {
        let td = db(cx.obs, t, cx.chat);
        // An ONLINE target was fenced, salvaged and approved by the stale-copy rules, which
        // run before this one; a broken one is left to a person.
        if let Some(td) = td
            && facts::is_broken(td)
        {
            return Progress::Act(Decision::Blocked(BlockReason::DatabaseState {
                instance: t.to_string(),
                database: cx.chat.to_string(),
                state: format!("{:?}", td.state),
            }));
        }
        if let Some(w) = cx.wait_share(cx.p, t, cx.chat, None) {
            return Progress::Wait(w);
        }
        let full_backup = backup_path(
            &cx.p.backup_share,
            cx.chat,
            &format!("seed_{t}_"),
            cx.now,
            "bak",
        );
        let log_backup = backup_path(&cx.p.backup_share, cx.chat, "", cx.now, "trn");
        return Progress::Act(Decision::Step(match td {
            Some(_) => Step::Reseed {
                site: cx.s.name.clone(),
                instance: t.to_string(),
                database: cx.chat.to_string(),
                source_instance: pi.to_string(),
                full_backup,
                log_backup,
                replace: true,
            },
            None => Step::BootstrapSecondary {
                site: cx.s.name.clone(),
                instance: t.to_string(),
                database: cx.chat.to_string(),
                source_instance: pi.to_string(),
                full_backup,
                log_backup,
            },
        }));
    }
    // Both primary-site instances carry a primary row, as Skype deploys it, so that log
    // shipping survives a mirror failover inside the site.
    let primaries: Vec<&str> = facts::names(cx.p)
        .into_iter()
        .filter(|n| *n == pi || db(cx.obs, n, cx.chat).is_some())
        .collect();
    let secondary_ok = db(cx.obs, t, cx.chat).is_some_and(|d| d.log_shipping_secondary.is_some());
    let primaries_ok = primaries.iter().all(|n| {
        db(cx.obs, n, cx.chat)
            .and_then(|d| d.log_shipping_primary.as_ref())
            .is_some_and(|l| {
                l.backup_share == cx.p.backup_share
                    && l.secondaries.iter().any(|s| {
                        s.secondary_server.eq_ignore_ascii_case(t)
                            && s.secondary_database.eq_ignore_ascii_case(cx.chat)
                    })
            })
    });
    if secondary_ok && primaries_ok {
        return Progress::Done;
    }
    let mut ordered: Vec<String> = vec![pi.to_string()];
    ordered.extend(
        primaries
            .iter()
            .filter(|n| **n != pi)
            .map(|n| n.to_string()),
    );
    Progress::Act(Decision::Step(Step::ConfigureLogShipping {
        site: cx.p.name.clone(),
        primary_instances: ordered,
        secondary_site: cx.s.name.clone(),
        secondary_instance: t.to_string(),
        database: cx.chat.to_string(),
        backup_share: cx.p.backup_share.clone(),
        copy_destination: cx.s.copy_destination.clone(),
        backup_interval_seconds: secs(cx.spec.log_shipping.backup_interval).max(0) as u64,
        retention_seconds: secs(cx.spec.log_shipping.backup_retention).max(0) as u64,
    }))
}
