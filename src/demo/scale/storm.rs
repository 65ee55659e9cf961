//! `bench scale`'s storms: a fifth of the pools sent to their other site at once, first with
//! both sites up (planned switches, a chat workload on every one of them, nothing acknowledged
//! may be lost), then another fifth with their primary site's instances gone (forced
//! failovers, as the pools' policy allows after ten seconds).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kube::Client;
use kube::api::{Api, Patch, PatchParams};

use super::load;
use super::{
    PoolView, PoolWatch, Processes, ScaleReport, api_requests, namespace_of, percentile,
    put_cpu_per_switch,
};
use crate::k8s::turns::Urgency;
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
    /// The control plane's folder, with the apiserver's audit log.
    pub cluster_dir: &'a std::path::Path,
    pub client: &'a Client,
    pub watch: &'a PoolWatch,
    pub specs: &'a [PersistentChatPoolSpec],
    /// Whose CPU time a switch costs.
    pub processes: &'a Processes,
    /// The operator's `/metrics` port.
    pub operator_http_port: u16,
}

/// The turn queues, each the `queue` label of the operator's turn metrics.
const TURN_QUEUES: [Urgency; 2] = [Urgency::FinishingTransition, Urgency::Ordinary];

/// Seconds the operator's pools have waited for a turn so far, per queue of [`TURN_QUEUES`]
/// (the sums of `pchat_turn_wait_seconds`, from one scrape).
async fn turn_waits(storms: &Storms<'_>) -> Result<[f64; 2], String> {
    let metrics = super::scrape(storms.operator_http_port).await?;
    Ok(TURN_QUEUES.map(|queue| {
        let series = format!(
            "pchat_turn_wait_seconds_sum{{queue=\"{}\"}}",
            queue.as_str()
        );
        super::series_sum(&metrics, &series)
    }))
}

/// The site the pools start on.
const FROM_SITE: &str = "atlanta";

/// How many times the lone pool is switched (there, back, there again): its median is the
/// one-pool switch time the storm is compared with.
const LONE_SWITCHES: usize = 3;

/// Set `spec.primarySite` of pool `i` to `site`.
async fn flip(client: &Client, i: usize, site: &str) -> Result<(), String> {
    let pools: Api<PersistentChatPool> = Api::namespaced(client.clone(), &namespace_of(i));
    pools
        .patch(
            "pchat",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"primarySite": site}})),
        )
        .await
        .map(|_| ())
        .map_err(|e| format!("flipping pool {i}: {e}"))
}

