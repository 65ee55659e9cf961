//! A live simulator (examples/sim/two-sites.yaml on free loopback ports) and the example
//! local pool pointed at it: the harness of the executor's integration tests and of the
//! operator's. Compiled only with the `testing` feature, which only dev-dependencies enable,
//! so no shipped build links the simulator.

use std::time::Duration;

use crate::connect::{ConnectSettings, Credentials};
use crate::execute::{AlwaysWrite, RunOptions, StepReport, WriteGate, run_step};
use crate::observe::Observer;
use crate::statements::StatementContext;
use jiff::Timestamp;
use pchat_core::api::{PersistentChatPoolSpec, load_pool_yaml};
use pchat_core::observe::{MirroringState, Observation, Published};
use pchat_core::plan::{self, Decision, Step};
use pchat_sim::cluster::{RunningSim, with_free_ports};
use pchat_sim::server::Topology;

pub const PASSWORD: &str = "Pchat-Sim-1";

pub struct Live {
    pub sim: RunningSim,
    pub spec: PersistentChatPoolSpec,
    pub settings: ConnectSettings,
    pub observer: Observer,
    /// What the test publishes when the planner asks (the engine's job in the product).
    pub published: Option<Published>,
    /// Sums of the step reports of every step run through [`Live::run`].
    pub sent: StepReport,
    state_dir: std::path::PathBuf,
}

impl Drop for Live {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.state_dir);
    }
}

/// The seed topology running, and the local example pool pointed at its ports.
pub async fn start(name: &str) -> Live {
    start_with(name, |_| {}).await
}

