//! The pure planner: `(spec, observation, now) -> next step`. No I/O, no clock, no memory: an
//! operator killed at any instant and restarted re-plans from what it observes and reaches the
//! same place.
//!
//! # How it decides
//! With P the declared `primarySite` and S the other site, the rules run in the order of the
//! procedure (`rules`):
//! * **P has no writable chat copy** (a transition). Nothing is done while a P instance is
//!   unreachable: it may hold the writable copy. The candidate on P is the log-shipping
//!   secondary, else the RESTORING copy that reached furthest, and only a copy that shares the
//!   old primary's history qualifies (at or before its fork point, or rolled forward by a
//!   backup of its lineage); catch-up uses only backups of that history.
//!   - S has a writable copy on a reachable instance: **planned switch**. If no P copy
//!     qualifies, or the candidate could not roll forward to S's last log backup, a P copy is
//!     first reseeded from S while S still serves (no outage yet). Then drain (publish an
//!     empty list, wait for chat-server sessions up to `drainTimeout` after
//!     `published.publishedAt`, then KILL), remove S's mirroring (chat, then compliance),
//!     demote S's primary with a tail-log backup WITH NORECOVERY.
//!   - S's copy is RESTORING at its tail-log backup: catch P's candidate up to the tail's LSN
//!     (copy folder first, then S's share), remove log shipping (secondary side on P, primary
//!     side on S), recover. Every S instance must be in sight for the recovery.
//!   - Every S instance unreachable: **forced failover**, after `unreachableAfter`, only with
//!     `allowDataLoss` and within `maxDataLoss` (the estimate is the time from the latest
//!     `since` of S's instances back to the finish time of the last log backup P's candidate
//!     has or can still restore). Clear the list, catch up what is available, remove the
//!     secondary configuration, recover.
//!   - Some S instance unreachable and nothing else known: wait (it may hold the serving copy).
//!   - S all in sight, nothing writable, P holds its own demoted copy: a switch away from P was
//!     abandoned after the tail-log backup (the spec was flipped back); that copy holds
//!     everything and is recovered.
//! * **P has a writable chat copy** (steady state and re-protection), in this order: fence every
//!   other writable chat copy (READ_ONLY); salvage every other ONLINE chat copy (COPY_ONLY
//!   full backup, observed on a share before anything goes on; one waiting for its share holds
//!   up everything but publishing); block on a copy that may hold newer data (its end of log
//!   beyond P's fork point, or beyond P's end of log when P never forked) unless
//!   `allowDataLoss` or `approveOverwrite` names it; remove S's mirroring; publish P's chat
//!   servers when something was published before (a switch drained them); remove leftover log
//!   shipping; create/recover and mirror the compliance database; seed and mirror the chat
//!   database inside P; reseed or seed S's log-shipping target and configure log shipping
//!   P -> S; publish (a bootstrap, where nothing was ever published, publishes last: nothing
//!   is down while it runs).
//!
//! # The compliance database (`mgccomp`)
//! It is never log shipped and never failed over: its contents are transient.
//! The chosen, simplest faithful behaviour: the primary site's compliance database lives on the
//! chat principal's instance and is mirrored inside the site. When P has none (after a switch),
//! an empty one is created (`CreateComplianceDatabase`); when P holds a RESTORING copy left by an
//! earlier mirroring session and none ONLINE, that copy is recovered. The old site's compliance
//! database is left ONLINE and alone, only unmirrored (a site that is not primary takes part in
//! no mirroring session). A compliance copy that SeedMirror would replace while ONLINE is
//! salvaged first, like a chat copy.
//!
//! # Suspend
//! `spec.suspend` gives `Decision::Wait(WaitReason::Suspended)`: a decision that sends nothing,
//! whatever the observation; `assess` reports the phase `Suspended`.
//!
//! # Simplifications
//! * A fenced (READ_ONLY) ONLINE copy on P is never promoted: a switch to a site whose only
//!   copy is fenced is Blocked (`NoCopyOnPrimarySite`); a person recovers it.
//! * The log-shipping secondary is one S instance; stale copies on S's other instance are left
//!   fenced and salvaged, not overwritten.

mod assess;
pub mod effects;
mod facts;
pub mod invariants;
pub mod lsn;
mod reason;
pub mod render;
mod rules;
mod step;

use jiff::Timestamp;
use serde::Serialize;

use crate::api::PersistentChatPoolSpec;
use crate::observe::Observation;

