//! `pchat-operator demo`: the README's main command. A simulated two-site pool (the example
//! topology, in-process on free loopback ports) with a chat workload writing continuously, and
//! the engine driving it through five acts: bootstrap, a planned switch, a planned failback, a
//! forced failover when the home site goes down, and the home site's return. It prints a
//! timeline, the message accounting of each act and its figures (SQL critical path, switch
//! time against its simulator latency, chat write outage), and fails (exit non-zero) when a
//! planned act lost an acknowledged message, the forced act lost one outside the window it
//! reported, a safety invariant broke, or an act could not complete.

pub mod acts;
pub mod bench;
pub mod figures;
pub mod report;
pub mod scale;
pub mod timeline;
pub mod world;

use std::time::Duration;

pub use acts::{ActOutcome, run_acts};
pub use report::print_summary;
pub use world::World;

/// How long one act may take before the demo gives up on it.
pub const ACT_LIMIT: Duration = Duration::from_secs(40);

/// The result of the whole demo.
pub struct DemoRun {
    pub acts: Vec<ActOutcome>,
    pub world_steps: Vec<world::StepRecord>,
    pub converged_passes: Vec<world::ConvergedPass>,
    pub violations: Vec<String>,
    pub transport: world::OperatorTransport,
    pub wall: Duration,
    /// Each act as a timeline picture.
    pub pictures: Vec<timeline::Picture>,
}

impl DemoRun {
    /// Why the demo failed; empty when it did its job.
    pub fn failures(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .acts
            .iter()
            .flat_map(|a| {
                a.problems
                    .iter()
                    .map(move |p| format!("act {}: {p}", a.number))
            })
            .collect();
        out.extend(self.violations.iter().map(|v| format!("safety: {v}")));
        let t = &self.transport;
        if matches!(
            t.encrypt,
            pchat_core::api::EncryptMode::Required | pchat_core::api::EncryptMode::Strict
        ) && t.encrypted < t.statements
        {
            out.push(format!(
                "{} of the operator's {} statements came over unencrypted connections although spec.tls.encrypt is {:?}",
                t.statements - t.encrypted,
                t.statements,
                t.encrypt
            ));
        }
        if self.acts.len() < acts::ACTS {
            out.push(format!(
                "only {} of {} acts ran",
                self.acts.len(),
                acts::ACTS
            ));
        }
        out
    }
}

/// Run the demo: start the world, play the acts, stop everything.
pub async fn run() -> Result<DemoRun, String> {
    let started = std::time::Instant::now();
    let mut world = World::start().await?;
    let acts = run_acts(&mut world).await;
    let world_steps = world.steps.clone();
    let converged_passes = world.converged_passes.clone();
    let violations = world.violations.clone();
    let transport = world.operator_transport();
    let acked = world.acked();
    let pictures = acts
        .iter()
        .map(|act| timeline::picture(&world, "act", act, &acked))
        .collect();
    world.stop().await;
    Ok(DemoRun {
        acts,
        world_steps,
        converged_passes,
        violations,
        transport,
        wall: started.elapsed(),
        pictures,
    })
}