/// [`start`] with `edit` applied to the example topology first.
pub async fn start_with(name: &str, edit: impl FnOnce(&mut Topology)) -> Live {
    let mut topology = Topology::from_yaml(include_str!("../../../examples/sim/two-sites.yaml"))
        .expect("example topology loads");
    edit(&mut topology);
    let state_dir =
        std::env::temp_dir().join(format!("pchat-sqlexec-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state_dir);
    let sim = RunningSim::start(with_free_ports(topology), &state_dir, None)
        .await
        .expect("simulator starts");
    let mut spec = load_pool_yaml(include_str!("../../../examples/pool-local.yaml"))
        .expect("example pool loads")
        .spec;
    point_at(&mut spec, &sim);
    let settings = ConnectSettings {
        connect_timeout: Duration::from_secs(3),
        command_timeout: Some(Duration::from_secs(20)),
        ..ConnectSettings::from_spec(&spec, Credentials::new("sa", PASSWORD), sim.ca_file.clone())
    };
    Live {
        sim,
        spec,
        settings,
        observer: Observer::new(),
        published: None,
        sent: StepReport::default(),
        state_dir,
    }
}

/// Point every instance of `spec` at the simulator's listener of the same name.
pub fn point_at(spec: &mut PersistentChatPoolSpec, sim: &RunningSim) {
    for site in &mut spec.sites {
        for inst in &mut site.instances {
            let addr = sim.addr(&inst.name).expect("instance in topology");
            inst.host = addr.ip().to_string();
            inst.port = addr.port();
        }
    }
}

/// A log writer that keeps what it is given, for tests that read their own log lines.
#[derive(Clone, Default)]
pub struct LogBuffer(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl LogBuffer {
    /// Everything written so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

impl std::io::Write for LogBuffer {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Quick retries: the tests' faults clear within a second.
pub fn opts() -> RunOptions {
    RunOptions {
        attempts: 3,
        backoff: Duration::from_millis(50),
        ..RunOptions::default()
    }
}

impl Live {
    pub async fn observe(&mut self) -> Observation {
        self.observer
            .observe(
                &self.spec,
                &self.settings,
                self.published.clone(),
                Timestamp::now(),
            )
            .await
    }

    /// Run one step as the engine would: publishing is recorded here, the rest goes to SQL.
    pub async fn run(&mut self, step: &Step, obs: &Observation) -> StepReport {
        if let Step::PublishActiveServers {
            servers,
            pool_state,
            ..
        } = step
        {
            self.published = Some(Published {
                active_servers: servers.clone(),
                pool_state: *pool_state,
                published_at: Timestamp::now(),
            });
        }
        let report = self
            .try_run(step, obs, &opts(), &AlwaysWrite)
            .await
            .unwrap_or_else(|e| panic!("{} failed: {e}", step.name()));
        self.sent.statements_sent += report.statements_sent;
        self.sent.writes += report.writes;
        self.sent.elapsed += report.elapsed;
        report
    }

    /// Run one SQL step through `run_step` with these options and write gate, as it is: the
    /// report or the error (nothing is recorded or published).
    pub async fn try_run(
        &mut self,
        step: &Step,
        obs: &Observation,
        options: &RunOptions,
        gate: &dyn WriteGate,
    ) -> Result<StepReport, crate::SqlError> {
        let ctx = StatementContext::from_observation(obs);
        let (spec, settings) = (self.spec.clone(), self.settings.clone());
        run_step(
            self.observer.connections(),
            &settings,
            &spec,
            step,
            &ctx,
            options,
            gate,
        )
        .await
    }

    /// Observe until `ready` holds (the mirroring pump and agent jobs run on their own
    /// schedule), failing after `limit`.
    pub async fn observe_until(
        &mut self,
        limit: Duration,
        ready: impl Fn(&Observation) -> bool,
    ) -> Observation {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let obs = self.observe().await;
            if ready(&obs) {
                return obs;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "not ready after {limit:?}: {obs:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Observe, plan, run, until the planner says Converged; waits are polled. Returns the
    /// steps run and the converged observation.
    pub async fn converge(&mut self, limit: Duration) -> (Vec<Step>, Observation) {
        let deadline = tokio::time::Instant::now() + limit;
        let mut steps = Vec::new();
        loop {
            let obs = self.observe().await;
            match plan::next(&self.spec, &obs, Timestamp::now()) {
                Decision::Converged => return (steps, obs),
                Decision::Step(step) => {
                    self.run(&step, &obs).await;
                    steps.push(step);
                }
                Decision::Wait(w) => {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "still waiting after {limit:?}: {w}; steps so far: {:?}",
                        steps.iter().map(Step::name).collect::<Vec<_>>()
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Decision::Blocked(b) => panic!("blocked: {b}; observation: {obs:#?}"),
            }
            assert!(
                steps.len() <= plan::CONVERGENCE_BOUND,
                "no convergence within {} steps: {:?}",
                plan::CONVERGENCE_BOUND,
                steps.iter().map(Step::name).collect::<Vec<_>>()
            );
        }
    }
}

/// Whether every mirroring session the observation shows is SYNCHRONIZED.
pub fn mirrors_synchronized(obs: &Observation) -> bool {
    obs.instances
        .iter()
        .flat_map(|i| &i.databases)
        .filter_map(|d| d.mirroring.as_ref())
        .all(|m| m.state == MirroringState::Synchronized)
}

/// A plain `sa` client named "admin" (not the operator), for a test's own look or session.
pub async fn admin_client(
    addr: std::net::SocketAddr,
) -> tiberius::Client<tokio_util::compat::Compat<tokio::net::TcpStream>> {
    sa_client(addr, "admin", |_| {}).await
}

/// An `sa` client with this application name, `configure` setting anything else (a database,
/// a client host name).
pub async fn sa_client(
    addr: std::net::SocketAddr,
    application_name: &str,
    configure: impl FnOnce(&mut tiberius::Config),
) -> tiberius::Client<tokio_util::compat::Compat<tokio::net::TcpStream>> {
    use tokio_util::compat::TokioAsyncWriteCompatExt;
    let mut config = tiberius::Config::new();
    config.host(addr.ip().to_string());
    config.port(addr.port());
    config.authentication(tiberius::AuthMethod::sql_server("sa", PASSWORD));
    config.encryption(tiberius::EncryptionLevel::NotSupported);
    config.application_name(application_name);
    configure(&mut config);
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tiberius::Client::connect(config, tcp.compat_write())
        .await
        .unwrap()
}
