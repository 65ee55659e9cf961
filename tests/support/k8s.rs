//! The Kubernetes end-to-end world: a real control plane of its own (`scripts/test-cluster`:
//! etcd, kube-apiserver, kube-controller-manager, see tests/cluster/README.md), the chart
//! installed into a namespace of its own, the SQL Server simulator in process
//! (`pchat_sql::testing`), the control plane's own `kubectl`, `helm` and `kstatus` for what a
//! person types, and `pchat-operator run` replicas as child processes (killed when dropped) that
//! authenticate with a token of the chart's ServiceAccount, so their rights are exactly the
//! chart's RBAC, as in a cluster.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use pchat_core::api::load_pool_yaml;
use pchat_core::api::{PersistentChatPool, PersistentChatPoolSpec, PersistentChatPoolStatus};
use pchat_sim::faults::{Fault, FaultInjector};
use pchat_sim::server::StatementKind;
use serde_json::Value;

use pchat_sql::testing::Live;

/// Where the chart is installed, the pools live and the operator holds its Lease.
pub const NAMESPACE: &str = "chat";
/// The Helm release: the chart names its ServiceAccount, Roles and Deployment after it, and
/// `pchat-operator run`'s default Lease name is the same.
pub const RELEASE: &str = "pchat-operator";
pub const POOL: &str = "atl-cs-001";
/// Generous: the CI machine has two cores shared by parallel test binaries.
pub const LONG: Duration = Duration::from_secs(120);

/// The user the API server sees for the operator: the chart's ServiceAccount.
pub fn operator_user() -> String {
    format!("system:serviceaccount:{NAMESPACE}:{RELEASE}")
}

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The chart's directory.
pub fn chart_dir() -> PathBuf {
    repo_root().join("charts/pchat-operator")
}

