//! `bench scale`'s storms: a fifth of the pools sent to their other site at once, first with
//! both sites up (planned switches, a chat workload on every one of them, nothing acknowledged
//! may be lost), then another fifth with their primary site's instances gone (forced
//! failovers, as the pools' policy allows after ten seconds).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kube::Client;
use kube::api::{Api, Patch, PatchParams};

use super::load;
use super::{PoolView, PoolWatch, ScaleReport, namespace_of, percentile};
use pchat_core::api::{PersistentChatPool, PersistentChatPoolSpec};
use pchat_sim::cluster::RunningSim;
use pchat_sim::faults::{Fault, FaultInjector};

/// Where the storms send the pools.
const TO_SITE: &str = "dallas";

/// How long the chat servers write before the flip, so that each switch starts under load.
const LOAD_BEFORE: Duration = Duration::from_secs(2);

/// What both storms run on: the simulator, the apiserver, the watch of every pool's status and
/// the pools' specs (pool `i` in namespace [`namespace_of`]`(i)`).
pub struct Storms<'a> {
    pub sim: &'a RunningSim,
    pub client: &'a Client,
    pub watch: &'a PoolWatch,
    pub specs: &'a [PersistentChatPoolSpec],
}

/// Set `spec.primarySite` of pool `i` to [`TO_SITE`].
async fn flip(client: &Client, i: usize) -> Result<(), String> {
    let pools: Api<PersistentChatPool> = Api::namespaced(client.clone(), &namespace_of(i));
    pools
        .patch(
            "pchat",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"primarySite": TO_SITE}})),
        )
        .await
        .map(|_| ())
        .map_err(|e| format!("flipping pool {i}: {e}"))
}

