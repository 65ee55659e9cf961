//! The five acts, each run until the engine reports what ends it, with the message accounting
//! taken at its end.

use std::time::{Duration, Instant};

use jiff::Timestamp;

use super::ACT_LIMIT;
use super::figures::{self, Accounting};
use super::world::World;
use crate::engine::PassReport;
use pchat_core::api::{DataLoss, Phase, TransitionKind};
use pchat_core::plan::{BlockReason, Decision};
use pchat_sim::workload::Ack;

/// How many acts the demo plays.
pub const ACTS: usize = 5;

/// The demo's act titles, in order, for a pool that serves from `first` and can switch to
/// `second`.
pub fn titles(first: &str, second: &str) -> [String; ACTS] {
    [
        "bootstrap from the installer's state".to_string(),
        format!("planned switch {first} -> {second}"),
        format!("planned failback {second} -> {first}"),
        format!("{first} down: forced failover to {second}"),
        format!("{first} back: fence, salvage, reseed"),
    ]
}

/// What one act did.
#[derive(Clone, Debug)]
pub struct ActOutcome {
    pub number: usize,
    pub title: String,
    /// Whether the act must lose nothing (every act but a forced failover).
    pub planned: bool,
    pub started: Instant,
    pub started_at: Timestamp,
    pub wall: Duration,
    /// When the spec changed, for acts that change it.
    pub spec_changed: Option<Instant>,
    /// Messages acknowledged during the act.
    pub acknowledged_in_act: usize,
    /// Every acknowledged message so far against the serving copy at the act's end.
    pub accounting: Option<Accounting>,
    /// The instance serving the chat database at the act's end.
    pub serving: Option<String>,
    /// The two acknowledged writes with the longest time between them during the act (the
    /// first may be the last write before it): the chat write outage.
    pub write_outage_between: Option<(Timestamp, Timestamp)>,
    /// The data-loss estimate reported before a forced failover.
    pub loss_before: Option<DataLoss>,
    /// The data-loss window reported after it.
    pub loss_after: Option<DataLoss>,
    /// Why the policy refused a forced failover it was asked for, when it did.
    pub refused: Option<BlockReason>,
    /// Messages an earlier forced act lost inside its window, not counted as lost again.
    pub previously_lost: usize,
    /// Messages acknowledged from this instant on may be lost (a forced failover).
    pub loss_window_start: Option<Timestamp>,
    /// Lines worth printing (estimates, salvage files).
    pub notes: Vec<String>,
    /// Why the act failed; empty when it did its job.
    pub problems: Vec<String>,
}

impl ActOutcome {
    /// The longest time between two acknowledged writes during the act.
    pub fn write_outage(&self) -> Option<Duration> {
        self.write_outage_between
            .and_then(|(from, to)| Duration::try_from(to.duration_since(from)).ok())
    }

    pub fn new(number: usize, title: String, planned: bool) -> Self {
        ActOutcome {
            number,
            title,
            planned,
            started: Instant::now(),
            started_at: Timestamp::now(),
            wall: Duration::ZERO,
            spec_changed: None,
            acknowledged_in_act: 0,
            accounting: None,
            serving: None,
            write_outage_between: None,
            loss_before: None,
            loss_after: None,
            refused: None,
            loss_window_start: None,
            previously_lost: 0,
            notes: Vec::new(),
            problems: Vec::new(),
        }
    }
}

/// How a forced failover act treats `spec.failover.allowDataLoss`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForcedPolicy {
    /// The demo's: first with data loss not allowed (the engine must stop and say what a
    /// failover would lose), then allowed.
    BlockedThenAllowed,
    /// A drill's: the pool's own policy; a refusal is an outcome, not a failure.
    AsSpecified,
}

/// Play every act in order; an act that cannot complete ends the demo there.
pub async fn run_acts(world: &mut World) -> Vec<ActOutcome> {
    let mut out: Vec<ActOutcome> = Vec::new();
    // Messages an earlier forced act was allowed to lose: later acts do not count them again.
    let mut accepted_loss: Vec<i64> = Vec::new();
    for n in 1..=ACTS {
        let outcome = play(world, n, &accepted_loss).await;
        if n == 4
            && let Some(a) = &outcome.accounting
        {
            accepted_loss.extend(&a.lost);
        }
        let failed = !outcome.problems.is_empty();
        out.push(outcome);
        if failed {
            break;
        }
    }
    out
}