/// A program's outcome: whether it succeeded, and stdout + stderr.
fn run_program(program: &Path, args: &[String], envs: &[(String, String)]) -> (bool, String) {
    let out = Command::new(program)
        .args(args)
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{} does not start: {e}", program.display()));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// A control plane started by `scripts/test-cluster start DIR` (which builds the binaries first
/// when they are missing or out of date); stopped, and DIR removed, when dropped. A failing test
/// (or any, with `PCHAT_TEST_KEEP_CLUSTER` set) keeps DIR (component logs, audit log, operator
/// logs) and says where it is.
pub struct Cluster {
    pub dir: PathBuf,
    pub bin: PathBuf,
    pub server: String,
    pub admin_kubeconfig: PathBuf,
    pub audit_log: PathBuf,
}

impl Cluster {
    /// Blocking: up to `TEST_CLUSTER_READY_TIMEOUT` (a cold build of the binaries comes first).
    pub fn start(dir: &Path) -> Cluster {
        let script = repo_root().join("scripts/test-cluster");
        let (ok, out) = run_program(&script, &["start".into(), dir.display().to_string()], &[]);
        assert!(ok, "scripts/test-cluster start failed:\n{out}");
        let env = std::fs::read_to_string(dir.join("cluster.env")).expect("cluster.env");
        let server = env
            .lines()
            .find_map(|l| l.strip_prefix("TEST_CLUSTER_SERVER="))
            .expect("TEST_CLUSTER_SERVER in cluster.env")
            .to_string();
        Cluster {
            dir: dir.to_path_buf(),
            bin: dir.join("bin"),
            server,
            admin_kubeconfig: dir.join("admin.kubeconfig"),
            audit_log: dir.join("audit.log"),
        }
    }

    /// A control plane of its own for the test `name`, in a fresh temporary DIR, started off the
    /// async runtime.
    pub async fn start_for(name: &str) -> Cluster {
        let dir = std::env::temp_dir().join(format!("pchat-k8s-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        tokio::task::spawn_blocking(move || Cluster::start(&dir))
            .await
            .unwrap()
    }

    /// The committed CRD, applied with kubectl; returns once it is Established.
    pub async fn apply_crd(&self) {
        let crd = repo_root().join("crds/persistentchatpool.yaml");
        self.tool("kubectl", &["apply", "-f", crd.to_str().unwrap()])
            .await;
        self.wait_crd_established().await;
    }

    /// Wait until the PersistentChatPool CRD is Established (served).
    pub async fn wait_crd_established(&self) {
        self.tool(
            "kubectl",
            &[
                "wait",
                "--for=condition=Established",
                "--timeout=60s",
                "crd/persistentchatpools.persistentchat.io",
            ],
        )
        .await;
    }

    /// `scripts/test-cluster COMMAND DIR`, off the async runtime; its output (stdout first).
    async fn script(&self, command: &str) -> String {
        let script = repo_root().join("scripts/test-cluster");
        let args = vec![command.to_string(), self.dir.display().to_string()];
        let (ok, out) = tokio::task::spawn_blocking(move || run_program(&script, &args, &[]))
            .await
            .unwrap();
        assert!(ok, "scripts/test-cluster {command} failed:\n{out}");
        out
    }

    /// Stop kube-apiserver alone: etcd and everything stored stay.
    pub async fn stop_apiserver(&self) {
        self.script("stop-apiserver").await;
    }

    /// Start kube-apiserver again as it ran before; returns once it is ready.
    pub async fn start_apiserver(&self) {
        self.script("start-apiserver").await;
    }

    /// Compact etcd's history up to its current revision, which it returns: a watch or read
    /// from an older resourceVersion is then 410 Gone.
    pub async fn compact_etcd(&self) -> u64 {
        let out = self.script("compact-etcd").await;
        out.lines()
            .find_map(|l| l.trim().parse().ok())
            .unwrap_or_else(|| panic!("no revision in:\n{out}"))
    }

    /// Environment of kubectl and helm: the admin's credentials, Helm's state inside DIR.
    fn admin_env(&self) -> Vec<(String, String)> {
        let d = |sub: &str| self.dir.join(sub).display().to_string();
        vec![
            (
                "KUBECONFIG".into(),
                self.admin_kubeconfig.display().to_string(),
            ),
            ("HELM_CACHE_HOME".into(), d("helm/cache")),
            ("HELM_CONFIG_HOME".into(), d("helm/config")),
            ("HELM_DATA_HOME".into(), d("helm/data")),
        ]
    }

    /// One of DIR/bin's programs (`kubectl`, `helm`, `kstatus`) as the cluster admin.
    pub async fn try_tool(&self, tool: &str, args: &[&str]) -> (bool, String) {
        let program = self.bin.join(tool);
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let env = self.admin_env();
        tokio::task::spawn_blocking(move || run_program(&program, &args, &env))
            .await
            .unwrap()
    }

    /// The same; panics with its output when it fails.
    pub async fn tool(&self, tool: &str, args: &[&str]) -> String {
        let (ok, out) = self.try_tool(tool, args).await;
        assert!(ok, "{tool} {args:?} failed:\n{out}");
        out
    }

    /// What `kstatus` computes for an object: its last line (Current, InProgress, Failed, ...).
    pub async fn kstatus(&self, namespace: &str, resource: &str) -> String {
        let out = self.tool("kstatus", &["-n", namespace, resource]).await;
        out.lines().last().unwrap_or_default().trim().to_string()
    }

    /// The audit log's events (every request, `Metadata` level, at ResponseComplete).
    pub fn audit_events(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.audit_log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The requests of one user, in the order the audit log has them.
    pub fn requests_of(&self, username: &str) -> Vec<AuditedRequest> {
        self.audit_events()
            .into_iter()
            .filter(|e| e["user"]["username"] == username)
            .map(|e| AuditedRequest {
                verb: e["verb"].as_str().unwrap_or_default().into(),
                uri: e["requestURI"].as_str().unwrap_or_default().into(),
                code: e["responseStatus"]["code"].as_u64().unwrap_or_default(),
                user_agent: e["userAgent"].as_str().unwrap_or_default().into(),
                grant: Grant {
                    api_group: e["objectRef"]["apiGroup"]
                        .as_str()
                        .unwrap_or_default()
                        .into(),
                    resource: match (
                        e["objectRef"]["resource"].as_str(),
                        e["objectRef"]["subresource"].as_str(),
                    ) {
                        (Some(resource), Some(sub)) => format!("{resource}/{sub}"),
                        (resource, _) => resource.unwrap_or_default().into(),
                    },
                    verb: e["verb"].as_str().unwrap_or_default().into(),
                },
            })
            .collect()
    }

    /// A client as the cluster admin (what a person's kubectl uses).
    pub async fn admin_client(&self) -> kube::Client {
        // Test builds compile both of rustls's providers in; the operator binary picks ring
        // itself, a test must too or the client panics.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.admin_kubeconfig).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .unwrap();
        kube::Client::try_from(config).unwrap()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let script = repo_root().join("scripts/test-cluster");
        let (ok, out) = run_program(
            &script,
            &["stop".into(), self.dir.display().to_string()],
            &[],
        );
        if !ok {
            eprintln!("scripts/test-cluster stop failed:\n{out}");
        }
        if std::thread::panicking() || std::env::var_os("PCHAT_TEST_KEEP_CLUSTER").is_some() {
            eprintln!("kept for inspection: {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// One request in the audit log.
#[derive(Clone, Debug)]
pub struct AuditedRequest {
    pub verb: String,
    pub uri: String,
    pub code: u64,
    pub user_agent: String,
    /// The RBAC right the request needed.
    pub grant: Grant,
}

/// One RBAC right: an API group (`""` for the core group), a resource (with its subresource,
/// `persistentchatpools/status`) and a verb, as Roles grant them and the audit log records
/// them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Grant {
    pub api_group: String,
    pub resource: String,
    pub verb: String,
}

impl std::fmt::Display for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let group = if self.api_group.is_empty() {
            "core"
        } else {
            &self.api_group
        };
        write!(f, "{} {}/{}", self.verb, group, self.resource)
    }
}

impl Cluster {
    /// Every right the release's Roles and ClusterRoles grant, one per verb.
    pub async fn granted_to_release(&self) -> BTreeSet<Grant> {
        let selector = format!("app.kubernetes.io/instance={RELEASE}");
        let out = self
            .tool(
                "kubectl",
                &[
                    "get",
                    "roles,clusterroles",
                    "-A",
                    "-l",
                    &selector,
                    "-o",
                    "json",
                ],
            )
            .await;
        let list: Value = serde_json::from_str(&out).unwrap();
        let mut grants = BTreeSet::new();
        for role in list["items"].as_array().unwrap() {
            for rule in role["rules"].as_array().unwrap() {
                let strings = |key: &str| -> Vec<String> {
                    rule[key]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_str().unwrap().to_string())
                        .collect()
                };
                for api_group in strings("apiGroups") {
                    for resource in strings("resources") {
                        for verb in strings("verbs") {
                            grants.insert(Grant {
                                api_group: api_group.clone(),
                                resource: resource.clone(),
                                verb,
                            });
                        }
                    }
                }
            }
        }
        grants
    }
}

impl std::fmt::Display for AuditedRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} -> {} [{}]",
            self.verb, self.uri, self.code, self.user_agent
        )
    }
}

