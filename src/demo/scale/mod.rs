//! `pchat-operator bench scale --pools N`: N pools of four simulated instances each, every pool
//! in its own namespace of a real kube-apiserver (`scripts/test-cluster`), one operator process
//! (this binary's `run`). It measures the cold start (until every pool is Ready, the
//! operator's peak and settled memory and its CPU time), a steady state (SQL round trips per
//! pool per pass, SQL writes, API writes) and two storms ([`storm`]): `primarySite` flipped on
//! a fifth of the pools at once under a chat workload ([`load`]; each pool's switch time, every
//! acknowledged message looked for), then on another fifth whose primary site's instances went
//! down (forced failovers). It prints one `key=value` line per figure.
//!
//! It runs from a clone of the repository: the control plane comes from
//! `scripts/test-cluster`, which builds it from pinned Go modules on first use.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, CustomResourceExt, ResourceExt};

use pchat_core::api::{PersistentChatPool, PersistentChatPoolSpec, load_pool_yaml};
use pchat_sim::cluster::{RunningSim, with_free_ports};
use pchat_sim::server::Topology;

use super::world::{PASSWORD, USER};

mod load;
mod storm;

/// What to run.
#[derive(Clone, Copy, Debug)]
pub struct ScaleOptions {
    pub pools: usize,
    /// How long the steady state is watched.
    pub steady: Duration,
    /// The operator's `--max-concurrent-pools`.
    pub max_concurrent_pools: u16,
    /// The operator's `--keep-idle-connections`.
    pub keep_idle_connections: bool,
    /// How long the simulated instances take over each statement.
    pub sql_latency: SqlLatency,
    /// Keep the logs of a run that passed.
    pub keep_logs: bool,
}

/// How long the simulated instances take over each statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, strum::Display)]
#[strum(serialize_all = "lowercase")]
pub enum SqlLatency {
    /// The demo's table ([`super::world::LATENCY_MS`]).
    Demo,
    /// None: every statement is answered as soon as the simulator has run it.
    None,
}

/// The figures, in the order they are printed.
#[derive(Debug, Default)]
pub struct ScaleReport {
    pub lines: Vec<(String, String)>,
    /// What went wrong (a pool that never became Ready, a write in the steady state).
    pub failures: Vec<String>,
}

impl ScaleReport {
    fn put(&mut self, key: &str, value: impl ToString) {
        self.lines.push((key.to_string(), value.to_string()));
    }

    /// One `key=value` line per figure.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for (k, v) in &self.lines {
            out.push_str(&format!("{k}={v}\n"));
        }
        for f in &self.failures {
            out.push_str(&format!("failure={f}\n"));
        }
        out
    }
}

const FIELD_MANAGER: &str = "pchat-bench";

/// The repository root (the control-plane script lives there).
fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Instance, share and database names of pool `i`: the seed's, prefixed.
fn prefixed(i: usize, name: &str) -> String {
    format!("p{i}-{name}")
}

/// The seed topology once per pool, every name prefixed, on free loopback ports.
fn topology(pools: usize, latency: SqlLatency) -> Result<Topology, String> {
    let seed = Topology::from_yaml(include_str!("../../../examples/sim/two-sites.yaml"))
        .map_err(|e| e.to_string())?;
    let mut all = seed.clone();
    // Agent jobs on the schedules the operator sets (the spec's five minutes): the simulator
    // runs every instance in this one process, and at the seed's pace (jobs every 15 s) 800
    // instances keep a core busy on their own. The mirroring pump keeps the seed's 200 ms: a
    // new mirror is SYNCHRONIZED at its next run, and the pool Ready then (SQL Server ships
    // the log continuously), so a slower pump would be part of every switch time.
    all.jobs.backup_ms = 300_000;
    all.jobs.copy_ms = 300_000;
    all.jobs.restore_ms = 300_000;
    all.jobs.mirroring_ms = 200;
    if latency == SqlLatency::Demo {
        all.latency = super::world::LATENCY_MS.into_iter().collect();
    }
    all.instances.clear();
    all.shares.clear();
    all.databases.clear();
    for i in 0..pools {
        for inst in &seed.instances {
            let mut inst = inst.clone();
            inst.name = prefixed(i, &inst.name);
            inst.aliases = inst.aliases.iter().map(|a| prefixed(i, a)).collect();
            all.instances.push(inst);
        }
        for share in &seed.shares {
            let mut share = share.clone();
            share.host = prefixed(i, &share.host);
            all.shares.push(share);
        }
        for db in &seed.databases {
            let mut db = db.clone();
            db.instance = prefixed(i, &db.instance);
            all.databases.push(db);
        }
    }
    Ok(with_free_ports(all))
}

