//! The certificates the instances present and the rustls configuration each TDS listener
//! accepts TLS with: from the topology's files, or made at start by a CA of the simulator's
//! own (so tests and the demo can trust exactly that CA, as `spec.tls.caSecret` does).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::Error;
use crate::server::{EncryptionSetting, InstanceDef, TlsDef};

/// The ALPN protocol a TDS 8 ("strict") client offers.
pub const TDS8_ALPN: &[u8] = b"tds/8.0";

/// What one listener needs to negotiate encryption.
#[derive(Clone)]
pub struct ListenerTls {
    pub setting: EncryptionSetting,
    /// `None` exactly when `setting` is `Disabled`.
    pub config: Option<ServerConfigs>,
}

/// One certificate, offered two ways, as SQL Server 2022 offers it: TLS 1.2 inside PRELOGIN
/// (TDS 7.x), and TLS 1.2 or 1.3 first with ALPN `tds/8.0` (TDS 8 strict); SQL Server speaks
/// TLS 1.3 only with TDS 8.
#[derive(Clone)]
pub struct ServerConfigs {
    pub prelogin: Arc<ServerConfig>,
    pub strict: Arc<ServerConfig>,
}

impl ListenerTls {
    /// A listener that cannot encrypt.
    pub fn disabled() -> Self {
        ListenerTls {
            setting: EncryptionSetting::Disabled,
            config: None,
        }
    }
}

impl std::fmt::Debug for ListenerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerTls")
            .field("setting", &self.setting)
            .field("certificate", &self.config.is_some())
            .finish()
    }
}

/// Every instance's TLS, and the CA the simulator made (when it made one).
pub struct Certificates {
    listeners: BTreeMap<String, ListenerTls>,
    /// The PEM file of the simulator's own CA.
    pub ca_file: Option<PathBuf>,
}

impl Certificates {
    /// Load or make the certificates the topology asks for; a generated CA is written to
    /// `<state_dir>/tls/ca.crt`. With encryption disabled there are none, and every listener
    /// is [`ListenerTls::disabled`].
    pub fn prepare(
        tls: &TlsDef,
        instances: &[InstanceDef],
        state_dir: &Path,
    ) -> Result<Certificates, Error> {
        if tls.encryption == EncryptionSetting::Disabled {
            return Ok(Certificates {
                listeners: BTreeMap::new(),
                ca_file: None,
            });
        }
        let name = |instance: &InstanceDef| instance.name.to_ascii_lowercase();
        let (configs, ca_file) = match (&tls.certificate, &tls.key) {
            (Some(certificate), Some(key)) => {
                let config = server_config(read_chain(certificate)?, read_key(key)?)?;
                let configs: Vec<_> = instances
                    .iter()
                    .map(|i| (name(i), config.clone()))
                    .collect();
                (configs, None)
            }
            _ => {
                let ca = SimulatorCa::new()?;
                let configs = instances
                    .iter()
                    .map(|i| {
                        let (chain, key) = ca.issue(&host_names(i))?;
                        Ok((name(i), server_config(chain, key)?))
                    })
                    .collect::<Result<Vec<_>, Error>>()?;
                (configs, Some(write_ca(state_dir, &ca)?))
            }
        };
        let listeners = configs
            .into_iter()
            .map(|(name, config)| {
                let listener = ListenerTls {
                    setting: tls.encryption,
                    config: Some(config),
                };
                (name, listener)
            })
            .collect();
        Ok(Certificates { listeners, ca_file })
    }

    /// The TLS of one instance's listener.
    pub fn listener(&self, instance: &str) -> ListenerTls {
        self.listeners
            .get(&instance.to_ascii_lowercase())
            .cloned()
            .unwrap_or_else(ListenerTls::disabled)
    }
}

/// Write the CA's certificate to `<state_dir>/tls/ca.crt`.
fn write_ca(state_dir: &Path, ca: &SimulatorCa) -> Result<PathBuf, Error> {
    let dir = state_dir.join("tls");
    std::fs::create_dir_all(&dir).map_err(|source| Error::StateDir {
        what: "the TLS directory",
        path: dir.clone(),
        source,
    })?;
    let ca_file = dir.join("ca.crt");
    std::fs::write(&ca_file, ca.pem()).map_err(|source| Error::StateDir {
        what: "the CA certificate",
        path: ca_file.clone(),
        source,
    })?;
    Ok(ca_file)
}

/// The names a client may verify an instance's certificate against: the instance name, its
/// aliases, the host it listens on, and loopback.
fn host_names(instance: &InstanceDef) -> Vec<String> {
    let mut names = vec![instance.name.to_ascii_lowercase()];
    names.extend(instance.aliases.iter().map(|a| a.to_ascii_lowercase()));
    if let Some((host, _)) = instance.listen.rsplit_once(':') {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if !host.is_empty() && host != "0.0.0.0" && host != "::" {
            names.push(host.to_ascii_lowercase());
        }
    }
    names.push("localhost".into());
    names.push("127.0.0.1".into());
    names.sort();
    names.dedup();
    names
}