/// Flip `pools` to `site` at once (the patches sent together, as a GitOps sync of many
/// resources would) and wait until `done` says each is there (or a deadline): the time each
/// took from its own patch, and the view that ended the wait.
async fn flip_and_wait(
    storms: &Storms<'_>,
    pools: &[usize],
    site: &str,
    done: impl Fn(&PoolView) -> bool,
) -> Result<BTreeMap<usize, (Duration, PoolView)>, String> {
    let started = Instant::now();
    let flips = pools.iter().map(|&i| async move {
        let sent = Instant::now();
        flip(storms.client, i, site).await.map(|()| (i, sent))
    });
    let sent: BTreeMap<usize, Instant> = futures::future::try_join_all(flips)
        .await?
        .into_iter()
        .collect();
    let mut finished = BTreeMap::new();
    let deadline = started + Duration::from_secs(120 + 3 * pools.len() as u64);
    while finished.len() < pools.len() && Instant::now() < deadline {
        let views = storms.watch.views();
        for &i in pools {
            if finished.contains_key(&i) {
                continue;
            }
            if let Some(view) = views.get(&namespace_of(i)).filter(|v| done(v)) {
                finished.insert(i, (sent[&i].elapsed(), view.clone()));
            }
        }
        // The store is memory: looking often costs nothing and keeps the times exact.
        tokio::time::sleep(Duration::from_millis(20)).await;
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
/// failure saying `<n> of <m> <what> dallas` when some did not. Returns the p95 switch time.
fn put_switched(
    report: &mut ScaleReport,
    phase: &str,
    done: &str,
    what: &str,
    flipped: &[usize],
    finished: &BTreeMap<usize, (Duration, PoolView)>,
) -> f64 {
    report.put(&format!("{phase}_pools"), flipped.len());
    report.put(&format!("{phase}_{done}"), finished.len());
    let p95 = put_times(report, phase, finished);
    if finished.len() < flipped.len() {
        report.failures.push(format!(
            "{} of {} {what} {TO_SITE}",
            finished.len(),
            flipped.len()
        ));
    }
    p95
}

/// `durations` in seconds, shortest first.
fn sorted_seconds(durations: &[Duration]) -> Vec<f64> {
    let mut seconds: Vec<f64> = durations.iter().map(Duration::as_secs_f64).collect();
    seconds.sort_by(f64::total_cmp);
    seconds
}

/// `<phase>_switch_{p50,p95,max}_seconds` of `finished`; returns the p95.
fn put_times(
    report: &mut ScaleReport,
    phase: &str,
    finished: &BTreeMap<usize, (Duration, PoolView)>,
) -> f64 {
    let took: Vec<Duration> = finished.values().map(|(d, _)| *d).collect();
    put_spread(report, &format!("{phase}_switch"), &sorted_seconds(&took))
}

/// `<key>_{p50,p95,max}_seconds` of `seconds` (sorted); returns the p95.
fn put_spread(report: &mut ScaleReport, key: &str, seconds: &[f64]) -> f64 {
    let p95 = percentile(seconds, 0.95);
    for (name, value) in [
        ("p50", percentile(seconds, 0.5)),
        ("p95", p95),
        ("max", seconds.last().copied().unwrap_or(f64::NAN)),
    ] {
        report.put(&format!("{key}_{name}_seconds"), format!("{value:.2}"));
    }
    p95
}

/// Whether the view shows the pool Ready, serving from `site`, for its current spec.
fn ready_on(view: &PoolView, site: &str) -> bool {
    view.ready && view.current && view.serving_site == site
}

/// The pool no storm touches (the third: the storms take every fifth from the first and the
/// second) switched alone, under the same chat workload, [`LONE_SWITCHES`] times: to dallas,
/// back, to dallas again. Its median time until Ready is the one-pool switch time the storm's
/// is measured against, on the same machine, control plane and operator, at the same moment.
/// Nothing when there are fewer than three pools.
pub async fn lone(storms: &Storms<'_>, report: &mut ScaleReport) -> Result<Option<f64>, String> {
    const LONE: usize = 2;
    if storms.specs.len() <= LONE {
        return Ok(None);
    }
    let load = loaded(storms, &[LONE]).await?;
    let meter = storms.processes.meter();
    let switched = async {
        let mut seconds = Vec::new();
        for n in 0..LONE_SWITCHES {
            let site = if n % 2 == 0 { TO_SITE } else { FROM_SITE };
            let finished = flip_and_wait(storms, &[LONE], site, |v| ready_on(v, site)).await?;
            let Some((took, _)) = finished.get(&LONE) else {
                report
                    .failures
                    .push(format!("the lone pool was not Ready on {site} in time"));
                break;
            };
            seconds.push(took.as_secs_f64());
        }
        Ok::<_, String>(seconds)
    }
    .await;
    if let Ok(seconds) = &switched {
        put_cpu_per_switch(report, "lone", &meter.read(), seconds.len());
    }
    let outcome = load.finish(storms.sim, TO_SITE, |_| None).await;
    let mut seconds = switched?;
    report.put("lone_switches", seconds.len());
    report.put("lone_acknowledged_messages", outcome.acknowledged);
    report.put("lone_lost_messages", outcome.lost_count());
    put_losses(report, &outcome, "a planned switch");
    seconds.sort_by(f64::total_cmp);
    let median = percentile(&seconds, 0.5);
    report.put("lone_switch_seconds", format!("{median:.2}"));
    let outages = sorted_seconds(&outcome.outages);
    report.put("lone_drains", outages.len());
    report.put(
        "lone_outage_seconds",
        format!("{:.2}", percentile(&outages, 0.5)),
    );
    Ok((seconds.len() == LONE_SWITCHES).then_some(median))
}

/// Every fifth pool (0, 5, 10, ...) switched to dallas with both sites up, under a chat
/// workload: each pool's time until Ready there, and every acknowledged message looked for.
pub async fn planned(
    storms: &Storms<'_>,
    lone_switch_seconds: Option<f64>,
    report: &mut ScaleReport,
) -> Result<(), String> {
    let flipped: Vec<usize> = (0..storms.specs.len()).step_by(5).collect();
    let load = loaded(storms, &flipped).await?;
    let from = jiff::Timestamp::now();
    let meter = storms.processes.meter();
    let waited_before = turn_waits(storms).await?;
    let finished = flip_and_wait(storms, &flipped, TO_SITE, |v| ready_on(v, TO_SITE)).await;
    let cpu_used = meter.read();
    let waited_after = turn_waits(storms).await?;
    let requests = api_requests(storms.cluster_dir, from, jiff::Timestamp::now());
    let outcome = load.finish(storms.sim, TO_SITE, |_| None).await;
    let finished = finished?;
    let p95 = put_switched(
        report,
        "storm",
        "ready_pools",
        "flipped pools Ready on",
        &flipped,
        &finished,
    );
    if let Some(lone) = lone_switch_seconds {
        report.put("storm_p95_over_lone_switch", format!("{:.2}", p95 / lone));
    }
    let per_switch = |n: usize| format!("{:.1}", n as f64 / flipped.len().max(1) as f64);
    report.put(
        "storm_status_writes_per_switch",
        per_switch(requests.statuses),
    );
    report.put(
        "storm_api_writes_per_switch",
        per_switch(requests.about_pools()),
    );
    report.put("storm_api_reads_per_switch", per_switch(requests.reads));
    // How long pools waited for turns meanwhile (the flipped ones, and the periodic looks of
    // the others), per switch and queue: a storm larger than the turns shows as ordinary
    // waits of about a whole switch for the pools beyond them.
    for ((queue, after), before) in TURN_QUEUES.iter().zip(waited_after).zip(waited_before) {
        report.put(
            &format!("storm_turn_wait_seconds_per_switch_{}", queue.as_str()),
            format!("{:.2}", (after - before) / flipped.len().max(1) as f64),
        );
    }
    put_cpu_per_switch(report, "storm", &cpu_used, flipped.len());
    report.put("storm_drains", outcome.outages.len());
    put_spread(report, "storm_outage", &sorted_seconds(&outcome.outages));
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
    let finished = flip_and_wait(storms, &flipped, TO_SITE, |v| {
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
