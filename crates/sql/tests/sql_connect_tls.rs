//! The executor's TLS against the simulator's: every encryption mode connects when the
//! certificate is trusted; every way a certificate can be wrong, and a server that cannot
//! encrypt, fails closed with a message naming the setting to fix; and a capture of the
//! socket shows the password never crosses the network in clear unless the spec says
//! `NotSupported`.

mod support;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pchat_core::api::EncryptMode;
use pchat_sim::cluster::RunningSim;
use pchat_sql::connect::{ConnectSettings, Credentials, Target, connect};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    date_time_ymd,
};

const PASSWORD: &str = "Pchat-Sim-1";

fn topology(tls: &str) -> String {
    format!(
        r#"
instances:
  - {{name: atl-sql1, site: atlanta, listen: "127.0.0.1:0", logins: [{{name: sa, password: {PASSWORD}}}]}}
{tls}
"#
    )
}

async fn sim(name: &str, tls: &str) -> (RunningSim, Target) {
    support::single_instance(&format!("tls-{name}"), &topology(tls), "atl-sql1").await
}

fn settings(encrypt: EncryptMode, ca: Option<&Path>) -> ConnectSettings {
    ConnectSettings {
        encrypt,
        ca_certificate: ca.map(Path::to_path_buf),
        host_name_in_certificate: None,
        trust_server_certificate: false,
        connect_timeout: Duration::from_secs(5),
        command_timeout: Some(Duration::from_secs(5)),
        credentials: Credentials::new("sa", PASSWORD),
        client_name: None,
    }
}

async fn server_name(target: &Target, settings: &ConnectSettings) -> Result<String, String> {
    let mut client = connect(target, settings).await.map_err(|e| e.to_string())?;
    let row = client
        .simple_query("SELECT @@SERVERNAME")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    Ok(row.get::<&str, _>(0).unwrap().to_string())
}

/// Connecting must fail, promptly, with a message naming the instance and containing each
/// of `expected`, never the password.
async fn refused(target: &Target, settings: &ConnectSettings, expected: &[&str]) {
    let started = Instant::now();
    let Err(err) = connect(target, settings).await else {
        panic!("the connection was accepted; it must fail closed");
    };
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "it must not hang"
    );
    let text = err.to_string();
    assert!(text.contains("atl-sql1"), "{text}");
    for part in expected {
        assert!(text.contains(part), "no `{part}` in: {text}");
    }
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(
        err.is_retryable(),
        "an operator retries until the setting is fixed"
    );
}

/// Certificates of a CA made by the test, written under a folder for the simulator to serve.
struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    dir: PathBuf,
}

impl TestCa {
    fn new(test: &str) -> TestCa {
        let dir = std::env::temp_dir().join(format!("pchat-tls-ca-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "test CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        let key = KeyPair::generate().unwrap();
        let certificate = params.self_signed(&key).unwrap();
        std::fs::write(dir.join("ca.crt"), certificate.pem()).unwrap();
        TestCa {
            issuer: Issuer::new(params, key),
            dir,
        }
    }

    fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// A server certificate and key written as `<name>.crt`/`<name>.key`; the topology's
    /// `tls:` line serving them.
    fn server(&self, name: &str, edit: impl FnOnce(&mut CertificateParams)) -> String {
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "atl-sql1");
        edit(&mut params);
        let key = KeyPair::generate().unwrap();
        let certificate = params.signed_by(&key, &self.issuer).unwrap();
        self.write(name, &certificate.pem(), &key)
    }

    /// A self-signed certificate, as SQL Server makes for itself when none is configured.
    fn self_signed(&self, name: &str) -> String {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "SSL_Self_Signed_Fallback");
        let key = KeyPair::generate().unwrap();
        let certificate = params.self_signed(&key).unwrap();
        self.write(name, &certificate.pem(), &key)
    }