/// Play the demo's act `n` (1-based) on a world where the acts before it were played.
pub async fn play(world: &mut World, n: usize, accepted_loss: &[i64]) -> ActOutcome {
    let (first, second) = world.sites();
    let Some(title) = titles(&first, &second).get(n.wrapping_sub(1)).cloned() else {
        let mut act = ActOutcome::new(n, format!("act {n}"), true);
        act.problems.push(format!("there is no act {n}"));
        return act;
    };
    let mut act = ActOutcome::new(n, title, n != 4);
    world.act = n;
    let result = match n {
        1 => converge(world, &first).await,
        2 => switch(world, &mut act, &second).await,
        3 => switch(world, &mut act, &first).await,
        4 => forced_failover(world, &mut act, &first, ForcedPolicy::BlockedThenAllowed).await,
        _ => site_returns(world, &mut act, &first).await,
    };
    if let Err(e) = result {
        act.problems.push(e);
    }
    finish(world, &mut act, accepted_loss).await;
    act
}

/// Whether a pass found the pool converged and serving from `site`.
fn converged_on(report: &PassReport, site: &str) -> bool {
    report.decision == Some(Decision::Converged)
        && report.status.phase == Some(Phase::Protected)
        && report.status.serving_site.as_deref() == Some(site)
}

/// Run passes until the pool is converged and serving from `site`.
pub async fn converge(world: &mut World, site: &str) -> Result<(), String> {
    world
        .drive(ACT_LIMIT, |r| converged_on(r, site))
        .await
        .map(|_| ())
}

/// Change `spec.primarySite` to `to` and run passes until the pool is converged there; the
/// switch must be reported as planned.
pub async fn switch(world: &mut World, act: &mut ActOutcome, to: &str) -> Result<(), String> {
    let to_owned = to.to_string();
    world.edit(|s| s.primary_site = to_owned);
    act.spec_changed = Some(Instant::now());
    converge(world, to).await?;
    let t = world
        .status
        .as_ref()
        .and_then(|s| s.transition.clone())
        .ok_or("no transition in status after the switch")?;
    if t.kind != TransitionKind::Planned {
        return Err(format!("the switch was reported as {:?}", t.kind));
    }
    act.notes.push(format!(
        "transition {} -> {} {:?}, tail-log LSN {}",
        t.from,
        t.to,
        t.kind,
        t.tail_lsn.as_deref().unwrap_or("none")
    ));
    Ok(())
}

fn describe_loss(d: &DataLoss) -> String {
    format!(
        "{}s (last restored log backup: {})",
        d.estimated_seconds,
        d.last_restored_file.as_deref().unwrap_or("none")
    )
}

