//! The demo's world: the example two-site topology running in-process on free loopback ports,
//! the example local pool pointed at it, the chat workload following the published state, and a
//! small engine loop over [`engine::reconcile_once`] that records every step it runs and checks
//! the safety invariants on every observation it makes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;

use crate::engine::sql_port::LivePort;
use crate::engine::{self, FilePublisher, PassInput, PassReport};
use pchat_core::api::{PersistentChatPoolSpec, PersistentChatPoolStatus, load_pool_yaml};
use pchat_core::observe::Observation;
use pchat_core::plan::{Decision, Step, WaitReason, invariants};
use pchat_sim::cluster::{RunningSim, with_free_ports};
use pchat_sim::server::{StatementKind, Topology};
use pchat_sim::workload::{
    ChatServer, ChatWorkload, FileSource, PoolState, Published, PublishedSource, WorkloadConfig,
};
use pchat_sql::connect::Credentials;
use pchat_sql::statements::{StatementContext, statements};

/// The login the example topology creates.
pub(crate) const USER: &str = "sa";
/// Its password (a simulator-only credential from examples/sim/two-sites.yaml).
pub(crate) const PASSWORD: &str = "Pchat-Sim-1";

/// Statement latencies the demo's simulator adds, in milliseconds, so that the figures measure
/// something: backups and restores cost tens of ms, everything else a few.
pub const LATENCY_MS: [(StatementKind, u64); 6] = [
    (StatementKind::Backup, 30),
    (StatementKind::Restore, 40),
    (StatementKind::AlterDatabase, 5),
    (StatementKind::Exec, 3),
    (StatementKind::Kill, 3),
    (StatementKind::Insert, 2),
];

/// Messages per second each active chat server writes.
const RATE_PER_SERVER: f64 = 100.0;
/// How often the loop looks again while the engine waits on something that moves by itself.
/// Shorter than the engine's own requeue: the demo's intervals are seconds, not minutes.
const POLL: Duration = Duration::from_millis(50);
/// How often the loop looks again while chat servers drain: the drain is chat outage, and one
/// look is one catalog batch per instance (about 3 ms for the pool).
const DRAIN_POLL: Duration = Duration::from_millis(2);
/// How often a chat server that is not published looks at the published list.
const PUBLISHED_POLL: Duration = Duration::from_millis(2);

/// One step the engine ran.
#[derive(Clone, Debug)]
pub struct StepRecord {
    pub act: usize,
    pub step: Step,
    /// When the pass that ran it ended.
    pub ended: Instant,
    /// How long the step itself ran.
    pub elapsed: Duration,
    /// How long the whole pass that ran it took: its observation, planning and status as well.
    pub pass: Duration,
    pub statements_sent: u64,
    pub writes: u64,
    /// The sum of the simulator's latencies over the statements the step is made of.
    pub latency: Duration,
    /// The T-SQL the step is made of, as `sql::statements` rendered it for the observation the
    /// step was planned from (what the engine sent, unless it stopped at an error).
    pub statements: Vec<pchat_sql::statements::Statement>,
    pub error: Option<String>,
}

/// What the engine saw of the chat database on one instance, from the pass that first saw it
/// so: `ONLINE principal`, `RESTORING mirror`, `absent`, `unreachable`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateChange {
    pub at: Timestamp,
    pub instance: String,
    pub state: String,
}

/// The program name the operator's SQL sessions carry (LOGIN7 AppName).
pub(crate) const OPERATOR_PROGRAM: &str = "pchat-operator";

/// The operator's statements over the whole demo, and how many came over encrypted
/// connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OperatorTransport {
    pub encrypt: pchat_core::api::EncryptMode,
    pub statements: u64,
    pub encrypted: u64,
}

/// Round trips and writes of one pass that found the pool converged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvergedPass {
    pub round_trips: u64,
    pub writes: u64,
    pub reachable: usize,
}

