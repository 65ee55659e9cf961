//! The SQL login and the CA from the pool's Secrets: `spec.sqlCredentialsSecret` (keys
//! `username`, `password`) and `spec.tls.caSecret` (key `ca.crt`, written to a file for the TLS
//! client). A Secret a person has not created yet, or a key missing from it, is a
//! [`CredentialsProblem`] that stalls the pool with a message naming the Secret and key; it is
//! never a crash, and no message ever quotes a Secret's content.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use crate::Error;
use crate::engine::publish::write_atomic;
use pchat_core::api::{ConditionReason, PersistentChatPoolSpec};
use pchat_sql::connect::Credentials;

/// The Secret key holding the SQL login name.
pub const USERNAME_KEY: &str = "username";
/// The Secret key holding the SQL password.
pub const PASSWORD_KEY: &str = "password";
/// The Secret key holding the PEM CA certificate.
pub const CA_KEY: &str = "ca.crt";

/// Why the credentials cannot be used. Each names the Secret (namespace/name) and the key; a
/// person fixes it by creating or editing that Secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsProblem {
    #[error(
        "Secret {namespace}/{name} (named by {field}) does not exist; create it with the keys {keys}: nothing is sent to SQL Server until it exists"
    )]
    SecretNotFound {
        namespace: String,
        name: String,
        field: &'static str,
        keys: &'static str,
    },
    #[error(
        "Secret {namespace}/{name} (named by {field}) has no key `{key}`, or it is empty; add it: nothing is sent to SQL Server until it is there"
    )]
    KeyMissing {
        namespace: String,
        name: String,
        field: &'static str,
        key: &'static str,
    },
    #[error(
        "Secret {namespace}/{name} (named by {field}): the value of key `{key}` {what}; fix it: nothing is sent to SQL Server until it is"
    )]
    KeyInvalid {
        namespace: String,
        name: String,
        field: &'static str,
        key: &'static str,
        what: &'static str,
    },
}

impl CredentialsProblem {
    /// The Stalled condition's reason.
    pub fn reason(&self) -> ConditionReason {
        match self {
            CredentialsProblem::SecretNotFound { .. } => ConditionReason::SecretNotFound,
            CredentialsProblem::KeyMissing { .. } => ConditionReason::SecretKeyMissing,
            CredentialsProblem::KeyInvalid { .. } => ConditionReason::SecretKeyInvalid,
        }
    }
}

/// What a pool's SQL connections need from its Secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct Material {
    pub credentials: Credentials,
    /// The PEM CA certificate, when `spec.tls.caSecret` names one.
    pub ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for Material {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Material")
            .field("credentials", &self.credentials)
            .field("ca_pem_bytes", &self.ca_pem.as_ref().map(Vec::len))
            .finish()
    }
}

impl Material {
    /// A fingerprint that changes when any of the material changes: the pool's SQL port is
    /// rebuilt (new logins) when it does. Kept in memory only.
    pub fn fingerprint(&self) -> u64 {
        let mut h = DefaultHasher::new();
        self.credentials.username.hash(&mut h);
        self.credentials.password().hash(&mut h);
        self.ca_pem.hash(&mut h);
        h.finish()
    }
}