/// Take `down`'s instances and share down and set `spec.primarySite` to the other site: the
/// engine must either fail over, reporting the window of acknowledged writes it may have lost,
/// or (data loss not allowed, or larger than allowed) stop and say what a failover would lose.
/// With [`ForcedPolicy::BlockedThenAllowed`] it must first stop, then fail over once allowed;
/// with [`ForcedPolicy::AsSpecified`] a stop is recorded in `act.refused`.
pub async fn forced_failover(
    world: &mut World,
    act: &mut ActOutcome,
    down: &str,
    policy: ForcedPolicy,
) -> Result<(), String> {
    let to = world
        .spec
        .other_site(down)
        .map(|s| s.name.clone())
        .ok_or("the pool has one site")?;
    let went_down = world.set_site_up(down, false)?;
    let down_at = Timestamp::now();
    act.notes
        .push(format!("{} went down at {down_at}", went_down.join(", ")));
    let to_owned = to.clone();
    world.edit(|s| {
        s.primary_site = to_owned;
        if policy == ForcedPolicy::BlockedThenAllowed {
            s.failover.allow_data_loss = false;
        }
    });
    act.spec_changed = Some(Instant::now());
    let failed_over = |r: &PassReport| {
        r.status.serving_site.as_deref() == Some(to.as_str())
            && r.status
                .transition
                .as_ref()
                .is_some_and(|t| t.kind == TransitionKind::Forced && t.completed_at.is_some())
    };
    let blocked = |r: &PassReport| matches!(r.decision, Some(Decision::Blocked(_)));
    let first = world
        .drive(ACT_LIMIT, |r| blocked(r) || failed_over(r))
        .await?;
    let done = if let Some(Decision::Blocked(b)) = &first.decision {
        act.notes.push(format!("blocked before the failover: {b}"));
        if !matches!(
            b,
            BlockReason::DataLossNotAllowed { .. } | BlockReason::DataLossTooLarge { .. }
        ) {
            return Err(format!("blocked for another reason than data loss: {b}"));
        }
        act.loss_before = reported_loss(&first);
        match &act.loss_before {
            Some(d) => act.notes.push(format!(
                "estimated loss window before: {}",
                describe_loss(d)
            )),
            None => {
                return Err("status reported no data-loss estimate before the failover".into());
            }
        }
        if policy == ForcedPolicy::AsSpecified {
            act.refused = Some(b.clone());
            return Ok(());
        }
        world.edit(|s| s.failover.allow_data_loss = true);
        world.drive(ACT_LIMIT, failed_over).await?
    } else if policy == ForcedPolicy::BlockedThenAllowed {
        return Err("the failover went ahead although data loss was not allowed".into());
    } else {
        first
    };
    act.loss_after = reported_loss(&done);
    match &act.loss_after {
        Some(d) => act
            .notes
            .push(format!("reported loss window after: {}", describe_loss(d))),
        None => return Err("status reported no data-loss window after the failover".into()),
    }
    // Anything acknowledged in the window before the site went down may be gone; one second
    // of slack for the estimate's whole-second rounding.
    let secs = act.loss_after.as_ref().map_or(0, |d| d.estimated_seconds) as i64 + 1;
    let window_start = down_at - jiff::SignedDuration::from_secs(secs);
    act.notes.push(format!(
        "allowed loss: messages acknowledged after {window_start}"
    ));
    act.loss_window_start = Some(window_start);
    Ok(())
}

/// Bring `site` back after a forced failover away from it: the engine must fence and salvage
/// the stale copy, reseed, and converge on the site it failed over to.
async fn site_returns(world: &mut World, act: &mut ActOutcome, site: &str) -> Result<(), String> {
    let (_, serving) = world.sites();
    world.set_site_up(site, true)?;
    converge(world, &serving).await?;
    let salvage = world
        .status
        .as_ref()
        .map(|s| s.salvage_backups.clone())
        .unwrap_or_default();
    if salvage.is_empty() {
        return Err("status lists no salvage backup of the stale copy".into());
    }
    for s in salvage {
        act.notes.push(format!(
            "salvage backup of {} on {}: {}",
            s.database, s.instance, s.file
        ));
    }
    Ok(())
}

/// Take the act's figures and accounting.
pub async fn finish(world: &mut World, act: &mut ActOutcome, accepted_loss: &[i64]) {
    act.wall = act.started.elapsed();
    for (n, e) in &world.events {
        if *n == act.number {
            act.notes.push(e.clone());
        }
    }
    let ended_at = Timestamp::now();
    let acked = world.acked();
    let in_act: Vec<_> = acked
        .iter()
        .filter(|a| a.at >= act.started_at && a.at <= ended_at)
        .cloned()
        .collect();
    act.acknowledged_in_act = in_act.len();
    // The outage starts at the last write before the act when the act's first step drains.
    let mut around = in_act;
    if let Some(before) = acked
        .iter()
        .filter(|a| a.at < act.started_at)
        .max_by_key(|a| a.at)
    {
        around.push(before.clone());
    }
    act.write_outage_between = pchat_sim::workload::longest_gap_between(&around);
    if act.refused.is_some() {
        // Nothing failed over: the acknowledged messages are on the site that went down,
        // unavailable rather than lost, and no copy serves.
        return;
    }
    act.serving = world.serving_instance();
    let Some(serving) = act.serving.clone() else {
        act.problems
            .push("no copy of the chat database is ONLINE on the primary site".into());
        return;
    };
    let ids = world
        .sim
        .sim
        .message_ids(&serving, &world.spec.databases.chat)
        .unwrap_or_default();
    judge(act, &serving, &acked, &ids, accepted_loss);
}

