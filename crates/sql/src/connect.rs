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
    /// The name certificates are verified against instead of the host connected to
    /// (`spec.tls.hostNameInCertificate`).
    pub host_name_in_certificate: Option<String>,
    /// Accept any certificate unverified (`spec.tls.trustServerCertificate`).
    pub trust_server_certificate: bool,
    pub connect_timeout: Duration,
    /// How long a statement may wait for the server's next answer; `None`: as long as it
    /// takes (BACKUP and RESTORE, see [`Connections::get_unbounded`]).
    pub command_timeout: Option<Duration>,
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
            host_name_in_certificate: spec.tls.host_name_in_certificate.clone(),
            trust_server_certificate: spec.tls.trust_server_certificate,
            connect_timeout: spec.timeouts.connect.into(),
            command_timeout: Some(spec.timeouts.command.into()),
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
            EncryptMode::Strict => EncryptionLevel::Strict,
            EncryptMode::Off => EncryptionLevel::Off,
            EncryptMode::NotSupported => EncryptionLevel::NotSupported,
        });
        if let Some(name) = &self.host_name_in_certificate {
            config.hostname_in_certificate(name);
        }
        if self.trust_server_certificate {
            config.trust_cert();
        } else if let Some(ca) = &self.ca_certificate {
            // tiberius trusts the CA given on top of a base set of roots. Its default base is
            // the OS trust store, read from disk and parsed (every PEM certificate in
            // /etc/ssl/certs) for each connection: a sixth of this process's CPU when many
            // pools log in at once. The compiled-in Mozilla roots are the same kind of base, at no
            // cost; the pool's CA is what its instances' certificates are verified against.
            config.trust_webpki_roots();
            config.trust_cert_ca(ca.display());
        }
        config.handshake_timeout(Some(self.connect_timeout));
        config.command_timeout(self.command_timeout);
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
    if settings.trust_server_certificate && settings.encrypt != EncryptMode::NotSupported {
        tracing::warn!(
            instance = %target.instance,
            address = %target.address(),
            "spec.tls.trustServerCertificate is true: the instance's certificate is not verified, so anyone on the network path can pose as it and read the SQL login's password"
        );
    }
    let config = settings.tiberius_config(target);
    Client::connect(config, tcp.compat_write())
        .await
        .map_err(|e| failed(explain_connect_error(&e, target, settings)))
}

/// What went wrong, in terms of the spec's settings: a certificate the operator does not
/// trust names the setting that decides trust; a server that cannot encrypt names
/// `spec.tls.encrypt`. tiberius's own advice names its API, which a user of the operator
/// cannot call, so it is replaced.
fn explain_connect_error(
    e: &tiberius::error::Error,
    target: &Target,
    settings: &ConnectSettings,
) -> String {
    if let tiberius::error::Error::Server(t) = e {
        return format!("login failed: error {}: {}", t.code(), t.message());
    }
    let text = e.to_string();
    let verified_name = settings
        .host_name_in_certificate
        .as_deref()
        .unwrap_or(&target.host);
    let trusted = match &settings.ca_certificate {
        Some(_) => "the CA in spec.tls.caSecret",
        None => "the system's trusted roots (spec.tls.caSecret is not set)",
    };
    let certificate_problem = if text.contains("UnknownIssuer") || text.contains("unknown issuer") {
        Some(format!(
            "the instance's certificate is not signed by {trusted}: put the CA that signed it in spec.tls.caSecret (for the self-signed certificate SQL Server makes for itself, that certificate; or, accepting that anyone on the path can pose as the instance, spec.tls.trustServerCertificate: true)"
        ))
    } else if text.contains("Expired") || text.contains("expired") {
        Some(
            "the instance's certificate has expired: renew it on the SQL Server instance (SQL Server Configuration Manager, Certificate tab) and restart the instance"
                .to_string(),
        )
    } else if text.contains("NotValidYet") {
        Some("the instance's certificate is not valid yet: check the clocks of the instance and the operator".to_string())
    } else if text.contains("NotValidForName") || text.contains("not valid for name") {
        Some(format!(
            "the instance's certificate does not name `{verified_name}` among its DNS subject alternative names (a name only in the subject's CN is not accepted): reissue it with that name, or set spec.tls.hostNameInCertificate to a name it carries"
        ))
    } else if text.contains("invalid peer certificate") || text.contains("certificate was rejected")
    {
        Some(format!(
            "the instance's certificate was refused while verifying it for `{verified_name}` against {trusted}"
        ))
    } else {
        None
    };
    let detail = text
        .split(" To connect anyway")
        .next()
        .unwrap_or(&text)
        .trim_end()
        .to_string();
    match (certificate_problem, settings.encrypt) {
        (Some(problem), _) => format!("TLS: {problem} ({detail})"),
        (None, EncryptMode::Required | EncryptMode::Strict) => format!(
            "{detail} (spec.tls.encrypt is {:?}: the connection fails closed when the server cannot encrypt)",
            settings.encrypt
        ),
        (None, _) => detail,
    }
}

