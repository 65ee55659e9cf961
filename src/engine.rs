//! One reconcile pass, shared by every mode (local file mode now, Kubernetes later): validate,
//! observe every instance, plan, run at most one step, and report the new status and when to
//! come back.
//!
//! The engine reaches SQL Server only through [`SqlPort`] and the published active-server list
//! only through [`Publisher`], so the same pass runs against the real executor, the simulator,
//! or a test double.

pub mod publish;
pub mod sql_port;
pub mod status;

use std::time::Duration;

use futures::future::BoxFuture;
use jiff::Timestamp;

use pchat_core::api::{PersistentChatPoolSpec, PersistentChatPoolStatus};
use pchat_core::observe::{Observation, Published};
use pchat_core::plan::{self, Decision, Step};

pub use publish::{FilePublisher, MemoryPublisher, PublishError};

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

impl From<PublishError> for StepError {
    fn from(e: PublishError) -> Self {
        // Publishing goes to a file or a ConfigMap: a failure there is expected to clear.
        StepError {
            message: e.to_string(),
            retryable: true,
            number: None,
        }
    }
}

/// The engine's way to SQL Server: observe the pool, run one step.
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

    /// Run one SQL step (never `PublishActiveServers`: the engine publishes those itself).
    /// `obs` is the observation the step was planned from.
    fn run<'a>(
        &'a mut self,
        spec: &'a PersistentChatPoolSpec,
        step: &'a Step,
        obs: &'a Observation,
    ) -> BoxFuture<'a, Result<StepRun, StepError>>;
}

/// Where the active-server list and pool state are published: a file locally, a ConfigMap in
/// Kubernetes.
pub trait Publisher: Send {
    /// What is published now; `None` when nothing ever was.
    fn current(&mut self) -> BoxFuture<'_, Result<Option<Published>, PublishError>>;
    /// Replace what is published.
    fn publish<'a>(
        &'a mut self,
        published: &'a Published,
    ) -> BoxFuture<'a, Result<(), PublishError>>;
}

/// Requeue after a step ran: the next step of a transition follows at once, because every
/// pause between steps is time the pool spends half-switched (and, between the drain and the
/// publish, time no chat server can write).
pub const REQUEUE_NEXT_STEP: Duration = Duration::ZERO;
/// Requeue after a step that also ran, the same way, in the pass before: the observation did
/// not show what it did, so coming back at once could send it in a tight loop.
pub const REQUEUE_ACTIVE: Duration = Duration::from_secs(1);
/// Requeue while chat-server sessions drain: the drain is the chat outage of a planned switch,
/// so the engine looks again often. One look is one catalog batch per instance.
pub const REQUEUE_DRAIN: Duration = Duration::from_millis(250);
/// Requeue when converged, blocked, invalid or suspended: nothing moves until the world or the
/// spec changes.
pub const REQUEUE_IDLE: Duration = Duration::from_secs(30);
/// Requeue while waiting on something outside the operator outside a transition.
pub const REQUEUE_WAIT: Duration = Duration::from_secs(5);
/// Bounds of the backoff after a retryable step error.
pub const BACKOFF_MIN: Duration = Duration::from_secs(2);
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// The outcome of one pass.
#[derive(Clone, Debug, PartialEq)]
pub struct PassReport {
    /// The status to write.
    pub status: PersistentChatPoolStatus,
    /// When to run the next pass.
    pub requeue_after: Duration,
    /// The step this pass ran, and how it went.
    pub step_ran: Option<(Step, Result<StepRun, StepError>)>,
    /// The planner's decision; `None` when the spec is invalid or nothing could be observed.
    pub decision: Option<Decision>,
    /// The observation the pass planned from; `None` when the spec is invalid or the published
    /// state could not be read.
    pub observation: Option<Observation>,
}