/// The act's message accounting against the serving copy's ids, and its verdict: a planned act
/// may lose nothing; the forced act nothing acknowledged before the window it reported.
/// Messages an earlier forced act lost inside its window (`accepted_loss`) are not counted
/// again.
pub fn judge(
    act: &mut ActOutcome,
    serving: &str,
    acked: &[Ack],
    serving_ids: &[i64],
    accepted_loss: &[i64],
) {
    let mut accounting = figures::account(acked, serving_ids);
    accounting.lost.retain(|id| !accepted_loss.contains(id));
    act.previously_lost = accepted_loss.len();
    if act.planned && !accounting.lost.is_empty() {
        act.problems.push(format!(
            "{} acknowledged messages are missing from {serving} (first: {:?})",
            accounting.lost.len(),
            &accounting.lost[..accounting.lost.len().min(5)]
        ));
    }
    if !act.planned {
        match act.loss_window_start {
            Some(start) => {
                let outside = figures::lost_outside_window(acked, &accounting.lost, start);
                if !outside.is_empty() {
                    act.problems.push(format!(
                        "{} lost messages were acknowledged before the reported loss window (first: {:?})",
                        outside.len(),
                        &outside[..outside.len().min(5)]
                    ));
                }
            }
            None if !accounting.lost.is_empty() => act.problems.push(format!(
                "{} acknowledged messages are missing from {serving} and no loss window was reported",
                accounting.lost.len()
            )),
            None => {}
        }
    }
    act.accounting = Some(accounting);
}

/// The data-loss window a pass's status reports for its transition.
fn reported_loss(report: &PassReport) -> Option<DataLoss> {
    report
        .status
        .transition
        .as_ref()
        .and_then(|t| t.data_loss.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(id: i64, secs: i64) -> Ack {
        Ack {
            id,
            server: "atl-pc1.litwareinc.com".into(),
            at: Timestamp::from_second(1_764_000_000 + secs).unwrap(),
        }
    }

    #[test]
    fn a_planned_act_missing_one_acknowledged_message_fails() {
        let acked = [ack(1, 0), ack(2, 1)];
        let mut act = ActOutcome::new(2, "switch".into(), true);
        judge(&mut act, "dal-sql1", &acked, &[1, 2], &[]);
        assert!(act.problems.is_empty(), "{:?}", act.problems);
        let mut act = ActOutcome::new(2, "switch".into(), true);
        judge(&mut act, "dal-sql1", &acked, &[1], &[]);
        assert_eq!(act.accounting.as_ref().unwrap().lost, vec![2]);
        assert!(
            act.problems[0].contains("missing from dal-sql1"),
            "{:?}",
            act.problems
        );
    }

    #[test]
    fn the_forced_act_fails_only_for_losses_before_its_reported_window() {
        let acked = [ack(1, 0), ack(2, 5), ack(3, 9)];
        let mut act = ActOutcome::new(4, "forced".into(), false);
        act.loss_window_start = Some(Timestamp::from_second(1_764_000_004).unwrap());
        judge(&mut act, "dal-sql1", &acked, &[1], &[]);
        assert!(act.problems.is_empty(), "{:?}", act.problems);
        let mut act = ActOutcome::new(4, "forced".into(), false);
        act.loss_window_start = Some(Timestamp::from_second(1_764_000_006).unwrap());
        judge(&mut act, "dal-sql1", &acked, &[1], &[]);
        assert!(act.problems[0].contains("before the reported loss window"));
        let mut act = ActOutcome::new(4, "forced".into(), false);
        judge(&mut act, "dal-sql1", &acked, &[1], &[]);
        assert!(act.problems[0].contains("no loss window was reported"));
    }

    #[test]
    fn losses_accepted_in_the_forced_act_are_not_counted_again() {
        let acked = [ack(1, 0), ack(2, 5), ack(3, 9)];
        let mut act = ActOutcome::new(5, "return".into(), true);
        judge(&mut act, "dal-sql1", &acked, &[1, 3], &[2]);
        assert!(act.problems.is_empty(), "{:?}", act.problems);
        assert_eq!(act.previously_lost, 1);
    }
}