pub use assess::{Assessment, assess};
pub use facts::{chat_servers_connected, is_chat_server};
pub use reason::{BlockReason, NewerBasis, WaitReason};
pub use step::{
    LogFile, LogShippingConfiguration, LogShippingSide, ScheduleToChange, Step, backup_path,
    job_schedule_name,
};

/// What the planner decides for one observation.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "decision", content = "detail")]
pub enum Decision {
    /// The desired state holds: nothing to do.
    Converged,
    /// Run this step next.
    Step(Step),
    /// Nothing to do until something outside the operator changes (includes suspend).
    Wait(WaitReason),
    /// A person must decide.
    Blocked(BlockReason),
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Decision::Converged => write!(f, "Converged"),
            Decision::Step(s) => write!(f, "{}: {}", s.name(), s.describe()),
            Decision::Wait(w) => write!(f, "Wait: {w}"),
            Decision::Blocked(b) => write!(f, "Blocked: {b}"),
        }
    }
}

/// The largest number of steps a projection lays out. The property tests prove every run from
/// the generated starting states converges within [`CONVERGENCE_BOUND`], far below it.
pub const PROJECTION_LIMIT: usize = 64;

/// Steps within which the planner converges from any state the property tests generate once
/// every instance and share is reachable (installer state, either site converged, any
/// mid-switch state, stale copies).
pub const CONVERGENCE_BOUND: usize = 30;

/// The next decision for this observation.
pub fn next(spec: &PersistentChatPoolSpec, obs: &Observation, now: Timestamp) -> Decision {
    match rules::PoolView::new(spec, obs, now) {
        Some(pool) => rules::decide(&pool),
        None => Decision::Blocked(BlockReason::NoCopyOnPrimarySite {
            site: spec.primary_site.clone(),
            database: spec.databases.chat.clone(),
            detail: "the spec does not name that site and one other".to_string(),
        }),
    }
}

/// The whole remaining plan, as far as it can be foreseen.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct Projection {
    /// The steps in order.
    pub steps: Vec<Step>,
    /// What follows the last step: Converged, Wait or Blocked (or the next step when the
    /// projection hit [`PROJECTION_LIMIT`]).
    pub end: Decision,
}

/// Lay out the remaining plan by applying each step's expected effect to a copy of the
/// observation until the planner converges, waits or blocks. A drain wait is the one wait with
/// a known end: the projection's clock moves to the drain deadline, where the planner would end
/// the remaining sessions, and goes on (so a planned switch is shown whole).
pub fn project(spec: &PersistentChatPoolSpec, obs: &Observation, now: Timestamp) -> Projection {
    project_from(spec, obs.clone(), now, Vec::new())
}

/// What a reconcile pass needs from the planner, from one planning of the observation: the
/// decision with the facts status reports, and how many steps the plan has left counting the
/// decided one (the projection goes on from the decided step's expected effect).
#[derive(Clone, Debug, PartialEq)]
pub struct Outlook {
    pub assessment: Assessment,
    pub remaining_steps: usize,
}

/// Plan once for a pass: see [`Outlook`].
pub fn outlook(spec: &PersistentChatPoolSpec, obs: &Observation, now: Timestamp) -> Outlook {
    let assessment = assess(spec, obs, now);
    let remaining_steps = match &assessment.decision {
        Decision::Step(step) => {
            let mut after = obs.clone();
            effects::apply(spec, step, &mut after, now);
            project_from(spec, after, now, vec![step.clone()])
                .steps
                .len()
        }
        _ => 0,
    };
    Outlook {
        assessment,
        remaining_steps,
    }
}

/// The projection loop from `cur`, after `steps` already laid out.
fn project_from(
    spec: &PersistentChatPoolSpec,
    mut cur: Observation,
    mut now: Timestamp,
    mut steps: Vec<Step>,
) -> Projection {
    loop {
        let d = next(spec, &cur, now);
        if let Decision::Wait(WaitReason::Draining { seconds_left, .. }) = &d
            && let Ok(later) = now.checked_add(jiff::SignedDuration::from_secs(*seconds_left))
        {
            now = later;
            continue;
        }
        let Decision::Step(step) = d else {
            return Projection { steps, end: d };
        };
        if steps.len() >= PROJECTION_LIMIT {
            return Projection {
                steps,
                end: Decision::Step(step),
            };
        }
        effects::apply(spec, &step, &mut cur, now);
        steps.push(step);
    }
}
