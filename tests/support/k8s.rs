//! The Kubernetes end-to-end world: the fake API server ([`super::kube_fake`]), the SQL Server
//! simulator in process (`pchat_sql::testing`), `kubectl` pointed at the fake, and `pchat-operator
//! run` replicas as child processes (killed when dropped).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pchat_core::api::{PersistentChatPool, PersistentChatPoolStatus, load_pool_yaml};
use pchat_sim::faults::{Fault, FaultInjector};
use pchat_sim::server::StatementKind;
use serde_json::Value;

use super::kube_fake::FakeApiServer;
use pchat_sql::testing::Live;

pub const NAMESPACE: &str = "default";
pub const POOL: &str = "atl-cs-001";
pub const GROUP_VERSION: &str = "persistentchat.io/v1alpha1";
pub const PLURAL: &str = "persistentchatpools";
/// Generous: the CI machine has two cores shared by parallel test binaries.
pub const LONG: Duration = Duration::from_secs(120);

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

/// The fake API server, the simulator, a kubeconfig and a scratch directory.
pub struct World {
    pub api: FakeApiServer,
    pub live: Live,
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl World {
    pub async fn start(name: &str) -> World {
        let live = pchat_sql::testing::start(&format!("k8s-{name}")).await;
        let api = FakeApiServer::start();
        let dir = std::env::temp_dir().join(format!("pchat-k8s-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let kubeconfig = dir.join("kubeconfig");
        api.write_kubeconfig(&kubeconfig);
        World {
            api,
            live,
            dir,
            kubeconfig,
        }
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
        let pools: kube::Api<PersistentChatPool> =
            kube::Api::namespaced(self.api.client().await, NAMESPACE);
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

    /// Run kubectl against the fake; panics with its output when it fails.
    pub async fn kubectl(&self, args: &[&str]) -> String {
        let (ok, out) = self.try_kubectl(args).await;
        assert!(ok, "kubectl {args:?} failed:\n{out}");
        out
    }

    /// `kubectl patch` the pool's `spec.primarySite`, as a person (or a GitOps commit) would.
    pub async fn set_primary_site(&self, kind: &str, site: &str) -> String {
        let patch = format!(r#"{{"spec":{{"primarySite":"{site}"}}}}"#);
        self.kubectl(&[
            "patch", kind, POOL, "-n", NAMESPACE, "--type", "merge", "-p", &patch,
        ])
        .await
    }

    /// Run kubectl against the fake: whether it succeeded, and stdout + stderr.
    pub async fn try_kubectl(&self, args: &[&str]) -> (bool, String) {
        let kubeconfig = self.kubeconfig.clone();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            let out = Command::new("kubectl")
                .args(&args)
                .env("KUBECONFIG", &kubeconfig)
                .output()
                .expect("kubectl runs");
            (
                out.status.success(),
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
            )
        })
        .await
        .unwrap()
    }

    /// `kubectl apply -f` of a manifest given as text.
    pub async fn apply(&self, file_name: &str, manifest: &str) -> String {
        let path = self.dir.join(file_name);
        std::fs::write(&path, manifest).unwrap();
        self.kubectl(&["apply", "-f", path.to_str().unwrap()]).await
    }

    /// The committed CRD, applied with kubectl.
    pub async fn apply_crd(&self) {
        let crd =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crds/persistentchatpool.yaml");
        self.kubectl(&["apply", "-f", crd.to_str().unwrap()]).await;
    }

    /// The SQL login Secret the pool names (`pchat-sql`), applied with kubectl.
    pub async fn apply_secret(&self) {
        self.apply(
            "secret.yaml",
            &secret_manifest("pchat-sql", "sa", pchat_sql::testing::PASSWORD),
        )
        .await;
    }

    /// The example pool pointed at the simulator, with `edit` applied to it.
    pub fn pool_manifest(&self, edit: impl FnOnce(&mut PersistentChatPool)) -> String {
        let mut pool: PersistentChatPool =
            load_pool_yaml(include_str!("../../examples/pool.yaml")).unwrap();
        pool.spec = self.live.spec.clone();
        pool.metadata.namespace = Some(NAMESPACE.into());
        edit(&mut pool);
        serde_saphyr::to_string(&pool).unwrap()
    }

    /// The pool as the API server has it.
    pub fn pool(&self) -> Option<Value> {
        self.api.get(GROUP_VERSION, PLURAL, Some(NAMESPACE), POOL)
    }

    /// The pool's status, when it has one.
    pub fn status(&self) -> Option<PersistentChatPoolStatus> {
        let status = self.pool()?.get("status")?.clone();
        serde_json::from_value(status).ok()
    }

    /// The pool's ConfigMap.
    pub fn config_map(&self) -> Option<Value> {
        self.api.get(
            "v1",
            "configmaps",
            Some(NAMESPACE),
            &format!("{POOL}-active-servers"),
        )
    }

    /// Every Event about the pool: (type, reason, note).
    pub fn events(&self) -> Vec<(String, String, String)> {
        self.api
            .list("events.k8s.io/v1", "events", Some(NAMESPACE))
            .into_iter()
            .filter(|e| e["regarding"]["name"] == POOL)
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
    pub fn event_count(&self, reason: &str) -> u64 {
        self.api
            .list("events.k8s.io/v1", "events", Some(NAMESPACE))
            .into_iter()
            .filter(|e| e["regarding"]["name"] == POOL && e["reason"] == reason)
            .map(|e| e["series"]["count"].as_u64().unwrap_or(1))
            .sum()
    }

    /// Statements the operator (program name `pchat-operator`) sent to every instance so far.
    pub fn operator_statements(&self) -> usize {
        self.live
            .spec
            .instances()
            .flat_map(|(_, i)| self.live.sim.sim.statement_log(&i.name))
            .filter(|s| s.program_name == "pchat-operator")
            .count()
    }

    /// Of those, the ones that change something.
    pub fn operator_writes(&self) -> usize {
        self.live
            .spec
            .instances()
            .flat_map(|(_, i)| self.live.sim.sim.statement_log(&i.name))
            .filter(|s| s.program_name == "pchat-operator" && s.writes)
            .count()
    }

    /// The requests the fake served, one line each, for failure messages.
    pub fn requests(&self) -> String {
        self.api
            .requests()
            .iter()
            .map(|r| {
                format!(
                    "{} {}?{} -> {} [{}]",
                    r.method, r.path, r.query, r.status, r.user_agent
                )
            })
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

    /// Start a replica of `pchat-operator run` with short intervals.
    pub fn operator(&self, identity: &str, lease_seconds: u64) -> Operator {
        self.operator_with(identity, lease_seconds, &[])
    }

    /// A replica with more `run` flags (e.g. `--log-format json`).
    pub fn operator_with(&self, identity: &str, lease_seconds: u64, extra: &[&str]) -> Operator {
        Operator::spawn(&self.kubeconfig, &self.dir, identity, lease_seconds, extra)
    }
}

/// A Secret manifest with base64 `data`, as `kubectl create secret generic` would send.
pub fn secret_manifest(name: &str, username: &str, password: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {NAMESPACE}\ntype: Opaque\ndata:\n  username: {}\n  password: {}\n",
        base64(username.as_bytes()),
        base64(password.as_bytes())
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
                "--namespace",
                NAMESPACE,
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
        if let Some(c) = &self.child {
            // SAFETY: kill(2) on our own child's pid.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
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

/// The holder of the operator's Lease (`default/pchat-operator`), if any.
pub fn lease_holder(api: &FakeApiServer) -> Option<String> {
    api.get(
        "coordination.k8s.io/v1",
        "leases",
        Some(NAMESPACE),
        "pchat-operator",
    )?["spec"]["holderIdentity"]
        .as_str()
        .map(String::from)
}

/// Poll `f` every 200 ms until it returns Some, up to `limit`; panics with `what` and the
/// context `describe` gives.
pub async fn eventually<T>(
    limit: Duration,
    what: &str,
    mut f: impl FnMut() -> Option<T>,
    describe: impl Fn() -> String,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {limit:?}\n{}",
            describe()
        );
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

/// Whether the pool serves from `site`, Protected and Ready, its last transition completed.
pub fn settled_at(s: &PersistentChatPoolStatus, site: &str) -> bool {
    s.phase == Some(pchat_core::api::Phase::Protected)
        && s.serving_site.as_deref() == Some(site)
        && has(s, "Ready", "True")
        && s.transition
            .as_ref()
            .is_some_and(|t| t.completed_at.is_some())
}

/// Whether the condition holds with this status.
pub fn has(s: &PersistentChatPoolStatus, type_: &str, status: &str) -> bool {
    condition(s, type_).is_some_and(|c| c.status == status)
}