/// Pool `i`'s spec: the local example, its instances and shares renamed and pointed at the
/// simulator's listeners.
fn spec(i: usize, sim: &RunningSim) -> Result<PersistentChatPoolSpec, String> {
    let mut spec = load_pool_yaml(include_str!("../../../examples/pool-local.yaml"))
        .map_err(|e| e.to_string())?
        .spec;
    for site in &mut spec.sites {
        site.backup_share = site.backup_share.replacen("\\\\", &format!("\\\\p{i}-"), 1);
        for inst in &mut site.instances {
            inst.name = prefixed(i, &inst.name);
            inst.mirroring_endpoint = format!("TCP://{}:5022", inst.name);
            let addr = sim
                .addr(&inst.name)
                .ok_or_else(|| format!("no listener for {}", inst.name))?;
            inst.host = addr.ip().to_string();
            inst.port = addr.port();
        }
    }
    // The forced storm takes a site away: the policy lets the other site serve after ten
    // seconds, as a team that prefers service to the last seconds of chat would set it.
    spec.failover.allow_data_loss = true;
    spec.failover.unreachable_after = std::time::Duration::from_secs(10).into();
    Ok(spec)
}

/// `scripts/test-cluster start DIR`: the kubeconfig of a ready control plane.
fn start_control_plane(dir: &Path) -> Result<PathBuf, String> {
    let out = Command::new(repository().join("scripts/test-cluster"))
        .arg("start")
        .arg(dir)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("scripts/test-cluster cannot run: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "scripts/test-cluster start failed ({})",
            out.status
        ));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("KUBECONFIG="))
        .map(PathBuf::from)
        .ok_or_else(|| "scripts/test-cluster printed no KUBECONFIG".to_string())
}

fn stop_control_plane(dir: &Path) {
    let _ = Command::new(repository().join("scripts/test-cluster"))
        .arg("stop")
        .arg(dir)
        .stdout(Stdio::null())
        .status();
}

async fn client(kubeconfig: &Path) -> Result<Client, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = Kubeconfig::read_from(kubeconfig).map_err(|e| e.to_string())?;
    let config = kube::Config::from_custom_kubeconfig(config, &KubeConfigOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    Client::try_from(config).map_err(|e| e.to_string())
}

/// The CRD applied and Established.
async fn install_crd(client: &Client) -> Result<(), String> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = PersistentChatPool::crd();
    let name = crd.name_any();
    crds.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&crd),
    )
    .await
    .map_err(|e| format!("applying the CRD: {e}"))?;
    for _ in 0..200 {
        let got = crds.get(&name).await.map_err(|e| e.to_string())?;
        let established = got
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True");
        if established {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err("the CRD did not become Established".into())
}

pub(crate) fn namespace_of(i: usize) -> String {
    format!("pchat-bench-{i}")
}

/// Pool `i`'s namespace, its two Secrets and the pool itself.
async fn create_pool(
    client: &Client,
    i: usize,
    spec: PersistentChatPoolSpec,
    ca_pem: &str,
) -> Result<(), String> {
    let ns = namespace_of(i);
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let mut namespace = Namespace::default();
    namespace.metadata.name = Some(ns.clone());
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .map_err(|e| format!("namespace {ns}: {e}"))?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    for (name, data) in [
        (
            "pchat-sql",
            BTreeMap::from([
                ("username".to_string(), USER.to_string()),
                ("password".to_string(), PASSWORD.to_string()),
            ]),
        ),
        (
            "pchat-sql-ca",
            BTreeMap::from([("ca.crt".to_string(), ca_pem.to_string())]),
        ),
    ] {
        let mut secret = Secret::default();
        secret.metadata.name = Some(name.to_string());
        secret.string_data = Some(data);
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .map_err(|e| format!("Secret {ns}/{name}: {e}"))?;
    }
    let pools: Api<PersistentChatPool> = Api::namespaced(client.clone(), &ns);
    let pool = PersistentChatPool::new("pchat", spec);
    pools
        .create(&PostParams::default(), &pool)
        .await
        .map_err(|e| format!("pool {ns}/pchat: {e}"))?;
    Ok(())
}

/// The operator: this binary's `run`, logging to `log`.
fn start_operator(
    kubeconfig: &Path,
    http_port: u16,
    opts: &ScaleOptions,
    log: &Path,
) -> Result<Child, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let log = std::fs::File::create(log).map_err(|e| e.to_string())?;
    let mut command = Command::new(exe);
    command.args([
        "run",
        "--http-addr",
        &format!("127.0.0.1:{http_port}"),
        "--lease-namespace",
        "default",
        "--identity",
        "bench",
        "--max-concurrent-pools",
        &opts.max_concurrent_pools.to_string(),
    ]);
    if opts.keep_idle_connections {
        command.arg("--keep-idle-connections");
    }
    command
        .env("KUBECONFIG", kubeconfig)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("the operator cannot start: {e}"))
}