/// Everything the demo runs.
pub struct World {
    pub sim: RunningSim,
    pub spec: PersistentChatPoolSpec,
    pub port: LivePort,
    pub publisher: FilePublisher,
    pub workload: Option<ChatWorkload>,
    pub status: Option<PersistentChatPoolStatus>,
    pub generation: i64,
    pub steps: Vec<StepRecord>,
    pub violations: Vec<String>,
    pub converged_passes: Vec<ConvergedPass>,
    pub last: Option<PassReport>,
    pub act: usize,
    /// What the loop noticed that is not a violation, by act.
    pub events: Vec<(usize, String)>,
    /// Every change of the chat database's state on an instance, in the order seen.
    pub states: Vec<StateChange>,
    /// One instant on both clocks, to place the steps' `Instant`s on the acknowledgements'
    /// wall clock.
    clock: (Instant, Timestamp),
    latency: BTreeMap<StatementKind, u64>,
    /// The step of the previous pass and the observation it was planned from, checked against
    /// the next observation.
    pending: Option<(Step, Observation)>,
    /// The site the spec named primary when the world started.
    first_site: String,
    dir: PathBuf,
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The example pool with the demo's short intervals (seconds where the example says minutes).
fn demo_pool_yaml() -> String {
    include_str!("../../examples/pool-local.yaml")
        .replace("backupInterval: 5m", "backupInterval: 10s")
        .replace("rpoTarget: 15m", "rpoTarget: 30s")
        .replace("drainTimeout: 60s", "drainTimeout: 2s")
        .replace("unreachableAfter: 60s", "unreachableAfter: 2s")
        .replace("connect: 5s", "connect: 2s")
        .replace("command: 2m", "command: 30s")
}

/// What a world runs: a topology (its listen ports are replaced by free ones), a pool spec
/// naming that topology's instances (their hosts and ports are pointed at the simulator), and
/// the chat workload's rate.
pub struct Setup {
    pub topology: Topology,
    pub spec: PersistentChatPoolSpec,
    /// Messages per second each active chat server writes.
    pub rate_per_server: f64,
}

impl Setup {
    /// The demo's: the example topology with the demo's statement latencies, the example local
    /// pool with the demo's short intervals.
    pub fn demo() -> Result<Setup, String> {
        let mut topology = Topology::from_yaml(include_str!("../../examples/sim/two-sites.yaml"))
            .map_err(|e| e.to_string())?;
        topology.latency = LATENCY_MS.into_iter().collect();
        let spec = load_pool_yaml(&demo_pool_yaml())
            .map_err(|e| format!("the demo pool does not load: {e}"))?
            .spec;
        Ok(Setup {
            topology,
            spec,
            rate_per_server: RATE_PER_SERVER,
        })
    }
}

impl World {
    /// The demo's world ([`Setup::demo`]).
    pub async fn start() -> Result<World, String> {
        World::start_with(Setup::demo()?).await
    }

    /// Start the simulator, point the pool at it and start the workload (which writes once
    /// something is published, or, before that, as the installer left it: the home site's
    /// chat servers on the home site).
    pub async fn start_with(setup: Setup) -> Result<World, String> {
        let Setup {
            topology,
            mut spec,
            rate_per_server,
        } = setup;
        let dir = std::env::temp_dir().join(format!(
            "pchat-demo-{}-{}",
            std::process::id(),
            Timestamp::now().as_nanosecond()
        ));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let latency = topology.latency.clone();
        let sim = RunningSim::start(with_free_ports(topology), dir.join("sim"), None)
            .await
            .map_err(|e| e.to_string())?;
        for site in &mut spec.sites {
            for inst in &mut site.instances {
                let addr = sim
                    .addr(&inst.name)
                    .ok_or_else(|| format!("{} is not in the topology", inst.name))?;
                inst.host = addr.ip().to_string();
                inst.port = addr.port();
            }
        }
        pchat_core::api::validate(&spec)
            .map_err(|v| format!("the pool pointed at the simulator is invalid:\n{v}"))?;
        let first_site = spec.primary_site.clone();
        let published_file = dir.join("active-servers.yaml");
        let workload = ChatWorkload::start(workload_config(
            &spec,
            &sim,
            rate_per_server,
            // A chat server looks at the published list often while it is not on it, so a
            // publication is acted on within milliseconds, as a watch would.
            PUBLISHED_POLL,
            1,
            Arc::new(InstallerThenFile {
                file: FileSource::new(published_file.clone()),
                installer: installer_published(&spec),
            }),
        )?);
        let port = LivePort::new(Credentials::new(USER, PASSWORD), sim.ca_file.clone());
        Ok(World {
            sim,
            spec,
            port,
            publisher: FilePublisher::new(published_file),
            workload: Some(workload),
            status: None,
            generation: 1,
            steps: Vec::new(),
            violations: Vec::new(),
            converged_passes: Vec::new(),
            last: None,
            act: 0,
            events: Vec::new(),
            latency,
            pending: None,
            first_site,
            states: Vec::new(),
            clock: (Instant::now(), Timestamp::now()),
            dir,
        })
    }

    /// Inject a fault into the simulator. The next observation then reflects the world's
    /// change too, so it is not held against the step the previous pass ran.
    pub fn inject(&mut self, fault: pchat_sim::faults::Fault) -> Result<(), String> {
        use pchat_sim::faults::FaultInjector;
        self.pending = None;
        self.sim.sim.inject(fault)
    }