/// The Secrets' content (`data`, or `stringData` as some clients leave it) for what the spec
/// names: `None` for a Secret that does not exist.
pub fn material_from_secrets(
    namespace: &str,
    spec: &PersistentChatPoolSpec,
    credentials_secret: Option<&Secret>,
    ca_secret: Option<&Secret>,
) -> Result<Material, CredentialsProblem> {
    let name = &spec.sql_credentials_secret;
    let field = "spec.sqlCredentialsSecret";
    let secret = credentials_secret.ok_or_else(|| CredentialsProblem::SecretNotFound {
        namespace: namespace.into(),
        name: name.clone(),
        field,
        keys: "`username` and `password`",
    })?;
    let text = |key: &'static str| -> Result<String, CredentialsProblem> {
        let bytes = value(secret, key).ok_or_else(|| CredentialsProblem::KeyMissing {
            namespace: namespace.into(),
            name: name.clone(),
            field,
            key,
        })?;
        String::from_utf8(bytes).map_err(|_| CredentialsProblem::KeyInvalid {
            namespace: namespace.into(),
            name: name.clone(),
            field,
            key,
            what: "is not UTF-8 text",
        })
    };
    let credentials = Credentials::new(text(USERNAME_KEY)?, text(PASSWORD_KEY)?);
    let ca_pem = match &spec.tls.ca_secret {
        None => None,
        Some(ca_name) => {
            let field = "spec.tls.caSecret";
            let secret = ca_secret.ok_or_else(|| CredentialsProblem::SecretNotFound {
                namespace: namespace.into(),
                name: ca_name.clone(),
                field,
                keys: "`ca.crt`",
            })?;
            let pem = value(secret, CA_KEY).ok_or_else(|| CredentialsProblem::KeyMissing {
                namespace: namespace.into(),
                name: ca_name.clone(),
                field,
                key: CA_KEY,
            })?;
            // A certificate is public, but checking its shape here names the Secret; the TLS
            // library's own error would only say that the handshake failed.
            let looks_pem =
                std::str::from_utf8(&pem).is_ok_and(|t| t.contains("-----BEGIN CERTIFICATE-----"));
            if !looks_pem {
                return Err(CredentialsProblem::KeyInvalid {
                    namespace: namespace.into(),
                    name: ca_name.clone(),
                    field,
                    key: CA_KEY,
                    what: "is not a PEM certificate (-----BEGIN CERTIFICATE-----)",
                });
            }
            Some(pem)
        }
    };
    Ok(Material {
        credentials,
        ca_pem,
    })
}

/// A key's bytes, `None` when absent or empty.
fn value(secret: &Secret, key: &str) -> Option<Vec<u8>> {
    let data: Option<&BTreeMap<String, ByteString>> = secret.data.as_ref();
    let from_data = data.and_then(|d| d.get(key)).map(|b| b.0.clone());
    let from_string_data = || {
        secret
            .string_data
            .as_ref()
            .and_then(|d| d.get(key))
            .map(|s| s.clone().into_bytes())
    };
    from_data
        .or_else(from_string_data)
        .filter(|bytes| !bytes.is_empty())
}

/// Read the Secrets the spec names from the pool's namespace. `Ok(Err(problem))` is a Secret or
/// key a person must fix; `Err` is the API server failing.
pub async fn load(
    secrets: &Api<Secret>,
    namespace: &str,
    spec: &PersistentChatPoolSpec,
) -> Result<Result<Material, CredentialsProblem>, Error> {
    let get = |name: String| async move {
        secrets
            .get_opt(&name)
            .await
            .map_err(|source| Error::ReadSecret {
                namespace: namespace.to_string(),
                name,
                source,
            })
    };
    let credentials = get(spec.sql_credentials_secret.clone()).await?;
    let ca = match &spec.tls.ca_secret {
        Some(name) => get(name.clone()).await?,
        None => None,
    };
    Ok(material_from_secrets(
        namespace,
        spec,
        credentials.as_ref(),
        ca.as_ref(),
    ))
}