/// Resident and peak resident memory of `pid`, in KiB, and its CPU seconds.
fn process_figures(pid: u32) -> Option<(u64, u64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some((kib("VmRSS:")?, kib("VmHWM:")?, ticks as f64 / 100.0))
}

/// The processes a storm's work lands on, all on the same cores: the operator, this process
/// (the simulated instances and the chat workloads), the apiserver and etcd.
pub(crate) struct Processes {
    operator: u32,
    apiserver: Option<u32>,
    etcd: Option<u32>,
}

impl Processes {
    /// The operator's pid and the control plane's, from the pid files `scripts/test-cluster`
    /// keeps in its folder.
    fn new(operator: u32, cluster_dir: &Path) -> Processes {
        let pid_of = |component: &str| {
            std::fs::read_to_string(cluster_dir.join(format!("{component}.pid")))
                .ok()
                .and_then(|text| text.trim().parse().ok())
        };
        Processes {
            operator,
            apiserver: pid_of("kube-apiserver"),
            etcd: pid_of("etcd"),
        }
    }

    /// Start measuring the CPU the processes use from now on.
    pub(crate) fn meter(&self) -> CpuMeter<'_> {
        CpuMeter {
            processes: self,
            started: Instant::now(),
            before: self.cpu_seconds(),
        }
    }

    /// CPU seconds each process has used so far, by role (a process that cannot be read is
    /// left out).
    fn cpu_seconds(&self) -> BTreeMap<&'static str, f64> {
        [
            ("operator", Some(self.operator)),
            ("simulator", Some(std::process::id())),
            ("apiserver", self.apiserver),
            ("etcd", self.etcd),
        ]
        .into_iter()
        .filter_map(|(role, pid)| Some((role, process_figures(pid?)?.2)))
        .collect()
    }
}

/// The CPU the processes had used when a stretch of work started.
pub(crate) struct CpuMeter<'a> {
    processes: &'a Processes,
    started: Instant,
    before: BTreeMap<&'static str, f64>,
}

/// What a [`CpuMeter`] read: the wall time since it started and the CPU seconds each role
/// used meanwhile (a role read only now counts nothing).
pub(crate) struct CpuUsed {
    wall: Duration,
    by_role: Vec<(&'static str, f64)>,
}

impl CpuMeter<'_> {
    pub(crate) fn read(&self) -> CpuUsed {
        let by_role = self
            .processes
            .cpu_seconds()
            .into_iter()
            .map(|(role, seconds)| {
                let before = self.before.get(role).copied().unwrap_or(seconds);
                (role, seconds - before)
            })
            .collect();
        CpuUsed {
            wall: self.started.elapsed(),
            by_role,
        }
    }
}

