//! One reconcile pass, the same in every mode: validate the spec, get a SQL port, read what is
//! published, observe every instance, plan once, run at most one step, assemble status once
//! and decide when to come back. The Kubernetes controller and local mode only supply the
//! spec, the port and the publisher, and write what the pass reports.
//!
//! The engine reaches SQL Server only through [`SqlPort`] and the published active-server list
//! only through [`Publisher`], so the same pass runs against the real executor, the simulator,
//! or a test double.

pub mod publish;
pub mod requeue;
pub mod sql_port;
mod status;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use jiff::Timestamp;
use tokio::sync::watch;
use tracing::Instrument;

use pchat_core::api::{
    ConditionReason, PersistentChatPoolSpec, PersistentChatPoolStatus, Phase, StepProgress,
};
use pchat_core::observe::{Observation, Published};
use pchat_core::plan::{self, Decision, Step, WaitReason};

/// Whether this process may still change anything: asked before every step, SQL or
/// publication, and by the SQL port before every statement of a step.
pub use pchat_sql::execute::{AlwaysWrite, StatementProgress, WriteGate};
pub use publish::{FilePublisher, MemoryPublisher};
pub use requeue::Timing;

/// What running one step cost.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepRun {
    /// Statements (batches) sent to SQL instances.
    pub statements_sent: u64,
    /// Of those, the ones that change something.
    pub writes: u64,
    /// Wall time the step took.
    pub elapsed: Duration,
}

/// Why a step did not complete. Plain data (not the SQL error itself) so that a report can be
/// cloned, compared and kept.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StepError {
    /// What went wrong, naming the instance and the statement.
    pub message: String,
    /// Whether running the same step again later may succeed without anyone's help.
    pub retryable: bool,
    /// The SQL Server error number, when SQL Server raised the error.
    pub number: Option<u32>,
}

impl From<pchat_sql::SqlError> for StepError {
    fn from(e: pchat_sql::SqlError) -> Self {
        StepError {
            retryable: e.is_retryable(),
            number: e.number(),
            message: e.to_string(),
        }
    }
}

impl From<crate::Error> for StepError {
    fn from(e: crate::Error) -> Self {
        StepError {
            retryable: e.is_retryable(),
            message: e.to_string(),
            number: None,
        }
    }
}

/// The engine's way to SQL Server: observe the pool, run one SQL step.
pub trait SqlPort: Send {
    /// Observe every instance the spec names (concurrently), with `published` as the
    /// observation's published state. Never fails: an instance that does not answer is
    /// reported unreachable in the observation.
    fn observe<'a>(
        &'a mut self,
        spec: &'a PersistentChatPoolSpec,
        published: Option<Published>,
        now: Timestamp,
    ) -> BoxFuture<'a, Observation>;

    /// Run one step whose target is SQL Server (every step but `PublishActiveServers`, which
    /// goes to the [`Publisher`]). `obs` is the observation the step was planned from; `gate`
    /// is asked again before each statement the step sends.
    fn run<'a>(
        &'a mut self,
        spec: &'a PersistentChatPoolSpec,
        step: &'a Step,
        obs: &'a Observation,
        gate: &'a dyn WriteGate,
    ) -> BoxFuture<'a, Result<StepRun, StepError>>;

    /// The latest reading of a BACKUP or RESTORE that [`SqlPort::run`] has running, `None`
    /// between them; a port that cannot tell has no receiver.
    fn progress(&self) -> Option<watch::Receiver<Option<StatementProgress>>> {
        None
    }
}

/// Where the status goes while a step runs (a pass otherwise writes it once, at its end).
pub trait ProgressSink: Sync {
    /// Write `status`, the pass's status so far with the step's progress in it.
    fn report<'a>(&'a self, status: &'a PersistentChatPoolStatus) -> BoxFuture<'a, ()>;
}

/// Where the active-server list and pool state are published: a file locally, a ConfigMap in
/// Kubernetes.
pub trait Publisher: Send {
    /// What is published now; `None` when nothing ever was.
    fn current(&mut self) -> BoxFuture<'_, crate::Result<Option<Published>>>;
    /// Replace what is published.
    fn publish<'a>(&'a mut self, published: &'a Published) -> BoxFuture<'a, crate::Result<()>>;
}

