//! The primary site has no writable chat copy yet: a planned switch, a forced failover, or an
//! abandoned switch coming back.

use super::*;

/// Whether a RESTORING copy at redo point `redo` shares the history of `source` (a copy of
/// the site `source_site`), so that source's log backups can roll it forward.
/// - A copy that recovered on a fork of its own (a fork point the source's history does not
///   have: the source never forked, or forked earlier) holds writes of another branch.
/// - Otherwise a copy that stopped at or before source's fork point shares its history; past
///   the fork it must have been rolled forward by a backup source's lineage took after it.
/// - A source that never forked is the original history: a copy of it cannot be ahead of it.
fn on_lineage(
    pool: &PoolView,
    source_site: &Site,
    source: &DatabaseObservation,
    copy: &DatabaseObservation,
    redo: Lsn,
) -> bool {
    let Some(f) = source.lsn.fork_point else {
        return copy.lsn.fork_point.is_none() && redo <= facts::position(source);
    };
    if copy.lsn.fork_point.is_some_and(|g| g > f) {
        return false;
    }
    if redo <= f {
        return true;
    }
    let names = facts::names(source_site);
    facts::all_files(pool.obs).any(|b| {
        b.database.eq_ignore_ascii_case(pool.chat_database)
            && b.last_lsn == redo
            && b.first_lsn >= f
            && names.iter().any(|n| b.server_name.eq_ignore_ascii_case(n))
    })
}

/// The primary-site instance whose RESTORING copy becomes the new primary: the log-shipping
/// secondary if there is one, else the copy that reached furthest; only copies that share the
/// history of `source` (the old primary's copy, when observed) qualify.
pub(crate) fn candidate<'a>(
    pool: &PoolView<'a>,
    source: Option<&DatabaseObservation>,
) -> Result<(&'a str, &'a DatabaseObservation), Box<Decision>> {
    let names = facts::names(pool.primary_site);
    let fits = |d: &DatabaseObservation| {
        facts::is_plain_restoring(d)
            && source.is_none_or(|src| {
                d.lsn
                    .redo_start
                    .is_some_and(|r| on_lineage(pool, pool.other_site, src, d, r))
            })
    };
    for &n in &names {
        let lss = pool
            .obs
            .instance(n)
            .and_then(|i| i.database(pool.chat_database))
            .is_some_and(|d| d.log_shipping_secondary.is_some());
        if lss {
            match db(pool.obs, n, pool.chat_database) {
                Some(d) if fits(d) => return Ok((n, d)),
                Some(_) => {}
                None => return Err(Box::new(pool.wait_unreachable(pool.primary_site, n))),
            }
        }
    }
    let mut best: Option<(&str, &DatabaseObservation)> = None;
    for &n in &names {
        if let Some(d) = db(pool.obs, n, pool.chat_database).filter(|d| fits(d))
            && best.is_none_or(|(_, b)| d.lsn.redo_start > b.lsn.redo_start)
        {
            best = Some((n, d));
        }
    }
    if let Some(b) = best {
        return Ok(b);
    }
    if let Some(&down) = names.iter().find(|n| !reachable(pool.obs, n)) {
        return Err(Box::new(pool.wait_unreachable(pool.primary_site, down)));
    }
    let detail = names
        .iter()
        .map(|n| match db(pool.obs, n, pool.chat_database) {
            None => format!("{n} has no {}", pool.chat_database),
            Some(d) if d.state == DatabaseState::Online && d.read_only => format!(
                "{n} holds it ONLINE but READ_ONLY (fenced as a stale copy, or set so by hand): chat cannot write to it; ALTER DATABASE [{}] SET READ_WRITE if it is to serve",
                pool.chat_database
            ),
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
            site: pool.primary_site.name.clone(),
            database: pool.chat_database.to_string(),
            detail,
        },
    )))
}

