//! A live pool for the crash and fault tests: the example two-site topology running in-process,
//! the example local pool pointed at it, the active-server list in a file (what a restarted
//! engine finds again), and reconcile passes driven one at a time so that a test can drop the
//! engine, inject a fault or interrupt a step between any two of them.
//!
//! Every observation a pass makes is checked against the safety invariants
//! (`plan::invariants`): no split brain at any observed instant, and no step that, judged on
//! the observation it was planned from and the next one, breaks a rule.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use pchat_core::api::{PersistentChatPoolSpec, PersistentChatPoolStatus, load_pool_yaml};
use pchat_core::observe::{DatabaseState, Observation, Reachability};
use pchat_core::plan::{self, Decision, Step, invariants};
use pchat_operator::engine::sql_port::LivePort;
use pchat_operator::engine::{
    FilePublisher, PassInput, PassReport, StepError, StepRun, reconcile_once,
};
use pchat_sim::cluster::{RunningSim, with_free_ports};
use pchat_sim::faults::{Fault, FaultInjector};
use pchat_sim::server::Topology;
use pchat_sim::workload::{ChatServer, ChatWorkload, FileSource, WorkloadConfig};
use pchat_sql::connect::{ConnectSettings, Connections, Credentials};
use pchat_sql::execute::RunOptions;
use pchat_sql::observe::run_query;
use pchat_sql::statements::{StatementContext, statements};
use pchat_sql::target::target;

pub const PASSWORD: &str = "Pchat-Sim-1";

/// The simulator, the spec, and what survives an engine restart: the active-servers file and
/// the last status written.
pub struct Pool {
    pub sim: RunningSim,
    pub spec: PersistentChatPoolSpec,
    pub settings: ConnectSettings,
    pub dir: PathBuf,
    /// The active-server list the engine publishes and the chat workload follows.
    pub active_servers: PathBuf,
    /// The status the last pass wrote (what a restarted engine reads back).
    pub status: Option<PersistentChatPoolStatus>,
    pub generation: i64,
    /// Safety rules broken at some observed instant, with the pass that saw it.
    pub violations: Vec<String>,
    /// Every step the engine ran (ok or not), in order.
    pub steps: Vec<(Step, Result<StepRun, StepError>)>,
    /// Observations that found at least one instance unreachable.
    pub saw_unreachable: usize,
    look_took: Duration,
    /// The last observation and the step planned from it (for `step_violations`).
    last: Option<(Observation, Option<Step>)>,
    passes: usize,
}

