//! `pchat-operator drill`: rehearse a pool's own switch before the real one. A simulated copy
//! of the pool (its instance names, sites, shares, databases and policy, its intervals divided
//! by a time scale) under a chat workload is bootstrapped from the installer's state, then
//! taken through three scenarios with the same engine and planner the operator runs: the
//! planned switch to the other site, the switch back, and a forced failover when the serving
//! site goes down, which the pool's policy allows or refuses. Nothing is sent to the pool's
//! real instances.

pub mod copy;
pub mod report;
pub mod source;

use std::time::Duration;

use crate::demo::acts::{self, ActOutcome, ForcedPolicy};
use crate::demo::world::{Setup, StepRecord, World};
use pchat_core::api::PersistentChatPoolSpec;

/// How a scenario ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Converged where asked, nothing lost that the scenario may not lose.
    Passed,
    /// The pool's policy refused the forced failover: what its operator configured, reported
    /// with the reason.
    Refused(String),
    /// Did not converge, lost acknowledged data or broke a safety rule.
    Failed(Vec<String>),
}

/// One scenario's outcome with the steps it ran.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub act: ActOutcome,
    pub steps: Vec<StepRecord>,
}

impl Scenario {
    /// Failed when the act found problems, else refused when the policy stopped the forced
    /// failover, else passed.
    pub fn verdict(&self) -> Verdict {
        match (&self.act.refused, self.act.problems.is_empty()) {
            (_, false) => Verdict::Failed(self.act.problems.clone()),
            (Some(reason), true) => Verdict::Refused(reason.to_string()),
            (None, true) => Verdict::Passed,
        }
    }
}

/// The whole drill.
#[derive(Clone, Debug)]
pub struct Drill {
    pub pool: String,
    pub spec: PersistentChatPoolSpec,
    pub compressed: copy::Compressed,
    pub rate_per_server: f64,
    /// The bootstrap from the installer's state (not a scenario: the drill's starting point).
    pub preparation: ActOutcome,
    pub scenarios: Vec<Scenario>,
    pub wall: Duration,
    /// Each scenario as a timeline picture.
    pub pictures: Vec<crate::demo::timeline::Picture>,
}

impl Drill {
    /// Whether every scenario converged (or was refused by the policy, as configured) without
    /// losing what it may not lose.
    pub fn passed(&self) -> bool {
        self.preparation.problems.is_empty()
            && self.scenarios.len() == SCENARIOS
            && self
                .scenarios
                .iter()
                .all(|s| !matches!(s.verdict(), Verdict::Failed(_)))
    }
}

/// The scenarios a drill runs.
pub const SCENARIOS: usize = 3;

/// Rehearse `spec` (already validated) named `pool` on its simulated copy (`copy`, from
/// [`copy::compress`]) under `rate_per_server` chat messages a second: start the copy,
/// bootstrap it, run the scenarios, stop. `Err` when the copy cannot be built or started.
pub async fn run(
    pool: &str,
    spec: &PersistentChatPoolSpec,
    copy: (PersistentChatPoolSpec, copy::Compressed),
    rate_per_server: f64,
) -> Result<Drill, String> {
    let started = std::time::Instant::now();
    let (drill_spec, compressed) = copy;
    let mut world = World::start_with(Setup {
        topology: copy::topology(spec)?,
        spec: drill_spec,
        rate_per_server,
    })
    .await?;
    let (first, second) = world.sites();
    world.act = 0;
    let mut preparation = ActOutcome::new(
        0,
        format!("bootstrap from the installer's state to serving from {first}"),
        true,
    );
    if let Err(e) = acts::converge(&mut world, &first).await {
        preparation.problems.push(e);
    }
    acts::finish(&mut world, &mut preparation, &[]).await;
    preparation.problems.extend(safety_violations(&world, 0));
    let mut scenarios = Vec::new();
    if preparation.problems.is_empty() {
        for number in 1..=SCENARIOS {
            let scenario = play(&mut world, number, &first, &second).await;
            let stop = !matches!(scenario.verdict(), Verdict::Passed);
            scenarios.push(scenario);
            if stop {
                break;
            }
        }
    }
    let acked = world.acked();
    let pictures = scenarios
        .iter()
        .map(|s| crate::demo::timeline::picture(&world, "scenario", &s.act, &acked))
        .collect();
    world.stop().await;
    Ok(Drill {
        pool: pool.to_string(),
        spec: spec.clone(),
        compressed,
        rate_per_server,
        preparation,
        scenarios,
        wall: started.elapsed(),
        pictures,
    })
}