    /// The site the pool served from when the world started, and the other one.
    pub fn sites(&self) -> (String, String) {
        let second = self
            .spec
            .other_site(&self.first_site)
            .map(|s| s.name.clone())
            .unwrap_or_default();
        (self.first_site.clone(), second)
    }

    /// Take every instance of `site` and the host of its log-shipping share down (`up` false)
    /// or bring them back; the names of what changed.
    pub fn set_site_up(&mut self, site: &str, up: bool) -> Result<Vec<String>, String> {
        use pchat_sim::faults::Fault;
        let site = self
            .spec
            .site(site)
            .ok_or_else(|| format!("the pool has no site {site}"))?;
        let mut faults: Vec<(Fault, String)> = site
            .instances
            .iter()
            .map(|i| {
                let instance = i.name.clone();
                let fault = if up {
                    Fault::InstanceUp { instance }
                } else {
                    Fault::InstanceDown { instance }
                };
                (fault, i.name.clone())
            })
            .collect();
        if let Some((host, _)) = split_unc(&site.backup_share) {
            let host = host.to_string();
            let what = format!("the {host} share");
            faults.push((
                if up {
                    Fault::ShareUp { host }
                } else {
                    Fault::ShareDown { host }
                },
                what,
            ));
        }
        let mut changed = Vec::new();
        for (fault, what) in faults {
            self.inject(fault)?;
            changed.push(what);
        }
        Ok(changed)
    }

    /// Change the spec, as an edited manifest would (a new generation).
    pub fn edit(&mut self, change: impl FnOnce(&mut PersistentChatPoolSpec)) {
        change(&mut self.spec);
        self.generation += 1;
    }