/// One reconcile pass. `generation` is the spec's `metadata.generation` (observedGeneration in
/// status); `previous` is the status written by the last pass, used only for reporting (the
/// planner never reads it).
pub async fn reconcile_once(
    spec: &PersistentChatPoolSpec,
    generation: Option<i64>,
    port: &mut dyn SqlPort,
    publisher: &mut dyn Publisher,
    now: Timestamp,
    previous: Option<&PersistentChatPoolStatus>,
) -> PassReport {
    if let Err(violations) = pchat_core::api::validate(spec) {
        tracing::warn!(violations = %violations.to_string().replace('\n', "; "), "invalid spec: nothing is observed or sent");
        return PassReport {
            status: status::invalid(&violations, generation, previous, now),
            requeue_after: REQUEUE_IDLE,
            step_ran: None,
            decision: None,
            observation: None,
        };
    }
    let published = match publisher.current().await {
        Ok(p) => p,
        Err(e) => {
            // Without the published state the drain timer and "was anything ever published"
            // are unknown: planning now could skip a drain. Wait and retry.
            tracing::warn!(error = %e, "cannot read the published state");
            return PassReport {
                status: status::publisher_unreadable(&e, generation, previous, now),
                requeue_after: BACKOFF_MIN,
                step_ran: None,
                decision: None,
                observation: None,
            };
        }
    };
    let obs = port.observe(spec, published, now).await;
    let assessment = plan::assess(spec, &obs, now);
    let decision = assessment.decision.clone();
    let projection = match &decision {
        Decision::Step(_) => Some(plan::project(spec, &obs, now)),
        _ => None,
    };
    tracing::info!(decision = %decision, "planned");

    let step_ran = match &decision {
        Decision::Step(step) => {
            let result = run_step(spec, step, &obs, port, publisher, now).await;
            match &result {
                Ok(run) => tracing::info!(
                    step = step.name(),
                    site = step.site(),
                    statements = run.statements_sent,
                    writes = run.writes,
                    elapsed_ms = run.elapsed.as_millis() as u64,
                    "step done"
                ),
                Err(e) => tracing::warn!(
                    step = step.name(),
                    site = step.site(),
                    retryable = e.retryable,
                    error = %e,
                    "step failed"
                ),
            }
            Some((step.clone(), result))
        }
        _ => None,
    };

    let status = status::assemble(&status::Inputs {
        spec,
        generation,
        obs: &obs,
        assessment: &assessment,
        projection: projection.as_ref(),
        step_ran: step_ran.as_ref().map(|(s, r)| (s, r)),
        previous,
        now,
    });
    let requeue_after = requeue(&decision, step_ran.as_ref(), previous, now);
    PassReport {
        status,
        requeue_after,
        step_ran,
        decision: Some(decision),
        observation: Some(obs),
    }
}

async fn run_step(
    spec: &PersistentChatPoolSpec,
    step: &Step,
    obs: &Observation,
    port: &mut dyn SqlPort,
    publisher: &mut dyn Publisher,
    now: Timestamp,
) -> Result<StepRun, StepError> {
    match step {
        Step::PublishActiveServers {
            servers,
            pool_state,
            ..
        } => {
            let started = std::time::Instant::now();
            let p = Published {
                active_servers: servers.clone(),
                pool_state: *pool_state,
                published_at: now,
            };
            publisher.publish(&p).await?;
            Ok(StepRun {
                statements_sent: 0,
                writes: 0,
                elapsed: started.elapsed(),
            })
        }
        _ => port.run(spec, step, obs).await,
    }
}

/// When to come back. A retryable error backs off by as long as the same step has been failing
/// (so the interval roughly doubles each time, between [`BACKOFF_MIN`] and [`BACKOFF_MAX`]),
/// measured from the step's `startedAt` in the previous status: the engine keeps no memory of
/// its own.
fn requeue(
    decision: &Decision,
    step_ran: Option<&(Step, Result<StepRun, StepError>)>,
    previous: Option<&PersistentChatPoolStatus>,
    now: Timestamp,
) -> Duration {
    use pchat_core::plan::WaitReason;
    match (decision, step_ran) {
        (_, Some((step, Ok(_)))) if ran_in_previous_pass(step, previous) => REQUEUE_ACTIVE,
        (_, Some((_, Ok(_)))) => REQUEUE_NEXT_STEP,
        (_, Some((step, Err(e)))) if e.retryable => {
            let failing_for = same_step_before(step, previous)
                .and_then(|s| s.started_at)
                .and_then(|t| now.duration_since(t).try_into().ok())
                .unwrap_or(Duration::ZERO);
            failing_for.clamp(BACKOFF_MIN, BACKOFF_MAX)
        }
        (_, Some((_, Err(_)))) => REQUEUE_IDLE,
        (Decision::Wait(WaitReason::Suspended), None) => REQUEUE_IDLE,
        (Decision::Wait(WaitReason::Draining { .. }), None) => REQUEUE_DRAIN,
        (Decision::Wait(WaitReason::PrimarySiteUnreachable { seconds_left, .. }), None) => {
            Duration::from_secs((*seconds_left).clamp(1, 5) as u64)
        }
        (Decision::Wait(_), None) => REQUEUE_WAIT,
        (Decision::Converged | Decision::Blocked(_), None) => REQUEUE_IDLE,
        (Decision::Step(_), None) => REQUEUE_ACTIVE,
    }
}

/// The previous pass's step, when it is `step` (same name, same detail).
fn same_step_before<'a>(
    step: &Step,
    previous: Option<&'a PersistentChatPoolStatus>,
) -> Option<&'a pchat_core::api::StepStatus> {
    previous
        .and_then(|p| p.step.as_ref())
        .filter(|s| s.name == step.name() && s.detail == step.describe())
}

/// Whether `step` is also the step the previous status records. It may have failed there (a
/// retry that now succeeded) or succeeded with no visible effect; either way one second's pause
/// costs little and bounds a loop.
fn ran_in_previous_pass(step: &Step, previous: Option<&PersistentChatPoolStatus>) -> bool {
    same_step_before(step, previous).is_some()
}