impl Drop for Pool {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Quick step retries: the tests' faults clear within a second or are meant to surface.
pub fn run_options() -> RunOptions {
    RunOptions {
        attempts: 2,
        backoff: Duration::from_millis(50),
        ..RunOptions::default()
    }
}

/// The seed topology on free ports with `drain` as the drain timeout (e.g. "3s").
pub async fn start(name: &str, drain: &str) -> Pool {
    let topology = Topology::from_yaml(include_str!("../../examples/sim/two-sites.yaml"))
        .expect("example topology loads");
    let dir = std::env::temp_dir().join(format!("pchat-faults-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sim = RunningSim::start(with_free_ports(topology), dir.join("sim"), None)
        .await
        .expect("simulator starts");
    let yaml = include_str!("../../examples/pool-local.yaml").replacen(
        "drainTimeout: 60s",
        &format!("drainTimeout: {drain}"),
        1,
    );
    let mut spec = load_pool_yaml(&yaml).expect("example pool loads").spec;
    pchat_sql::testing::point_at(&mut spec, &sim);
    let settings = ConnectSettings {
        connect_timeout: Duration::from_secs(2),
        command_timeout: Some(Duration::from_secs(20)),
        ..ConnectSettings::from_spec(&spec, Credentials::new("sa", PASSWORD), sim.ca_file.clone())
    };
    Pool {
        sim,
        spec,
        settings,
        active_servers: dir.join("active-servers.yaml"),
        dir,
        status: None,
        generation: 1,
        violations: Vec::new(),
        steps: Vec::new(),
        saw_unreachable: 0,
        look_took: Duration::ZERO,
        last: None,
        passes: 0,
    }
}

impl Pool {
    /// A fresh engine: a new port with no connection and no memory.
    pub fn fresh_port(&self) -> LivePort {
        LivePort::with_settings(self.settings.clone(), run_options())
    }

    pub fn inject(&self, fault: Fault) {
        self.sim.sim.inject(fault).expect("fault accepted");
    }

    /// Move the pool: what editing `primarySite` does.
    pub fn set_primary(&mut self, site: &str) {
        self.spec.primary_site = site.to_string();
        self.generation += 1;
    }

    /// Check an observation the engine (or the test) made against the safety rules.
    pub fn check(&mut self, obs: &Observation, planned: Option<&Step>) {
        self.passes += 1;
        if obs
            .instances
            .iter()
            .any(|i| i.reachability != Reachability::Reachable)
        {
            self.saw_unreachable += 1;
        }
        if let Some(v) = invariants::split_brain(&self.spec, obs) {
            self.violations.push(format!("pass {}: {v}", self.passes));
        }
        if let Some((before, Some(step))) = &self.last {
            for v in invariants::step_violations(&self.spec, before, step, obs) {
                self.violations.push(format!("pass {}: {v}", self.passes));
            }
        }
        self.last = Some((obs.clone(), planned.cloned()));
    }

    /// How long the last [`Pool::look`] took to observe.
    pub fn look_took(&self) -> Duration {
        self.look_took
    }

    /// Observe and plan without sending anything (a look before the engine's pass).
    pub async fn look(&mut self) -> (Observation, Decision) {
        let started = std::time::Instant::now();
        let mut port = self.fresh_port();
        let publisher = FilePublisher::new(&self.active_servers);
        let published = publisher.read().expect("active-servers file readable");
        let now = Timestamp::now();
        let obs =
            pchat_operator::engine::SqlPort::observe(&mut port, &self.spec, published, now).await;
        self.look_took = started.elapsed();
        let decision = plan::next(&self.spec, &obs, now);
        // Only the observation is checked: nothing is sent on this look.
        self.check(&obs, None);
        (obs, decision)
    }

    /// One reconcile pass on `port`, publishing to the file, keeping the status it writes.
    pub async fn pass(&mut self, port: &mut LivePort) -> PassReport {
        let mut publisher = FilePublisher::new(&self.active_servers);
        let report = reconcile_once(
            PassInput::new(
                "fault-test",
                &self.spec,
                Some(self.generation),
                self.status.as_ref(),
                Timestamp::now(),
            ),
            port,
            &mut publisher,
        )
        .await;
        if let Some(obs) = &report.observation {
            let step = report.step_ran.as_ref().map(|(s, _)| s.clone());
            self.check(obs, step.as_ref());
        }
        if let Some((step, result)) = &report.step_ran {
            self.steps.push((step.clone(), result.clone()));
        }
        self.status = Some(report.status.clone());
        report
    }

    /// A pass killed `after` into it, as a process dies: when it had not ended by then, nothing
    /// of it is kept (no status, no record) and `None` is returned.
    pub async fn pass_cut(&mut self, port: &mut LivePort, after: Duration) -> Option<PassReport> {
        tokio::time::timeout(after, self.pass(port)).await.ok()
    }

    /// Passes, each with a fresh engine, until the planner says Converged; `between` runs before
    /// every pass (fault injection). Panics after `limit` naming the steps run.
    pub async fn converge_with(
        &mut self,
        limit: Duration,
        mut between: impl FnMut(&mut Pool, usize),
    ) -> PassReport {
        let deadline = std::time::Instant::now() + limit;
        let mut n = 0;
        loop {
            between(self, n);
            n += 1;
            let mut port = self.fresh_port();
            let report = self.pass(&mut port).await;
            if report.decision == Some(Decision::Converged) {
                return report;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "not converged after {limit:?}: {:?}; steps: {}",
                report.decision,
                self.step_names()
            );
            pause(&report).await;
        }
    }

    pub async fn converge(&mut self, limit: Duration) -> PassReport {
        self.converge_with(limit, |_, _| {}).await
    }

    pub fn step_names(&self) -> String {
        self.steps
            .iter()
            .map(|(s, r)| match r {
                Ok(_) => s.name().to_string(),
                Err(e) => format!("{} (failed: {e})", s.name()),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Chat servers of both sites writing to whatever the active-servers file says.
    pub fn workload(&self) -> ChatWorkload {
        let addrs = |site: &str| {
            self.spec
                .site(site)
                .unwrap()
                .instances
                .iter()
                .map(|i| self.sim.addr(&i.name).unwrap())
                .collect::<Vec<_>>()
        };
        let servers = self
            .spec
            .sites
            .iter()
            .flat_map(|s| &s.chat_servers)
            .map(|fqdn| ChatServer { fqdn: fqdn.clone() })
            .collect();
        ChatWorkload::start(WorkloadConfig {
            servers,
            home_site: addrs(&self.spec.home_site),
            other_site: addrs(if self.spec.home_site == "atlanta" {
                "dallas"
            } else {
                "atlanta"
            }),
            database: self.spec.databases.chat.clone(),
            user: "sa".into(),
            password: PASSWORD.into(),
            rate_per_server: 25.0,
            backoff: Duration::from_millis(50),
            published_poll: None,
            request_timeout: Duration::from_secs(3),
            first_id: 1,
            source: Arc::new(FileSource::new(self.active_servers.clone())),
        })
    }

    /// The message ids each copy of the chat database holds on the serving site (the primary
    /// and its mirror), by instance name.
    pub fn serving_copies(&self, site: &str) -> BTreeMap<String, Vec<i64>> {
        self.spec
            .site(site)
            .unwrap()
            .instances
            .iter()
            .filter_map(|i| {
                let ids = self
                    .sim
                    .sim
                    .message_ids(&i.name, &self.spec.databases.chat)?;
                Some((i.name.clone(), ids))
            })
            .collect()
    }

    /// Run the first `k` statements of `step` as the engine would, then stop: an engine that
    /// dies inside a step. Stops early (as the engine would) at the first statement that fails.
    /// Returns how many statements ran to completion.
    pub async fn run_partially(&self, step: &Step, obs: &Observation, k: usize) -> usize {
        let ctx = StatementContext::from_observation(obs);
        let mut conns = Connections::default();
        for (i, st) in statements(step, &ctx).into_iter().take(k).enumerate() {
            let t = target(&self.spec, &st.instance).expect("statement on a spec instance");
            let Ok(client) = conns.get(&t, &self.settings).await else {
                return i;
            };
            match run_query(client, st.query()).await {
                Ok(answer) if answer.error.is_none() => {}
                Ok(answer) => {
                    let e = answer.error.unwrap();
                    if !st.done_if.contains(&e.number) {
                        return i;
                    }
                }
                Err(_) => return i,
            }
        }
        k
    }
}

/// A plain client session on `database` of `instance`, as a tool other than a chat server
/// would open (its host name is no chat server's, so the drain does not count it).
pub async fn raw_session(
    pool: &Pool,
    instance: &str,
    database: &str,
) -> tiberius::Client<tokio_util::compat::Compat<tokio::net::TcpStream>> {
    use tokio_util::compat::TokioAsyncWriteCompatExt;
    let addr = pool.sim.addr(instance).unwrap();
    let mut config = tiberius::Config::new();
    config.host(addr.ip().to_string());
    config.port(addr.port());
    config.authentication(tiberius::AuthMethod::sql_server("sa", PASSWORD));
    config.encryption(tiberius::EncryptionLevel::NotSupported);
    config.database(database);
    config.application_name("report-tool");
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    tiberius::Client::connect(config, tcp.compat_write())
        .await
        .expect("raw session logs in")
}

/// How many statements `step` is, as the executor would send it planned from `obs`.
pub fn statement_count(step: &Step, obs: &Observation) -> usize {
    statements(step, &StatementContext::from_observation(obs)).len()
}

/// Wait before the next pass: short, because the tests' passes are back to back, but long
/// enough to let the mirroring pump and the chat servers move.
pub async fn pause(report: &PassReport) {
    let ms = match report.decision {
        Some(Decision::Step(_)) => 20,
        _ => 150,
    };
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// The instance holding the ONLINE copy of the chat database, if exactly one does.
pub fn primary_of(spec: &PersistentChatPoolSpec, obs: &Observation) -> Option<String> {
    let chat = &spec.databases.chat;
    let writable: Vec<&str> = obs
        .instances
        .iter()
        .filter(|i| {
            i.databases
                .iter()
                .any(|d| &d.name == chat && d.state == DatabaseState::Online)
        })
        .map(|i| i.name.as_str())
        .collect();
    (writable.len() == 1).then(|| writable[0].to_string())
}

/// Wait until `cond` holds, polling every 50 ms, for at most `secs`.
pub async fn eventually(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