/// CPU each role used, per switch made meanwhile (`<phase>_cpu_seconds_per_switch_<role>`),
/// and how many cores they kept busy together (`<phase>_busy_cores`).
pub(crate) fn put_cpu_per_switch(
    report: &mut ScaleReport,
    phase: &str,
    used: &CpuUsed,
    switches: usize,
) {
    for (role, seconds) in &used.by_role {
        report.put(
            &format!("{phase}_cpu_seconds_per_switch_{role}"),
            format!("{:.3}", seconds / switches.max(1) as f64),
        );
    }
    let total: f64 = used.by_role.iter().map(|(_, seconds)| seconds).sum();
    report.put(
        &format!("{phase}_busy_cores"),
        format!("{:.2}", total / used.wall.as_secs_f64().max(1e-3)),
    );
}

/// What `bench scale` reads of a pool's status.
#[derive(Clone, Debug)]
pub(crate) struct PoolView {
    pub serving_site: String,
    /// The status is of the current generation.
    pub current: bool,
    pub ready: bool,
    /// The status's transition completed.
    pub transitioned: bool,
    /// The data-loss window a forced failover reported.
    pub data_loss_seconds: Option<u64>,
}

/// Every pool's status as a watch over all namespaces keeps it (kube-runtime's reflector): the
/// bench reads its figures from memory, as a dashboard would, rather than listing every pool
/// (every status, in full) a few times a second, which loaded the apiserver the storm measures.
pub(crate) struct PoolWatch {
    store: kube::runtime::reflector::Store<PersistentChatPool>,
    task: tokio::task::JoinHandle<()>,
}

impl PoolWatch {
    /// Start the watch; returns once its first list is in.
    pub(crate) async fn start(client: &Client) -> Result<PoolWatch, String> {
        use futures::StreamExt;
        use kube::runtime::{WatchStreamExt, reflector, watcher};
        let api: Api<PersistentChatPool> = Api::all(client.clone());
        let (store, writer) = reflector::store();
        let stream = reflector(writer, watcher(api, watcher::Config::default())).default_backoff();
        let task = tokio::spawn(stream.for_each(|_| async {}));
        store
            .wait_until_ready()
            .await
            .map_err(|e| format!("the watch of every pool did not start: {e}"))?;
        Ok(PoolWatch { store, task })
    }

    /// Every pool's status, by namespace.
    pub(crate) fn views(&self) -> BTreeMap<String, PoolView> {
        self.store
            .state()
            .iter()
            .filter_map(|p| {
                let status = p.status.as_ref()?;
                let transition = status.transition.as_ref();
                Some((
                    p.namespace().unwrap_or_default(),
                    PoolView {
                        serving_site: status.serving_site.clone().unwrap_or_default(),
                        current: status.observed_generation == p.metadata.generation,
                        ready: status
                            .conditions
                            .iter()
                            .any(|c| c.type_ == "Ready" && c.status == "True"),
                        transitioned: transition.is_some_and(|t| t.completed_at.is_some()),
                        data_loss_seconds: transition
                            .and_then(|t| t.data_loss.as_ref())
                            .map(|l| l.estimated_seconds),
                    },
                ))
            })
            .collect()
    }
}

impl Drop for PoolWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The operator's `/metrics` text, once: figures read from it together come from one scrape.
async fn scrape(http_port: u16) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", http_port))
        .await
        .map_err(|e| format!("/metrics: {e}"))?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut body = String::new();
    stream
        .read_to_string(&mut body)
        .await
        .map_err(|e| e.to_string())?;
    Ok(body)
}

