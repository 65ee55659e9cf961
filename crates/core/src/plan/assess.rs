//! The transition facts and health that status reports, derived from the same observation the
//! decision comes from.

use jiff::Timestamp;
use serde::Serialize;

use crate::api::{DataLoss, PersistentChatPoolSpec, Phase, PoolState, TransitionKind};
use crate::observe::{LocationKind, Lsn, MirroringState, Observation};

use super::Decision;
use super::facts::{self, db, reachable, secs};
use super::reason::WaitReason;
use super::rules::{self, PoolView};

/// What status says about the pool, besides the step.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Assessment {
    /// The site whose chat copy is writable, as observed.
    pub serving_site: Option<String>,
    /// The pool state as currently published.
    pub pool_state: Option<PoolState>,
    pub phase: Phase,
    /// The move of the primary under way, if one is.
    pub transition_kind: Option<TransitionKind>,
    /// The estimated data-loss window of a forced failover (before and during it).
    pub estimated_data_loss: Option<DataLoss>,
    /// The LSN of the old primary's tail-log backup during a planned switch.
    pub tail_lsn: Option<Lsn>,
    /// Converged and nothing degraded.
    pub protected: bool,
    /// Why the pool is not fully protected, in words.
    pub degraded_reasons: Vec<String>,
    /// The decision this assessment goes with.
    pub decision: Decision,
}

/// Assess the pool for status.
pub fn assess(spec: &PersistentChatPoolSpec, obs: &Observation, now: Timestamp) -> Assessment {
    let decision = super::next(spec, obs, now);
    let pool_state = obs.published.as_ref().map(|p| p.pool_state);
    let Some(pool) = PoolView::new(spec, obs, now) else {
        return Assessment {
            serving_site: None,
            pool_state,
            phase: Phase::Invalid,
            transition_kind: None,
            estimated_data_loss: None,
            tail_lsn: None,
            protected: false,
            degraded_reasons: vec!["the spec does not name two sites".to_string()],
            decision,
        };
    };
    let primary = rules::primary_instance(&pool);
    let serving_site = match primary {
        Some(_) => Some(pool.primary_site.name.clone()),
        None => pool
            .other_site
            .instances
            .iter()
            .any(|i| {
                db(obs, &i.name, pool.chat_database)
                    .is_some_and(|d| facts::is_writable(d) && facts::is_online(d))
            })
            .then(|| pool.other_site.name.clone()),
    };
    let tail = rules::observed_tail(&pool).map(|(_, t)| t.last_lsn);
    let drained = obs
        .published
        .as_ref()
        .is_some_and(|p| p.active_servers.is_empty());
    let s_all_down = pool
        .other_site
        .instances
        .iter()
        .all(|i| !reachable(obs, &i.name));
    let transition_kind = match primary {
        None if serving_site.is_some() || tail.is_some() => Some(TransitionKind::Planned),
        None if s_all_down => Some(TransitionKind::Forced),
        None => None,
        Some(primary_instance) if drained => {
            let fork = db(obs, primary_instance, pool.chat_database).and_then(|d| d.lsn.fork_point);
            if tail.is_some() && tail == fork {
                Some(TransitionKind::Planned)
            } else {
                Some(TransitionKind::Forced)
            }
        }
        Some(_) => None,
    };
    let estimated_data_loss = match (transition_kind, primary) {
        (Some(TransitionKind::Forced), None) => forced_estimate(&pool),
        _ => None,
    };
    let degraded_reasons = degraded(&pool, primary);
    let phase = match &decision {
        Decision::Converged => Phase::Protected,
        Decision::Blocked(_) => Phase::Blocked,
        Decision::Wait(WaitReason::Suspended) => Phase::Suspended,
        Decision::Wait(WaitReason::Draining { .. }) => Phase::Switching,
        // A step waiting for a long BACKUP or RESTORE is still the work of its phase.
        Decision::Wait(WaitReason::OperationRunning { .. }) | Decision::Step(_) => {
            match transition_kind {
                Some(TransitionKind::Planned) => Phase::Switching,
                Some(TransitionKind::Forced) => Phase::FailingOver,
                None if obs.published.is_none() => Phase::Bootstrapping,
                None => Phase::Reprotecting,
            }
        }
        Decision::Wait(_) => Phase::Waiting,
    };
    Assessment {
        serving_site,
        pool_state,
        phase,
        transition_kind,
        estimated_data_loss,
        tail_lsn: if transition_kind == Some(TransitionKind::Planned) {
            tail
        } else {
            None
        },
        protected: decision == Decision::Converged && degraded_reasons.is_empty(),
        degraded_reasons,
        decision,
    }
}

fn forced_estimate(pool: &PoolView) -> Option<DataLoss> {
    // The copy a forced failover would bring online, chosen as the planner chooses it.
    let (candidate_instance, candidate_database) = rules::candidate(pool, None).ok()?;
    let (secs, file) = rules::loss_estimate(pool, candidate_instance, candidate_database)?;
    Some(DataLoss {
        estimated_seconds: secs,
        last_restored_file: file,
    })
}

fn degraded(pool: &PoolView, primary: Option<&str>) -> Vec<String> {
    let obs = pool.obs;
    let mut out = Vec::new();
    for (site, inst) in pool.spec.instances() {
        if !reachable(obs, &inst.name) {
            out.push(format!(
                "{} ({}) is unreachable: {}",
                inst.name,
                site.name,
                facts::unreachable_reason(obs, &inst.name)
            ));
        }
    }
    for l in &obs.backup_locations {
        if !l.readable {
            let what = match &l.kind {
                LocationKind::Share { site } => format!("backup share of {site}"),
                LocationKind::CopyFolder { instance } => format!("copy folder on {instance}"),
            };
            out.push(format!(
                "{what} {} is unreadable: {}",
                l.path,
                l.reason.as_deref().unwrap_or("no reason given")
            ));
        }
    }
    let Some(primary_instance) = primary else {
        out.push(format!(
            "no writable copy of {} on {}",
            pool.chat_database, pool.primary_site.name
        ));
        return out;
    };
    if pool.primary_site.instances.len() > 1 {
        match db(obs, primary_instance, pool.chat_database).and_then(|d| d.mirroring.as_ref()) {
            None => out.push(format!(
                "{} on {primary_instance} is not mirrored",
                pool.chat_database
            )),
            Some(m) if m.state != MirroringState::Synchronized => out.push(format!(
                "mirroring of {} on {primary_instance} is {:?}, not SYNCHRONIZED",
                pool.chat_database, m.state
            )),
            Some(_) => {}
        }
    }
    let rpo = secs(pool.spec.log_shipping.rpo_target);
    let secondary = pool.other_site.instances.iter().find_map(|i| {
        let lss = db(obs, &i.name, pool.chat_database)?
            .log_shipping_secondary
            .as_ref()?;
        Some((i.name.as_str(), lss))
    });
    match secondary {
        None => out.push(format!(
            "log shipping of {} to {} is not configured",
            pool.chat_database, pool.other_site.name
        )),
        Some((n, lss)) => {
            if let Some(m) = lss.last_restored_latency_minutes
                && i64::from(m) * 60 > rpo
            {
                out.push(format!(
                    "log-shipping restore latency on {n} is {m} min, above logShipping.rpoTarget ({rpo}s)"
                ));
            }
        }
    }
    out
}
