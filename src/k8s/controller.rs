//! The reconcile of one PersistentChatPool: one engine pass with the pool's Secrets, its
//! ConfigMap and its kept SQL port, then status by server-side apply, Events and metrics.
//!
//! There is no finalizer, on purpose: deleting a pool stops its management and sends no SQL.
//! The databases stay exactly as they are (a disaster-recovery pair is not something to tear
//! down because an object went away); the pool's ConfigMap goes with it by garbage collection,
//! and its SQL connections are closed.

use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use tokio::time::Instant;

use super::configmap::ConfigMapPublisher;
use super::context::{Context, PoolSlot};
use super::credentials::{self, SecretReadError};
use super::metrics::Outcome;
use super::{events, status_patch};
use crate::engine::sql_port::LivePort;
use crate::engine::{self, StepError, StepRun};
use pchat_core::api::{PersistentChatPool, PersistentChatPoolStatus};
use pchat_core::plan::{Decision, Step, WaitReason};

/// Why a reconcile failed; it is retried after [`super::context::Timing::error_retry`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read PersistentChatPool {namespace}/{name}: {source}")]
    ReadPool {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error(transparent)]
    ReadSecret(#[from] SecretReadError),
    #[error("cannot write the status of PersistentChatPool {namespace}/{name}: {source}")]
    WriteStatus {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "cannot write the CA certificate of PersistentChatPool {namespace}/{name} to {path}: {source}"
    )]
    CaFile {
        namespace: String,
        name: String,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The `reason` label of `pchat_reconcile_errors_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::ReadPool { .. } => "PoolUnreadable",
            Error::ReadSecret(_) => "SecretUnreadable",
            Error::WriteStatus { .. } => "StatusWriteFailed",
            Error::CaFile { .. } => "CaFileUnwritable",
        }
    }
}

/// The kube-runtime reconciler.
pub async fn reconcile(pool: Arc<PersistentChatPool>, ctx: Arc<Context>) -> Result<Action, Error> {
    let name = pool.name_any();
    let namespace = pool.namespace().unwrap_or_default();
    let Some(uid) = pool.uid() else {
        return Ok(Action::await_change());
    };
    if !ctx.leadership.confirm().await {
        // Another replica acts: hold no connection to the pool's instances.
        ctx.forget(&uid, &namespace, &name);
        return Ok(Action::requeue(ctx.timing.not_leader_retry));
    }
    // Read the pool afresh: the watch may not have delivered the status the last pass wrote,
    // and `previous` must be that status (step numbering, transition, condition times).
    let pools: Api<PersistentChatPool> = Api::namespaced(ctx.client.clone(), &namespace);
    let fresh = pools
        .get_opt(&name)
        .await
        .map_err(|source| Error::ReadPool {
            namespace: namespace.clone(),
            name: name.clone(),
            source,
        })?;
    let Some(pool) = fresh.filter(|p| p.uid().as_deref() == Some(uid.as_str())) else {
        // Deleted (or deleted and created again: the new object has its own reconcile).
        ctx.forget(&uid, &namespace, &name);
        return Ok(Action::await_change());
    };
    let slot = ctx.slot(&uid, &namespace, &name);
    let mut slot = slot.lock().await;
    let generation = pool.metadata.generation;
    if let Some((due, for_generation)) = slot.next_due {
        let now = Instant::now();
        if for_generation == generation && due > now {
            return Ok(Action::requeue(due - now));
        }
    }
    let requeue = pass(&ctx, &pools, &pool, &uid, &mut slot).await?;
    slot.next_due = Some((Instant::now() + requeue, generation));
    Ok(Action::requeue(requeue))
}

/// What a pass produced, before it is written.
struct Produced {
    status: PersistentChatPoolStatus,
    step_ran: Option<(Step, Result<StepRun, StepError>)>,
    requeue: std::time::Duration,
    outcome: Outcome,
    /// The error reason for `pchat_reconcile_errors_total`, when the pass failed or stalled.
    error_reason: Option<String>,
    round_trips: u64,
}

/// One pass over a pool this replica leads: returns when to come back.
async fn pass(
    ctx: &Context,
    pools: &Api<PersistentChatPool>,
    pool: &PersistentChatPool,
    uid: &str,
    slot: &mut PoolSlot,
) -> Result<std::time::Duration, Error> {
    let name = pool.name_any();
    let namespace = pool.namespace().unwrap_or_default();
    let spec = &pool.spec;
    let generation = pool.metadata.generation;
    let previous = pool.status.as_ref();
    let now = Timestamp::now();

    let produced = if let Err(violations) = pchat_core::api::validate(spec) {
        // The spec may name the wrong Secret: it is reported before any Secret is read.
        tracing::warn!(%namespace, pool = %name, violations = %violations.to_string().replace('\n', "; "), "invalid spec: nothing is sent");
        Produced {
            status: engine::status::invalid(&violations, generation, previous, now),
            step_ran: None,
            requeue: engine::REQUEUE_IDLE,
            outcome: Outcome::Invalid,
            error_reason: Some("InvalidSpec".into()),
            round_trips: 0,
        }
    } else {
        let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
        match credentials::load(&secrets, &namespace, spec).await? {
            Err(problem) => {
                tracing::warn!(%namespace, pool = %name, reason = problem.reason(), "{problem}");
                // Keep no connection logged in with credentials that are gone.
                slot.port = None;
                Produced {
                    status: engine::status::stalled_because(
                        problem.reason(),
                        &problem.to_string(),
                        generation,
                        previous,
                        now,
                    ),
                    step_ran: None,
                    requeue: ctx.timing.stalled_retry,
                    outcome: Outcome::Stalled,
                    error_reason: Some(problem.reason().into()),
                    round_trips: 0,
                }
            }
            Ok(material) => {
                let fingerprint = material.fingerprint();
                let entry = match slot.port.take() {
                    Some((f, port)) if f == fingerprint => (f, port),
                    old => {
                        let ca = match &material.ca_pem {
                            None => None,
                            Some(pem) => {
                                Some(credentials::write_ca_file(&ctx.ca_dir, uid, pem).map_err(
                                    |source| Error::CaFile {
                                        namespace: namespace.clone(),
                                        name: name.clone(),
                                        path: ctx.ca_dir.display().to_string(),
                                        source,
                                    },
                                )?)
                            }
                        };
                        if old.is_some() {
                            tracing::info!(%namespace, pool = %name, "the credentials changed: logging in again");
                        }
                        (fingerprint, LivePort::new(material.credentials, ca))
                    }
                };
                let (_, port) = slot.port.insert(entry);
                let owner = owner_reference(pool, uid);
                let mut publisher = ConfigMapPublisher::new(
                    Api::<ConfigMap>::namespaced(ctx.client.clone(), &namespace),
                    &namespace,
                    &name,
                    owner,
                );
                let before = port.round_trips();
                let report =
                    engine::reconcile_once(spec, generation, port, &mut publisher, now, previous)
                        .await;
                let statements = match &report.step_ran {
                    Some((_, Ok(run))) => run.statements_sent,
                    _ => 0,
                };
                let (outcome, error_reason) = outcome_of(&report);
                Produced {
                    round_trips: port.round_trips().saturating_sub(before) + statements,
                    status: report.status,
                    step_ran: report.step_ran,
                    requeue: report.requeue_after,
                    outcome,
                    error_reason,
                }
            }
        }
    };

    // A long pass may outlive the lease: then the new leader writes, not this replica.
    if !ctx.leadership.is_leader() {
        return Ok(ctx.timing.not_leader_retry);
    }
    status_patch::apply(pools, &name, &produced.status)
        .await
        .map_err(|source| Error::WriteStatus {
            namespace: namespace.clone(),
            name: name.clone(),
            source,
        })?;
    let evs = events::derive(previous, &produced.status, produced.step_ran.as_ref());
    events::publish(&ctx.recorder, &pool.object_ref(&()), evs).await;

    let m = &ctx.metrics;
    m.pass(&namespace, &name, produced.outcome);
    if let Some(reason) = &produced.error_reason {
        m.error(&namespace, &name, reason);
    }
    if let Some((step, Ok(run))) = &produced.step_ran {
        m.step(step.name(), run.elapsed);
    }
    m.round_trips(&namespace, &name, produced.round_trips);
    let sites: Vec<String> = spec.sites.iter().map(|s| s.name.clone()).collect();
    m.status(&namespace, &name, &sites, &produced.status);
    Ok(produced.requeue)
}

/// The pool as the controlling owner of its ConfigMap (garbage-collected with it).
fn owner_reference(pool: &PersistentChatPool, uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: PersistentChatPool::api_version(&()).into_owned(),
        kind: PersistentChatPool::kind(&()).into_owned(),
        name: pool.name_any(),
        uid: uid.to_string(),
        controller: Some(true),
        block_owner_deletion: None,
    }
}

/// The metrics outcome of an engine pass, and its error reason when it failed or stalled.
fn outcome_of(report: &engine::PassReport) -> (Outcome, Option<String>) {
    let stalled_reason = || {
        report
            .status
            .conditions
            .iter()
            .find(|c| c.type_ == "Stalled" && c.status == "True")
            .map(|c| c.reason.clone())
    };
    match (&report.step_ran, &report.decision) {
        (Some((_, Ok(_))), _) => (Outcome::Step, None),
        (Some((_, Err(e))), _) => (
            Outcome::Error,
            Some(
                if e.retryable {
                    "StepRetrying"
                } else {
                    "StepFailed"
                }
                .into(),
            ),
        ),
        (None, Some(Decision::Converged)) => (Outcome::Converged, None),
        (None, Some(Decision::Wait(WaitReason::Suspended))) => (Outcome::Suspended, None),
        (None, Some(Decision::Wait(_))) => (Outcome::Waiting, None),
        (None, Some(Decision::Blocked(_))) => (
            Outcome::Blocked,
            Some(stalled_reason().unwrap_or_else(|| "Blocked".into())),
        ),
        (None, Some(Decision::Step(_))) => (Outcome::Error, Some("StepNotRun".into())),
        (None, None) => match report.status.phase {
            Some(pchat_core::api::Phase::Invalid) => (Outcome::Invalid, Some("InvalidSpec".into())),
            _ => (Outcome::Error, Some("PublishedStateUnreadable".into())),
        },
    }
}

/// The kube-runtime error policy: count the failure, log it, retry soon.
pub fn error_policy(pool: Arc<PersistentChatPool>, error: &Error, ctx: Arc<Context>) -> Action {
    let name = pool.name_any();
    let namespace = pool.namespace().unwrap_or_default();
    tracing::warn!(%namespace, pool = %name, error = %error, "reconcile failed, retrying");
    ctx.metrics.pass(&namespace, &name, Outcome::Error);
    ctx.metrics.error(&namespace, &name, error.reason());
    Action::requeue(ctx.timing.error_retry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::PassReport;
    use pchat_core::api::Phase;

    fn report(
        decision: Option<Decision>,
        step_ran: Option<(Step, Result<StepRun, StepError>)>,
        phase: Option<Phase>,
    ) -> PassReport {
        PassReport {
            status: PersistentChatPoolStatus {
                phase,
                ..PersistentChatPoolStatus::default()
            },
            requeue_after: engine::REQUEUE_ACTIVE,
            step_ran,
            decision,
            observation: None,
        }
    }

    fn catch_up() -> Step {
        Step::CatchUp {
            site: "dallas".into(),
            instance: "dal-sql1".into(),
            database: "mgc".into(),
            files: vec![],
        }
    }

    #[test]
    fn each_pass_is_counted_under_the_agreed_outcome_and_reason() {
        let ok = Ok(StepRun::default());
        let retry = Err(StepError {
            message: "timeout".into(),
            retryable: true,
            number: None,
        });
        let fatal = Err(StepError {
            message: "4305".into(),
            retryable: false,
            number: Some(4305),
        });
        let cases = [
            (
                report(
                    Some(Decision::Step(catch_up())),
                    Some((catch_up(), ok)),
                    None,
                ),
                Outcome::Step,
                None,
            ),
            (
                report(
                    Some(Decision::Step(catch_up())),
                    Some((catch_up(), retry)),
                    None,
                ),
                Outcome::Error,
                Some("StepRetrying"),
            ),
            (
                report(
                    Some(Decision::Step(catch_up())),
                    Some((catch_up(), fatal)),
                    None,
                ),
                Outcome::Error,
                Some("StepFailed"),
            ),
            (
                report(Some(Decision::Converged), None, None),
                Outcome::Converged,
                None,
            ),
            (
                report(Some(Decision::Wait(WaitReason::Suspended)), None, None),
                Outcome::Suspended,
                None,
            ),
            (
                report(None, None, Some(Phase::Invalid)),
                Outcome::Invalid,
                Some("InvalidSpec"),
            ),
            (
                report(None, None, Some(Phase::Waiting)),
                Outcome::Error,
                Some("PublishedStateUnreadable"),
            ),
        ];
        for (r, outcome, reason) in cases {
            assert_eq!(outcome_of(&r), (outcome, reason.map(String::from)), "{r:?}");
        }
    }
}