/// Before a planned switch to a site with no copy that can catch up: reseed one of its
/// instances from the serving copy, while that copy still serves (no outage yet).
fn prepare_target(pool: &PoolView, old: &str, od: &DatabaseObservation) -> Decision {
    let names = facts::names(pool.primary_site);
    let restorable_slot = |n: &&&str| {
        reachable(pool.obs, n)
            && db(pool.obs, n, pool.chat_database)
                .is_none_or(|d| d.state == DatabaseState::Restoring)
    };
    let online_slot = |n: &&&str| {
        db(pool.obs, n, pool.chat_database).is_some_and(|d| d.state == DatabaseState::Online)
    };
    let Some(&t) = names
        .iter()
        .find(restorable_slot)
        .or_else(|| names.iter().find(online_slot))
    else {
        if let Some(&down) = names.iter().find(|n| !reachable(pool.obs, n)) {
            return pool.wait_unreachable(pool.primary_site, down);
        }
        let n = names.first().copied().unwrap_or_default();
        return Decision::Blocked(BlockReason::DatabaseState {
            instance: n.to_string(),
            database: pool.chat_database.to_string(),
            state: db(pool.obs, n, pool.chat_database)
                .map(|d| format!("{:?}", d.state))
                .unwrap_or_default(),
        });
    };
    let td = db(pool.obs, t, pool.chat_database);
    if let Some(td) = td {
        if td.mirroring.is_some() {
            return Decision::Step(Step::RemoveMirroring {
                site: pool.primary_site.name.clone(),
                instance: t.to_string(),
                databases: vec![pool.chat_database.to_string()],
            });
        }
        if td.state == DatabaseState::Online {
            let salvage = facts::salvage_of(pool.obs, t, pool.chat_database, facts::position(td));
            if salvage.is_none() {
                let file = pool.backup_path(
                    &pool.primary_site.backup_share,
                    pool.chat_database,
                    &format!("salvage_{t}_"),
                    "bak",
                );
                if let Some(w) = pool.wait_share(
                    pool.primary_site,
                    t,
                    "salvage",
                    pool.chat_database,
                    Some(file.clone()),
                ) {
                    return w;
                }
                return Decision::Step(Step::SalvageStaleCopy {
                    site: pool.primary_site.name.clone(),
                    instance: t.to_string(),
                    database: pool.chat_database.to_string(),
                    file,
                });
            }
            let (newer, basis) = may_be_newer(od, td);
            if newer && !overwrite_approved(pool, t) {
                return Decision::Blocked(BlockReason::StaleCopyMayBeNewer {
                    instance: t.to_string(),
                    database: pool.chat_database.to_string(),
                    end_of_log: facts::position(td),
                    primary_instance: old.to_string(),
                    basis,
                    salvage_file: salvage.map(|f| f.path.clone()),
                });
            }
        }
    }
    if let Some(w) = pool.wait_share(
        pool.other_site,
        t,
        "receive a seed of",
        pool.chat_database,
        None,
    ) {
        return w;
    }
    let full_backup = pool.backup_path(
        &pool.other_site.backup_share,
        pool.chat_database,
        &format!("seed_{t}_"),
        "bak",
    );
    let log_backup = pool.backup_path(&pool.other_site.backup_share, pool.chat_database, "", "trn");
    Decision::Step(match td {
        Some(_) => Step::Reseed {
            site: pool.primary_site.name.clone(),
            instance: t.to_string(),
            database: pool.chat_database.to_string(),
            source_instance: old.to_string(),
            full_backup,
            log_backup,
            replace: true,
        },
        None => Step::BootstrapSecondary {
            site: pool.primary_site.name.clone(),
            instance: t.to_string(),
            database: pool.chat_database.to_string(),
            source_instance: old.to_string(),
            full_backup,
            log_backup,
        },
    })
}

/// Log backups the candidate may restore, local copy folder first, then the other site's share,
/// then the primary site's own share. With `source` (the old primary's copy, when observed)
/// only backups of source's history qualify: a backup another copy took past source's fork
/// point belongs to another history, and SQL Server refuses it; a source that never forked is
/// the original history, which only its own site's instances have backed up (a copy elsewhere
/// that serves without a fork point of its own holds a history the observation cannot place).
fn restorable<'a>(
    pool: &PoolView<'a>,
    instance: &str,
    source: Option<&DatabaseObservation>,
) -> Vec<&'a BackupFile> {
    let s_names = facts::names(pool.other_site);
    let by_old_site = |f: &BackupFile| {
        s_names
            .iter()
            .any(|n| f.server_name.eq_ignore_ascii_case(n))
    };
    facts::copy_files(pool.obs, instance)
        .iter()
        .chain(facts::share_files(pool.obs, &pool.other_site.name))
        .chain(facts::share_files(pool.obs, &pool.primary_site.name))
        .filter(|f| match source.map(|d| d.lsn.fork_point) {
            None => true,
            Some(None) => by_old_site(f),
            Some(Some(fp)) => f.last_lsn <= fp || (f.first_lsn >= fp && by_old_site(f)),
        })
        .collect()
}

