//! The transition facts and health that status reports, derived from the same observation the
//! decision comes from.

use jiff::Timestamp;
use serde::Serialize;

use crate::api::{DataLoss, PersistentChatPoolSpec, Phase, PoolState, TransitionKind};
use crate::observe::{LocationKind, Lsn, MirroringState, Observation};

use super::Decision;
use super::facts::{self, db, reachable, secs};
use super::reason::WaitReason;
use super::rules::{self, Ctx};

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
    let Some(cx) = Ctx::new(spec, obs, now) else {
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
    let primary = rules::primary_instance(&cx);
    let serving_site = match primary {
        Some(_) => Some(cx.p.name.clone()),
        None => {
            cx.s.instances
                .iter()
                .any(|i| {
                    db(obs, &i.name, cx.chat)
                        .is_some_and(|d| facts::is_writable(d) && facts::is_online(d))
                })
                .then(|| cx.s.name.clone())
        }
    };
    let tail = rules::observed_tail(&cx).map(|(_, t)| t.last_lsn);
    let drained = obs
        .published
        .as_ref()
        .is_some_and(|p| p.active_servers.is_empty());
    let s_all_down = cx.s.instances.iter().all(|i| !reachable(obs, &i.name));
    let transition_kind = match primary {
        None if serving_site.is_some() || tail.is_some() => Some(TransitionKind::Planned),
        None if s_all_down => Some(TransitionKind::Forced),
        None => None,
        Some(pi) if drained => {
            let fork = db(obs, pi, cx.chat).and_then(|d| d.lsn.fork_point);
            if tail.is_some() && tail == fork {
                Some(TransitionKind::Planned)
            } else {
                Some(TransitionKind::Forced)
            }
        }
        Some(_) => None,
    };
    let estimated_data_loss = match (transition_kind, primary) {
        (Some(TransitionKind::Forced), None) => forced_estimate(&cx),
        _ => None,
    };
    let degraded_reasons = degraded(&cx, primary);
    let phase = match &decision {
        Decision::Converged => Phase::Protected,
        Decision::Blocked(_) => Phase::Blocked,
        Decision::Wait(WaitReason::Suspended) => Phase::Suspended,
        Decision::Wait(WaitReason::Draining { .. }) => Phase::Switching,
        Decision::Wait(_) => Phase::Waiting,
        Decision::Step(_) => match transition_kind {
            Some(TransitionKind::Planned) => Phase::Switching,
            Some(TransitionKind::Forced) => Phase::FailingOver,
            None if obs.published.is_none() => Phase::Bootstrapping,
            None => Phase::Reprotecting,
        },
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

fn forced_estimate(cx: &Ctx) -> Option<DataLoss> {
    // The copy a forced failover would bring online, chosen as the planner chooses it.
    let (ci, cd) = rules::candidate(cx, None).ok()?;
    let (secs, file) = rules::loss_estimate(cx, ci, cd)?;
    Some(DataLoss {
        estimated_seconds: secs,
        last_restored_file: file,
    })
}

fn degraded(cx: &Ctx, primary: Option<&str>) -> Vec<String> {
    let obs = cx.obs;
    let mut out = Vec::new();
    for (site, inst) in cx.spec.instances() {
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
    let Some(pi) = primary else {
        out.push(format!("no writable copy of {} on {}", cx.chat, cx.p.name));
        return out;
    };
    if cx.p.instances.len() > 1 {
        match db(obs, pi, cx.chat).and_then(|d| d.mirroring.as_ref()) {
            None => out.push(format!("{} on {pi} is not mirrored", cx.chat)),
            Some(m) if m.state != MirroringState::Synchronized => out.push(format!(
                "mirroring of {} on {pi} is {:?}, not SYNCHRONIZED",
                cx.chat, m.state
            )),
            Some(_) => {}
        }
    }
    let rpo = secs(cx.spec.log_shipping.rpo_target);
    let secondary = cx.s.instances.iter().find_map(|i| {
        let lss = db(obs, &i.name, cx.chat)?.log_shipping_secondary.as_ref()?;
        Some((i.name.as_str(), lss))
    });
    match secondary {
        None => out.push(format!(
            "log shipping of {} to {} is not configured",
            cx.chat, cx.s.name
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
