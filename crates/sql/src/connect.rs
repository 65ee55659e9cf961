//! Connections to SQL instances: TLS policy, login, timeouts, and one kept connection per
//! instance across passes, re-established when it breaks.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use tiberius::{AuthMethod, Client, Config, EncryptionLevel};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

use super::SqlError;
use pchat_core::api::{EncryptMode, PersistentChatPoolSpec};

/// A tiberius client over tokio.
pub type SqlClient = Client<Compat<TcpStream>>;

/// The SQL login the operator uses. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    password: String,
}

impl Credentials {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The password, for the login packet only.
    pub fn password(&self) -> &str {
        &self.password
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// How to reach and log in to an instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Instance name from the spec (used in messages and as the cache key).
    pub instance: String,
    pub host: String,
    pub port: u16,
}

impl Target {
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// Connection policy shared by every instance of a pool.
#[derive(Clone, Debug)]
pub struct ConnectSettings {
    pub encrypt: EncryptMode,
    /// PEM file of the CA that signed the instances' certificates (from `spec.tls.caSecret`).
    pub ca_certificate: Option<PathBuf>,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    pub credentials: Credentials,
    /// The workstation name in LOGIN7, which SQL Server shows as `HOST_NAME()` and
    /// `sys.dm_exec_sessions.host_name`: the replica's identity in Kubernetes, so a DBA (and the
    /// tests) can tell which replica sent a statement. `None`: tiberius's default, this
    /// machine's host name.
    pub client_name: Option<String>,
}

impl ConnectSettings {
    /// The spec's TLS and timeout settings with these credentials.
    pub fn from_spec(
        spec: &PersistentChatPoolSpec,
        credentials: Credentials,
        ca_certificate: Option<PathBuf>,
    ) -> Self {
        ConnectSettings {
            encrypt: spec.tls.encrypt,
            ca_certificate,
            connect_timeout: spec.timeouts.connect.into(),
            command_timeout: spec.timeouts.command.into(),
            credentials,
            client_name: None,
        }
    }

    fn tiberius_config(&self, target: &Target) -> Config {
        let mut config = Config::new();
        config.host(&target.host);
        config.port(target.port);
        config.application_name("pchat-operator");
        if let Some(name) = &self.client_name {
            config.client_name(name);
        }
        // master, named in LOGIN7: without it SQL Server opens the login's default database,
        // and a login whose default is the chat database (as chat service logins often are)
        // fails with 4064 while that database is RESTORING on this instance, which is the normal
        // state of every secondary the operator must reach.
        config.database("master");
        config.authentication(AuthMethod::sql_server(
            &self.credentials.username,
            self.credentials.password(),
        ));
        config.encryption(match self.encrypt {
            EncryptMode::Required => EncryptionLevel::Required,
            EncryptMode::Off => EncryptionLevel::Off,
            EncryptMode::NotSupported => EncryptionLevel::NotSupported,
        });
        if let Some(ca) = &self.ca_certificate {
            config.trust_cert_ca(ca.display());
        }
        config.handshake_timeout(Some(self.connect_timeout));
        config.command_timeout(Some(self.command_timeout));
        config
    }
}

/// Open a new connection and log in.
pub async fn connect(target: &Target, settings: &ConnectSettings) -> Result<SqlClient, SqlError> {
    let failed = |reason: String| SqlError::Connect {
        instance: target.instance.clone(),
        address: target.address(),
        reason,
    };
    let tcp = tokio::time::timeout(
        settings.connect_timeout,
        TcpStream::connect((target.host.as_str(), target.port)),
    )
    .await
    .map_err(|_| {
        failed(format!(
            "TCP connect timed out after {}s",
            settings.connect_timeout.as_secs()
        ))
    })?
    .map_err(|e| failed(e.to_string()))?;
    tcp.set_nodelay(true).map_err(|e| failed(e.to_string()))?;
    let config = settings.tiberius_config(target);
    Client::connect(config, tcp.compat_write())
        .await
        .map_err(|e| {
            failed(match (&e, settings.encrypt) {
                (tiberius::error::Error::Server(t), _) => {
                    format!("login failed: error {}: {}", t.code(), t.message())
                }
                (_, EncryptMode::Required) => format!(
                    "{e} (spec.tls.encrypt is Required: the connection fails closed when the server cannot encrypt)"
                ),
                _ => e.to_string(),
            })
        })
}

/// One kept connection per instance, reused across passes and replaced when it breaks.
#[derive(Default)]
pub struct Connections {
    clients: HashMap<String, SqlClient>,
}

impl Connections {
    /// The kept connection to `target`, opening one when there is none.
    pub async fn get(
        &mut self,
        target: &Target,
        settings: &ConnectSettings,
    ) -> Result<&mut SqlClient, SqlError> {
        if !self.clients.contains_key(&target.instance) {
            let client = connect(target, settings).await?;
            self.clients.insert(target.instance.clone(), client);
        }
        Ok(self
            .clients
            .get_mut(&target.instance)
            .expect("inserted above"))
    }

    /// Forget the connection to an instance after an error that may have left it unusable
    /// (a broken socket, a timed-out command): the next `get` opens a fresh one.
    pub fn discard(&mut self, instance: &str) {
        self.clients.remove(instance);
    }

    /// Take the kept connection to an instance out of the map, so several instances can be
    /// talked to concurrently; give it back with [`Connections::put`] when it is still good.
    pub fn take(&mut self, instance: &str) -> Option<SqlClient> {
        self.clients.remove(instance)
    }

    /// Keep `client` as the connection to `instance` (replacing any other).
    pub fn put(&mut self, instance: &str, client: SqlClient) {
        self.clients.insert(instance.to_string(), client);
    }

    /// Whether a connection to the instance is kept.
    pub fn contains(&self, instance: &str) -> bool {
        self.clients.contains_key(instance)
    }

    /// How many connections are kept.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_debug_output_hides_the_password() {
        let c = Credentials::new("sa", "Pchat-Sim-1");
        let shown = format!("{c:?}");
        assert!(shown.contains("sa"));
        assert!(!shown.contains("Pchat-Sim-1"), "{shown}");
    }

    #[tokio::test]
    async fn connection_refused_names_instance_and_address() {
        // Bind then drop a listener so the port is known to be closed.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let target = Target {
            instance: "atl-sql1".into(),
            host: "127.0.0.1".into(),
            port,
        };
        let settings = ConnectSettings {
            encrypt: EncryptMode::NotSupported,
            ca_certificate: None,
            connect_timeout: Duration::from_secs(2),
            command_timeout: Duration::from_secs(2),
            credentials: Credentials::new("sa", "secret-password"),
            client_name: None,
        };
        let Err(err) = connect(&target, &settings).await else {
            panic!("connecting to a closed port must fail");
        };
        let text = err.to_string();
        assert!(text.contains("atl-sql1") && text.contains(&format!("127.0.0.1:{port}")));
        assert!(!text.contains("secret-password"));
        assert!(err.is_retryable());
    }
}