/// A CA made at start, in memory; only its certificate leaves the process.
struct SimulatorCa {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl SimulatorCa {
    fn new() -> Result<Self, Error> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(tls_error)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "pchat simulator CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().map_err(tls_error)?;
        let certificate = params.self_signed(&key).map_err(tls_error)?;
        Ok(SimulatorCa {
            pem: certificate.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    fn pem(&self) -> &str {
        &self.pem
    }

    /// A server certificate for `names` (the first is its CN), with its private key.
    fn issue(
        &self,
        names: &[String],
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), Error> {
        let mut params = CertificateParams::new(names.to_vec()).map_err(tls_error)?;
        params
            .distinguished_name
            .push(DnType::CommonName, names[0].as_str());
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().map_err(tls_error)?;
        let certificate = params.signed_by(&key, &self.issuer).map_err(tls_error)?;
        let key = PrivateKeyDer::try_from(key.serialize_der()).map_err(|e| Error::Tls(e.into()))?;
        Ok((vec![certificate.der().clone()], key))
    }
}

fn tls_error(e: impl std::fmt::Display) -> Error {
    Error::Tls(e.to_string())
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| Error::Tls(format!("tls.certificate {}: {e}", path.display())))?;
    if chain.is_empty() {
        return Err(Error::Tls(format!(
            "tls.certificate {}: no PEM certificate in it",
            path.display()
        )));
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, Error> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| Error::Tls(format!("tls.key {}: {e}", path.display())))
}

/// The two server configurations of one certificate, without client authentication. Neither
/// sends TLS 1.3 session tickets: after a login-only handshake the client reads the socket in
/// clear, where a ticket arriving late would be garbage.
fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<ServerConfigs, Error> {
    let build = |versions: &[&'static rustls::SupportedProtocolVersion]| {
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)
            .map_err(tls_error)?
            .with_no_client_auth()
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(tls_error)
    };
    let mut prelogin = build(&[&rustls::version::TLS12])?;
    prelogin.send_tls13_tickets = 0;
    let mut strict = build(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    strict.send_tls13_tickets = 0;
    strict.alpn_protocols = vec![TDS8_ALPN.to_vec()];
    Ok(ServerConfigs {
        prelogin: Arc::new(prelogin),
        strict: Arc::new(strict),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(name: &str, listen: &str, aliases: &[&str]) -> InstanceDef {
        InstanceDef {
            utc_offset_minutes: None,
            name: name.into(),
            site: "atlanta".into(),
            listen: listen.into(),
            logins: Vec::new(),
            mirroring_endpoint: None,
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            data_path: None,
            log_path: None,
            version: None,
        }
    }

    #[test]
    fn a_generated_certificate_names_the_instance_its_aliases_its_host_and_loopback() {
        let names = host_names(&instance(
            "ATL-SQL1",
            "10.0.0.5:1433",
            &["atl-sql1.contoso.com"],
        ));
        assert_eq!(
            names,
            [
                "10.0.0.5",
                "127.0.0.1",
                "atl-sql1",
                "atl-sql1.contoso.com",
                "localhost"
            ]
        );
    }

    #[test]
    fn a_generated_ca_is_written_and_every_instance_gets_a_listener() {
        let dir = std::env::temp_dir().join(format!("pchat-sim-tls-{}", std::process::id()));
        let certificates = Certificates::prepare(
            &TlsDef::default(),
            &[instance("atl-sql1", "127.0.0.1:0", &[])],
            &dir,
        )
        .unwrap();
        let ca = std::fs::read_to_string(certificates.ca_file.as_ref().unwrap()).unwrap();
        assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{ca}");
        let listener = certificates.listener("ATL-SQL1");
        assert_eq!(listener.setting, EncryptionSetting::Supported);
        assert!(listener.config.is_some());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_certificate_file_that_is_not_pem_is_refused_naming_the_setting() {
        let dir = std::env::temp_dir().join(format!("pchat-sim-tls-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let certificate = dir.join("server.crt");
        std::fs::write(&certificate, "not a certificate").unwrap();
        let tls = TlsDef {
            encryption: EncryptionSetting::Supported,
            certificate: Some(certificate),
            key: Some(dir.join("server.key")),
        };
        let Err(e) = Certificates::prepare(&tls, &[instance("a", "127.0.0.1:0", &[])], &dir) else {
            panic!("a file without a certificate must be refused");
        };
        assert!(e.to_string().contains("tls.certificate"), "{e}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
