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
use kube::api::DynamicObject;
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use tokio::time::Instant;

use futures::future::BoxFuture;

use super::configmap::ConfigMapPublisher;
use super::context::{Context, PoolSlot, SecretNames, StatusMemory, TurnMemory};
use super::credentials::{self, CredentialsProblem, Material};
use super::stored::{self, StoredPool};
use super::turns::Urgency;
use super::{events, status_patch};
use crate::Error;
use crate::engine::sql_port::LivePort;
use crate::engine::{self, PassOutcome, PortSource, PortUnavailable, SqlPort};
use pchat_core::api::{
    ConditionReason, PersistentChatPool, PersistentChatPoolSpec, PersistentChatPoolStatus,
};

/// How long one reconcile goes on from step to step before it gives its turn to the pools
/// waiting. A switch's steps follow each other without going back to the queue (every pause
/// between them is time the pool is half-switched, and between the drain and the publish, time
/// no chat server can write); a bootstrap of long restores still lets the others in.
pub const STEPS_IN_ONE_TURN: std::time::Duration = std::time::Duration::from_secs(10);

/// How long one turn may wait, all looks together, for a pool's chat servers to leave after
/// its drain. The drain starts the chat outage: a pool that gave its turn back there queued,
/// drained, behind every pool waiting (in a storm, behind whole switches), and its outage
/// lasted as long as the queue, while the pools ahead of it had not yet drained theirs.
/// Chat servers told of the change leave within milliseconds; ones that stay longer (up to
/// `failover.drainTimeout`, when their sessions are ended) should not hold a turn others
/// could use, so past this the pool waits in the queue (ahead of pools that have not started:
/// see `turns`).
pub const DRAIN_IN_ONE_TURN: std::time::Duration = std::time::Duration::from_secs(2);

/// The kube-runtime reconciler: passes over the pool, one after the other while each ran a
/// step and the next may follow at once, within one turn.
pub async fn reconcile(watched: Arc<DynamicObject>, ctx: Arc<Context>) -> Result<Action, Error> {
    let name = watched.name_any();
    let namespace = watched.namespace().unwrap_or_default();
    let Some(uid) = watched.uid() else {
        return Ok(Action::await_change());
    };
    if !ctx.leadership.is_leader() {
        // Another replica acts: hold no connection to the pool's instances.
        ctx.forget(&uid, &namespace, &name);
        return Ok(Action::requeue(ctx.timing.not_leader_retry));
    }
    let slot = ctx.slot(&uid, &namespace, &name);
    let mut slot = slot.lock().await;
    if let Some((due, for_generation)) = slot.next_due {
        let now = Instant::now();
        if for_generation == watched.meta().generation && due > now {
            // Nothing is done, so nothing needs the Lease read: the watch echoing each of the
            // operator's own status and ConfigMap writes lands here, and a GET of the Lease for
            // each was a third of the operator's requests in a storm of switches.
            return Ok(Action::requeue(due - now));
        }
    }
    let urgency = match slot.status.as_ref().map(StatusMemory::as_status) {
        Some(status) if engine::requeue::finishing_transition(status, Timestamp::now()) => {
            Urgency::FinishingTransition
        }
        _ => Urgency::Ordinary,
    };
    let Some(_turn) = ctx.turn(urgency).await else {
        return Ok(Action::await_change());
    };
    // Read the Lease once the pass is about to run (after any wait for a turn), so that a
    // replica whose lease ran out meanwhile sends nothing.
    if !ctx.leadership.confirm().await {
        ctx.forget(&uid, &namespace, &name);
        return Ok(Action::requeue(ctx.timing.not_leader_retry));
    }
    let pools: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), &namespace, &stored::api_resource());
    let started = Instant::now();
    let mut drain_waited = std::time::Duration::ZERO;
    slot.turn = TurnMemory::default();
    let mut object = watched;
    loop {
        let Some(pool) = current(&pools, &object, &uid, &mut slot).await? else {
            // Deleted (or deleted and created again: the new object has its own reconcile).
            ctx.forget(&uid, &namespace, &name);
            return Ok(Action::await_change());
        };
        let generation = pool.generation();
        // What is left of the turn is fixed before the pass, which decides from it whether the
        // next pass follows in this turn (`Next::continues`): its status write (left for a
        // later pass of the turn, or not) and this loop both go by that one answer.
        let left = TurnLeft {
            steps: started.elapsed() < STEPS_IN_ONE_TURN,
            drain: DRAIN_IN_ONE_TURN.saturating_sub(drain_waited),
        };
        let Next { requeue, continues } = pass(&ctx, &pools, &pool, &uid, left, &mut slot).await?;
        slot.next_due = Some((Instant::now() + requeue, generation));
        if requeue >= engine::requeue::IDLE
            && let Some((_, port)) = slot.port.as_mut()
        {
            // Nothing to do until the world or the spec changes: the next step, if any, opens
            // its BACKUP and RESTORE connections again, and the next pass (unless kept) its
            // observation connections.
            if ctx.keep_idle_connections {
                port.close_long_connections();
            } else {
                port.close_connections();
            }
        }
        if !continues {
            return Ok(Action::requeue(requeue));
        }
        if requeue != engine::requeue::NEXT_STEP {
            // The next look at a drain.
            drain_waited += requeue;
            if !ctx.pause(requeue).await {
                return Ok(Action::await_change());
            }
        }
        // The spec may have changed during the step: the next pass reads the watch's cache.
        match ctx.cached(&namespace, &name) {
            Some(latest) => object = latest,
            None => {
                ctx.forget(&uid, &namespace, &name);
                return Ok(Action::await_change());
            }
        }
    }
}

