//! Database mirroring: SET PARTNER (mirror first, then principal), the partner options, and the
//! flow of committed log from principal to mirror over the simulator's network. The rules follow
//! "Database Mirroring (SQL Server)", "ALTER DATABASE Database Mirroring" and "Mirroring States".

use super::ast::PartnerAction;
use super::errors::{self as e, Failure, SqlError};
use super::model::{Database, DbState, MirrorState, Mirroring, PendingPartner, Role, State};

/// The instance-name pair and database of a mirroring session seen from `inst`.
fn partner_of(state: &State, inst: usize, db: &str) -> Option<(usize, String)> {
    let m = state.instances[inst].db(db)?.mirroring.as_ref()?;
    Some((state.inst_index(&m.partner_instance)?, db.to_string()))
}

fn one(err: SqlError) -> Failure {
    vec![err]
}

/// The database an ALTER DATABASE ... SET PARTNER/WITNESS names, as it is now (error 5011
/// when the instance has none of that name).
fn alter_target(state: &State, inst: usize, db_name: &str) -> Result<Database, Failure> {
    state.instances[inst]
        .db(db_name)
        .cloned()
        .ok_or_else(|| one(e::db_absent_alter(db_name)))
}

/// `ALTER DATABASE db SET PARTNER = N'TCP://host:port'` on instance `inst`.
pub fn set_partner(
    state: &mut State,
    inst: usize,
    db_name: &str,
    endpoint: &str,
) -> Result<(), Failure> {
    let me = state.instances[inst].name.clone();
    let db = alter_target(state, inst, db_name)?;
    if db.mirroring.is_some() {
        return Err(one(e::involved_in_mirroring(&db.name)));
    }
    let Some(partner) = state.resolve_endpoint(endpoint).map(|i| i.name.clone()) else {
        return Err(one(e::unreachable_address(endpoint)));
    };
    if partner.eq_ignore_ascii_case(&me) || !state.reachable(&me, &partner) {
        return Err(one(e::unreachable_address(endpoint)));
    }
    let partner_inst = state.inst_index(&partner).expect("resolved");
    let partner_db = state.instances[partner_inst].db(db_name).cloned();
    let full_both =
        db.recovery == "FULL" && partner_db.as_ref().is_none_or(|p| p.recovery == "FULL");
    match db.state {
        DbState::Restoring => {
            // The mirror side: it must have been seeded with a full AND a log restore.
            if !full_both {
                return Err(one(e::not_full_recovery(&db.name)));
            }
            if db.logs_restored == 0 {
                return Err(one(e::insufficient_log(&db.name)));
            }
            let d = state.instances[inst].db_mut(db_name).expect("exists");
            d.pending_partner = Some(PendingPartner {
                partner_instance: partner,
            });
            Ok(())
        }
        DbState::Online => {
            let Some(partner_db) = partner_db else {
                return Err(one(e::not_mirrored(&db.name)));
            };
            if partner_db.state != DbState::Restoring {
                return Err(one(e::not_recovering(&db.name)));
            }
            let pending_ok = partner_db
                .pending_partner
                .as_ref()
                .is_some_and(|p| p.partner_instance.eq_ignore_ascii_case(&me));
            if !pending_ok {
                return Err(one(e::not_mirrored(&db.name)));
            }
            if !full_both {
                return Err(one(e::not_full_recovery(&db.name)));
            }
            let redo = partner_db.redo_lsn.unwrap_or(partner_db.next_lsn);
            if !partner_db.family_guid.eq_ignore_ascii_case(&db.family_guid)
                || redo > db.next_lsn
                || !super::model::same_path(&partner_db.lineage, &db.lineage, redo)
            {
                return Err(one(e::mirroring_remote_not_caught_up(&db.name)));
            }
            if db.log_chain.is_some_and(|chain| redo < chain) {
                return Err(one(e::insufficient_log(&db.name)));
            }
            let guid = state.new_guid();
            let my_endpoint = state.instances[inst].endpoint.clone();
            let lsn = db.next_lsn;
            let side = |role, partner_name: String, partner_instance: String| Mirroring {
                role,
                partner_name,
                partner_instance,
                state: MirrorState::Synchronizing,
                safety_full: true,
                witness: None,
                failover_lsn: lsn,
                epoch: 1,
                guid: guid.clone(),
                timeout: 10,
            };
            let principal = side(Role::Principal, endpoint.to_string(), partner.clone());
            let mirror = side(Role::Mirror, my_endpoint, me.clone());
            state.instances[inst]
                .db_mut(db_name)
                .expect("exists")
                .mirroring = Some(principal);
            let partner_copy = state.instances[partner_inst]
                .db_mut(db_name)
                .expect("exists");
            partner_copy.pending_partner = None;
            partner_copy.mirroring = Some(mirror);
            Ok(())
        }
        _ => Err(one(e::not_recovering(&db.name))),
    }
}