/// The sum of the samples in `metrics` whose series starts with `name` (every label set of a
/// family, or one when `name` carries its labels).
fn series_sum(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// The requests the operator made to the API server in a stretch of time: its writes, by what
/// they wrote, and its reads.
#[derive(Debug, Default)]
pub(crate) struct ApiRequests {
    /// Status applies of pools.
    pub statuses: usize,
    /// Everything else about the pools: ConfigMaps, Events.
    pub others: usize,
    /// The leader's Lease renewals, which are not about any pool.
    pub leases: usize,
    /// GETs (the Lease it confirms, the pools' Secrets and ConfigMaps): what each turn costs
    /// the apiserver before it writes anything.
    pub reads: usize,
}

impl ApiRequests {
    /// The writes about the pools.
    pub fn about_pools(&self) -> usize {
        self.statuses + self.others
    }
}

/// Requests the operator made to the API server between `from` and `to`: the audit log's
/// create, update, patch and delete requests with the operator's User-Agent, and its GETs.
pub(crate) fn api_requests(dir: &Path, from: jiff::Timestamp, to: jiff::Timestamp) -> ApiRequests {
    let Ok(text) = std::fs::read_to_string(dir.join("audit.log")) else {
        return ApiRequests::default();
    };
    let mut requests = ApiRequests::default();
    for e in text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["stage"] == "ResponseComplete")
        .filter(|e| {
            e["userAgent"]
                .as_str()
                .is_some_and(|a| a.starts_with("pchat-operator/"))
        })
        .filter(|e| {
            e["requestReceivedTimestamp"]
                .as_str()
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                .is_some_and(|t| t >= from && t <= to)
        })
    {
        let object = &e["objectRef"];
        match e["verb"].as_str() {
            Some("get") => {
                requests.reads += 1;
                continue;
            }
            Some("create" | "update" | "patch" | "delete") => {}
            _ => continue,
        }
        if object["resource"] == "leases" {
            requests.leases += 1;
        } else if object["resource"] == "persistentchatpools" && object["subresource"] == "status" {
            requests.statuses += 1;
        } else {
            requests.others += 1;
        }
    }
    requests
}

/// Statements the simulator has logged on these instances so far, and how many of them could
/// write (the log keeps the last 50,000 per instance, far more than a steady state makes).
fn sql_statements(sim: &RunningSim, instances: &[String]) -> (usize, usize) {
    let mut all = 0;
    let mut writes = 0;
    for inst in instances {
        for s in sim.sim.statement_log(inst) {
            all += 1;
            writes += usize::from(s.writes);
        }
    }
    (all, writes)
}

pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Run the whole measurement. The control plane, the simulator and the operator are stopped
/// whatever happens.
pub async fn run(opts: ScaleOptions) -> Result<ScaleReport, String> {
    let dir = std::env::temp_dir().join(format!("pchat-bench-scale-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let sim = RunningSim::start(
        topology(opts.pools, opts.sql_latency)?,
        &dir.join("sim"),
        None,
    )
    .await
    .map_err(|e| format!("the simulator cannot start: {e}"))?;
    let cluster_dir = dir.join("cluster");
    let kubeconfig = {
        let cluster_dir = cluster_dir.clone();
        tokio::task::spawn_blocking(move || start_control_plane(&cluster_dir))
            .await
            .map_err(|e| e.to_string())??
    };
    let result = measure(&opts, &sim, &kubeconfig, &cluster_dir, &dir).await;
    stop_control_plane(&cluster_dir);
    drop(sim);
    match result {
        Ok(report) if report.failures.is_empty() && !opts.keep_logs => {
            let _ = std::fs::remove_dir_all(&dir);
            Ok(report)
        }
        Ok(mut report) => {
            report.put("logs", dir.display());
            Ok(report)
        }
        Err(e) => Err(format!("{e} (logs kept in {})", dir.display())),
    }
}

/// The phases, once the simulator and the control plane run: the pools set up, then the cold
/// start, the steady state and the storm, each adding its figures to the report.
async fn measure(
    opts: &ScaleOptions,
    sim: &RunningSim,
    kubeconfig: &Path,
    cluster_dir: &Path,
    dir: &Path,
) -> Result<ScaleReport, String> {
    let mut report = ScaleReport::default();
    report.put("pools", opts.pools);
    report.put("instances", opts.pools * 4);
    report.put("sql_latency", opts.sql_latency);
    let client = client(kubeconfig).await?;
    install_crd(&client).await?;
    let ca_pem = std::fs::read_to_string(sim.ca_file.as_ref().ok_or("the simulator made no CA")?)
        .map_err(|e| e.to_string())?;
    let mut instances = Vec::new();
    let mut specs = Vec::new();
    for i in 0..opts.pools {
        let spec = spec(i, sim)?;
        instances.extend(spec.instances().map(|(_, inst)| inst.name.clone()));
        create_pool(&client, i, spec.clone(), &ca_pem).await?;
        specs.push(spec);
    }
    let http_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let mut operator = start_operator(kubeconfig, http_port, opts, &dir.join("operator.log"))?;
    let pid = operator.id();
    let processes = Processes::new(pid, cluster_dir);
    let phases = async {
        let pools = PoolWatch::start(&client).await?;
        cold_start(opts, &pools, pid, &mut report).await?;
        steady_state(
            opts,
            sim,
            &instances,
            cluster_dir,
            http_port,
            &processes,
            &mut report,
        )
        .await?;
        let storms = storm::Storms {
            sim,
            cluster_dir,
            client: &client,
            watch: &pools,
            specs: &specs,
            processes: &processes,
            operator_http_port: http_port,
        };
        let lone = storm::lone(&storms, &mut report).await?;
        storm::planned(&storms, lone, &mut report).await?;
        storm::forced(&storms, &mut report).await?;
        put_process_figures(&mut report, "end", pid);
        Ok::<(), String>(())
    };
    let result = phases.await;
    let _ = operator.kill();
    let _ = operator.wait();
    result.map(|()| report)
}

/// The operator's resident and peak memory and CPU time, under `phase_`.
fn put_process_figures(report: &mut ScaleReport, phase: &str, pid: u32) {
    if let Some((rss, hwm, cpu)) = process_figures(pid) {
        report.put(&format!("{phase}_rss_kib"), rss);
        report.put(&format!("{phase}_peak_rss_kib"), hwm);
        report.put(&format!("{phase}_cpu_seconds"), format!("{cpu:.2}"));
    }
}

/// From the operator's start until every pool is Ready (or the deadline).
async fn cold_start(
    opts: &ScaleOptions,
    pools: &PoolWatch,
    pid: u32,
    report: &mut ScaleReport,
) -> Result<(), String> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(120 + 3 * opts.pools as u64);
    let ready = loop {
        let ready: Vec<String> = pools
            .views()
            .into_iter()
            .filter(|(_, view)| view.ready && view.current)
            .map(|(namespace, _)| namespace)
            .collect();
        if ready.len() == opts.pools || Instant::now() > deadline {
            break ready;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let cold = started.elapsed();
    report.put("cold_start_ready_pools", ready.len());
    report.put("cold_start_seconds", format!("{:.1}", cold.as_secs_f64()));
    if ready.len() < opts.pools {
        report.failures.push(format!(
            "{} of {} pools Ready after {:.0}s",
            ready.len(),
            opts.pools,
            cold.as_secs_f64()
        ));
    }
    put_process_figures(report, "cold_start", pid);
    Ok(())
}

/// Nothing to do, so nothing written and one batch per instance per pass.
async fn steady_state(
    opts: &ScaleOptions,
    sim: &RunningSim,
    instances: &[String],
    cluster_dir: &Path,
    http_port: u16,
    processes: &Processes,
    report: &mut ScaleReport,
) -> Result<(), String> {
    let from = jiff::Timestamp::now();
    let meter = processes.meter();
    let (_, sql_writes_before) = sql_statements(sim, instances);
    let before = scrape(http_port).await?;
    tokio::time::sleep(opts.steady).await;
    let used = meter.read();
    let after = scrape(http_port).await?;
    let grown = |name: &str| series_sum(&after, name) - series_sum(&before, name);
    let passes = grown("pchat_reconciles_total");
    let trips = grown("pchat_sql_round_trips_total");
    let sql_writes = sql_statements(sim, instances).1 - sql_writes_before;
    let requests = api_requests(cluster_dir, from, jiff::Timestamp::now());
    report.put("steady_seconds", opts.steady.as_secs());
    report.put("steady_passes", passes);
    report.put(
        "steady_sql_round_trips_per_pool_pass",
        format!("{:.2}", trips / passes.max(1.0)),
    );
    report.put("steady_sql_writes", sql_writes);
    report.put("steady_api_writes", requests.about_pools());
    report.put("steady_api_reads", requests.reads);
    report.put("steady_lease_renewals", requests.leases);
    put_process_figures(report, "steady", processes.operator);
    // What the idle pools cost each process: the load a storm's switches run beside.
    for (role, seconds) in &used.by_role {
        report.put(
            &format!("steady_busy_cores_{role}"),
            format!("{:.3}", seconds / opts.steady.as_secs_f64()),
        );
    }
    if sql_writes > 0 || requests.about_pools() > 0 {
        report.failures.push(format!(
            "the steady state wrote: {sql_writes} SQL statements that could write, {} API writes",
            requests.about_pools()
        ));
    }
    Ok(())
}