/// The pool to pass over: the spec and metadata of `object` (from the watch), with the status
/// the slot remembers. A slot that remembers none (the first pass since this replica gained
/// the lead) reads the stored pool, because the watch may not have delivered the status the
/// last leader wrote, and `previous` must be that status (step numbering, transition,
/// condition times). `None` when the pool is gone or is another object of the same name.
async fn current(
    pools: &Api<DynamicObject>,
    object: &Arc<DynamicObject>,
    uid: &str,
    slot: &mut PoolSlot,
) -> Result<Option<StoredPool>, Error> {
    if object.uid().as_deref() != Some(uid) {
        return Ok(None);
    }
    if let Some(memory) = &slot.status {
        return Ok(Some(slot.spec.pool(object.clone(), memory.status())));
    }
    let name = object.name_any();
    let fresh = pools
        .get_opt(&name)
        .await
        .map_err(|source| Error::ReadPool {
            namespace: object.namespace().unwrap_or_default(),
            name: name.clone(),
            source,
        })?;
    let Some(fresh) = fresh.filter(|p| p.uid().as_deref() == Some(uid)) else {
        return Ok(None);
    };
    let pool = StoredPool::decode(fresh);
    slot.status = Some(StatusMemory::of(pool.status.as_ref()));
    slot.spec.remember(&pool);
    Ok(Some(pool))
}

/// What is left of the turn when a pass starts.
#[derive(Clone, Copy)]
struct TurnLeft {
    /// Another pass may follow in this turn if this one asks for it at once
    /// ([`STEPS_IN_ONE_TURN`] has not run out).
    steps: bool,
    /// How long the turn may still wait for chat servers to leave ([`DRAIN_IN_ONE_TURN`]).
    drain: std::time::Duration,
}

impl TurnLeft {
    /// Whether a pass that asks to come back after `requeue` is followed within the turn: at
    /// once, or, while the pool drains, after the wait for the next look.
    fn continues(self, requeue: std::time::Duration, draining: bool) -> bool {
        self.steps && (requeue == engine::requeue::NEXT_STEP || (draining && requeue <= self.drain))
    }
}

/// What a pass asks of the turn.
struct Next {
    /// When to come back.
    requeue: std::time::Duration,
    /// The next pass follows within this turn, after `requeue`.
    continues: bool,
}