fn set_both(state: &mut State, inst: usize, db: &str, f: impl Fn(&mut Mirroring)) {
    let partner = partner_of(state, inst, db);
    let me = state.instances[inst].name.clone();
    if let Some(m) = state.instances[inst]
        .db_mut(db)
        .and_then(|d| d.mirroring.as_mut())
    {
        f(m);
    }
    if let Some((p, _)) = partner
        && state.reachable(&me, &state.instances[p].name.clone())
        && let Some(m) = state.instances[p]
            .db_mut(db)
            .and_then(|d| d.mirroring.as_mut())
    {
        f(m);
    }
}

/// The partner options other than the address.
pub fn partner_option(
    state: &mut State,
    inst: usize,
    db_name: &str,
    option: &PartnerAction,
) -> Result<(), Failure> {
    let me = state.instances[inst].name.clone();
    let db = alter_target(state, inst, db_name)?;
    if matches!(option, PartnerAction::Off)
        && db.mirroring.is_none()
        && db.pending_partner.is_some()
    {
        state.instances[inst]
            .db_mut(db_name)
            .expect("exists")
            .pending_partner = None;
        return Ok(());
    }
    let Some(m) = db.mirroring.clone() else {
        return Err(one(e::not_mirrored(&db.name)));
    };
    let partner_idx = state.inst_index(&m.partner_instance);
    let partner_reachable = state.reachable(&me, &m.partner_instance);
    let principal_only = |name: &str| -> Result<(), Failure> {
        if m.role != Role::Principal {
            return Err(one(e::wrong_role(&db.name, name, "mirror")));
        }
        Ok(())
    };
    match option {
        PartnerAction::Address(_) => unreachable!("handled by set_partner"),
        PartnerAction::Off => {
            state.instances[inst]
                .db_mut(db_name)
                .expect("exists")
                .mirroring = None;
            if partner_reachable
                && let Some(p) = partner_idx
                && let Some(partner_copy) = state.instances[p].db_mut(db_name)
            {
                partner_copy.mirroring = None;
            }
        }
        PartnerAction::Suspend => {
            set_both(state, inst, db_name, |m| m.state = MirrorState::Suspended)
        }
        PartnerAction::Resume => {
            principal_only("RESUME")?;
            let next = if partner_reachable {
                MirrorState::Synchronizing
            } else {
                MirrorState::Disconnected
            };
            set_both(state, inst, db_name, |m| m.state = next);
        }
        PartnerAction::Safety(full) => {
            principal_only("SAFETY")?;
            let full = *full;
            set_both(state, inst, db_name, |m| m.safety_full = full);
        }
        PartnerAction::Timeout(t) => {
            principal_only("TIMEOUT")?;
            let t = *t;
            set_both(state, inst, db_name, |m| m.timeout = t);
        }
        PartnerAction::Failover => {
            principal_only("FAILOVER")?;
            if !m.safety_full {
                return Err(one(e::safety_must_be_full(&db.name)));
            }
            if !partner_reachable || m.state != MirrorState::Synchronized {
                return Err(one(e::mirror_not_caught_up(&db.name)));
            }
            let partner = partner_idx.expect("reachable partner exists");
            failover(state, inst, partner, db_name, m.epoch + 1);
        }
        PartnerAction::ForceService => {
            if m.role != Role::Mirror {
                return Err(one(e::wrong_role(
                    &db.name,
                    "FORCE_SERVICE_ALLOW_DATA_LOSS",
                    "principal",
                )));
            }
            if partner_reachable {
                return Err(one(e::cannot_force(&db.name)));
            }
            force_service(state, inst, db_name);
        }
    }
    Ok(())
}

