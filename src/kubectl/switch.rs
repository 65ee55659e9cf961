//! `kubectl pchat switch NAME SITE [--wait]`: set `spec.primarySite` (a merge patch of that
//! one field, as `kubectl patch` would send) and, with `--wait`, follow the pool's status until
//! it is Ready on SITE: a progress bar on a terminal, one line per step on standard output.

use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use kube::Api;
use kube::api::{Patch, PatchParams};
use pchat_core::api::{PersistentChatPool, PersistentChatPoolStatus};

use super::{ApiAccess, describe, get_pool};

/// The field manager of the patch (who set primarySite, in managedFields).
const FIELD_MANAGER: &str = "kubectl-pchat";

/// Switch, then wait when `wait` gives a timeout; `Ok(false)` when the wait ended without the
/// pool Ready on `site`.
pub async fn run(
    pools: &Api<PersistentChatPool>,
    namespace: &str,
    name: &str,
    site: &str,
    wait: Option<Duration>,
) -> Result<bool, String> {
    let pool = get_pool(pools, namespace, name).await?;
    let sites: Vec<&str> = pool.spec.sites.iter().map(|s| s.name.as_str()).collect();
    if !sites.contains(&site) {
        return Err(format!(
            "spec.primarySite: {site:?} is not the name of one of spec.sites (defined: {}); nothing was changed",
            sites.join(", ")
        ));
    }
    let generation = if pool.spec.primary_site == site {
        println!("{namespace}/{name}: spec.primarySite is already {site}");
        pool.metadata.generation.unwrap_or(0)
    } else {
        let patch = serde_json::json!({ "spec": { "primarySite": site } });
        let patched = pools
            .patch(
                name,
                &PatchParams::apply(FIELD_MANAGER),
                &Patch::Merge(&patch),
            )
            .await
            .map_err(|e| match &e {
                kube::Error::Api(status) if status.code == 422 => {
                    format!("the apiserver refused the switch: {}", status.message)
                }
                _ => describe(&e, &ApiAccess::pools("patch", namespace, name)),
            })?;
        println!(
            "{namespace}/{name}: spec.primarySite {} -> {site} (generation {})",
            pool.spec.primary_site,
            patched.metadata.generation.unwrap_or(0)
        );
        patched.metadata.generation.unwrap_or(0)
    };
    match wait {
        None => Ok(true),
        Some(timeout) => follow(pools, namespace, name, site, generation, timeout).await,
    }
}

/// Whether `status` shows the switch to `site` of `generation` done: Ready, serving there.
fn done(status: &PersistentChatPoolStatus, site: &str, generation: i64) -> bool {
    status.observed_generation.is_some_and(|g| g >= generation)
        && status.serving_site.as_deref() == Some(site)
        && condition_is(status, "Ready", "True")
}

fn condition_is(status: &PersistentChatPoolStatus, type_: &str, value: &str) -> bool {
    status
        .conditions
        .iter()
        .any(|c| c.type_ == type_ && c.status == value)
}

/// A line for the step in `status`, when there is one.
fn step_line(status: &PersistentChatPoolStatus) -> Option<String> {
    let step = status.step.as_ref()?;
    Some(format!(
        "step {}/{} {}{}{}",
        step.index,
        step.total,
        step.name,
        step.site
            .as_deref()
            .map(|s| format!(" on {s}"))
            .unwrap_or_default(),
        step.progress
            .as_ref()
            .map(|p| format!(" ({} {}% on {})", p.command, p.percent_complete, p.instance))
            .unwrap_or_default()
    ))
}

/// Watch the pool until it is Ready on `site` (true), Stalled on the new generation (false,
/// with the reason), or `timeout` passes (an error: the switch goes on without us).
async fn follow(
    pools: &Api<PersistentChatPool>,
    namespace: &str,
    name: &str,
    site: &str,
    generation: i64,
    timeout: Duration,
) -> Result<bool, String> {
    let bar = ProgressBar::new(1);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
            .map_err(|e| e.to_string())?
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let last_line: Mutex<Option<String>> = Mutex::new(None);
    let stalled: Mutex<Option<String>> = Mutex::new(None);
    let condition = |pool: Option<&PersistentChatPool>| -> bool {
        let Some(status) = pool.and_then(|p| p.status.as_ref()) else {
            return false;
        };
        if let Some(step) = &status.step {
            bar.set_length(u64::from(step.total.max(1)));
            bar.set_position(u64::from(step.index.saturating_sub(1)));
        }
        let line = step_line(status).or_else(|| status.waiting_for.clone());
        if let Some(line) = line {
            let mut last = last_line.lock().unwrap_or_else(|e| e.into_inner());
            if last.as_deref() != Some(line.as_str()) {
                bar.set_message(line.clone());
                bar.suspend(|| println!("{line}"));
                *last = Some(line);
            }
        }
        if done(status, site, generation) {
            return true;
        }
        let new_generation = status.observed_generation.is_some_and(|g| g >= generation);
        if new_generation && condition_is(status, "Stalled", "True") {
            let reason = status
                .conditions
                .iter()
                .find(|c| c.type_ == "Stalled")
                .map(|c| format!("{}: {}", c.reason, c.message))
                .unwrap_or_default();
            *stalled.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason);
            return true;
        }
        false
    };
    let waited = tokio::time::timeout(
        timeout,
        kube::runtime::wait::await_condition(pools.clone(), name, condition),
    )
    .await;
    bar.finish_and_clear();
    match waited {
        Err(_) => Err(format!(
            "{namespace}/{name} is not Ready on {site} after {:#}; the operator goes on with the switch (kubectl pchat status {name})",
            jiff::SignedDuration::try_from(timeout).unwrap_or_default()
        )),
        Ok(Err(e)) => Err(match e {
            kube::runtime::wait::Error::ProbeFailed(
                kube::runtime::watcher::Error::InitialListFailed(source),
            )
            | kube::runtime::wait::Error::ProbeFailed(
                kube::runtime::watcher::Error::WatchStartFailed(source),
            ) => describe(&source, &ApiAccess::pools("watch", namespace, name)),
            other => format!("following {namespace}/{name} failed: {other}"),
        }),
        Ok(Ok(_)) => match stalled.into_inner().unwrap_or_else(|e| e.into_inner()) {
            Some(reason) => {
                eprintln!("{namespace}/{name} is Stalled and needs a person: {reason}");
                Ok(false)
            }
            None => {
                println!("{namespace}/{name} is Ready on {site}");
                Ok(true)
            }
        },
    }
}