    /// Run passes until `done` holds for a pass's report, for at most `limit`. A step that
    /// fails for good ends the act with its error.
    pub async fn drive(
        &mut self,
        limit: Duration,
        done: impl Fn(&PassReport) -> bool,
    ) -> Result<PassReport, String> {
        let deadline = Instant::now() + limit;
        loop {
            let report = self.pass().await;
            if let Some((step, Err(e))) = &report.step_ran
                && !e.retryable
            {
                return Err(format!("{} failed: {e}", step.name()));
            }
            if done(&report) {
                return Ok(report);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "not done after {}s: phase {:?}, last decision: {}",
                    limit.as_secs(),
                    report.status.phase,
                    report
                        .decision
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_else(|| "none".into())
                ));
            }
            // After a step that succeeded, the engine's own cadence (at once, or a second when
            // the same step ran twice), as in local and Kubernetes mode. Otherwise, and after
            // the drain itself, the demo's faster clock: the engine waits on something that
            // moves by itself (chat servers leaving, mirroring, an agent job) or retries a
            // failed step.
            let nap = match (&report.step_ran, &report.decision) {
                (Some((step, Ok(_))), _) if step.is_drain() => DRAIN_POLL.min(report.requeue_after),
                (Some((_, Ok(_))), _) => report.requeue_after,
                (None, Some(Decision::Wait(WaitReason::Draining { .. }))) => {
                    DRAIN_POLL.min(report.requeue_after)
                }
                _ => POLL.min(report.requeue_after),
            };
            if !nap.is_zero() {
                tokio::time::sleep(nap).await;
            }
        }
    }

    /// One engine pass, recorded and checked.
    async fn pass(&mut self) -> PassReport {
        let trips_before = self.port.round_trips();
        let started = Instant::now();
        let report = engine::reconcile_once(
            PassInput::new(
                "demo",
                &self.spec,
                Some(self.generation),
                self.status.as_ref(),
                Timestamp::now(),
            ),
            &mut self.port,
            &mut self.publisher,
        )
        .await;
        let ended = Instant::now();
        if let Some(obs) = &report.observation {
            self.check(obs, report.decision.as_ref());
            self.record_states(&report.status, obs.taken_at);
            if report.decision == Some(Decision::Converged) {
                self.converged_passes.push(ConvergedPass {
                    round_trips: self.port.round_trips() - trips_before,
                    writes: 0,
                    reachable: obs.instances.iter().filter(|i| i.is_reachable()).count(),
                });
            }
        }
        if let Some((step, result)) = &report.step_ran {
            let statements = report
                .observation
                .as_ref()
                .map(|obs| statements(step, &StatementContext::from_observation(obs)))
                .unwrap_or_default();
            let latency = statements
                .iter()
                .map(|s| super::figures::latency_of_batch(&s.sql, &self.latency))
                .sum();
            let (elapsed, sent, writes, error) = match result {
                Ok(r) => (r.elapsed, r.statements_sent, r.writes, None),
                Err(e) => (Duration::ZERO, 0, 0, Some(e.to_string())),
            };
            self.steps.push(StepRecord {
                act: self.act,
                step: step.clone(),
                ended,
                elapsed,
                pass: ended - started,
                statements_sent: sent,
                writes,
                latency,
                statements,
                error,
            });
            if result.is_ok()
                && let Some(obs) = &report.observation
            {
                self.pending = Some((step.clone(), obs.clone()));
            }
        }
        self.status = Some(report.status.clone());
        self.last = Some(report.clone());
        report
    }

    /// The wall-clock time of `instant`.
    pub fn wall_time(&self, instant: Instant) -> Timestamp {
        let (base_instant, base_time) = self.clock;
        let offset = if instant >= base_instant {
            jiff::SignedDuration::try_from(instant - base_instant)
        } else {
            jiff::SignedDuration::try_from(base_instant - instant).map(|d| -d)
        };
        offset
            .ok()
            .and_then(|d| base_time.checked_add(d).ok())
            .unwrap_or(base_time)
    }

    /// Note every instance whose chat database the pass's status shows in another state than
    /// the last one seen, at `at`.
    fn record_states(&mut self, status: &PersistentChatPoolStatus, at: Timestamp) {
        let chat = &self.spec.databases.chat;
        for instance in &status.instances {
            let state = if !instance.reachable {
                "unreachable".to_string()
            } else {
                match instance
                    .databases
                    .iter()
                    .find(|d| d.name.eq_ignore_ascii_case(chat))
                {
                    None => "absent".to_string(),
                    Some(d) => match &d.mirroring_role {
                        Some(role) => format!("{} {}", d.state, role.to_lowercase()),
                        None => d.state.clone(),
                    },
                }
            };
            let last = self
                .states
                .iter()
                .rev()
                .find(|c| c.instance == instance.name)
                .map(|c| c.state.as_str());
            if last != Some(state.as_str()) {
                self.states.push(StateChange {
                    at,
                    instance: instance.name.clone(),
                    state,
                });
            }
        }
    }

    /// The safety invariants on this observation, and on the step of the previous pass
    /// against it.
    fn check(&mut self, obs: &Observation, decision: Option<&Decision>) {
        let act = self.act;
        if let Some((step, before)) = self.pending.take() {
            let after = without_returned_instances(&before, obs);
            for v in invariants::step_violations(&self.spec, &before, &step, &after) {
                self.violations.push(format!("act {act}: {v}"));
            }
        }
        // A split brain the world made (an old primary coming back writable) is not the
        // operator's doing: step_violations above catches one a step makes, and the converged
        // check below one the operator leaves in place. This one is only reported.
        if let Some(v) = invariants::split_brain(&self.spec, obs) {
            let e = (
                act,
                format!("split brain made by the returning site, before the operator acted: {v}"),
            );
            if !self.events.contains(&e) {
                self.events.push(e);
            }
        }
        if decision == Some(&Decision::Converged) {
            for v in invariants::converged_violations(&self.spec, obs) {
                self.violations
                    .push(format!("act {act}: converged but {v}"));
            }
        }
    }

    /// The acknowledged messages so far.
    pub fn acked(&self) -> Vec<pchat_sim::workload::Ack> {
        self.workload
            .as_ref()
            .map(|w| w.acked())
            .unwrap_or_default()
    }

    /// The instance serving the chat database for the spec's primary site: the first of that
    /// site whose copy is ONLINE.
    pub fn serving_instance(&self) -> Option<String> {
        let site = self.spec.site(&self.spec.primary_site)?;
        site.instances
            .iter()
            .find(|i| {
                self.sim
                    .sim
                    .database_state(&i.name, &self.spec.databases.chat)
                    .as_deref()
                    == Some("ONLINE")
            })
            .map(|i| i.name.clone())
    }

    /// How the operator's statements reached the instances, from the simulator's statement
    /// logs (the connections' encryption as the server saw it).
    pub fn operator_transport(&self) -> OperatorTransport {
        let mut transport = OperatorTransport {
            encrypt: self.spec.tls.encrypt,
            ..OperatorTransport::default()
        };
        for instance in &self.sim.instances {
            for statement in self.sim.sim.statement_log(&instance.name) {
                if statement.program_name == OPERATOR_PROGRAM {
                    transport.statements += 1;
                    transport.encrypted += u64::from(statement.encrypted);
                }
            }
        }
        transport
    }

    /// Stop the workload and the simulator.
    pub async fn stop(mut self) -> Vec<pchat_sim::workload::Ack> {
        // The simulator's listeners close when the world is dropped (RunningSim's Drop).
        match self.workload.take() {
            Some(w) => w.stop().await,
            None => Vec::new(),
        }
    }
}