/// One pass over a pool this replica leads: returns when to come back and whether the turn
/// goes on.
async fn pass(
    ctx: &Context,
    pools: &Api<DynamicObject>,
    pool: &StoredPool,
    uid: &str,
    left: TurnLeft,
    slot: &mut PoolSlot,
) -> Result<Next, Error> {
    let name = pool.name();
    let namespace = pool.namespace();
    let previous = pool.status.as_ref();
    let round_trips_before = slot.port.as_ref().map_or(0, |(_, port)| port.round_trips());
    let mut publisher = ConfigMapPublisher::new(
        Api::<ConfigMap>::namespaced(ctx.client.clone(), &namespace),
        &namespace,
        &name,
        owner_reference(&name, uid),
        &mut slot.turn.published,
    );
    let pool_name = format!("{namespace}/{name}");
    let input = engine::PassInput {
        pool: &pool_name,
        spec: pool.spec.as_ref().map_err(String::as_str),
        generation: pool.generation(),
        previous,
        now: Timestamp::now(),
        timing: ctx.timing,
        gate: &ctx.leadership,
        progress: Some(&StatusDuringStep {
            ctx,
            pools,
            name: &name,
        }),
    };
    let mut ports = SecretPorts {
        ctx,
        namespace: &namespace,
        uid,
        port: &mut slot.port,
        material: &mut slot.turn.material,
    };
    let report = engine::reconcile_once(input, &mut ports, &mut publisher).await;
    let statements = match &report.step_ran {
        Some((_, Ok(run))) => run.statements_sent,
        _ => 0,
    };
    let round_trips = slot
        .port
        .as_ref()
        .map_or(0, |(_, port)| port.round_trips())
        .saturating_sub(round_trips_before)
        + statements;

    // A long (or paused) pass may outlive the lease: then the new leader writes, not this
    // replica.
    if !ctx.leadership.may_write().await {
        return Ok(Next {
            requeue: ctx.timing.not_leader_retry,
            continues: false,
        });
    }
    let draining = report
        .decision
        .as_ref()
        .is_some_and(|d| engine::requeue::draining(d, report.step_ran.as_ref()));
    let follows = left.continues(report.requeue_after, draining);
    // A status equal to the one the watch shows is not written again: a converged pool makes
    // no API write from one resync to the next. One that records nothing a later pass could
    // not observe again waits for the turn's last pass (`status_patch::deferrable`).
    if previous != Some(&report.status) || slot.status_unwritten {
        let defer =
            follows && previous.is_some_and(|p| status_patch::deferrable(p, &report.status));
        if !defer {
            // A write that failed may still have been stored (an answer lost on the way
            // back): the next pass reads the stored status again rather than trust the slot's.
            slot.status = None;
            slot.status_unwritten = false;
            status_patch::apply(pools, &name, &report.status)
                .await
                .map_err(|source| Error::WriteStatus {
                    namespace: namespace.clone(),
                    name: name.clone(),
                    source,
                })?;
        }
        slot.status = Some(StatusMemory::of(Some(&report.status)));
        slot.status_unwritten = defer;
    }
    let evs = events::derive(previous, &report.status, report.step_ran.as_ref());
    events::publish(
        &ctx.recorder,
        &pool.object.object_ref(&stored::api_resource()),
        evs,
    )
    .await;

    let m = &ctx.metrics;
    m.pass(&namespace, &name, report.outcome);
    if let Some(reason) = &report.error_reason {
        m.error(&namespace, &name, reason);
    }
    if let Some((step, Ok(run))) = &report.step_ran {
        m.step(step.name(), run.elapsed);
    }
    m.round_trips(&namespace, &name, round_trips);
    // A spec that cannot be read has no sites: its per-site gauges are absent.
    let sites: Vec<String> = pool
        .spec
        .iter()
        .flat_map(|spec| spec.sites.iter().map(|s| s.name.clone()))
        .collect();
    m.status(&namespace, &name, &sites, &report.status);
    Ok(Next {
        requeue: report.requeue_after,
        continues: follows,
    })
}

/// Writes the status while a step's BACKUP or RESTORE runs, as long as this replica leads.
struct StatusDuringStep<'a> {
    ctx: &'a Context,
    pools: &'a Api<DynamicObject>,
    name: &'a str,
}

impl engine::ProgressSink for StatusDuringStep<'_> {
    fn report<'a>(&'a self, status: &'a PersistentChatPoolStatus) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if !self.ctx.leadership.may_write().await {
                return;
            }
            if let Err(e) = status_patch::apply(self.pools, self.name, status).await {
                tracing::warn!(error = %e, "the step's progress cannot be written to status");
            }
        })
    }
}

/// The pool's SQL port, logged in with what its Secrets hold (read once a turn). The port
/// (and so its connections) is kept in the pool's slot from pass to pass, and replaced when
/// the credentials or the CA change, so a rotated password is used from the next turn.
struct SecretPorts<'a> {
    ctx: &'a Context,
    namespace: &'a str,
    uid: &'a str,
    port: &'a mut Option<(u64, LivePort)>,
    material: &'a mut Option<(SecretNames, Result<Material, CredentialsProblem>)>,
}

impl SecretPorts<'_> {
    /// What the Secrets `spec` names hold: read from the API server at the turn's first pass
    /// (or when the spec names other Secrets), from the turn's memory after that.
    async fn material(
        &mut self,
        spec: &PersistentChatPoolSpec,
    ) -> Result<Result<Material, CredentialsProblem>, Error> {
        let names = (
            spec.sql_credentials_secret.clone(),
            spec.tls.ca_secret.clone(),
        );
        if let Some((read_for, material)) = self.material.as_ref()
            && *read_for == names
        {
            return Ok(material.clone());
        }
        let secrets: Api<Secret> = Api::namespaced(self.ctx.client.clone(), self.namespace);
        let material = credentials::load(&secrets, self.namespace, spec).await?;
        *self.material = Some((names, material.clone()));
        Ok(material)
    }
}