/// Write the CA certificate where the TLS client reads it: `<dir>/<pool uid>-ca.crt` (the chart
/// mounts an emptyDir at /tmp; the root filesystem is read-only).
pub fn write_ca_file(dir: &Path, pool_uid: &str, pem: &[u8]) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("{pool_uid}-ca.crt"));
    write_atomic(&path, pem)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pchat_core::api::TlsSpec;

    const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    fn spec(ca: Option<&str>) -> PersistentChatPoolSpec {
        let mut s = pchat_core::api::load_pool_yaml(include_str!("../../examples/pool.yaml"))
            .unwrap()
            .spec;
        s.tls = TlsSpec {
            ca_secret: ca.map(String::from),
            ..TlsSpec::default()
        };
        s
    }

    fn secret(pairs: &[(&str, &[u8])]) -> Secret {
        Secret {
            data: Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.to_vec())))
                    .collect(),
            ),
            ..Secret::default()
        }
    }

    #[test]
    fn a_complete_secret_gives_the_login() {
        let s = secret(&[("username", b"sa"), ("password", b"hunter2")]);
        let m = material_from_secrets("chat", &spec(None), Some(&s), None).unwrap();
        assert_eq!(m.credentials, Credentials::new("sa", "hunter2"));
        assert_eq!(m.ca_pem, None);
        assert!(!format!("{m:?}").contains("hunter2"));
    }

    #[test]
    fn string_data_is_read_when_data_lacks_the_key() {
        let s = Secret {
            string_data: Some(
                [("username", "sa"), ("password", "pw")]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Secret::default()
        };
        let m = material_from_secrets("chat", &spec(None), Some(&s), None).unwrap();
        assert_eq!(m.credentials, Credentials::new("sa", "pw"));
    }

    #[test]
    fn a_missing_secret_names_it_and_the_field() {
        let e = material_from_secrets("chat", &spec(None), None, None).unwrap_err();
        assert_eq!(e.reason().as_str(), "SecretNotFound");
        let text = e.to_string();
        assert!(text.contains("Secret chat/pchat-sql"), "{text}");
        assert!(text.contains("spec.sqlCredentialsSecret"), "{text}");
    }

    #[test]
    fn a_missing_or_empty_key_names_the_key() {
        for s in [
            secret(&[("username", b"sa")]),
            secret(&[("username", b"sa"), ("password", b"")]),
        ] {
            let e = material_from_secrets("chat", &spec(None), Some(&s), None).unwrap_err();
            assert_eq!(e.reason().as_str(), "SecretKeyMissing");
            let text = e.to_string();
            assert!(text.contains("Secret chat/pchat-sql"), "{text}");
            assert!(text.contains("key `password`"), "{text}");
        }
    }

    #[test]
    fn a_value_that_is_not_utf8_names_the_key_but_never_the_value() {
        let s = secret(&[("username", b"sa"), ("password", &[0xff, 0xfe, b'x'])]);
        let e = material_from_secrets("chat", &spec(None), Some(&s), None).unwrap_err();
        assert_eq!(e.reason().as_str(), "SecretKeyInvalid");
        let text = e.to_string();
        assert!(text.contains("key `password`"), "{text}");
        assert!(text.contains("not UTF-8"), "{text}");
    }

    #[test]
    fn the_ca_secret_is_required_when_named_and_must_hold_a_certificate() {
        let login = secret(&[("username", b"sa"), ("password", b"pw")]);
        let e =
            material_from_secrets("chat", &spec(Some("sql-ca")), Some(&login), None).unwrap_err();
        assert_eq!(e.reason().as_str(), "SecretNotFound");
        assert!(e.to_string().contains("chat/sql-ca"), "{e}");
        assert!(e.to_string().contains("spec.tls.caSecret"), "{e}");

        let no_key = secret(&[("tls.crt", PEM.as_bytes())]);
        let e = material_from_secrets("chat", &spec(Some("sql-ca")), Some(&login), Some(&no_key))
            .unwrap_err();
        assert_eq!(e.reason().as_str(), "SecretKeyMissing");
        assert!(e.to_string().contains("key `ca.crt`"), "{e}");

        let garbage = secret(&[("ca.crt", b"not a certificate")]);
        let e = material_from_secrets("chat", &spec(Some("sql-ca")), Some(&login), Some(&garbage))
            .unwrap_err();
        assert_eq!(e.reason().as_str(), "SecretKeyInvalid");

        let good = secret(&[("ca.crt", PEM.as_bytes())]);
        let m = material_from_secrets("chat", &spec(Some("sql-ca")), Some(&login), Some(&good))
            .unwrap();
        assert_eq!(m.ca_pem.as_deref(), Some(PEM.as_bytes()));
    }

    #[test]
    fn the_fingerprint_follows_every_part_of_the_material() {
        let m = |u: &str, p: &str, ca: Option<&str>| Material {
            credentials: Credentials::new(u, p),
            ca_pem: ca.map(|c| c.as_bytes().to_vec()),
        };
        let base = m("sa", "pw", None).fingerprint();
        assert_eq!(base, m("sa", "pw", None).fingerprint());
        assert_ne!(base, m("sa", "pw2", None).fingerprint());
        assert_ne!(base, m("sa2", "pw", None).fingerprint());
        assert_ne!(base, m("sa", "pw", Some(PEM)).fingerprint());
    }

    #[test]
    fn the_ca_file_is_written_under_the_given_directory() {
        let dir = std::env::temp_dir().join(format!("pchat-ca-{}", std::process::id()));
        let path = write_ca_file(&dir, "uid-1", PEM.as_bytes()).unwrap();
        assert!(path.starts_with(&dir));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), PEM);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