/// The safety rules the engine broke during act `number` (the world checks every observation
/// against `plan::invariants`): each one fails the act.
fn safety_violations(world: &World, number: usize) -> Vec<String> {
    let prefix = format!("act {number}:");
    world
        .violations
        .iter()
        .filter(|v| v.starts_with(&prefix))
        .map(|v| format!("safety: {v}"))
        .collect()
}

/// Run scenario `number` (1: planned switch `first` -> `second`, 2: back, 3: `first` down).
async fn play(world: &mut World, number: usize, first: &str, second: &str) -> Scenario {
    world.act = number;
    let (title, planned) = match number {
        1 => (format!("planned switch {first} -> {second}"), true),
        2 => (format!("planned switch back {second} -> {first}"), true),
        _ => (
            format!("{first} down: forced failover to {second}, as the policy allows"),
            false,
        ),
    };
    let mut act = ActOutcome::new(number, title, planned);
    let result = match number {
        1 => acts::switch(world, &mut act, second).await,
        2 => acts::switch(world, &mut act, first).await,
        _ => acts::forced_failover(world, &mut act, first, ForcedPolicy::AsSpecified).await,
    };
    if let Err(e) = result {
        act.problems.push(e);
    }
    acts::finish(world, &mut act, &[]).await;
    act.problems.extend(safety_violations(world, number));
    let steps = world
        .steps
        .iter()
        .filter(|s| s.act == number)
        .cloned()
        .collect();
    Scenario { act, steps }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scenario whose act ended so that its verdict is `verdict`.
    fn scenario(number: usize, verdict: Verdict) -> Scenario {
        let mut act = ActOutcome::new(number, format!("scenario {number}"), number != 3);
        match verdict {
            Verdict::Passed => {}
            Verdict::Refused(_) => {
                act.refused = Some(pchat_core::plan::BlockReason::DataLossNotAllowed {
                    from_site: "atlanta".into(),
                    to_instance: "dal-sql1".into(),
                    estimated_seconds: 1,
                    last_file: None,
                })
            }
            Verdict::Failed(problems) => act.problems = problems,
        }
        Scenario {
            act,
            steps: Vec::new(),
        }
    }

    fn drill(scenarios: Vec<Scenario>) -> Drill {
        let spec = pchat_core::api::load_pool_yaml(include_str!("../../examples/pool.yaml"))
            .expect("the example loads")
            .spec;
        let (_, compressed) = copy::compress(&spec, Some(30)).expect("compresses");
        Drill {
            pool: "atl-cs-001".into(),
            spec,
            compressed,
            rate_per_server: 100.0,
            preparation: ActOutcome::new(0, "bootstrap".into(), true),
            scenarios,
            wall: Duration::ZERO,
            pictures: Vec::new(),
        }
    }

    #[test]
    fn a_drill_passes_when_every_scenario_converged_or_was_refused_by_the_policy() {
        let passed = drill(vec![
            scenario(1, Verdict::Passed),
            scenario(2, Verdict::Passed),
            scenario(3, Verdict::Refused("allowDataLoss is false".into())),
        ]);
        assert!(passed.passed());
        let failed = drill(vec![
            scenario(1, Verdict::Passed),
            scenario(
                2,
                Verdict::Failed(vec!["2 acknowledged messages are missing".into()]),
            ),
        ]);
        assert!(!failed.passed(), "a failed scenario fails the drill");
        let short = drill(vec![scenario(1, Verdict::Passed)]);
        assert!(!short.passed(), "a drill that stopped early fails");
        let text = report::render(&failed);
        assert!(
            text.contains("verdict: FAILED: 2 acknowledged messages are missing"),
            "{text}"
        );
        assert!(
            text.contains("result: FAILED: 2 of 3 scenarios ran"),
            "{text}"
        );
    }
}
