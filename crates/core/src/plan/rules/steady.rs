//! The primary site has its writable chat copy: fence, salvage and approve stale copies,
//! publish, mirror inside the site, log ship to the other site.

use super::*;

/// A reachable instance's ONLINE chat copy other than the primary's: it must not be written and
/// may be overwritten only after a salvage.
pub(crate) fn stale_copies<'a>(
    pool: &PoolView<'a>,
    primary_instance: &str,
) -> Vec<(&'a Site, &'a str, &'a DatabaseObservation)> {
    pool.spec
        .instances()
        .filter(|(_, i)| i.name != primary_instance)
        .filter_map(|(s, i)| {
            let d = db(pool.obs, &i.name, pool.chat_database)?;
            (d.state == DatabaseState::Online).then_some((s, i.name.as_str(), d))
        })
        .collect()
}

/// Whether a LOG backup taken on a primary-site instance after the primary's fork ends exactly
/// at `redo`: the copy was seeded (or log-shipped) from this primary's lineage. Only a log
/// backup counts: a copy whose last restore was the seed's full backup (a seed stopped between
/// its two restores) cannot join a mirroring session (SET PARTNER answers 1478 on every try),
/// so it is seeded again.
fn seeded_from_primary(
    pool: &PoolView,
    primary_database: &DatabaseObservation,
    database: &str,
    redo: Lsn,
) -> bool {
    if primary_database.lsn.fork_point.is_some_and(|f| redo < f)
        || redo > facts::position(primary_database)
    {
        return false;
    }
    let p_names = facts::names(pool.primary_site);
    facts::share_files(pool.obs, &pool.primary_site.name)
        .iter()
        .any(|f| {
            f.database.eq_ignore_ascii_case(database)
                && f.backup_type == BackupType::Log
                && f.last_lsn == redo
                && p_names
                    .iter()
                    .any(|n| f.server_name.eq_ignore_ascii_case(n))
        })
}

/// The secondary-site instance that receives log shipping, and whether its copy can continue
/// from the primary's log backups as it is.
fn ls_target<'a>(
    pool: &PoolView<'a>,
    primary_database: &DatabaseObservation,
) -> Option<(&'a str, bool)> {
    let p_names = facts::names(pool.primary_site);
    let names = facts::names(pool.other_site);
    for &n in &names {
        let configured = pool
            .obs
            .instance(n)
            .and_then(|i| i.database(pool.chat_database))
            .and_then(|d| d.log_shipping_secondary.as_ref())
            .is_some_and(|l| {
                p_names
                    .iter()
                    .any(|p| l.primary_server.eq_ignore_ascii_case(p))
                    && l.primary_database.eq_ignore_ascii_case(pool.chat_database)
            });
        if configured {
            // A configured secondary whose copy is no longer RESTORING (recovered by hand, say)
            // cannot restore anything: it is reseeded.
            let restoring =
                db(pool.obs, n, pool.chat_database).is_some_and(facts::is_plain_restoring);
            return Some((n, restoring));
        }
    }
    let continuable = |n: &str| {
        db(pool.obs, n, pool.chat_database).is_some_and(|d| {
            facts::is_plain_restoring(d)
                && d.lsn.redo_start.is_some_and(|r| {
                    primary_database.lsn.fork_point == Some(r)
                        || seeded_from_primary(pool, primary_database, pool.chat_database, r)
                })
        })
    };
    let demoted = |n: &str| {
        db(pool.obs, n, pool.chat_database)
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
    // Nothing to continue from: seed the first instance in spec order, so the choice does not
    // depend on which instance answered first after an outage. An earlier instance that is
    // unreachable is waited for (the caller waits on an unreachable target) until it has been
    // down for `unreachableAfter`; then the next one is used.
    let patience = facts::secs(pool.spec.failover.unreachable_after);
    names
        .iter()
        .copied()
        .find(|n| {
            reachable(pool.obs, n)
                || facts::unreachable_since(pool.obs, n)
                    .is_none_or(|since| facts::elapsed(since, pool.now) < patience)
        })
        .map(|n| (n, false))
}

/// The other instance of a two-instance primary site.
fn mirror_instance<'a>(pool: &PoolView<'a>, principal: &str) -> Option<&'a str> {
    facts::names(pool.primary_site)
        .into_iter()
        .find(|n| *n != principal)
}