/// A manual failover (`SET PARTNER FAILOVER`) of a synchronized session: the principal's last
/// log is shipped, its users are disconnected and its copy becomes the mirror; the partner's
/// copy comes ONLINE as the principal, both in the session's next epoch.
fn failover(state: &mut State, inst: usize, partner: usize, db_name: &str, epoch: u64) {
    ship(state, inst, db_name);
    for spid in state.instances[inst].sessions_in(db_name, None) {
        state.instances[inst].kill(spid);
    }
    let old = state.instances[inst].db_mut(db_name).expect("exists");
    let lsn = old.next_lsn;
    old.state = DbState::Restoring;
    old.redo_lsn = Some(lsn);
    if let Some(session) = old.mirroring.as_mut() {
        session.role = Role::Mirror;
        session.epoch = epoch;
        session.failover_lsn = lsn;
    }
    let new = state.instances[partner]
        .db_mut(db_name)
        .expect("partner copy");
    new.state = DbState::Online;
    new.next_lsn = new.redo_lsn.take().unwrap_or(new.next_lsn);
    if let Some(session) = new.mirroring.as_mut() {
        session.role = Role::Principal;
        session.epoch = epoch;
        session.failover_lsn = lsn;
    }
}

/// `SET PARTNER FORCE_SERVICE_ALLOW_DATA_LOSS` on a mirror whose principal is gone: the mirror
/// copy comes ONLINE as a suspended principal. Forcing service is a recovery with possible data
/// loss, so a new recovery fork starts at the copy's redo point.
fn force_service(state: &mut State, inst: usize, db_name: &str) {
    let fork = state.new_guid();
    let d = state.instances[inst].db_mut(db_name).expect("exists");
    d.state = DbState::Online;
    d.next_lsn = d.redo_lsn.take().unwrap_or(d.next_lsn);
    d.lineage.push((fork, d.next_lsn));
    let lsn = d.next_lsn;
    if let Some(session) = d.mirroring.as_mut() {
        session.role = Role::Principal;
        session.state = MirrorState::Suspended;
        session.epoch += 1;
        session.failover_lsn = lsn;
    }
}

/// `SET WITNESS = N'..'` / `SET WITNESS OFF`: principal only.
pub fn set_witness(
    state: &mut State,
    inst: usize,
    db_name: &str,
    witness: Option<String>,
) -> Result<(), Failure> {
    let me = state.instances[inst].name.clone();
    let db = alter_target(state, inst, db_name)?;
    let Some(m) = db.mirroring else {
        return Err(one(e::not_mirrored(db_name)));
    };
    if m.role != Role::Principal {
        return Err(one(e::wrong_role(db_name, "WITNESS", "mirror")));
    }
    if let Some(w) = &witness {
        let reachable = state
            .resolve_endpoint(w)
            .map(|i| i.name.clone())
            .is_some_and(|n| state.reachable(&me, &n));
        if !reachable {
            return Err(one(e::unreachable_address(w)));
        }
    }
    set_both(state, inst, db_name, |m| m.witness = witness.clone());
    Ok(())
}