/// The statuses a watch of the pool delivered (see [`World::follow_statuses`]); the watch
/// ends when this is dropped.
#[derive(Default)]
pub struct StatusLog(
    std::sync::Arc<std::sync::Mutex<Vec<PersistentChatPoolStatus>>>,
    std::sync::Mutex<Option<tokio::task::AbortHandle>>,
);

impl StatusLog {
    pub fn seen(&self) -> Vec<PersistentChatPoolStatus> {
        self.0.lock().unwrap().clone()
    }
}

impl Drop for StatusLog {
    fn drop(&mut self) {
        if let Some(task) = self.1.lock().unwrap().take() {
            task.abort();
        }
    }
}

/// Which pools the chart's operator manages.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Scope {
    /// `watchNamespaces: [chat]`: a Role in that namespace, `run --namespace chat`.
    OneNamespace,
    /// `watchNamespaces: []`: a ClusterRole, `run` without `--namespace`.
    AllNamespaces,
}

/// The chart's one required value, as a user sets it: the image they pushed.
pub const IMAGE: &str = "image.repository=registry.example.com/pchat-operator";

/// The control plane with the chart installed, the simulator, the operator's kubeconfig and a
/// client as the cluster admin. Fields drop in order: the simulator, then the control plane.
pub struct World {
    pub live: Live,
    pub client: kube::Client,
    pub scope: Scope,
    /// The operator's kubeconfig: the chart ServiceAccount's token.
    pub kubeconfig: PathBuf,
    pub dir: PathBuf,
    pub cluster: Cluster,
}

impl World {
    /// The chart installed for the test namespace alone.
    pub async fn start(name: &str) -> World {
        World::start_with(name, Scope::OneNamespace).await
    }

