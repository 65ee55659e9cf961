//! The operator crate's one error type. Every failure the operator itself can meet is a variant
//! here, each naming the file, flag, object or endpoint involved; what the process does about it
//! is a method: the exit code of a command ([`Error::exit_code`]), whether trying again later
//! may succeed ([`Error::is_retryable`]), and the `reason` label of the error metric
//! ([`Error::reason`]). SQL Server's errors are the `pchat_sql` crate's own, and reach status
//! through the step that met them.

use std::net::SocketAddr;

/// The environment variable holding the SQL login name (local mode).
pub const USERNAME_VAR: &str = "PCHAT_SQL_USERNAME";
/// The environment variable holding the SQL password (local mode).
pub const PASSWORD_VAR: &str = "PCHAT_SQL_PASSWORD";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A manifest, or another file the operator reads, cannot be read.
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    /// The manifest is not a usable PersistentChatPool: a YAML error, another kind, unknown
    /// fields, or a spec that breaks validation rules (one violation per line, each naming its
    /// field).
    #[error("{path}: {}", spec_message(source))]
    Spec {
        path: String,
        #[source]
        source: pchat_core::Error,
    },
    /// No SQL credentials were given (local mode).
    #[error(
        "no SQL credentials: set {USERNAME_VAR} and {PASSWORD_VAR}, or pass --credentials-file with `username` and `password` keys"
    )]
    NoCredentials,
    /// The credentials file cannot be used. The message never quotes the file's content.
    #[error("credentials file {path}: {reason}")]
    CredentialsFile { path: String, reason: String },
    /// The `--ca-file` cannot be used.
    #[error("--ca-file {path}: {reason}")]
    CaFile { path: String, reason: String },
    /// Local mode was given a spec whose CA lives in a Kubernetes Secret, and no `--ca-file`.
    #[error(
        "spec.tls.caSecret names the Secret `{secret}`, which local mode cannot read: give its `ca.crt` with --ca-file"
    )]
    CaSecretWithoutCaFile { secret: String },
    /// The status file cannot be written.
    #[error("cannot write the status file {path}: {reason}")]
    StatusFile { path: String, reason: String },
    /// The published active-server list (a file or the pool's ConfigMap) cannot be read or
    /// written.
    #[error("{0}")]
    Publish(String),
    /// The health and metrics endpoint cannot listen.
    #[error("cannot listen on {addr} for /healthz, /readyz and /metrics: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// No Kubernetes client configuration could be found.
    #[error(
        "no Kubernetes client configuration (KUBECONFIG, ~/.kube/config or the in-cluster service account): {0}"
    )]
    KubeConfig(#[source] kube::config::InferConfigError),
    /// The Kubernetes client could not be built from its configuration.
    #[error("cannot build the Kubernetes client: {0}")]
    KubeClient(#[source] kube::Error),
    /// The Lease of leader election cannot be used.
    #[error("cannot use the Lease {namespace}/{name} for leader election: {source}")]
    Lease {
        namespace: String,
        name: String,
        #[source]
        source: kube_lease_manager::LeaseManagerError,
    },
    /// A PersistentChatPool cannot be read from the API server.
    #[error("cannot read PersistentChatPool {namespace}/{name}: {source}")]
    ReadPool {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    /// A pool's status cannot be written.
    #[error("cannot write the status of PersistentChatPool {namespace}/{name}: {source}")]
    WriteStatus {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    /// A Secret a pool names cannot be read (the API server failed; a missing Secret is not
    /// an error but a Stalled pool).
    #[error("cannot read Secret {namespace}/{name}: {source}")]
    ReadSecret {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// What is wrong with a manifest, as the commands print it: violations say that nothing was
/// sent, so that a person reading a refused `reconcile` knows no SQL Server was touched.
fn spec_message(error: &pchat_core::Error) -> String {
    match error {
        pchat_core::Error::Invalid(violations) => {
            format!("the spec is invalid, nothing was sent:\n{violations}")
        }
        other => other.to_string(),
    }
}

impl Error {
    /// The process exit code of a command that stops on this error: 2 for what the user must
    /// fix in the spec, the credentials or a flag, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Spec { .. }
            | Error::NoCredentials
            | Error::CredentialsFile { .. }
            | Error::CaFile { .. }
            | Error::CaSecretWithoutCaFile { .. } => 2,
            _ => 1,
        }
    }

    /// Whether the same thing tried again later may succeed without anyone's help: the API
    /// server or a file system that failed for a while, not a spec, a flag or credentials a
    /// person must fix.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Publish(_)
            | Error::ReadPool { .. }
            | Error::WriteStatus { .. }
            | Error::ReadSecret { .. }
            | Error::StatusFile { .. }
            | Error::Read { .. } => true,
            Error::Spec { source, .. } => source.is_retryable(),
            Error::NoCredentials
            | Error::CredentialsFile { .. }
            | Error::CaFile { .. }
            | Error::CaSecretWithoutCaFile { .. }
            | Error::Listen { .. }
            | Error::KubeConfig(_)
            | Error::KubeClient(_)
            | Error::Lease { .. } => false,
        }
    }

    /// The `reason` label of `pchat_reconcile_errors_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::ReadPool { .. } => "PoolUnreadable",
            Error::WriteStatus { .. } => "StatusWriteFailed",
            Error::ReadSecret { .. } => "SecretUnreadable",
            Error::Publish(_) => "PublishedStateUnreadable",
            Error::Read { .. } | Error::Spec { .. } => "InvalidSpec",
            Error::NoCredentials
            | Error::CredentialsFile { .. }
            | Error::CaFile { .. }
            | Error::CaSecretWithoutCaFile { .. } => "CredentialsUnusable",
            Error::StatusFile { .. } => "StatusWriteFailed",
            Error::Listen { .. }
            | Error::KubeConfig(_)
            | Error::KubeClient(_)
            | Error::Lease { .. } => "StartupFailed",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_person_must_fix_exits_2_and_is_never_retried_by_itself() {
        for e in [
            Error::NoCredentials,
            Error::CaSecretWithoutCaFile {
                secret: "pchat-sql-ca".into(),
            },
            Error::CaFile {
                path: "ca.pem".into(),
                reason: "missing".into(),
            },
            Error::Spec {
                path: "pool.yaml".into(),
                source: pchat_core::Error::UnknownFields {
                    paths: vec!["spec.suspnd".into()],
                },
            },
        ] {
            assert_eq!(e.exit_code(), 2, "{e}");
            assert!(!e.is_retryable(), "{e}");
        }
    }

    #[test]
    fn a_failing_file_system_or_publisher_is_retried() {
        for e in [
            Error::Publish("the ConfigMap cannot be read".into()),
            Error::StatusFile {
                path: "status.yaml".into(),
                reason: "disk full".into(),
            },
        ] {
            assert!(e.is_retryable(), "{e}");
            assert_eq!(e.exit_code(), 1, "{e}");
        }
    }
}