/// Ship the principal's log to its mirror (the mirror hardens it): the mirror copy's rows and
/// redo point catch up and the session is SYNCHRONIZED. Only when connected and not suspended.
pub fn ship(state: &mut State, inst: usize, db_name: &str) {
    let me = state.instances[inst].name.clone();
    let Some((p, _)) = partner_of(state, inst, db_name) else {
        return;
    };
    let partner = state.instances[p].name.clone();
    let Some(src) = state.instances[inst].db(db_name) else {
        return;
    };
    let Some(m) = &src.mirroring else { return };
    if m.role != Role::Principal
        || m.state == MirrorState::Suspended
        || !state.reachable(&me, &partner)
    {
        return;
    }
    let Some(dst) = state.instances[p].db(db_name) else {
        return;
    };
    if dst
        .mirroring
        .as_ref()
        .is_none_or(|pm| pm.role != Role::Mirror || pm.state == MirrorState::Suspended)
    {
        return;
    }
    let redo = dst.redo_lsn;
    let new_rows: Vec<_> = match redo {
        Some(r) if r <= src.next_lsn => {
            let from = src.rows.partition_point(|row| row.lsn < r);
            src.rows[from..].to_vec()
        }
        _ => Vec::new(),
    };
    let full_resync = !matches!(redo, Some(r) if r <= src.next_lsn);
    let all_rows = if full_resync {
        src.rows.clone()
    } else {
        Vec::new()
    };
    let (next, chain, base, recovery, family, fork) = (
        src.next_lsn,
        src.log_chain,
        src.database_backup_lsn,
        src.recovery.clone(),
        src.family_guid.clone(),
        src.lineage.clone(),
    );
    let dst = state.instances[p].db_mut(db_name).expect("exists");
    if full_resync {
        dst.rows = all_rows;
    } else {
        dst.rows.extend(new_rows);
    }
    dst.next_lsn = next;
    dst.redo_lsn = Some(next);
    dst.log_chain = chain;
    dst.database_backup_lsn = base;
    dst.recovery = recovery;
    dst.family_guid = family;
    dst.lineage = fork;
    if let Some(pm) = dst.mirroring.as_mut() {
        pm.state = MirrorState::Synchronized;
    }
    if let Some(mm) = state.instances[inst]
        .db_mut(db_name)
        .and_then(|d| d.mirroring.as_mut())
    {
        mm.state = MirrorState::Synchronized;
    }
}

/// After a commit on `inst`: with SAFETY FULL and the mirror connected, the commit returns only
/// once the mirror hardened it (shipped now, under the same lock); otherwise the principal runs
/// exposed and the pump catches the mirror up later.
pub fn on_commit(state: &mut State, inst: usize, db_name: &str) {
    let full = state.instances[inst]
        .db(db_name)
        .and_then(|d| d.mirroring.as_ref())
        .is_some_and(|m| m.role == Role::Principal && m.safety_full);
    if full {
        ship(state, inst, db_name);
    } else if let Some(m) = state.instances[inst]
        .db_mut(db_name)
        .and_then(|d| d.mirroring.as_mut())
        && m.state == MirrorState::Synchronized
    {
        m.state = MirrorState::Synchronizing;
    }
}

/// Re-evaluate every session's connection state: partners that cannot reach each other are
/// DISCONNECTED; reconnected partners resume SYNCHRONIZING, and two principals (after a forced
/// service) settle with the forced side as principal and the other as a SUSPENDED mirror.
pub fn refresh(state: &mut State) {
    refresh_where(state, |_, _| true);
}

/// [`refresh`] for the sessions a statement on instance `inst` can have changed: its own and
/// those whose partner it is. Reachability only changes by injected faults (which refresh
/// everything), and a session's state depends on its two ends alone, so the others stay as
/// they are; this runs after every statement, and a full refresh of every session of hundreds
/// of instances after each was most of the simulator's work.
pub fn refresh_around(state: &mut State, inst: usize) {
    let name = state.instances[inst].name.clone();
    refresh_where(state, |i, partner| {
        i == inst || partner.eq_ignore_ascii_case(&name)
    });
}