    pub async fn start_with(name: &str, scope: Scope) -> World {
        let live = pchat_sql::testing::start(&format!("k8s-{name}")).await;
        let dir = std::env::temp_dir().join(format!("pchat-k8s-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let cluster = {
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || Cluster::start(&dir))
                .await
                .unwrap()
        };
        let client = cluster.admin_client().await;
        cluster
            .tool("kubectl", &["create", "namespace", NAMESPACE])
            .await;
        // The CRD is the user's to apply (`apply_crd`); the chart's crds/ are skipped so a test
        // can apply another version of it first.
        let chart = chart_dir();
        let mut install = vec![
            "install",
            RELEASE,
            chart.to_str().unwrap(),
            "--namespace",
            NAMESPACE,
            "--skip-crds",
            "--set",
            IMAGE,
        ];
        let watch = format!("watchNamespaces={{{NAMESPACE}}}");
        if scope == Scope::OneNamespace {
            install.extend(["--set", watch.as_str()]);
        }
        cluster.tool("helm", &install).await;
        let token = cluster
            .tool(
                "kubectl",
                &[
                    "create",
                    "token",
                    RELEASE,
                    "-n",
                    NAMESPACE,
                    "--duration",
                    "2h",
                ],
            )
            .await;
        let kubeconfig = dir.join("operator.kubeconfig");
        write_token_kubeconfig(&kubeconfig, &cluster, RELEASE, NAMESPACE, token.trim());
        World {
            live,
            client,
            scope,
            kubeconfig,
            dir,
            cluster,
        }
    }

    /// A world whose pool (the example, pointed at the simulator) one replica, `op-a` with a
    /// 15 s Lease and `run_flags`, has bootstrapped to Ready at atlanta.
    pub async fn with_pool_ready(name: &str, run_flags: &[&str]) -> (World, Operator) {
        let world = World::start(name).await;
        world.apply_crd().await;
        world.apply_secret().await;
        let op = world.operator_with("op-a", 15, run_flags);
        world.wait_ready(&op).await;
        world.apply("pool.yaml", &world.pool_manifest(|_| {})).await;
        world.wait_ready_at("atlanta", &op).await;
        (world, op)
    }

    /// Make the simulator take `millis` before each statement of these kinds, so a test can
    /// act while a transition is under way: the operator runs its steps back to back, and a
    /// switch without latency is over within a second.
    pub fn slow_down(&self, kinds: &[StatementKind], millis: u64) {
        for &statement in kinds {
            self.live
                .sim
                .sim
                .inject(Fault::Latency { statement, millis })
                .expect("a latency fault");
        }
    }

    /// Every status the pool is given from now on, in order, as `kubectl get -w` shows them:
    /// a watch of the pool (the first entry is the status at the time of the call).
    pub async fn follow_statuses(&self) -> StatusLog {
        use futures::StreamExt;
        use kube::runtime::{WatchStreamExt, watcher};
        let pools: Api<PersistentChatPool> = Api::namespaced(self.client.clone(), NAMESPACE);
        let log = StatusLog::default();
        let seen = log.0.clone();
        let task = tokio::spawn(async move {
            let mut stream = watcher(pools, watcher::Config::default())
                .applied_objects()
                .boxed();
            while let Some(event) = stream.next().await {
                if let Ok(pool) = event
                    && let Some(status) = pool.status
                {
                    seen.lock().unwrap().push(status);
                }
            }
        });
        *log.1.lock().unwrap() = Some(task.abort_handle());
        log
    }

    /// Run the control plane's kubectl as the cluster admin; panics with its output when it
    /// fails.
    pub async fn kubectl(&self, args: &[&str]) -> String {
        self.cluster.tool("kubectl", args).await
    }

    /// Run kubectl as the cluster admin: whether it succeeded, and stdout + stderr.
    pub async fn try_kubectl(&self, args: &[&str]) -> (bool, String) {
        self.cluster.try_tool("kubectl", args).await
    }