/// The host and share of a UNC share path (`\\host\share\...`).
pub(crate) fn split_unc(unc: &str) -> Option<(&str, &str)> {
    let mut parts = unc.strip_prefix("\\\\")?.split('\\');
    let host = parts.next().filter(|h| !h.is_empty())?;
    let share = parts.next().filter(|s| !s.is_empty())?;
    Some((host, share))
}

/// `after` without the databases of the instances that were unreachable in `before`: a step
/// planned from `before` sent nothing to them (the step check says so when it did), so what
/// they hold when they come back is the world's doing, not the step's. Without this, a site
/// returning while a step runs would be counted as the step creating a split brain.
fn without_returned_instances(before: &Observation, after: &Observation) -> Observation {
    let mut masked = after.clone();
    for i in &mut masked.instances {
        if !before.instance(&i.name).is_some_and(|b| b.is_reachable()) {
            i.databases.clear();
        }
    }
    masked
}

/// The published state, or the installer's state while nothing was ever published: before the
/// operator publishes anything the home site's chat servers run against the home site, as the
/// installer left them.
struct InstallerThenFile {
    file: FileSource,
    installer: Published,
}

impl PublishedSource for InstallerThenFile {
    fn current(&self) -> Result<Published, String> {
        if !self.file.path().exists() {
            return Ok(self.installer.clone());
        }
        self.file.current()
    }
}

/// What a pool publishes before the operator has written anything: its home site's chat
/// servers, state Normal (as the Persistent Chat installer leaves it).
pub(crate) fn installer_published(spec: &PersistentChatPoolSpec) -> Published {
    Published {
        active_servers: spec
            .site(&spec.home_site)
            .map(|s| s.chat_servers.clone())
            .unwrap_or_default(),
        pool_state: PoolState::Normal,
    }
}

/// The chat workload of `spec`'s chat servers against the simulator `sim`'s instances (home
/// site first), logging in as [`USER`], `rate` messages a second per server, a server off the
/// published list looking at it again every `published_poll`, ids from `first_id`.
pub(crate) fn workload_config(
    spec: &PersistentChatPoolSpec,
    sim: &RunningSim,
    rate: f64,
    published_poll: Duration,
    first_id: i64,
    source: Arc<dyn PublishedSource>,
) -> Result<WorkloadConfig, String> {
    let addrs = |site: &str| -> Vec<std::net::SocketAddr> {
        spec.site(site)
            .map(|s| {
                s.instances
                    .iter()
                    .filter_map(|i| sim.addr(&i.name))
                    .collect()
            })
            .unwrap_or_default()
    };
    let other = spec
        .other_site(&spec.home_site)
        .map(|s| s.name.clone())
        .ok_or("the pool has one site")?;
    Ok(WorkloadConfig {
        servers: spec
            .sites
            .iter()
            .flat_map(|s| &s.chat_servers)
            .map(|fqdn| ChatServer { fqdn: fqdn.clone() })
            .collect(),
        home_site: addrs(&spec.home_site),
        other_site: addrs(&other),
        database: spec.databases.chat.clone(),
        user: USER.into(),
        password: PASSWORD.into(),
        rate_per_server: rate,
        backoff: Duration::from_millis(100),
        published_poll: Some(published_poll),
        request_timeout: Duration::from_secs(2),
        first_id,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pchat_core::observe::Reachability;

    #[test]
    fn a_copy_unreachable_when_the_step_was_planned_is_masked_in_the_after_observation() {
        let after: Observation =
            serde_saphyr::from_str(include_str!("../../examples/observed-installer.yaml"))
                .expect("example observation loads");
        let mut before = after.clone();
        let atl1 = before
            .instances
            .iter_mut()
            .find(|i| i.name == "atl-sql1")
            .unwrap();
        atl1.reachability = Reachability::Unreachable {
            reason: "down".into(),
            since: before.taken_at,
        };
        assert!(after.database("atl-sql1", "mgc").is_some());
        let masked = without_returned_instances(&before, &after);
        assert!(masked.database("atl-sql1", "mgc").is_none());
        // Instances reachable both times keep what they hold.
        let unchanged = without_returned_instances(&after, &after);
        assert_eq!(unchanged, after);
    }
}