/// What a pool serving from `primary_instance` needs next: the rules below in the order they
/// take precedence (numbered). One function, longer than most, so that the precedence reads
/// from top to bottom; a rule moved into a helper would hide where it stands in it.
pub(super) fn steady(pool: &PoolView, primary_instance: &str) -> Decision {
    let primary_database =
        db(pool.obs, primary_instance, pool.chat_database).expect("primary observed");
    let stale = stale_copies(pool, primary_instance);

    // 1. Nobody may write a stale copy: fence it first, whatever else is pending. Any access
    // mode but READ_ONLY is fenced: RESTRICTED_USER still admits db_owner and sysadmin (chat
    // service logins are often both) and SINGLE_USER admits whoever connects first. The fence
    // (READ_ONLY) is not taken by a database in a mirroring session, so a stale principal's
    // session is ended first (SET PARTNER OFF loses nothing: the copy stays as it is).
    if let Some((site, n, d)) = stale.iter().find(|(_, _, d)| !d.read_only) {
        if d.mirroring.is_some() {
            return Decision::Step(Step::RemoveMirroring {
                site: site.name.clone(),
                instance: n.to_string(),
                databases: vec![pool.chat_database.to_string()],
            });
        }
        return Decision::Step(Step::FenceStaleCopy {
            site: site.name.clone(),
            instance: n.to_string(),
            database: pool.chat_database.to_string(),
        });
    }
    // 1b. A stale copy stays where its salvage leaves it: the backup job of its log-shipping
    // primary configuration (left from when it served) would keep taking log backups, each
    // moving its end of log past the salvage and calling for another full one, for as long as
    // the copy waits (for a person's approval, say).
    let leftovers: Vec<(&Site, LogShippingConfiguration)> = stale
        .iter()
        .filter_map(|(site, n, _)| Some((*site, ls_primary(pool, n)?)))
        .collect();
    if let Some(site) = leftovers.first().map(|(s, _)| s.name.clone()) {
        return Decision::Step(Step::RemoveLogShipping {
            site,
            database: pool.chat_database.to_string(),
            configurations: leftovers.into_iter().map(|(_, c)| c).collect(),
        });
    }
    // 2. Salvage every stale copy before anything can overwrite it. A salvage that waits for
    // its share does not hold up publishing (service matters more); it holds up the rest.
    let mut salvage_wait: Option<Decision> = None;
    for (site, n, d) in &stale {
        if facts::salvage_of(pool.obs, n, pool.chat_database, facts::position(d)).is_none() {
            let file = pool.backup_path(
                &site.backup_share,
                pool.chat_database,
                &format!("salvage_{n}_"),
                "bak",
            );
            if let Some(w) =
                pool.wait_share(site, n, "salvage", pool.chat_database, Some(file.clone()))
            {
                salvage_wait = salvage_wait.or(Some(w));
                continue;
            }
            return Decision::Step(Step::SalvageStaleCopy {
                site: site.name.clone(),
                instance: n.to_string(),
                database: pool.chat_database.to_string(),
                file,
            });
        }
    }
    // 2b. A stale copy that may hold writes the primary lacks waits for a person's approval
    // (it is fenced and salvaged already), before service moves or anything is overwritten.
    for (_, n, d) in &stale {
        let (newer, basis) = may_be_newer(primary_database, d);
        let salvaged =
            facts::salvage_of(pool.obs, n, pool.chat_database, facts::position(d)).is_some();
        if salvaged && newer && !overwrite_approved(pool, n) {
            return Decision::Blocked(BlockReason::StaleCopyMayBeNewer {
                instance: n.to_string(),
                database: pool.chat_database.to_string(),
                end_of_log: facts::position(d),
                primary_instance: primary_instance.to_string(),
                basis,
                salvage_file: facts::salvage_of(
                    pool.obs,
                    n,
                    pool.chat_database,
                    facts::position(d),
                )
                .map(|f| f.path.clone()),
            });
        }
    }
    // 3. The secondary site takes part in no mirroring session.
    if let Some(d) = remove_site_mirroring(pool, pool.other_site) {
        return d;
    }
    // 4. Service first: a switch left the list empty; publish as soon as the primary is
    // writable and alone. A bootstrap (nothing ever published) publishes last.
    let desired_servers = pool.primary_site.chat_servers.clone();
    let desired_state = facts::pool_state_for(pool.spec, &pool.primary_site.name);
    let published_ok = pool.obs.published.as_ref().is_some_and(|p| {
        p.pool_state == desired_state && same_servers(&p.active_servers, &desired_servers)
    });
    let publish = Decision::Step(Step::PublishActiveServers {
        site: pool.primary_site.name.clone(),
        servers: desired_servers,
        pool_state: desired_state,
    });
    if pool.obs.published.is_some() && !published_ok {
        return publish;
    }
    if let Some(w) = salvage_wait {
        return w;
    }
    // 5. Leftover log-shipping configuration from the previous direction.
    if let Some(d) = remove_log_shipping(pool, true) {
        return d;
    }
    if let Some(d) = foreign_ls_secondary(pool, pool.other_site) {
        return d;
    }
    let mut waiting: Option<Decision> = None;
    // 6. The compliance database lives on the primary site only, mirrored inside it.
    if let Some(compliance_database) = pool.compliance_database {
        match compliance(pool, primary_instance, compliance_database) {
            Progress::Act(d) => return d,
            Progress::Wait(d) => waiting = waiting.or(Some(d)),
            Progress::Done => {}
        }
    }
    // 7. Mirror the chat database inside the primary site.
    match mirror(pool, primary_instance, pool.chat_database, true) {
        Progress::Act(d) => return d,
        Progress::Wait(d) => waiting = waiting.or(Some(d)),
        Progress::Done => {}
    }
    // 8. Log shipping to the secondary site.
    match log_shipping(pool, primary_instance, primary_database) {
        Progress::Act(d) => return d,
        Progress::Wait(d) => waiting = waiting.or(Some(d)),
        Progress::Done => {}
    }
    // 9. A stale copy no other rule replaces (on an instance that is neither the site's
    // mirror nor the log-shipping target) is reseeded once salvaged and cleared by rule 2b,
    // rather than left fenced: a READ_ONLY copy ONLINE beside the primary is one a person
    // can set READ_WRITE again, and one the next switch would have to salvage once more.
    match reseed_unclaimed(pool, primary_instance, primary_database, &stale) {
        Progress::Act(d) => return d,
        Progress::Wait(d) => waiting = waiting.or(Some(d)),
        Progress::Done => {}
    }
    if !published_ok {
        return publish;
    }
    waiting.unwrap_or(Decision::Converged)
}

