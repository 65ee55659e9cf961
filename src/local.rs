//! Local (file) mode: keep a pool converged without Kubernetes. The spec is a manifest file,
//! re-read when it changes; status and the active-server list are files, written atomically.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::engine::publish::write_atomic;
use crate::engine::{self, FilePublisher, PassInput, PassReport, PortSource};
use crate::manifest;
use futures::future::BoxFuture;
use pchat_core::api::{PersistentChatPoolSpec, PersistentChatPoolStatus};
use pchat_sql::connect::Credentials;

pub use crate::error::{PASSWORD_VAR, USERNAME_VAR};

/// What local mode was asked to do.
#[derive(Clone, Debug)]
pub struct Options {
    /// The PersistentChatPool manifest.
    pub pool_file: PathBuf,
    /// Run one pass and return.
    pub once: bool,
    /// Where status is written (YAML); not written when `None`.
    pub status_file: Option<PathBuf>,
    /// Where the active-server list is published.
    pub active_servers_file: PathBuf,
}

impl Options {
    /// The active-servers file when none is given: `active-servers.yaml` beside the manifest.
    pub fn default_active_servers_file(pool_file: &Path) -> PathBuf {
        pool_file
            .parent()
            .unwrap_or(Path::new("."))
            .join("active-servers.yaml")
    }
}