/// The connection to `target` in `clients`, opened with `settings` when there is none.
async fn kept<'a>(
    clients: &'a mut HashMap<String, SqlClient>,
    target: &Target,
    settings: &ConnectSettings,
) -> Result<&'a mut SqlClient, SqlError> {
    if !clients.contains_key(&target.instance) {
        let client = connect(target, settings).await?;
        clients.insert(target.instance.clone(), client);
    }
    Ok(clients.get_mut(&target.instance).expect("inserted above"))
}

/// One kept connection per instance, reused across passes and replaced when it breaks; and,
/// per instance, one for BACKUP and RESTORE, which has no command timeout.
#[derive(Default)]
pub struct Connections {
    clients: HashMap<String, SqlClient>,
    /// The connections BACKUP and RESTORE go on. They run as long as the data takes (hours
    /// for a large database), and a client that gives up on one closes its connection,
    /// which makes SQL Server abort the statement: so nothing bounds them from here. Their
    /// progress is observed on the other connection (`sys.dm_exec_requests`).
    unbounded: HashMap<String, SqlClient>,
}

impl Connections {
    /// The kept connection to `target`, opening one when there is none.
    pub async fn get(
        &mut self,
        target: &Target,
        settings: &ConnectSettings,
    ) -> Result<&mut SqlClient, SqlError> {
        kept(&mut self.clients, target, settings).await
    }

    /// The connection to `target` for statements that run without the command timeout,
    /// opening one when there is none.
    pub async fn get_unbounded(
        &mut self,
        target: &Target,
        settings: &ConnectSettings,
    ) -> Result<&mut SqlClient, SqlError> {
        let unbounded = ConnectSettings {
            command_timeout: None,
            ..settings.clone()
        };
        kept(&mut self.unbounded, target, &unbounded).await
    }

    /// Forget the connections to an instance after an error that may have left them unusable
    /// (a broken socket, a timed-out command): the next `get` opens a fresh one.
    pub fn discard(&mut self, instance: &str) {
        self.clients.remove(instance);
        self.unbounded.remove(instance);
    }

    /// Close the connections BACKUP and RESTORE went on: a pool with no step to run has no
    /// use for them, and each costs the server a session and this process its buffers.
    pub fn close_unbounded(&mut self) {
        self.unbounded.clear();
    }

    /// Close every connection: the next `get` opens a fresh one.
    pub fn close_all(&mut self) {
        self.clients.clear();
        self.unbounded.clear();
    }

    /// Take the kept connection to an instance out of the map, so several instances can be
    /// talked to concurrently; give it back with [`Connections::put`] when it is still good.
    pub fn take(&mut self, instance: &str) -> Option<SqlClient> {
        self.clients.remove(instance)
    }

    /// Take the connection without a command timeout to an instance out of the map.
    pub fn take_unbounded(&mut self, instance: &str) -> Option<SqlClient> {
        self.unbounded.remove(instance)
    }

    /// Keep `client` as the connection without a command timeout to `instance`.
    pub fn put_unbounded(&mut self, instance: &str, client: SqlClient) {
        self.unbounded.insert(instance.to_string(), client);
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
            host_name_in_certificate: None,
            trust_server_certificate: false,
            connect_timeout: Duration::from_secs(2),
            command_timeout: Some(Duration::from_secs(2)),
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