/// Rule 9: reseed (RESTORING, from a fresh seed of the primary) the first stale copy on an
/// instance of the secondary site that does not receive log shipping. Stale copies on the
/// primary site are the mirror's business (SeedMirror replaces them).
fn reseed_unclaimed(
    pool: &PoolView,
    primary_instance: &str,
    primary_database: &DatabaseObservation,
    stale: &[(&Site, &str, &DatabaseObservation)],
) -> Progress {
    let target = ls_target(pool, primary_database).map(|(t, _)| t);
    let Some((site, instance, _)) = stale.iter().find(|(site, n, _)| {
        site.name == pool.other_site.name && target.is_none_or(|t| !t.eq_ignore_ascii_case(n))
    }) else {
        return Progress::Done;
    };
    if let Some(w) = pool.wait_share(
        pool.primary_site,
        instance,
        "receive a seed of",
        pool.chat_database,
        None,
    ) {
        return Progress::Wait(w);
    }
    Progress::Act(Decision::Step(Step::Reseed {
        site: site.name.clone(),
        instance: instance.to_string(),
        database: pool.chat_database.to_string(),
        source_instance: primary_instance.to_string(),
        full_backup: pool.backup_path(
            &pool.primary_site.backup_share,
            pool.chat_database,
            &format!("seed_{instance}_"),
            "bak",
        ),
        log_backup: pool.backup_path(
            &pool.primary_site.backup_share,
            pool.chat_database,
            "",
            "trn",
        ),
        replace: true,
    }))
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
fn foreign_ls_secondary(pool: &PoolView, site: &Site) -> Option<Decision> {
    let p_names = facts::names(pool.primary_site);
    facts::names(site).into_iter().find_map(|n| {
        let lss = db(pool.obs, n, pool.chat_database)?
            .log_shipping_secondary
            .as_ref()?;
        let ok = p_names
            .iter()
            .any(|p| lss.primary_server.eq_ignore_ascii_case(p));
        (!ok).then(|| {
            Decision::Step(Step::RemoveLogShipping {
                site: site.name.clone(),
                database: pool.chat_database.to_string(),
                configurations: vec![LogShippingConfiguration::secondary(n, &lss.primary_server)],
            })
        })
    })
}

/// Configured log shipping whose jobs run at another interval than `backupInterval` (it was
/// changed in the spec): their schedules are changed. Only schedules observed are compared;
/// a job without one is left as ConfigureLogShipping made it.
fn reschedule(pool: &PoolView, primaries: &[&str], secondary: &str) -> Progress {
    let interval = secs(pool.spec.log_shipping.backup_interval).max(0) as u64;
    let primary_schedules = primaries.iter().flat_map(|n| {
        db(pool.obs, n, pool.chat_database)
            .and_then(|d| d.log_shipping_primary.as_ref())
            .map(|l| l.job_schedules.as_slice())
            .unwrap_or_default()
            .iter()
            .map(move |s| (*n, s))
    });
    let secondary_schedules = db(pool.obs, secondary, pool.chat_database)
        .and_then(|d| d.log_shipping_secondary.as_ref())
        .map(|l| l.job_schedules.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|s| (secondary, s));
    let schedules: Vec<ScheduleToChange> = primary_schedules
        .chain(secondary_schedules)
        .filter(|(_, s)| s.every_seconds != Some(interval))
        .map(|(n, s)| ScheduleToChange {
            instance: n.to_string(),
            job_name: s.job_name.clone(),
            schedule_id: s.schedule_id,
            every_seconds: s.every_seconds,
        })
        .collect();
    if schedules.is_empty() {
        return Progress::Done;
    }
    Progress::Act(Decision::Step(Step::RescheduleLogShippingJobs {
        site: pool.primary_site.name.clone(),
        database: pool.chat_database.to_string(),
        schedules,
        interval_seconds: interval,
    }))
}

fn compliance(pool: &PoolView, primary_instance: &str, compliance_database: &str) -> Progress {
    let names = facts::names(pool.primary_site);
    let online = names
        .iter()
        .copied()
        .find(|n| db(pool.obs, n, compliance_database).is_some_and(facts::is_online));
    let principal = match online {
        Some(n) => n,
        None => {
            // The compliance principal may be on an instance out of sight.
            if let Some(down) = names.iter().find(|n| !reachable(pool.obs, n)) {
                return Progress::Wait(pool.wait_unreachable(pool.primary_site, down));
            }
            return match db(pool.obs, primary_instance, compliance_database) {
                Some(d) if facts::is_plain_restoring(d) => {
                    Progress::Act(Decision::Step(Step::Recover {
                        site: pool.primary_site.name.clone(),
                        instance: primary_instance.to_string(),
                        database: compliance_database.to_string(),
                        kill_session_ids: facts::sessions_on(
                            pool.obs,
                            primary_instance,
                            compliance_database,
                        ),
                    }))
                }
                None => Progress::Act(Decision::Step(Step::CreateComplianceDatabase {
                    site: pool.primary_site.name.clone(),
                    instance: primary_instance.to_string(),
                    database: compliance_database.to_string(),
                })),
                Some(d) if facts::is_broken(d) => {
                    Progress::Act(Decision::Blocked(BlockReason::DatabaseState {
                        instance: primary_instance.to_string(),
                        database: compliance_database.to_string(),
                        state: format!("{:?}", d.state),
                    }))
                }
                // A mirror copy whose principal is unreachable: nothing to do from here.
                Some(_) => match names.iter().find(|n| !reachable(pool.obs, n)) {
                    Some(n) => Progress::Wait(pool.wait_unreachable(pool.primary_site, n)),
                    None => Progress::Done,
                },
            };
        }
    };
    mirror(pool, principal, compliance_database, false)
}

/// Seed and establish mirroring of `database` from `principal` to the other primary-site
/// instance.
fn mirror(pool: &PoolView, principal: &str, database: &str, is_chat: bool) -> Progress {
    let Some(m) = mirror_instance(pool, principal) else {
        return Progress::Done;
    };
    let Some(principal_database) = db(pool.obs, principal, database) else {
        return Progress::Done;
    };
    if let Some(b) = not_full(principal, database, principal_database) {
        return Progress::Act(b);
    }
    if let Some(mo) = &principal_database.mirroring {
        if mo.partner_instance.eq_ignore_ascii_case(m) {
            return Progress::Done;
        }
        return Progress::Act(Decision::Step(Step::RemoveMirroring {
            site: pool.primary_site.name.clone(),
            instance: principal.to_string(),
            databases: vec![database.to_string()],
        }));
    }
    if !reachable(pool.obs, m) {
        return Progress::Wait(pool.wait_unreachable(pool.primary_site, m));
    }
    let md = db(pool.obs, m, database);
    if let Some(md) = md {
        if md.mirroring.is_some() {
            // The mirror copy still belongs to an old session.
            return Progress::Act(Decision::Step(Step::RemoveMirroring {
                site: pool.primary_site.name.clone(),
                instance: m.to_string(),
                databases: vec![database.to_string()],
            }));
        }
        if md.state == DatabaseState::Online {
            // Chat copies were salvaged and checked by the stale-copy rules; a compliance copy
            // is salvaged here, before SeedMirror replaces it.
            if !is_chat && !md.read_only {
                // Fenced first, so that the salvage covers everything it will ever hold.
                return Progress::Act(Decision::Step(Step::FenceStaleCopy {
                    site: pool.primary_site.name.clone(),
                    instance: m.to_string(),
                    database: database.to_string(),
                }));
            }
            if !is_chat && facts::salvage_of(pool.obs, m, database, facts::position(md)).is_none() {
                let file = pool.backup_path(
                    &pool.primary_site.backup_share,
                    database,
                    &format!("salvage_{m}_"),
                    "bak",
                );
                return Progress::Act(Decision::Step(Step::SalvageStaleCopy {
                    site: pool.primary_site.name.clone(),
                    instance: m.to_string(),
                    database: database.to_string(),
                    file,
                }));
            }
        } else if facts::is_plain_restoring(md)
            && md
                .lsn
                .redo_start
                .is_some_and(|r| seeded_from_primary(pool, principal_database, database, r))
        {
            let endpoint = |n: &str| {
                pool.primary_site
                    .instances
                    .iter()
                    .find(|i| i.name == n)
                    .map(|i| i.mirroring_endpoint.clone())
                    .unwrap_or_default()
            };
            return Progress::Act(Decision::Step(Step::EstablishMirroring {
                site: pool.primary_site.name.clone(),
                principal: principal.to_string(),
                mirror: m.to_string(),
                database: database.to_string(),
                principal_endpoint: endpoint(principal),
                mirror_endpoint: endpoint(m),
            }));
        }
    }
    if let Some(w) = pool.wait_share(
        pool.primary_site,
        m,
        "receive a mirror seed of",
        database,
        None,
    ) {
        return Progress::Wait(w);
    }
    Progress::Act(Decision::Step(Step::SeedMirror {
        site: pool.primary_site.name.clone(),
        principal: principal.to_string(),
        mirror: m.to_string(),
        database: database.to_string(),
        full_backup: pool.backup_path(
            &pool.primary_site.backup_share,
            database,
            &format!("seed_{m}_"),
            "bak",
        ),
        log_backup: pool.backup_path(&pool.primary_site.backup_share, database, "", "trn"),
    }))
}

/// Blocked when a database that must be mirrored or log shipped is not in FULL recovery.
fn not_full(instance: &str, database: &str, d: &DatabaseObservation) -> Option<Decision> {
    (d.recovery_model != RecoveryModel::Full).then(|| {
        Decision::Blocked(BlockReason::RecoveryModelNotFull {
            instance: instance.to_string(),
            database: database.to_string(),
            model: match d.recovery_model {
                RecoveryModel::Full => "FULL",
                RecoveryModel::BulkLogged => "BULK_LOGGED",
                RecoveryModel::Simple => "SIMPLE",
            }
            .to_string(),
        })
    })
}

fn log_shipping(
    pool: &PoolView,
    primary_instance: &str,
    primary_database: &DatabaseObservation,
) -> Progress {
    if let Some(b) = not_full(primary_instance, pool.chat_database, primary_database) {
        return Progress::Act(b);
    }
    let Some((t, continuable)) = ls_target(pool, primary_database) else {
        let first = facts::names(pool.other_site)
            .into_iter()
            .next()
            .unwrap_or_default();
        return Progress::Wait(pool.wait_unreachable(pool.other_site, first));
    };
    if !reachable(pool.obs, t) {
        return Progress::Wait(pool.wait_unreachable(pool.other_site, t));
    }
    if !continuable {
        let td = db(pool.obs, t, pool.chat_database);
        // An ONLINE target was fenced, salvaged and approved by the stale-copy rules, which
        // run before this one; a broken one is left to a person.
        if let Some(td) = td
            && facts::is_broken(td)
        {
            return Progress::Act(Decision::Blocked(BlockReason::DatabaseState {
                instance: t.to_string(),
                database: pool.chat_database.to_string(),
                state: format!("{:?}", td.state),
            }));
        }
        if let Some(w) = pool.wait_share(
            pool.primary_site,
            t,
            "receive a seed of",
            pool.chat_database,
            None,
        ) {
            return Progress::Wait(w);
        }
        let full_backup = pool.backup_path(
            &pool.primary_site.backup_share,
            pool.chat_database,
            &format!("seed_{t}_"),
            "bak",
        );
        let log_backup = pool.backup_path(
            &pool.primary_site.backup_share,
            pool.chat_database,
            "",
            "trn",
        );
        return Progress::Act(Decision::Step(match td {
            Some(_) => Step::Reseed {
                site: pool.other_site.name.clone(),
                instance: t.to_string(),
                database: pool.chat_database.to_string(),
                source_instance: primary_instance.to_string(),
                full_backup,
                log_backup,
                replace: true,
            },
            None => Step::BootstrapSecondary {
                site: pool.other_site.name.clone(),
                instance: t.to_string(),
                database: pool.chat_database.to_string(),
                source_instance: primary_instance.to_string(),
                full_backup,
                log_backup,
            },
        }));
    }
    // Only the principal is configured as log-shipping primary: SQL Server cannot open a
    // mirror copy, so `sp_add_log_shipping_primary_database` fails there, and Microsoft's
    // procedure for a mirrored primary configures the mirror only once a failover has made it
    // the principal. The operator does the same without forcing a failover: after a mirror
    // failover inside the site the new principal has no primary row, and this rule adds it
    // at the next pass (the old principal keeps its row; its backup job skips a mirror).
    let primaries: Vec<&str> = vec![primary_instance];
    let secondary_ok =
        db(pool.obs, t, pool.chat_database).is_some_and(|d| d.log_shipping_secondary.is_some());
    let primaries_ok = primaries.iter().all(|n| {
        db(pool.obs, n, pool.chat_database)
            .and_then(|d| d.log_shipping_primary.as_ref())
            .is_some_and(|l| {
                l.backup_share == pool.primary_site.backup_share
                    && l.secondaries.iter().any(|s| {
                        s.secondary_server.eq_ignore_ascii_case(t)
                            && s.secondary_database
                                .eq_ignore_ascii_case(pool.chat_database)
                    })
            })
    });
    if secondary_ok && primaries_ok {
        // Every primary row on the site, the mirror's kept from an earlier principal role
        // included: its job must run at the spec's interval the day a failover wakes it.
        return reschedule(pool, &facts::names(pool.primary_site), t);
    }
    let ordered: Vec<String> = primaries.iter().map(|n| n.to_string()).collect();
    Progress::Act(Decision::Step(Step::ConfigureLogShipping {
        site: pool.primary_site.name.clone(),
        primary_instances: ordered,
        secondary_site: pool.other_site.name.clone(),
        secondary_instance: t.to_string(),
        database: pool.chat_database.to_string(),
        backup_share: pool.primary_site.backup_share.clone(),
        copy_destination: pool.other_site.copy_destination.clone(),
        backup_interval_seconds: secs(pool.spec.log_shipping.backup_interval).max(0) as u64,
        retention_seconds: secs(pool.spec.log_shipping.backup_retention).max(0) as u64,
    }))
}