/// Check a `--ca-file` before anything is sent: it must be readable and hold at least one
/// PEM certificate. (The connection reads it again; checking first turns a typo in the path
/// into a message naming the flag, instead of a TLS failure on every instance.)
pub fn check_ca_file(path: &Path) -> Result<PathBuf, Error> {
    let err = |reason: String| Error::CaFile {
        path: path.display().to_string(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let text = String::from_utf8_lossy(&bytes);
    if !text.contains("-----BEGIN CERTIFICATE-----") {
        return Err(err(
            "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    Ok(path.to_path_buf())
}

/// The CA local mode trusts: `--ca-file` when given (checked); otherwise the system's roots,
/// unless the spec names a CA Secret, which local mode cannot read: that is refused, since
/// connecting would fail on every instance with a certificate the spec means to trust.
pub fn local_ca(
    spec: Option<&PersistentChatPoolSpec>,
    ca_file: Option<&Path>,
) -> Result<Option<PathBuf>, Error> {
    match (ca_file, spec.and_then(|s| s.tls.ca_secret.as_ref())) {
        (Some(path), _) => check_ca_file(path).map(Some),
        (None, Some(secret)) if !spec.is_some_and(|s| s.tls.trust_server_certificate) => {
            Err(Error::CaSecretWithoutCaFile {
                secret: secret.clone(),
            })
        }
        (None, _) => Ok(None),
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialsFile {
    username: String,
    password: String,
}

/// The SQL credentials: from the file when one is given, else from [`USERNAME_VAR`] and
/// [`PASSWORD_VAR`] as `env` reports them.
pub fn load_credentials(
    file: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Credentials, Error> {
    if let Some(path) = file {
        let err = |reason: String| Error::CredentialsFile {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        // The parser's own message may quote the offending line, which may be the password:
        // only its position is reported.
        let c: CredentialsFile = serde_saphyr::from_str(&text).map_err(|e| {
            let at = e
                .location()
                .map(|l| format!(" (line {}, column {})", l.line(), l.column()))
                .unwrap_or_default();
            err(format!(
                "not a YAML mapping with exactly the string keys `username` and `password`{at}"
            ))
        })?;
        if c.username.is_empty() || c.password.is_empty() {
            return Err(err(
                "`username` and `password` must not be empty".to_string()
            ));
        }
        return Ok(Credentials::new(c.username, c.password));
    }
    match (env(USERNAME_VAR), env(PASSWORD_VAR)) {
        (Some(u), Some(p)) if !u.is_empty() && !p.is_empty() => Ok(Credentials::new(u, p)),
        _ => Err(Error::NoCredentials),
    }
}

/// The manifest file, re-read on every look and parsed again only when its content changed.
pub struct SpecFile {
    path: PathBuf,
    hash: Option<u64>,
    generation: i64,
    current: Result<PersistentChatPoolSpec, Error>,
}

impl SpecFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SpecFile {
            path: path.into(),
            hash: None,
            generation: 0,
            current: Err(Error::Read {
                path: String::new(),
                reason: "not read yet".to_string(),
            }),
        }
    }

    /// Whether the file's content differs from what was last loaded.
    pub fn changed(&self) -> bool {
        std::fs::read(&self.path)
            .map(|b| Some(hash(&b)) != self.hash)
            .unwrap_or(true)
    }

    /// The spec as the file says now, and its generation: a counter that goes up each time the
    /// content changes (local mode's `metadata.generation`).
    pub fn load(&mut self) -> (Result<&PersistentChatPoolSpec, &Error>, i64) {
        match manifest::read(&self.path) {
            Err(e) => {
                self.hash = None;
                self.current = Err(e);
            }
            Ok(bytes) => {
                let h = hash(&bytes);
                if Some(h) != self.hash {
                    self.hash = Some(h);
                    self.generation += 1;
                    let parsed = manifest::parse(&self.path, &bytes).map(|pool| pool.spec);
                    if parsed.is_ok() {
                        tracing::info!(file = %self.path.display(), generation = self.generation, "spec loaded");
                    }
                    self.current = parsed;
                }
            }
        }
        (self.current.as_ref(), self.generation)
    }
}

fn hash(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// Load and validate the manifest once: what `reconcile --once` checks before it reads
/// credentials, so that a spec problem is reported first. The same loader and validation as
/// every pass.
pub fn check_spec(path: &Path) -> Result<PersistentChatPoolSpec, Error> {
    let mut file = SpecFile::new(path);
    let _ = file.load();
    let spec = file.current?;
    pchat_core::api::validate(&spec).map_err(|source| Error::Spec {
        path: path.display().to_string(),
        source,
    })?;
    Ok(spec)
}

/// Read a status file written by an earlier run, so that reporting (transition, salvage
/// backups, condition times) carries over a restart. Nothing decides from it.
pub fn read_status(path: &Path) -> Option<PersistentChatPoolStatus> {
    let text = std::fs::read_to_string(path).ok()?;
    match serde_saphyr::from_str(&text) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "ignoring an unreadable status file");
            None
        }
    }
}

/// Write the status file atomically (YAML).
pub fn write_status(path: &Path, status: &PersistentChatPoolStatus) -> Result<(), Error> {
    let err = |reason: String| Error::StatusFile {
        path: path.display().to_string(),
        reason,
    };
    let text = serde_saphyr::to_string(status).map_err(|e| err(e.to_string()))?;
    write_atomic(path, text.as_bytes()).map_err(|e| err(e.to_string()))
}

/// How often the manifest is checked for changes while waiting for the next pass.
const SPEC_POLL: Duration = Duration::from_millis(200);

/// Run local mode: passes until `cancel` fires (or one pass with `once`, whose report is
/// returned). A manifest that cannot be read or a spec that breaks a rule goes through the
/// engine like any pass (status Invalid, nothing sent), and the file is watched until it is
/// fixed; the `reconcile --once` command refuses both before it starts ([`check_spec`]).
pub async fn run(
    opts: &Options,
    ports: &mut dyn PortSource,
    cancel: CancellationToken,
) -> Result<Option<PassReport>, Error> {
    let mut spec_file = SpecFile::new(&opts.pool_file);
    let mut publisher = FilePublisher::new(&opts.active_servers_file);
    let mut previous = opts.status_file.as_deref().and_then(read_status);
    let pool = opts.pool_file.display().to_string();
    let status_sink = opts.status_file.clone().map(StatusFile);
    loop {
        let (spec, generation) = spec_file.load();
        let unreadable = spec.as_ref().err().map(|e| e.to_string());
        let input = PassInput {
            pool: &pool,
            spec: spec.map_err(|_| unreadable.as_deref().unwrap_or_default()),
            generation: Some(generation),
            previous: previous.as_ref(),
            now: Timestamp::now(),
            timing: engine::Timing::default(),
            gate: &engine::AlwaysWrite,
            progress: status_sink.as_ref().map(|s| s as &dyn engine::ProgressSink),
        };
        let report = engine::reconcile_once(input, ports, &mut publisher).await;
        if let Some(path) = &opts.status_file {
            write_status(path, &report.status)?;
        }
        if opts.once {
            return Ok(Some(report));
        }
        let requeue = report.requeue_after;
        previous = Some(report.status);
        tracing::debug!(
            requeue_ms = requeue.as_millis() as u64,
            "next pass scheduled"
        );
        if !wait(requeue, &spec_file, &cancel).await {
            return Ok(None);
        }
    }
}

/// The status file, written during a step with its progress.
struct StatusFile(PathBuf);

impl engine::ProgressSink for StatusFile {
    fn report<'a>(&'a self, status: &'a PersistentChatPoolStatus) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Err(e) = write_status(&self.0, status) {
                tracing::warn!(error = %e, "the status file cannot be written during the step");
            }
        })
    }
}

/// Sleep for `d`, waking early when the manifest changes. False when cancelled.
async fn wait(d: Duration, spec_file: &SpecFile, cancel: &CancellationToken) -> bool {
    let deadline = tokio::time::Instant::now() + d;
    loop {
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return true;
        }
        let nap = SPEC_POLL.min(deadline - now);
        tokio::select! {
            _ = cancel.cancelled() => return false,
            _ = tokio::time::sleep(nap) => {}
        }
        if spec_file.changed() {
            tracing::info!("the manifest changed: reconciling now");
            return true;
        }
    }
}