/// Why a pass has no SQL port to observe with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortUnavailable {
    /// Something a person must provide is missing (a Secret or one of its keys): the pass
    /// stops Stalled with this reason, and the message names the object and the key.
    NeedsPerson {
        reason: ConditionReason,
        message: String,
    },
    /// Getting the port failed in a way that may clear by itself (the API server did not
    /// answer): the pass stops Reconciling and comes back after `timing.error_retry`.
    Retry {
        reason: ConditionReason,
        message: String,
    },
}

/// Where a pass gets its SQL port. In Kubernetes the port's credentials come from the pool's
/// Secret, which may be missing; elsewhere the port is simply there (every [`SqlPort`] is its
/// own source).
pub trait PortSource: Send {
    fn port<'a>(
        &'a mut self,
        spec: &'a PersistentChatPoolSpec,
    ) -> BoxFuture<'a, Result<&'a mut dyn SqlPort, PortUnavailable>>;
}

impl<T: SqlPort> PortSource for T {
    fn port<'a>(
        &'a mut self,
        _spec: &'a PersistentChatPoolSpec,
    ) -> BoxFuture<'a, Result<&'a mut dyn SqlPort, PortUnavailable>> {
        Box::pin(async move { Ok(self as &mut dyn SqlPort) })
    }
}

/// What a pass starts from.
#[derive(Clone, Copy)]
pub struct PassInput<'a> {
    /// The pool's name in logs: `namespace/name` in Kubernetes, the manifest's path locally.
    pub pool: &'a str,
    /// The spec as read, not yet validated; `Err` with the reason when the manifest could not
    /// be read at all.
    pub spec: Result<&'a PersistentChatPoolSpec, &'a str>,
    /// `metadata.generation` (status `observedGeneration`).
    pub generation: Option<i64>,
    /// The status the last pass wrote, used only for reporting (the planner never reads it).
    pub previous: Option<&'a PersistentChatPoolStatus>,
    pub now: Timestamp,
    pub timing: Timing,
    /// Asked before the step is run.
    pub gate: &'a dyn WriteGate,
    /// Where the status goes while a BACKUP or RESTORE of the step runs; `None`: only at the
    /// end of the pass.
    pub progress: Option<&'a dyn ProgressSink>,
}

impl<'a> PassInput<'a> {
    /// A pass over a spec that was read, with the default timing.
    pub fn new(
        pool: &'a str,
        spec: &'a PersistentChatPoolSpec,
        generation: Option<i64>,
        previous: Option<&'a PersistentChatPoolStatus>,
        now: Timestamp,
    ) -> Self {
        PassInput {
            pool,
            spec: Ok(spec),
            generation,
            previous,
            now,
            timing: Timing::default(),
            gate: &AlwaysWrite,
            progress: None,
        }
    }
}

/// What one pass amounted to: the `outcome` label of `pchat_reconciles_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "lowercase")]
pub enum PassOutcome {
    /// A step ran and succeeded.
    Step,
    /// Nothing to do.
    Converged,
    /// Waiting on something that moves by itself (drain, an unreachable instance).
    Waiting,
    /// The planner refuses to go on without a person.
    Blocked,
    /// The spec is invalid: nothing was sent.
    Invalid,
    /// `spec.suspend` is true.
    Suspended,
    /// Stalled before planning (a missing Secret or key): nothing was sent.
    Stalled,
    /// A step or a Kubernetes request failed.
    Error,
}