/// The tail-log backup of the demoted old primary, when the demoted copy is observed RESTORING
/// at exactly that point on a reachable old-site instance.
pub(crate) fn observed_tail<'a>(pool: &PoolView<'a>) -> Option<(&'a str, &'a BackupFile)> {
    facts::names(pool.other_site)
        .into_iter()
        .filter_map(|n| {
            let d = db(pool.obs, n, pool.chat_database)?;
            let t = d.last_log_backup.as_ref()?;
            (facts::is_plain_restoring(d)
                && t.force_offline
                && d.lsn.redo_start == Some(t.last_lsn))
            .then_some((n, t))
        })
        .max_by_key(|(_, t)| t.last_lsn)
}

fn drain_pool_state(pool: &PoolView) -> crate::api::PoolState {
    pool.obs
        .published
        .as_ref()
        .map(|p| p.pool_state)
        .unwrap_or_else(|| facts::pool_state_for(pool.spec, &pool.other_site.name))
}

/// Publish an empty list unless it already is.
fn drain_published(pool: &PoolView) -> Option<Decision> {
    match &pool.obs.published {
        Some(p) if p.active_servers.is_empty() => None,
        _ => Some(Decision::Step(Step::PublishActiveServers {
            site: pool.primary_site.name.clone(),
            servers: vec![],
            pool_state: drain_pool_state(pool),
        })),
    }
}

