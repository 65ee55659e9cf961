//! A `SqlPort` test double built on the planner's model executor (`plan::effects::apply`), and
//! fixtures for the engine and local-mode tests.
//!
//! What this double does NOT prove: that the T-SQL of a step has the modelled effect, that
//! observation is one round trip per instance or concurrent, anything about connections, TLS,
//! timeouts or SQL Server's real error behaviour. It proves the engine's own logic: one step
//! per pass, what it publishes, the status it assembles, and when it comes back. The
//! simulator-backed tests prove the rest once the real port lands.

use futures::future::BoxFuture;
use jiff::Timestamp;
use pchat_core::api::{PersistentChatPool, PersistentChatPoolSpec};
use pchat_core::observe::{Observation, Published};
use pchat_core::plan::{Step, effects, invariants};
use pchat_operator::engine::{SqlPort, StepError, StepRun, WriteGate};

/// The world as the planner's model says each step leaves it.
pub struct ModelPort {
    pub world: Observation,
    pub observe_calls: usize,
    pub run_calls: usize,
    /// Every step run, in order.
    pub steps: Vec<Step>,
    /// Errors returned (instead of running) by the next `run` calls, first first.
    pub fail_next: Vec<StepError>,
    /// Invariant violations any step caused (must stay empty).
    pub violations: Vec<String>,
}

impl ModelPort {
    pub fn new(world: Observation) -> Self {
        ModelPort {
            world,
            observe_calls: 0,
            run_calls: 0,
            steps: Vec::new(),
            fail_next: Vec::new(),
            violations: Vec::new(),
        }
    }
}

impl SqlPort for ModelPort {
    fn observe<'a>(
        &'a mut self,
        _spec: &'a PersistentChatPoolSpec,
        published: Option<Published>,
        now: Timestamp,
    ) -> BoxFuture<'a, Observation> {
        self.observe_calls += 1;
        self.world.taken_at = now;
        // What is published is the publisher's, never the SQL side's.
        self.world.published = published;
        let obs = self.world.clone();
        Box::pin(async move { obs })
    }

    fn run<'a>(
        &'a mut self,
        spec: &'a PersistentChatPoolSpec,
        step: &'a Step,
        obs: &'a Observation,
        _gate: &'a dyn WriteGate,
    ) -> BoxFuture<'a, Result<StepRun, StepError>> {
        self.run_calls += 1;
        if !self.fail_next.is_empty() {
            let e = self.fail_next.remove(0);
            return Box::pin(async move { Err(e) });
        }
        let before = self.world.clone();
        effects::apply(spec, step, &mut self.world, obs.taken_at);
        self.violations.extend(invariants::step_violations(
            spec,
            &before,
            step,
            &self.world,
        ));
        self.steps.push(step.clone());
        let n = step.instances().len() as u64;
        Box::pin(async move {
            Ok(StepRun {
                statements_sent: n,
                writes: n,
                elapsed: std::time::Duration::from_millis(1),
            })
        })
    }
}

pub fn fixture_path(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

pub fn read(name: &str) -> String {
    let path = fixture_path(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The test pool with `primary` as its primary site.
pub fn spec(primary: &str) -> PersistentChatPoolSpec {
    let pool: PersistentChatPool = serde_saphyr::from_str(&read("pool.yaml")).expect("pool.yaml");
    let mut spec = pool.spec;
    spec.primary_site = primary.to_string();
    spec
}

pub fn observed(name: &str) -> Observation {
    serde_saphyr::from_str(&read(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

pub fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}