impl PassOutcome {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// The outcome of one pass.
#[derive(Clone, Debug, PartialEq)]
pub struct PassReport {
    /// The status to write.
    pub status: PersistentChatPoolStatus,
    /// When to run the next pass.
    pub requeue_after: Duration,
    /// The step this pass ran, and how it went.
    pub step_ran: Option<(Step, Result<StepRun, StepError>)>,
    /// The planner's decision; `None` when the pass stopped before planning.
    pub decision: Option<Decision>,
    /// The observation the pass planned from; `None` when it stopped before observing.
    pub observation: Option<Observation>,
    /// What the pass amounted to, for metrics.
    pub outcome: PassOutcome,
    /// Why it failed or stalled (a condition reason or an error kind), for metrics.
    pub error_reason: Option<String>,
}

/// Numbers the passes of this process, so that the log lines of one pass can be told from
/// the next one's.
static PASSES: AtomicU64 = AtomicU64::new(0);

/// One reconcile pass. Every log line it makes, down to each SQL statement, carries the
/// pass's span: the pool, the pass number, the generation and (once planned) the step.
pub async fn reconcile_once(
    input: PassInput<'_>,
    ports: &mut dyn PortSource,
    publisher: &mut dyn Publisher,
) -> PassReport {
    let span = tracing::info_span!(
        "pass",
        pool = input.pool,
        pass = PASSES.fetch_add(1, Ordering::Relaxed) + 1,
        generation = input.generation,
        step = tracing::field::Empty
    );
    pass(input, ports, publisher).instrument(span).await
}

async fn pass(
    input: PassInput<'_>,
    ports: &mut dyn PortSource,
    publisher: &mut dyn Publisher,
) -> PassReport {
    let PassInput {
        generation,
        previous,
        now,
        timing,
        ..
    } = input;
    let spec = match usable_spec(&input) {
        Ok(spec) => spec,
        Err(stopped) => return *stopped,
    };
    let port = match ports.port(spec).await {
        Ok(port) => port,
        Err(PortUnavailable::NeedsPerson { reason, message }) => {
            tracing::warn!(reason = reason.as_str(), "{message}");
            return stopped(
                status::stalled_because(reason, &message, generation, previous, now),
                timing.stalled_retry,
                PassOutcome::Stalled,
                reason,
            );
        }
        Err(PortUnavailable::Retry { reason, message }) => {
            tracing::warn!(reason = reason.as_str(), "{message}");
            return stopped(
                status::retrying(reason, &message, generation, previous, now),
                timing.error_retry,
                PassOutcome::Error,
                reason,
            );
        }
    };
    let published = match publisher.current().await {
        Ok(published) => published,
        Err(e) => {
            // Without the published state the drain timer and "was anything ever published"
            // are unknown: planning now could skip a drain. Wait and retry.
            tracing::warn!(error = %e, "cannot read the published state");
            return stopped(
                status::retrying(
                    ConditionReason::PublishedStateUnreadable,
                    &format!("cannot read the published active-server list, retrying: {e}"),
                    generation,
                    previous,
                    now,
                ),
                requeue::BACKOFF_MIN,
                PassOutcome::Error,
                ConditionReason::PublishedStateUnreadable,
            );
        }
    };
    let obs = port.observe(spec, published, now).await;
    let outlook = plan::outlook(spec, &obs, now);
    let decision = outlook.assessment.decision.clone();
    tracing::info!(decision = %decision, "planned");

    let step_ran = match &decision {
        Decision::Step(step) => {
            tracing::Span::current().record("step", step.name());
            let planned = Planned {
                spec,
                step,
                obs: &obs,
                outlook: &outlook,
            };
            Some((
                step.clone(),
                run_planned(&input, planned, port, publisher).await,
            ))
        }
        _ => None,
    };

    let status = status::assemble(&status::Inputs {
        spec,
        generation,
        obs: &obs,
        assessment: &outlook.assessment,
        remaining_steps: outlook.remaining_steps,
        step_ran: step_ran.as_ref().map(|(s, r)| (s, r)),
        previous,
        now,
    });
    let requeue_after = requeue::after_plan(
        input.pool,
        &decision,
        requeue::Seen {
            protected: outlook.assessment.protected,
            chat_servers_connected: plan::chat_servers_connected(spec, &obs),
        },
        step_ran.as_ref(),
        previous,
        now,
    );
    let (outcome, error_reason) = outcome_of(&decision, step_ran.as_ref(), &status);
    PassReport {
        status,
        requeue_after,
        step_ran,
        decision: Some(decision),
        observation: Some(obs),
        outcome,
        error_reason,
    }
}

/// `input`'s spec when it can be used; otherwise the report of a pass that stops there with
/// nothing observed or sent: a manifest that could not be read, or a spec validation refuses.
fn usable_spec<'a>(input: &PassInput<'a>) -> Result<&'a PersistentChatPoolSpec, Box<PassReport>> {
    let invalid = |message: &str| {
        Box::new(stopped(
            status::invalid_because(message, input.generation, input.previous, input.now),
            requeue::IDLE,
            PassOutcome::Invalid,
            ConditionReason::InvalidSpec,
        ))
    };
    let spec = input.spec.map_err(|unreadable| {
        tracing::error!(error = unreadable, "the manifest cannot be used");
        invalid(unreadable)
    })?;
    if let Err(refused) = pchat_core::api::validate(spec) {
        // One violation per line in the error; one line in the log and in the condition.
        let violations = refused.to_string().replace('\n', "; ");
        tracing::warn!(%violations, "invalid spec: nothing is observed or sent");
        return Err(invalid(&violations));
    }
    Ok(spec)
}