/// Re-evaluate the sessions `concerned(instance index, partner instance name)` selects.
fn refresh_where(state: &mut State, concerned: impl Fn(usize, &str) -> bool) {
    let mut pairs = Vec::new();
    for (i, inst) in state.instances.iter().enumerate() {
        for d in &inst.databases {
            if let Some(m) = &d.mirroring
                && concerned(i, &m.partner_instance)
            {
                pairs.push((i, d.name.clone(), m.partner_instance.clone()));
            }
        }
    }
    for (i, db, partner) in pairs {
        let me = state.instances[i].name.clone();
        if !state.instances[i].up {
            continue;
        }
        let reachable = state.reachable(&me, &partner);
        let p = state.inst_index(&partner);
        let Some(m) = state.instances[i].db(&db).and_then(|d| d.mirroring.clone()) else {
            continue;
        };
        if !reachable {
            if m.state != MirrorState::Suspended && m.state != MirrorState::Disconnected {
                set_state(state, i, &db, MirrorState::Disconnected);
            }
            continue;
        }
        let Some(p) = p else { continue };
        let Some(pm) = state.instances[p].db(&db).and_then(|d| d.mirroring.clone()) else {
            // The partner removed mirroring while cut off: this side stays DISCONNECTED until
            // SET PARTNER OFF is run here too.
            if m.state != MirrorState::Disconnected {
                set_state(state, i, &db, MirrorState::Disconnected);
            }
            continue;
        };
        if m.role == Role::Principal && pm.role == Role::Principal {
            let (winner, loser) = if m.epoch >= pm.epoch { (i, p) } else { (p, i) };
            demote_to_suspended_mirror(state, loser, &db);
            set_state(state, winner, &db, MirrorState::Suspended);
            continue;
        }
        if m.state == MirrorState::Disconnected {
            let next = if pm.state == MirrorState::Suspended {
                MirrorState::Suspended
            } else {
                MirrorState::Synchronizing
            };
            set_state(state, i, &db, next);
            set_state(state, p, &db, next);
        }
    }
}

fn set_state(state: &mut State, inst: usize, db: &str, s: MirrorState) {
    if let Some(m) = state.instances[inst]
        .db_mut(db)
        .and_then(|d| d.mirroring.as_mut())
    {
        m.state = s;
    }
}

/// The old principal after a forced service: its copy becomes the mirror, RESTORING, and its
/// unsent transactions are lost when the session resumes (full resynchronisation).
fn demote_to_suspended_mirror(state: &mut State, inst: usize, db: &str) {
    for spid in state.instances[inst].sessions_in(db, None) {
        state.instances[inst].kill(spid);
    }
    if let Some(d) = state.instances[inst].db_mut(db) {
        d.state = DbState::Restoring;
        d.redo_lsn = None;
        if let Some(m) = d.mirroring.as_mut() {
            m.role = Role::Mirror;
            m.state = MirrorState::Suspended;
        }
    }
}

/// The mirroring pump: ship log for every principal whose mirror is behind. The sessions'
/// states are already settled: whatever changes what they depend on (a statement, an agent
/// job, a fault) refreshes the sessions it touched, and shipping only marks connected ones
/// SYNCHRONIZED. Refreshing every session of every instance on each tick was a tenth of the
/// simulator's work with hundreds of instances.
pub fn pump(state: &mut State) {
    let mut todo = Vec::new();
    for (i, inst) in state.instances.iter().enumerate() {
        for d in &inst.databases {
            if let Some(m) = &d.mirroring
                && m.role == Role::Principal
                && m.state == MirrorState::Synchronizing
            {
                todo.push((i, d.name.clone()));
            }
        }
    }
    for (i, db) in todo {
        ship(state, i, &db);
    }
}
