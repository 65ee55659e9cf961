//! The simulator's TLS, driven by tiberius (a client this crate did not write): TLS inside
//! PRELOGIN for the whole connection and for the login only, TDS 8 strict, and the refusals
//! SQL Server gives when the two sides cannot agree.

use std::path::PathBuf;

use pchat_sim::cluster::{RunningSim, with_free_ports};
use pchat_sim::server::Topology;
use tiberius::{AuthMethod, Client, Config, EncryptionLevel};
use tokio_util::compat::TokioAsyncWriteCompatExt;

const INSTANCE: &str = "atl-sql1";

fn topology(tls: &str) -> Topology {
    let yaml = format!(
        r#"
instances:
  - {{name: {INSTANCE}, site: atlanta, listen: "127.0.0.1:0", logins: [{{name: sa, password: Pchat-Sim-1}}]}}
{tls}
"#
    );
    with_free_ports(Topology::from_yaml(&yaml).unwrap())
}

struct Sim {
    running: RunningSim,
    dir: PathBuf,
}

impl Sim {
    async fn start(test: &str, tls: &str) -> Sim {
        let dir = std::env::temp_dir().join(format!("pchat-sim-tls-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let running = RunningSim::start(topology(tls), &dir, None).await.unwrap();
        Sim { running, dir }
    }

    /// Connect with `encryption`, trusting the simulator's CA, and ask the server its name.
    async fn server_name(
        &self,
        encryption: EncryptionLevel,
    ) -> Result<String, tiberius::error::Error> {
        Ok(self.name_and_encryption(encryption).await?.0)
    }

    /// The server's name and what `sys.dm_exec_connections.encrypt_option` says of this
    /// connection.
    async fn name_and_encryption(
        &self,
        encryption: EncryptionLevel,
    ) -> Result<(String, String), tiberius::error::Error> {
        let addr = self.running.addr(INSTANCE).unwrap();
        let mut config = Config::new();
        config.host("127.0.0.1");
        config.port(addr.port());
        config.authentication(AuthMethod::sql_server("sa", "Pchat-Sim-1"));
        config.encryption(encryption);
        if let Some(ca) = &self.running.ca_file {
            config.trust_cert_ca(ca.display());
        }
        config.handshake_timeout(Some(std::time::Duration::from_secs(5)));
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut client = Client::connect(config, tcp.compat_write()).await?;
        let row = client
            .simple_query(
                "SELECT @@SERVERNAME, encrypt_option FROM sys.dm_exec_connections WHERE session_id = @@SPID",
            )
            .await?
            .into_row()
            .await?
            .expect("one row");
        Ok((
            row.get::<&str, _>(0).unwrap().to_string(),
            row.get::<&str, _>(1).unwrap().to_string(),
        ))
    }

    async fn stop(self) {
        self.running.stop().await;
        let _ = std::fs::remove_dir_all(self.dir);
    }
}

#[tokio::test]
async fn a_simulator_with_its_own_ca_serves_every_encryption_level_a_client_asks_for() {
    let sim = Sim::start("levels", "").await;
    let ca = std::fs::read_to_string(sim.running.ca_file.as_ref().expect("a CA was made")).unwrap();
    assert!(ca.contains("BEGIN CERTIFICATE"));
    // Login-only encryption (Off) leaves the connection in clear after LOGIN7: SQL Server
    // reports it as not encrypted.
    for (level, encrypted) in [
        (EncryptionLevel::Required, "TRUE"),
        (EncryptionLevel::On, "TRUE"),
        (EncryptionLevel::Strict, "TRUE"),
        (EncryptionLevel::Off, "FALSE"),
        (EncryptionLevel::NotSupported, "FALSE"),
    ] {
        let (name, option) = sim
            .name_and_encryption(level)
            .await
            .unwrap_or_else(|e| panic!("{level:?}: {e}"));
        assert_eq!(name, INSTANCE, "{level:?}");
        assert_eq!(option, encrypted, "{level:?}");
    }
    sim.stop().await;
}

#[tokio::test]
async fn forced_encryption_refuses_a_client_that_cannot_encrypt_and_serves_one_that_can() {
    let sim = Sim::start("forced", "tls: {encryption: Forced}").await;
    assert!(
        sim.server_name(EncryptionLevel::NotSupported)
            .await
            .is_err()
    );
    // A client asking for login-only encryption gets the whole connection encrypted.
    assert_eq!(
        sim.server_name(EncryptionLevel::Off).await.unwrap(),
        INSTANCE
    );
    assert_eq!(
        sim.server_name(EncryptionLevel::Required).await.unwrap(),
        INSTANCE
    );
    sim.stop().await;
}

#[tokio::test]
async fn a_server_without_a_certificate_refuses_a_client_that_requires_encryption() {
    let sim = Sim::start("disabled", "tls: {encryption: Disabled}").await;
    assert!(sim.running.ca_file.is_none());
    for level in [EncryptionLevel::Required, EncryptionLevel::Strict] {
        assert!(
            sim.server_name(level).await.is_err(),
            "{level:?} must fail against a server that cannot encrypt"
        );
    }
    assert_eq!(
        sim.server_name(EncryptionLevel::NotSupported)
            .await
            .unwrap(),
        INSTANCE
    );
    sim.stop().await;
}