/// The step a pass decided on, with what it was planned from.
struct Planned<'p> {
    spec: &'p PersistentChatPoolSpec,
    step: &'p Step,
    obs: &'p Observation,
    outlook: &'p plan::Outlook,
}

/// Run the planned step if this replica may still write (a step not run because the Lease
/// was lost is a retryable error); while it runs, the status shows its progress each time
/// the port reads some from SQL Server.
async fn run_planned(
    input: &PassInput<'_>,
    planned: Planned<'_>,
    port: &mut dyn SqlPort,
    publisher: &mut dyn Publisher,
) -> Result<StepRun, StepError> {
    let Planned {
        spec,
        step,
        obs,
        outlook,
    } = planned;
    if !input.gate.may_write().await {
        tracing::warn!("not run: this replica may no longer write");
        return Err(StepError {
            message: format!(
                "{} was not run: this replica no longer holds the Lease, another one acts",
                step.name()
            ),
            retryable: true,
            number: None,
        });
    }
    let readings = port.progress();
    let acting = act(spec, step, obs, port, publisher, input.gate, input.now);
    match (readings, input.progress) {
        (Some(readings), Some(sink)) => {
            // The status as it will read unless the step changes it, to which each reading
            // of a running BACKUP or RESTORE is added; assembled at the first reading only
            // (most steps have none).
            let during = || {
                status::assemble(&status::Inputs {
                    spec,
                    generation: input.generation,
                    obs,
                    assessment: &outlook.assessment,
                    remaining_steps: outlook.remaining_steps,
                    step_ran: None,
                    previous: input.previous,
                    now: input.now,
                })
            };
            report_progress(acting, readings, sink, during).await
        }
        _ => acting.await,
    }
}

/// How long a step runs before the status naming it is written while it runs. The status
/// after a step that the next one follows at once may be left for a later pass to write
/// (see the controller), so a step that takes its time in SQL Server shows in status as it
/// runs, and one of a few milliseconds costs no write.
pub const STEP_SHOWN_AFTER: Duration = Duration::from_millis(250);

/// Run `acting` to its end, writing `during()` once it has run [`STEP_SHOWN_AFTER`], and with
/// the step's progress each time the port has a new reading of a running BACKUP or RESTORE
/// (the sink is not waited for by the step: a slow API server delays the next reading, never
/// the statement).
async fn report_progress(
    acting: impl std::future::Future<Output = Result<StepRun, StepError>>,
    mut readings: watch::Receiver<Option<StatementProgress>>,
    sink: &dyn ProgressSink,
    during: impl FnOnce() -> PersistentChatPoolStatus,
) -> Result<StepRun, StepError> {
    tokio::pin!(acting);
    let mut during = Some(during);
    let mut status: Option<PersistentChatPoolStatus> = None;
    let shown_after = tokio::time::sleep(STEP_SHOWN_AFTER);
    tokio::pin!(shown_after);
    let mut shown = false;
    loop {
        // What to write now: the step as it runs, with a new progress reading or none.
        let progress = tokio::select! {
            result = &mut acting => return result,
            () = &mut shown_after, if !shown => {
                shown = true;
                None
            }
            changed = readings.changed() => {
                if changed.is_err() {
                    return acting.await;
                }
                let reading = readings.borrow_and_update().clone();
                let Some(reading) = reading else { continue };
                Some(StepProgress {
                    instance: reading.instance,
                    command: reading.command,
                    percent_complete: u32::from(reading.percent_complete),
                    reported_at: Timestamp::now(),
                })
            }
        };
        let status = status.get_or_insert_with(|| during.take().expect("taken once")());
        let Some(step) = status.step.as_mut() else {
            continue;
        };
        if progress.is_some() {
            step.progress = progress;
        }
        tokio::select! {
            result = &mut acting => return result,
            () = sink.report(status) => {}
        }
    }
}