    fn write(&self, name: &str, pem: &str, key: &KeyPair) -> String {
        let certificate = self.dir.join(format!("{name}.crt"));
        let key_file = self.dir.join(format!("{name}.key"));
        std::fs::write(&certificate, pem).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        format!(
            "tls: {{certificate: {}, key: {}}}",
            certificate.display(),
            key_file.display()
        )
    }
}

impl Drop for TestCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn every_encrypting_mode_connects_when_the_simulators_ca_is_trusted() {
    let (running, target) = sim("modes", "").await;
    let ca = running.ca_file.clone().expect("the simulator made a CA");
    for mode in [EncryptMode::Required, EncryptMode::Strict, EncryptMode::Off] {
        let name = server_name(&target, &settings(mode, Some(&ca)))
            .await
            .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert_eq!(name, "atl-sql1", "{mode:?}");
    }
    support::stop(running, "tls-modes").await;
}

#[tokio::test]
async fn a_certificate_from_another_ca_fails_closed_naming_the_ca_secret() {
    let (running, target) = sim("wrong-ca", "").await;
    let other = TestCa::new("wrong-ca");
    for mode in [EncryptMode::Required, EncryptMode::Strict, EncryptMode::Off] {
        refused(
            &target,
            &settings(mode, Some(&other.ca_file())),
            &["not signed by the CA in spec.tls.caSecret"],
        )
        .await;
    }
    // Without spec.tls.caSecret only the system's roots are trusted.
    refused(
        &target,
        &settings(EncryptMode::Required, None),
        &["system's trusted roots", "spec.tls.caSecret"],
    )
    .await;
    support::stop(running, "tls-wrong-ca").await;
}

#[tokio::test]
async fn an_expired_certificate_fails_closed_saying_it_expired() {
    let ca = TestCa::new("expired");
    let tls = ca.server("expired", |params| {
        params.not_before = date_time_ymd(2020, 1, 1);
        params.not_after = date_time_ymd(2021, 1, 1);
    });
    let (running, target) = sim("expired", &tls).await;
    refused(
        &target,
        &settings(EncryptMode::Required, Some(&ca.ca_file())),
        &["certificate has expired", "renew it"],
    )
    .await;
    support::stop(running, "tls-expired").await;
}

#[tokio::test]
async fn a_certificate_for_another_name_fails_closed_naming_host_name_in_certificate() {
    let (running, target) = sim("wrong-host", "").await;
    let ca = running.ca_file.clone().unwrap();
    let mut wrong = settings(EncryptMode::Required, Some(&ca));
    wrong.host_name_in_certificate = Some("chat-sql.contoso.com".into());
    refused(
        &target,
        &wrong,
        &["`chat-sql.contoso.com`", "spec.tls.hostNameInCertificate"],
    )
    .await;
    // The instance's own name is on its certificate: connecting by IP while verifying that
    // name works.
    let mut right = settings(EncryptMode::Required, Some(&ca));
    right.host_name_in_certificate = Some("atl-sql1".into());
    assert_eq!(server_name(&target, &right).await.unwrap(), "atl-sql1");
    support::stop(running, "tls-wrong-host").await;
}

#[tokio::test]
async fn a_certificate_naming_the_host_only_in_its_cn_is_refused_saying_what_to_fix() {
    let ca = TestCa::new("cn-only");
    let tls = ca.server("cn-only", |params| {
        params.subject_alt_names.clear();
        params
            .distinguished_name
            .push(DnType::CommonName, "127.0.0.1");
    });
    let (running, target) = sim("cn-only", &tls).await;
    refused(
        &target,
        &settings(EncryptMode::Required, Some(&ca.ca_file())),
        &[
            "subject alternative names",
            "CN is not accepted",
            "spec.tls.hostNameInCertificate",
        ],
    )
    .await;
    support::stop(running, "tls-cn-only").await;
}