/// Flip `pools` at once and wait until `done` says each is there (or a deadline): the time
/// each took from the flip, and the view that ended the wait.
async fn flip_and_wait(
    storms: &Storms<'_>,
    pools: &[usize],
    done: impl Fn(&PoolView) -> bool,
) -> Result<BTreeMap<usize, (Duration, PoolView)>, String> {
    let started = Instant::now();
    for &i in pools {
        flip(storms.client, i).await?;
    }
    let mut finished = BTreeMap::new();
    let deadline = started + Duration::from_secs(120 + 3 * pools.len() as u64);
    while finished.len() < pools.len() && Instant::now() < deadline {
        let views = storms.watch.views();
        for &i in pools {
            if finished.contains_key(&i) {
                continue;
            }
            if let Some(view) = views.get(&namespace_of(i)).filter(|v| done(v)) {
                finished.insert(i, (started.elapsed(), view.clone()));
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(finished)
}

/// The chat workload on the pools `flipped`, writing for [`LOAD_BEFORE`] already.
async fn loaded(storms: &Storms<'_>, flipped: &[usize]) -> Result<load::StormLoad, String> {
    let load = load::start(
        storms.client,
        storms.sim,
        flipped
            .iter()
            .map(|&i| (namespace_of(i), storms.specs[i].clone()))
            .collect(),
    )?;
    tokio::time::sleep(LOAD_BEFORE).await;
    Ok(load)
}

/// `<phase>_pools`, `<phase>_<done>` (how many of them got there) and the switch times; a
/// failure saying `<n> of <m> <what> dallas` when some did not.
fn put_switched(
    report: &mut ScaleReport,
    phase: &str,
    done: &str,
    what: &str,
    flipped: &[usize],
    finished: &BTreeMap<usize, (Duration, PoolView)>,
) {
    report.put(&format!("{phase}_pools"), flipped.len());
    report.put(&format!("{phase}_{done}"), finished.len());
    put_times(report, phase, finished);
    if finished.len() < flipped.len() {
        report.failures.push(format!(
            "{} of {} {what} {TO_SITE}",
            finished.len(),
            flipped.len()
        ));
    }
}

/// `<phase>_switch_{p50,p95,max}_seconds` of `finished`.
fn put_times(
    report: &mut ScaleReport,
    phase: &str,
    finished: &BTreeMap<usize, (Duration, PoolView)>,
) {
    let mut seconds: Vec<f64> = finished.values().map(|(d, _)| d.as_secs_f64()).collect();
    seconds.sort_by(f64::total_cmp);
    for (name, value) in [
        ("p50", percentile(&seconds, 0.5)),
        ("p95", percentile(&seconds, 0.95)),
        ("max", seconds.last().copied().unwrap_or(f64::NAN)),
    ] {
        report.put(
            &format!("{phase}_switch_{name}_seconds"),
            format!("{value:.2}"),
        );
    }
}

/// Every fifth pool (0, 5, 10, ...) switched to dallas with both sites up, under a chat
/// workload: each pool's time until Ready there, and every acknowledged message looked for.
pub async fn planned(storms: &Storms<'_>, report: &mut ScaleReport) -> Result<(), String> {
    let flipped: Vec<usize> = (0..storms.specs.len()).step_by(5).collect();
    let load = loaded(storms, &flipped).await?;
    let finished = flip_and_wait(storms, &flipped, |v| {
        v.ready && v.current && v.serving_site == TO_SITE
    })
    .await;
    let outcome = load.finish(storms.sim, TO_SITE, |_| None).await;
    let finished = finished?;
    put_switched(
        report,
        "storm",
        "ready_pools",
        "flipped pools Ready on",
        &flipped,
        &finished,
    );
    report.put("storm_acknowledged_messages", outcome.acknowledged);
    report.put("storm_lost_messages", outcome.lost_count());
    put_losses(report, &outcome, "a planned switch");
    Ok(())
}

/// A failure per pool that lost what it may not have, or has no serving copy.
fn put_losses(report: &mut ScaleReport, outcome: &load::LoadOutcome, after: &str) {
    for (namespace, ids) in &outcome.lost {
        report.failures.push(format!(
            "{namespace}: {} acknowledged messages missing after {after} (first {})",
            ids.len(),
            ids[0]
        ));
    }
    for namespace in &outcome.unserved {
        report.failures.push(format!(
            "{namespace}: no ONLINE copy of the chat database on {TO_SITE}"
        ));
    }
}

/// Every fifth pool from the second (1, 6, 11, ...) loses its primary site's instances, under
/// a chat workload, and is sent to dallas: each pool's time until dallas serves (the pool stays
/// Degraded, its old site being away), the data-loss windows the pools reported, and every
/// message acknowledged before its pool's window looked for on the new primary.
pub async fn forced(storms: &Storms<'_>, report: &mut ScaleReport) -> Result<(), String> {
    let Storms { sim, specs, .. } = *storms;
    let flipped: Vec<usize> = (1..specs.len()).step_by(5).collect();
    let load = loaded(storms, &flipped).await?;
    let down_at = jiff::Timestamp::now();
    for &i in &flipped {
        let primary = specs[i]
            .site(&specs[i].primary_site)
            .ok_or_else(|| format!("pool {i} has no site {}", specs[i].primary_site))?;
        for instance in &primary.instances {
            sim.sim.inject(Fault::InstanceDown {
                instance: instance.name.clone(),
            })?;
        }
    }
    let finished = flip_and_wait(storms, &flipped, |v| {
        v.current && v.transitioned && v.serving_site == TO_SITE
    })
    .await;
    // A pool's window runs from its estimated loss before the site went down; a pool that
    // reported none may lose nothing.
    let windows: BTreeMap<String, jiff::Timestamp> = finished
        .as_ref()
        .map(|finished| {
            finished
                .iter()
                .filter_map(|(&i, (_, view))| {
                    let seconds = i64::try_from(view.data_loss_seconds?).ok()?;
                    Some((
                        namespace_of(i),
                        down_at - jiff::SignedDuration::from_secs(seconds),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let outcome = load
        .finish(sim, TO_SITE, |namespace| windows.get(namespace).copied())
        .await;
    let finished = finished?;
    put_switched(
        report,
        "forced",
        "serving_pools",
        "pools with their primary site down served from",
        &flipped,
        &finished,
    );
    report.put(
        "forced_data_loss_window_max_seconds",
        finished
            .values()
            .filter_map(|(_, v)| v.data_loss_seconds)
            .max()
            .map_or("none".to_string(), |s| s.to_string()),
    );
    report.put("forced_acknowledged_messages", outcome.acknowledged);
    report.put("forced_lost_in_window_messages", outcome.lost_in_window);
    report.put("forced_lost_outside_window_messages", outcome.lost_count());
    put_losses(
        report,
        &outcome,
        "a forced failover, before its loss window",
    );
    Ok(())
}