impl PortSource for SecretPorts<'_> {
    fn port<'a>(
        &'a mut self,
        spec: &'a PersistentChatPoolSpec,
    ) -> BoxFuture<'a, Result<&'a mut dyn SqlPort, PortUnavailable>> {
        Box::pin(async move {
            let material = match self.material(spec).await {
                Err(unreadable) => {
                    return Err(PortUnavailable::Retry {
                        reason: ConditionReason::SecretUnreadable,
                        message: unreadable.to_string(),
                    });
                }
                Ok(Err(problem)) => {
                    // Keep no connection logged in with credentials that are gone.
                    *self.port = None;
                    return Err(PortUnavailable::NeedsPerson {
                        reason: problem.reason(),
                        message: problem.to_string(),
                    });
                }
                Ok(Ok(material)) => material,
            };
            let fingerprint = material.fingerprint();
            let kept = self
                .port
                .take()
                .filter(|(kept_fingerprint, _)| *kept_fingerprint == fingerprint);
            let entry = match kept {
                Some(entry) => entry,
                None => {
                    let ca = match &material.ca_pem {
                        None => None,
                        Some(pem) => Some(
                            credentials::write_ca_file(&self.ctx.ca_dir, self.uid, pem).map_err(
                                |e| PortUnavailable::Retry {
                                    reason: ConditionReason::CaFileUnwritable,
                                    message: format!(
                                        "cannot write the CA certificate to {}: {e}",
                                        self.ctx.ca_dir.display()
                                    ),
                                },
                            )?,
                        ),
                    };
                    tracing::info!("logging in with the credentials of the pool's Secret");
                    (
                        fingerprint,
                        LivePort::new(material.credentials, ca)
                            .with_client_name(self.ctx.leadership.identity()),
                    )
                }
            };
            let (_, port) = self.port.insert(entry);
            Ok(port as &mut dyn SqlPort)
        })
    }
}

/// The pool as the controlling owner of its ConfigMap (garbage-collected with it).
fn owner_reference(name: &str, uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: PersistentChatPool::api_version(&()).into_owned(),
        kind: PersistentChatPool::kind(&()).into_owned(),
        name: name.to_string(),
        uid: uid.to_string(),
        controller: Some(true),
        block_owner_deletion: None,
    }
}

/// The kube-runtime error policy: count the failure, log it, retry soon.
pub fn error_policy(pool: Arc<DynamicObject>, error: &Error, ctx: Arc<Context>) -> Action {
    let name = pool.name_any();
    let namespace = pool.namespace().unwrap_or_default();
    tracing::warn!(%namespace, pool = %name, error = %error, "reconcile failed, retrying");
    ctx.metrics.pass(&namespace, &name, PassOutcome::Error);
    ctx.metrics.error(&namespace, &name, error.reason());
    Action::requeue(crate::engine::requeue::jittered(
        ctx.timing.error_retry,
        &format!("{namespace}/{name}"),
        Timestamp::now(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::requeue::{DRAIN, DRAIN_FIRST, IDLE, NEXT_STEP};

    #[test]
    fn a_turn_goes_on_at_once_while_steps_are_left_and_after_a_drain_look_while_drain_time_is_left()
    {
        let fresh = TurnLeft {
            steps: true,
            drain: DRAIN_IN_ONE_TURN,
        };
        assert!(fresh.continues(NEXT_STEP, false), "the switch's next step");
        assert!(
            fresh.continues(DRAIN_FIRST, true),
            "the first look at a drain"
        );
        assert!(
            !fresh.continues(DRAIN, false),
            "a wait that is not a drain's goes back to the queue"
        );
        assert!(!fresh.continues(IDLE, false));
        let drained_long = TurnLeft {
            steps: true,
            drain: DRAIN - std::time::Duration::from_millis(1),
        };
        assert!(
            !drained_long.continues(DRAIN, true),
            "past the drain's time in one turn the pool queues again"
        );
        assert!(drained_long.continues(NEXT_STEP, false));
        let ten_seconds_on = TurnLeft {
            steps: false,
            drain: DRAIN_IN_ONE_TURN,
        };
        assert!(!ten_seconds_on.continues(NEXT_STEP, false));
        assert!(!ten_seconds_on.continues(DRAIN_FIRST, true));
    }
}