#[tokio::test]
async fn trust_server_certificate_accepts_sql_servers_self_signed_certificate_and_nothing_else_does()
 {
    let ca = TestCa::new("self-signed");
    let tls = ca.self_signed("self-signed");
    let (running, target) = sim("self-signed", &tls).await;
    refused(
        &target,
        &settings(EncryptMode::Required, None),
        &["spec.tls.caSecret"],
    )
    .await;
    let mut trusting = settings(EncryptMode::Required, None);
    trusting.trust_server_certificate = true;
    assert_eq!(server_name(&target, &trusting).await.unwrap(), "atl-sql1");
    support::stop(running, "tls-self-signed").await;
}

#[tokio::test]
async fn a_server_that_cannot_encrypt_fails_closed_naming_spec_tls_encrypt() {
    let (running, target) = sim("disabled", "tls: {encryption: Disabled}").await;
    refused(
        &target,
        &settings(EncryptMode::Required, None),
        &["spec.tls.encrypt is Required", "fails closed"],
    )
    .await;
    refused(
        &target,
        &settings(EncryptMode::Strict, None),
        &["spec.tls.encrypt is Strict"],
    )
    .await;
    // NotSupported, chosen in the spec, connects.
    assert_eq!(
        server_name(&target, &settings(EncryptMode::NotSupported, None))
            .await
            .unwrap(),
        "atl-sql1"
    );
    support::stop(running, "tls-disabled").await;
}

/// A loopback TCP proxy that records every byte either side sends.
async fn recording_proxy(upstream: Target) -> (Target, Arc<Mutex<Vec<u8>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let address = upstream.address();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = tokio::net::TcpStream::connect(&address).await.unwrap();
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            tokio::spawn(pump(client_read, server_write, record.clone()));
            tokio::spawn(pump(server_read, client_write, record.clone()));
        }
    });
    (
        Target {
            instance: upstream.instance.clone(),
            host: "127.0.0.1".into(),
            port,
        },
        seen,
    )
}

/// Copy `from` to `to`, recording what passes.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    record: Arc<Mutex<Vec<u8>>>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = [0u8; 8192];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 {
            break;
        }
        record.lock().unwrap().extend_from_slice(&buf[..n]);
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
}

/// The password as LOGIN7 carries it: UTF-16LE with each byte's nibbles swapped and XORed
/// with 0xA5 (MS-TDS 2.2.6.4), and the plain UTF-16LE and UTF-8 forms for good measure.
fn password_forms() -> Vec<Vec<u8>> {
    let utf16: Vec<u8> = PASSWORD.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let obfuscated = utf16.iter().map(|b| b.rotate_left(4) ^ 0xA5).collect();
    vec![PASSWORD.as_bytes().to_vec(), utf16, obfuscated]
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn the_password_never_crosses_the_socket_in_clear_unless_the_spec_says_not_supported() {
    let (running, target) = sim("capture", "").await;
    let ca = running.ca_file.clone().unwrap();
    for mode in [
        EncryptMode::Required,
        EncryptMode::Strict,
        EncryptMode::Off,
        EncryptMode::NotSupported,
    ] {
        let (proxied, seen) = recording_proxy(target.clone()).await;
        assert_eq!(
            server_name(&proxied, &settings(mode, Some(&ca)))
                .await
                .unwrap(),
            "atl-sql1"
        );
        let bytes = seen.lock().unwrap().clone();
        assert!(bytes.len() > 500, "{mode:?}: the capture saw the exchange");
        let leaked = password_forms().iter().any(|form| contains(&bytes, form));
        // The capture would see it: with NotSupported it does, which proves the check.
        assert_eq!(
            leaked,
            mode == EncryptMode::NotSupported,
            "{mode:?}: password bytes on the wire: {leaked}"
        );
        // The query and its answer are in clear only where the whole connection is.
        let query: Vec<u8> = "@@SERVERNAME"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert_eq!(
            contains(&bytes, &query),
            matches!(mode, EncryptMode::Off | EncryptMode::NotSupported),
            "{mode:?}"
        );
    }
    support::stop(running, "tls-capture").await;
}