/// Wait for, then end, chat-server sessions on the pool's databases anywhere.
fn drain_sessions(pool: &PoolView) -> Option<Decision> {
    let published_at = pool.obs.published.as_ref()?.published_at;
    for (site, inst) in pool.spec.instances() {
        let sessions = facts::chat_sessions(pool.spec, pool.obs, &inst.name);
        if sessions.is_empty() {
            continue;
        }
        let left = secs(pool.spec.failover.drain_timeout) - elapsed(published_at, pool.now);
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

pub(super) fn transition(pool: &PoolView) -> Decision {
    // An unreachable primary-site instance may hold the writable copy (the principal of a
    // mirroring session, say): bringing another copy online could make a second one.
    if let Some(down) = facts::names(pool.primary_site)
        .into_iter()
        .find(|n| !reachable(pool.obs, n))
    {
        return pool.wait_unreachable(pool.primary_site, down);
    }
    let s_names = facts::names(pool.other_site);
    // A writable copy on a reachable old-site instance: the planned switch.
    let old = s_names.iter().copied().find(|n| {
        db(pool.obs, n, pool.chat_database)
            .is_some_and(|d| facts::is_writable(d) && facts::is_online(d))
    });
    // A switch away from this site abandoned after its tail-log backup: the demoted copy here.
    let demoted = facts::names(pool.primary_site).into_iter().find(|n| {
        db(pool.obs, n, pool.chat_database).is_some_and(|d| {
            facts::is_plain_restoring(d)
                && d.last_log_backup
                    .as_ref()
                    .is_some_and(|t| t.force_offline && d.lsn.redo_start == Some(t.last_lsn))
        })
    });
    // A tail on the other site that the demoted copy here had recovered past (its fork point
    // is at or beyond it) belongs to an earlier switch: this site served since, so that older
    // tail is no source to roll forward from.
    let tail = observed_tail(pool).filter(|(_, t)| {
        demoted
            .and_then(|n| db(pool.obs, n, pool.chat_database))
            .and_then(|d| d.lsn.fork_point)
            .is_none_or(|f| f < t.last_lsn)
    });
    let source = old
        .or(tail.map(|(n, _)| n))
        .and_then(|n| db(pool.obs, n, pool.chat_database));
    let cand = match candidate(pool, source) {
        Ok(c) => c,
        Err(d)
            if old.is_some()
                && matches!(
                    *d,
                    Decision::Blocked(BlockReason::NoCopyOnPrimarySite { .. })
                ) =>
        {
            let old = old.expect("checked");
            return prepare_target(pool, old, source.expect("observed"));
        }
        Err(d) => return *d,
    };
    if let Some(old) = old {
        return planned_before_demote(pool, cand, old);
    }
    if let Some((_, tail)) = tail {
        return planned_after_demote(pool, cand, tail, source);
    }
    let down: Vec<&str> = s_names
        .iter()
        .copied()
        .filter(|n| !reachable(pool.obs, n))
        .collect();
    if down.len() == s_names.len() {
        return forced(pool, cand);
    }
    if let Some(d) = down.first() {
        // It may hold the serving copy: nothing may be recovered until it is seen.
        return pool.wait_unreachable(pool.other_site, d);
    }
    // A switch away from this site was abandoned after its tail-log backup: the demoted copy
    // holds everything ever written and nothing else is writable, so it comes back online.
    if let Some(candidate_instance) = demoted {
        return finish_transition(pool, candidate_instance, true);
    }
    Decision::Blocked(BlockReason::NoServingCopy {
        database: pool.chat_database.to_string(),
    })
}

fn planned_before_demote(
    pool: &PoolView,
    (candidate_instance, candidate_database): (&str, &DatabaseObservation),
    old: &str,
) -> Decision {
    let od = db(pool.obs, old, pool.chat_database).expect("old primary observed");
    // Refuse to start the outage when the candidate could not catch up afterwards: the tail
    // will start where the old primary's last log backup ended.
    if let (Some(r), Some(last)) = (
        candidate_database.lsn.redo_start,
        od.last_log_backup.as_ref(),
    ) {
        let reach = lsn::chain(
            restorable(pool, candidate_instance, Some(od)),
            pool.chat_database,
            r,
            Some(last.last_lsn),
        )
        .last()
        .map_or(r, |f| f.last_lsn);
        if reach < last.last_lsn {
            if let Some(w) = pool.wait_share(
                pool.other_site,
                candidate_instance,
                "catch up",
                pool.chat_database,
                None,
            ) {
                return w;
            }
            // The log backups it needs are gone: reseed a copy from the serving one first,
            // as the seed's failback does, while it still serves.
            return prepare_target(pool, old, od);
        }
    }
    if let Some(d) = drain_published(pool).or_else(|| drain_sessions(pool)) {
        return d;
    }
    // The old primary's sessions first (all its databases in one step), then any other on
    // its site.
    if let Some(d) = remove_mirroring_on(pool, pool.other_site, old)
        .or_else(|| remove_site_mirroring(pool, pool.other_site))
    {
        return d;
    }
    let file = pool.backup_path(&pool.other_site.backup_share, pool.chat_database, "", "trn");
    if let Some(w) = pool.wait_share(
        pool.other_site,
        old,
        "take the tail-log backup of",
        pool.chat_database,
        Some(file.clone()),
    ) {
        return w;
    }
    Decision::Step(Step::DemoteOldPrimary {
        site: pool.other_site.name.clone(),
        instance: old.to_string(),
        database: pool.chat_database.to_string(),
        file,
    })
}

fn planned_after_demote(
    pool: &PoolView,
    (candidate_instance, candidate_database): (&str, &DatabaseObservation),
    tail: &BackupFile,
    source: Option<&DatabaseObservation>,
) -> Decision {
    if let Some(d) = drain_published(pool).or_else(|| drain_sessions(pool)) {
        return d;
    }
    let r = candidate_database.lsn.redo_start.unwrap_or(Lsn(0));
    if r < tail.last_lsn {
        let files = lsn::chain(
            restorable(pool, candidate_instance, source),
            pool.chat_database,
            r,
            Some(tail.last_lsn),
        );
        if files.is_empty() {
            if let Some(w) = pool.wait_share(
                pool.other_site,
                candidate_instance,
                "catch up",
                pool.chat_database,
                Some(tail.path.clone()),
            ) {
                return w;
            }
            return Decision::Blocked(BlockReason::LogChainBroken {
                instance: candidate_instance.to_string(),
                database: pool.chat_database.to_string(),
                redo_point: r,
                target: Some(tail.last_lsn),
            });
        }
        return Decision::Step(Step::CatchUp {
            site: pool.primary_site.name.clone(),
            instance: candidate_instance.to_string(),
            database: pool.chat_database.to_string(),
            files,
        });
    }
    finish_transition(pool, candidate_instance, true)
}

/// After the catch-up: remove log shipping on both sides, then recover.
fn finish_transition(pool: &PoolView, candidate_instance: &str, old_side_too: bool) -> Decision {
    // A planned recovery needs the whole old site in sight: an instance out of sight may hold
    // a writable copy. (A forced one runs only when the whole old site is down.)
    if old_side_too
        && let Some(down) = facts::names(pool.other_site)
            .into_iter()
            .find(|n| !reachable(pool.obs, n))
    {
        return pool.wait_unreachable(pool.other_site, down);
    }
    if let Some(d) = remove_log_shipping(pool, old_side_too) {
        return d;
    }
    Decision::Step(Step::Recover {
        site: pool.primary_site.name.clone(),
        instance: candidate_instance.to_string(),
        database: pool.chat_database.to_string(),
        kill_session_ids: facts::sessions_on(pool.obs, candidate_instance, pool.chat_database),
    })
}

/// The estimated data-loss window of a forced failover to `candidate_instance` (see `plan::assess`).
pub(crate) fn loss_estimate(
    pool: &PoolView,
    candidate_instance: &str,
    candidate_database: &DatabaseObservation,
) -> Option<(u64, Option<String>)> {
    let down_at = facts::names(pool.other_site)
        .into_iter()
        .filter_map(|n| facts::unreachable_since(pool.obs, n))
        .max()?;
    let r = candidate_database.lsn.redo_start.unwrap_or(Lsn(0));
    let files = restorable(pool, candidate_instance, None);
    let chain = lsn::chain(files.iter().copied(), pool.chat_database, r, None);
    let last_lsn = chain.last().map_or(r, |f| f.last_lsn);
    let reached = files
        .iter()
        .chain(facts::all_files(pool.obs).collect::<Vec<_>>().iter())
        .find(|f| {
            f.backup_type == BackupType::Log
                && f.database.eq_ignore_ascii_case(pool.chat_database)
                && f.last_lsn == last_lsn
        })
        .map(|f| (f.finished_at, Some(f.path.clone())));
    let reached = reached.or_else(|| {
        let lss = candidate_database.log_shipping_secondary.as_ref()?;
        Some((lss.last_restored_date?, lss.last_restored_file.clone()))
    })?;
    // Rounded up: an estimate of data loss must never understate it.
    Some((facts::elapsed_ceil(reached.0, down_at), reached.1))
}

fn forced(
    pool: &PoolView,
    (candidate_instance, candidate_database): (&str, &DatabaseObservation),
) -> Decision {
    let latest_since = facts::names(pool.other_site)
        .into_iter()
        .filter_map(|n| facts::unreachable_since(pool.obs, n))
        .max()
        .unwrap_or(pool.now);
    let left = secs(pool.spec.failover.unreachable_after) - elapsed(latest_since, pool.now);
    if left > 0 {
        return Decision::Wait(WaitReason::PrimarySiteUnreachable {
            site: pool.other_site.name.clone(),
            seconds_left: left,
        });
    }
    let Some((loss, last_file)) = loss_estimate(pool, candidate_instance, candidate_database)
    else {
        return Decision::Blocked(BlockReason::DataLossUnknown {
            from_site: pool.other_site.name.clone(),
            to_instance: candidate_instance.to_string(),
        });
    };
    if !pool.spec.failover.allow_data_loss {
        return Decision::Blocked(BlockReason::DataLossNotAllowed {
            from_site: pool.other_site.name.clone(),
            to_instance: candidate_instance.to_string(),
            estimated_seconds: loss,
            last_file,
        });
    }
    let max = secs(pool.spec.failover.max_data_loss).max(0) as u64;
    if loss > max {
        return Decision::Blocked(BlockReason::DataLossTooLarge {
            from_site: pool.other_site.name.clone(),
            to_instance: candidate_instance.to_string(),
            estimated_seconds: loss,
            max_seconds: max,
        });
    }
    // Nobody can be drained on a site that does not answer, but clearing the list first means
    // no chat server is pointed at the old site when the new copy comes online.
    if let Some(d) = drain_published(pool) {
        return d;
    }
    let r = candidate_database.lsn.redo_start.unwrap_or(Lsn(0));
    let files = lsn::chain(
        restorable(pool, candidate_instance, None),
        pool.chat_database,
        r,
        None,
    );
    if !files.is_empty() {
        return Decision::Step(Step::CatchUp {
            site: pool.primary_site.name.clone(),
            instance: candidate_instance.to_string(),
            database: pool.chat_database.to_string(),
            files,
        });
    }
    finish_transition(pool, candidate_instance, false)
}