    /// `kubectl patch` the pool's `spec.primarySite`, as a person would.
    pub async fn set_primary_site(&self, kind: &str, site: &str) -> String {
        let patch = format!(r#"{{"spec":{{"primarySite":"{site}"}}}}"#);
        self.kubectl(&[
            "patch", kind, POOL, "-n", NAMESPACE, "--type", "merge", "-p", &patch,
        ])
        .await
    }

    /// `kubectl apply -f` of a manifest given as text.
    pub async fn apply(&self, file_name: &str, manifest: &str) -> String {
        self.kubectl(&[
            "apply",
            "-f",
            self.write(file_name, manifest).to_str().unwrap(),
        ])
        .await
    }

    /// `kubectl apply --server-side --field-manager MANAGER -f` of a manifest, as a GitOps
    /// controller applies what its repository holds.
    pub async fn apply_server_side(
        &self,
        manager: &str,
        file_name: &str,
        manifest: &str,
    ) -> String {
        self.kubectl(&[
            "apply",
            "--server-side",
            "--field-manager",
            manager,
            "-f",
            self.write(file_name, manifest).to_str().unwrap(),
        ])
        .await
    }

    /// The same, when it may be refused: whether it succeeded, and kubectl's output.
    pub async fn try_apply(&self, file_name: &str, manifest: &str) -> (bool, String) {
        self.try_kubectl(&[
            "apply",
            "-f",
            self.write(file_name, manifest).to_str().unwrap(),
        ])
        .await
    }

    fn write(&self, file_name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(file_name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The committed CRD, applied with kubectl; returns once it is Established.
    pub async fn apply_crd(&self) {
        self.cluster.apply_crd().await;
    }

    /// The Secrets the pool names, applied with kubectl: the SQL login (`pchat-sql`) and the
    /// simulator's CA (`pchat-sql-ca`, key `ca.crt`), so the operator verifies the
    /// instances' certificates as it would a real server's.
    pub async fn apply_secret(&self) {
        self.apply_secret_in(NAMESPACE, &self.live).await;
    }

    /// The same Secrets in `namespace`, for a pool pointed at the simulator of `live`.
    pub async fn apply_secret_in(&self, namespace: &str, live: &Live) {
        let ca = std::fs::read(live.sim.ca_file.as_ref().expect("the simulator made a CA"))
            .expect("the simulator's CA file");
        self.apply(
            &format!("secret-{namespace}.yaml"),
            &format!(
                "{}---\n{}",
                secret_manifest(namespace, "pchat-sql", "sa", pchat_sql::testing::PASSWORD),
                ca_secret_manifest(namespace, "pchat-sql-ca", &ca)
            ),
        )
        .await;
    }

    /// The example pool pointed at this world's simulator, with `edit` applied to it.
    pub fn pool_manifest(&self, edit: impl FnOnce(&mut PersistentChatPool)) -> String {
        pool_manifest(&self.live.spec, NAMESPACE, edit)
    }

    /// The pool as the API server has it.
    pub async fn pool(&self) -> Option<Value> {
        self.pool_in(NAMESPACE).await
    }

    /// Read untyped, as a stored pool need not decode as the operator's type.
    pub async fn pool_in(&self, namespace: &str) -> Option<Value> {
        let resource = kube::api::ApiResource::erase::<PersistentChatPool>(&());
        let pools: Api<kube::api::DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, &resource);
        let pool = pools.get_opt(POOL).await.expect("GET the pool")?;
        Some(serde_json::to_value(pool).unwrap())
    }

    /// The pool's status, when it has one.
    pub async fn status(&self) -> Option<PersistentChatPoolStatus> {
        self.status_in(NAMESPACE).await
    }

    pub async fn status_in(&self, namespace: &str) -> Option<PersistentChatPoolStatus> {
        let status = self.pool_in(namespace).await?.get("status")?.clone();
        Some(serde_json::from_value(status).expect("the status decodes"))
    }

    /// The pool's ConfigMap.
    pub async fn config_map(&self) -> Option<Value> {
        let maps: Api<ConfigMap> = Api::namespaced(self.client.clone(), NAMESPACE);
        let cm = maps
            .get_opt(&format!("{POOL}-active-servers"))
            .await
            .expect("GET the ConfigMap")?;
        Some(serde_json::to_value(cm).unwrap())
    }

    /// Every Event about the pool, as JSON.
    async fn pool_events(&self) -> Vec<Value> {
        let events: Api<Event> = Api::namespaced(self.client.clone(), NAMESPACE);
        events
            .list(&Default::default())
            .await
            .expect("LIST events")
            .items
            .into_iter()
            .map(|e| serde_json::to_value(e).unwrap())
            .filter(|e| e["regarding"]["name"] == POOL)
            .collect()
    }

    /// Every Event about the pool: (type, reason, note).
    pub async fn events(&self) -> Vec<(String, String, String)> {
        self.pool_events()
            .await
            .into_iter()
            .map(|e| {
                (
                    e["type"].as_str().unwrap_or_default().to_string(),
                    e["reason"].as_str().unwrap_or_default().to_string(),
                    e["note"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    /// How many times an Event with this reason was recorded about the pool: the Recorder
    /// folds a repeat into the first Event's `series.count` rather than creating another.
    pub async fn event_count(&self, reason: &str) -> u64 {
        self.pool_events()
            .await
            .into_iter()
            .filter(|e| e["reason"] == reason)
            .map(|e| e["series"]["count"].as_u64().unwrap_or(1))
            .sum()
    }

    /// The holder of the operator's Lease (`chat/pchat-operator`), if any.
    pub async fn lease_holder(&self) -> Option<String> {
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), NAMESPACE);
        leases
            .get_opt(RELEASE)
            .await
            .expect("GET the Lease")?
            .spec?
            .holder_identity
            .filter(|h| !h.is_empty())
    }

    /// Sessions the operator holds on `instance`, by the simulator's sys.dm_exec_sessions.
    pub async fn operator_sessions(&self, instance: &str) -> i64 {
        let addr = self.live.sim.addr(instance).unwrap();
        let mut admin = pchat_sql::testing::admin_client(addr).await;
        let row = admin
            .simple_query(
                "SELECT COUNT(*) FROM sys.dm_exec_sessions WHERE program_name = 'pchat-operator'",
            )
            .await
            .unwrap()
            .into_row()
            .await
            .unwrap()
            .expect("one row");
        row.get::<i32, _>(0)
            .map(i64::from)
            .unwrap_or_else(|| row.get::<i64, _>(0).unwrap())
    }

    /// Statements the operator (program name `pchat-operator`) sent to every instance so far.
    pub fn operator_statements(&self) -> usize {
        operator_statements(&self.live)
    }

    /// Of those, the ones that change something.
    pub fn operator_writes(&self) -> usize {
        logged(&self.live, |s| {
            s.program_name == "pchat-operator" && s.writes
        })
        .len()
    }

    /// The writes sent by the replica that logs in as workstation `identity` (its LOGIN7 host
    /// name, which `run` sets to `--identity`), as "instance: statement" lines.
    pub fn sql_writes_by(&self, identity: &str) -> Vec<String> {
        logged(&self.live, |s| s.host_name == identity && s.writes)
            .into_iter()
            .map(|(instance, s)| format!("{instance}: {}", s.text))
            .collect()
    }

    /// The requests the operator's ServiceAccount made, one line each, for failure messages.
    pub fn requests(&self) -> String {
        self.cluster
            .requests_of(&operator_user())
            .iter()
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Wait until the replica's `/readyz` answers 200 (the pool watch has synced).
    pub async fn wait_ready(&self, op: &Operator) {
        let deadline = Instant::now() + LONG;
        loop {
            if let Some((200, _)) = op.http_get("/readyz").await {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: /readyz never answered 200:\n{}\n--- requests\n{}",
                op.identity,
                op.log(),
                self.requests()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Wait until the pool is Protected and Ready at `site`; `op`'s log is shown on failure.
    pub async fn wait_ready_at(&self, site: &str, op: &Operator) -> PersistentChatPoolStatus {
        self.wait_status(&format!("the pool is Ready at {site}"), op, |s| {
            ready_at(s, site)
        })
        .await
    }

    /// Wait until the pool serves from `site` with its transition completed; `op`'s log is
    /// shown on failure.
    pub async fn wait_settled_at(&self, site: &str, op: &Operator) -> PersistentChatPoolStatus {
        let what = format!("{} finishes the switch to {site}", op.identity);
        self.wait_status(&what, op, |s| settled_at(s, site)).await
    }

    /// Wait until the pool's status satisfies `holds`; on failure the last status and `op`'s
    /// log are shown.
    async fn wait_status(
        &self,
        what: &str,
        op: &Operator,
        holds: impl Fn(&PersistentChatPoolStatus) -> bool,
    ) -> PersistentChatPoolStatus {
        eventually(
            LONG,
            what,
            async || self.status().await.filter(|s| holds(s)),
            async || {
                format!(
                    "{:#?}\n--- {}\n{}",
                    self.status().await,
                    op.identity,
                    op.log()
                )
            },
        )
        .await
    }

    /// Wait until `op` holds the Lease.
    pub async fn wait_lease_held_by(&self, op: &Operator) {
        eventually(
            LONG,
            &format!("{} holds the Lease", op.identity),
            async || self.lease_holder().await.filter(|h| *h == op.identity),
            async || op.log(),
        )
        .await;
    }

    /// Wait until a switch is under way: phase Switching, past its first steps.
    pub async fn wait_switching(&self, op: &Operator) -> PersistentChatPoolStatus {
        eventually(
            LONG,
            "the switch is under way",
            async || {
                self.status().await.filter(|s| {
                    s.phase == Some(pchat_core::api::Phase::Switching)
                        && s.step.as_ref().is_some_and(|st| st.index >= 2)
                })
            },
            async || format!("{:#?}\n{}", self.status().await, op.log()),
        )
        .await
    }

    /// Start a replica of `pchat-operator run` with short intervals.
    pub fn operator(&self, identity: &str, lease_seconds: u64) -> Operator {
        self.operator_with(identity, lease_seconds, &[])
    }

    /// A replica with more `run` flags (e.g. `--log-format json`). It watches what the chart
    /// was installed for, as the chart's Deployment would.
    pub fn operator_with(&self, identity: &str, lease_seconds: u64, extra: &[&str]) -> Operator {
        let mut args: Vec<&str> = extra.to_vec();
        if self.scope == Scope::OneNamespace {
            args.extend(["--namespace", NAMESPACE]);
        }
        Operator::spawn(&self.kubeconfig, &self.dir, identity, lease_seconds, &args)
    }
}

/// Statements the operator (program name `pchat-operator`) sent to a simulator's instances.
pub fn operator_statements(live: &Live) -> usize {
    logged(live, |s| s.program_name == "pchat-operator").len()
}

/// The statements the simulator logged on the pool's instances that `keep` accepts, each with
/// its instance, in instance order.
fn logged(
    live: &Live,
    keep: impl Fn(&pchat_sim::server::LoggedStatement) -> bool,
) -> Vec<(String, pchat_sim::server::LoggedStatement)> {
    live.spec
        .instances()
        .flat_map(|(_, i)| {
            live.sim
                .sim
                .statement_log(&i.name)
                .into_iter()
                .filter(|s| keep(s))
                .map(|s| (i.name.clone(), s))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A kubeconfig for a bearer token, trusting the cluster's CA, as a pod's mounted
/// ServiceAccount credentials would be used.
/// A kubeconfig at `path` that reaches `cluster` as the holder of `token` (a ServiceAccount's,
/// from `kubectl create token`), named `user`, in `namespace` by default.
pub fn write_token_kubeconfig(
    path: &Path,
    cluster: &Cluster,
    user: &str,
    namespace: &str,
    token: &str,
) {
    let ca = std::fs::read(cluster.dir.join("pki/ca.crt")).expect("the cluster CA");
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test-cluster\n  cluster:\n    server: {}\n    certificate-authority-data: {}\nusers:\n- name: {user}\n  user:\n    token: {token}\ncontexts:\n- name: {user}\n  context:\n    cluster: test-cluster\n    user: {user}\n    namespace: {namespace}\ncurrent-context: {user}\n",
        cluster.server,
        base64(&ca)
    );
    std::fs::write(path, text).unwrap();
}

/// The example pool pointed at a simulator, in `namespace`, with `edit` applied to it.
pub fn pool_manifest(
    spec: &PersistentChatPoolSpec,
    namespace: &str,
    edit: impl FnOnce(&mut PersistentChatPool),
) -> String {
    let mut pool: PersistentChatPool =
        load_pool_yaml(include_str!("../../examples/pool.yaml")).unwrap();
    pool.spec = spec.clone();
    pool.metadata.namespace = Some(namespace.into());
    edit(&mut pool);
    serde_saphyr::to_string(&pool).unwrap()
}

/// A Secret manifest with base64 `data`, as `kubectl create secret generic` would send.
pub fn secret_manifest(namespace: &str, name: &str, username: &str, password: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {namespace}\ntype: Opaque\ndata:\n  username: {}\n  password: {}\n",
        base64(username.as_bytes()),
        base64(password.as_bytes())
    )
}

/// A Secret with a CA certificate under key `ca.crt`, as `spec.tls.caSecret` expects.
pub fn ca_secret_manifest(namespace: &str, name: &str, ca_pem: &[u8]) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {namespace}\ntype: Opaque\ndata:\n  ca.crt: {}\n",
        base64(ca_pem)
    )
}

/// Standard base64 with padding, as Kubernetes encodes Secret data.
fn base64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// A free loopback port (bound and released: another process may take it in between, which the
/// tests accept as unlikely).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One `pchat-operator run` child process. Dropping it kills it.
pub struct Operator {
    pub identity: String,
    pub http_port: u16,
    pub log: PathBuf,
    child: Option<Child>,
}

impl Operator {
    fn spawn(
        kubeconfig: &Path,
        dir: &Path,
        identity: &str,
        lease_seconds: u64,
        extra: &[&str],
    ) -> Operator {
        let http_port = free_port();
        let log = dir.join(format!("operator-{identity}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_pchat-operator"))
            .args([
                "run",
                "--http-addr",
                &format!("127.0.0.1:{http_port}"),
                "--lease-namespace",
                NAMESPACE,
                "--identity",
                identity,
                "--lease-duration",
                &lease_seconds.to_string(),
                "--stalled-retry",
                "1",
                "--not-leader-retry",
                "1",
            ])
            .args(extra)
            .env("KUBECONFIG", kubeconfig)
            .env(
                "RUST_LOG",
                std::env::var("PCHAT_TEST_RUST_LOG")
                    .unwrap_or_else(|_| "info,pchat_operator=debug".into()),
            )
            .env_remove("POD_NAME")
            .env_remove("POD_NAMESPACE")
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("the operator binary starts");
        Operator {
            identity: identity.to_string(),
            http_port,
            log,
            child: Some(child),
        }
    }

    /// What the replica logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GET a path of its HTTP endpoint: (status code, body); None when it does not answer.
    pub async fn http_get(&self, path: &str) -> Option<(u16, String)> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", self.http_port))
            .await
            .ok()?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.ok()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.ok()?;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let code = text.split_whitespace().nth(1)?.parse().ok()?;
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
        Some((code, body))
    }

    /// Send SIGTERM.
    pub fn terminate(&self) {
        self.signal(libc::SIGTERM);
    }

    /// SIGSTOP: the process stays, frozen, as a replica on a stalled node or in a long GC
    /// pause would.
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// SIGCONT after [`Operator::pause`].
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, signal: i32) {
        if let Some(c) = &self.child {
            // SAFETY: kill(2) on our own child's pid.
            unsafe {
                libc::kill(c.id() as i32, signal);
            }
        }
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Wait for the process to exit by itself, up to `limit`: its exit code, None on timeout.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                self.child = None;
                return Some(status.code().unwrap_or(-1));
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Poll `f` every 200 ms until it returns Some, up to `limit`; panics with `what` and the
/// context `describe` gives.
pub async fn eventually<T>(
    limit: Duration,
    what: &str,
    mut f: impl AsyncFnMut() -> Option<T>,
    describe: impl AsyncFnOnce() -> String,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("{what}: not within {limit:?}\n{}", describe().await);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The condition of this type in a status.
pub fn condition<'a>(
    s: &'a PersistentChatPoolStatus,
    type_: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    s.conditions.iter().find(|c| c.type_ == type_)
}

/// Whether the pool serves from `site`, Protected and Ready.
pub fn ready_at(s: &PersistentChatPoolStatus, site: &str) -> bool {
    s.phase == Some(pchat_core::api::Phase::Protected)
        && s.serving_site.as_deref() == Some(site)
        && has(s, "Ready", "True")
}

/// Whether the pool serves from `site`, Protected and Ready, its last transition completed.
pub fn settled_at(s: &PersistentChatPoolStatus, site: &str) -> bool {
    ready_at(s, site)
        && s.transition
            .as_ref()
            .is_some_and(|t| t.completed_at.is_some())
}

/// Whether the condition holds with this status.
pub fn has(s: &PersistentChatPoolStatus, type_: &str, status: &str) -> bool {
    condition(s, type_).is_some_and(|c| c.status == status)
}