/// The report of a pass that stopped before planning.
fn stopped(
    status: PersistentChatPoolStatus,
    requeue_after: Duration,
    outcome: PassOutcome,
    reason: ConditionReason,
) -> PassReport {
    PassReport {
        status,
        requeue_after,
        step_ran: None,
        decision: None,
        observation: None,
        outcome,
        error_reason: Some(reason.as_str().to_string()),
    }
}

/// Run the decided step against its target: the publisher for a publication, SQL Server for
/// everything else.
async fn act(
    spec: &PersistentChatPoolSpec,
    step: &Step,
    obs: &Observation,
    port: &mut dyn SqlPort,
    publisher: &mut dyn Publisher,
    gate: &dyn WriteGate,
    now: Timestamp,
) -> Result<StepRun, StepError> {
    let result = match publication(step, now) {
        Some(published) => {
            let started = std::time::Instant::now();
            publisher
                .publish(&published)
                .await
                .map(|()| StepRun {
                    statements_sent: 0,
                    writes: 0,
                    elapsed: started.elapsed(),
                })
                .map_err(StepError::from)
        }
        None => port.run(spec, step, obs, gate).await,
    };
    match &result {
        Ok(run) => tracing::info!(
            site = step.site(),
            statements = run.statements_sent,
            writes = run.writes,
            elapsed_ms = run.elapsed.as_millis() as u64,
            "step done"
        ),
        Err(e) => tracing::warn!(
            site = step.site(),
            retryable = e.retryable,
            error = %e,
            "step failed"
        ),
    }
    result
}

/// What a `PublishActiveServers` step publishes; `None` for a step whose target is SQL Server.
fn publication(step: &Step, now: Timestamp) -> Option<Published> {
    match step {
        Step::PublishActiveServers {
            servers,
            pool_state,
            ..
        } => Some(Published {
            active_servers: servers.clone(),
            pool_state: *pool_state,
            published_at: now,
        }),
        _ => None,
    }
}

/// The metrics outcome of a pass that planned, and its error reason when it failed or
/// stalled.
fn outcome_of(
    decision: &Decision,
    step_ran: Option<&(Step, Result<StepRun, StepError>)>,
    status: &PersistentChatPoolStatus,
) -> (PassOutcome, Option<String>) {
    match (step_ran, decision) {
        (Some((_, Ok(_))), _) => (PassOutcome::Step, None),
        (Some((_, Err(e))), _) => (
            PassOutcome::Error,
            Some(
                if e.retryable {
                    ConditionReason::StepRetrying
                } else {
                    ConditionReason::StepFailed
                }
                .to_string(),
            ),
        ),
        (None, Decision::Converged) => (PassOutcome::Converged, None),
        (None, Decision::Wait(WaitReason::Suspended)) => (PassOutcome::Suspended, None),
        (None, Decision::Wait(_)) => (
            PassOutcome::Waiting,
            // A wait that has lasted past `unreachableAfter` is Stalled: counted as such.
            pchat_core::api::conditions::find(
                &status.conditions,
                pchat_core::api::ConditionType::Stalled,
            )
            .filter(|c| c.status == "True")
            .map(|c| c.reason.clone()),
        ),
        (None, Decision::Blocked(_)) => {
            let reason = pchat_core::api::conditions::find(
                &status.conditions,
                pchat_core::api::ConditionType::Stalled,
            )
            .filter(|c| c.status == "True")
            .map(|c| c.reason.clone())
            .unwrap_or_else(|| ConditionReason::InPhase(Phase::Blocked).to_string());
            (PassOutcome::Blocked, Some(reason))
        }
        // A step decided but not run cannot happen: `act` runs every decided step.
        (None, Decision::Step(_)) => (PassOutcome::Error, Some("StepNotRun".into())),
    }
}
