//! The shipped examples load and validate, and `load_pool_yaml` explains what it cannot read.

use pchat_core::Error;
use pchat_core::api::{EncryptMode, load_pool_yaml, validate};

#[test]
fn example_pool_loads_and_validates() {
    let pool = load_pool_yaml(include_str!("../../../examples/pool.yaml"))
        .expect("examples/pool.yaml loads");
    if let Err(e) = validate(&pool.spec) {
        panic!("examples/pool.yaml is invalid:\n{e}");
    }
    let spec = &pool.spec;
    assert_eq!(spec.pool_fqdn, "atl-cs-001.litwareinc.com");
    assert_eq!(
        (spec.home_site.as_str(), spec.primary_site.as_str()),
        ("atlanta", "atlanta")
    );
    let atlanta = spec.site("atlanta").expect("atlanta is defined");
    assert_eq!(atlanta.backup_share, r"\\atl-fs\pchat-ls");
    assert_eq!(atlanta.copy_destination, r"D:\pchat-ls-copy");
    let names: Vec<&str> = spec.instances().map(|(_, i)| i.name.as_str()).collect();
    assert_eq!(names, ["atl-sql1", "atl-sql2", "dal-sql1", "dal-sql2"]);
    assert_eq!(
        spec.site("dallas").unwrap().backup_share,
        r"\\dal-fs\pchat-ls"
    );
    assert_eq!(spec.sql_credentials_secret, "pchat-sql");
    assert_eq!(spec.tls.encrypt, EncryptMode::Required);
}

#[test]
fn local_example_pool_points_at_the_simulator_and_validates() {
    let pool = load_pool_yaml(include_str!("../../../examples/pool-local.yaml"))
        .expect("examples/pool-local.yaml loads");
    if let Err(e) = validate(&pool.spec) {
        panic!("examples/pool-local.yaml is invalid:\n{e}");
    }
    let addresses: Vec<(String, u16, String)> = pool
        .spec
        .instances()
        .map(|(_, i)| (i.host.clone(), i.port, i.mirroring_endpoint.clone()))
        .collect();
    assert_eq!(
        addresses,
        [
            ("127.0.0.1".into(), 14331, "TCP://atl-sql1:5022".into()),
            ("127.0.0.1".into(), 14332, "TCP://atl-sql2:5022".into()),
            ("127.0.0.1".into(), 14333, "TCP://dal-sql1:5022".into()),
            ("127.0.0.1".into(), 14334, "TCP://dal-sql2:5022".into()),
        ]
    );
    // Encrypted and verified against the simulator's own CA, as against a real server.
    assert_eq!(pool.spec.tls.encrypt, EncryptMode::Required);
    assert_eq!(pool.spec.tls.ca_secret.as_deref(), Some("pchat-sql-ca"));
}

#[test]
fn omitted_fields_take_their_defaults() {
    let pool = load_pool_yaml(
        r#"
apiVersion: persistentchat.io/v1alpha1
kind: PersistentChatPool
metadata: {name: p}
spec:
  poolFqdn: p.contoso.com
  homeSite: a
  primarySite: a
  sqlCredentialsSecret: s
  sites:
    - name: a
      instances: [{name: a1, host: a1.contoso.com, mirroringEndpoint: "TCP://a1.contoso.com:5022"}]
      backupShare: '\\fs\a'
      copyDestination: 'D:\copy'
    - name: b
      instances: [{name: b1, host: b1.contoso.com, mirroringEndpoint: "TCP://b1.contoso.com:5022"}]
      backupShare: '\\fs\b'
      copyDestination: 'D:\copy'
"#,
    )
    .expect("a minimal pool loads");
    if let Err(e) = validate(&pool.spec) {
        panic!("the minimal pool is invalid:\n{e}");
    }
    assert_eq!(pool.spec.database_names(), ["mgc", "mgccomp"]);
    assert_eq!(pool.spec.sites[0].instances[0].port, 1433);
    assert_eq!(pool.spec.tls.encrypt, EncryptMode::Required);
    assert_eq!(
        pool.spec.log_shipping.rpo_target,
        std::time::Duration::from_secs(900)
    );
}

#[test]
fn explicit_null_compliance_means_not_deployed() {
    let text = include_str!("../../../examples/pool.yaml")
        .replace("compliance: mgccomp", "compliance: null");
    let pool = load_pool_yaml(&text).expect("the pool loads");
    assert_eq!(pool.spec.databases.compliance, None);
    assert_eq!(pool.spec.database_names(), ["mgc"]);
}

#[test]
fn load_error_names_line_and_column_of_a_bad_value() {
    let text = include_str!("../../../examples/pool.yaml").replacen("port: 1433", "port: 70000", 1);
    let err = load_pool_yaml(&text).expect_err("port 70000 is not a u16");
    let expected_line = text.lines().position(|l| l.contains("70000")).unwrap() as u64 + 1;
    match &err {
        Error::Yaml { line, column, .. } => {
            assert_eq!(*line, Some(expected_line));
            assert!(column.is_some());
        }
        other => panic!("expected a YAML error, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains(&format!("line {expected_line}")),
        "the message does not name the line: {message}"
    );
}

#[test]
fn load_error_names_a_missing_field() {
    let text = include_str!("../../../examples/pool.yaml")
        .replace("  sqlCredentialsSecret: pchat-sql\n", "");
    let message = load_pool_yaml(&text)
        .expect_err("the secret is required")
        .to_string();
    assert!(message.contains("sqlCredentialsSecret"), "{message}");
}

#[test]
fn load_rejects_malformed_yaml_with_its_position() {
    let err = load_pool_yaml("apiVersion: persistentchat.io/v1alpha1\nkind: [PersistentChatPool\n")
        .expect_err("an unclosed bracket is not YAML");
    assert!(matches!(err, Error::Yaml { line: Some(2), .. }), "{err:?}");
}

#[test]
fn load_rejects_another_kind_of_object() {
    let err = load_pool_yaml("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {}\n")
        .expect_err("a ConfigMap is not a pool");
    assert_eq!(
        err.to_string(),
        "the manifest is apiVersion \"v1\" kind \"ConfigMap\"; expected apiVersion \
         \"persistentchat.io/v1alpha1\" kind \"PersistentChatPool\""
    );
}

#[test]
fn load_rejects_a_bare_spec() {
    let err = load_pool_yaml("poolFqdn: x.contoso.com\nhomeSite: a\n")
        .expect_err("a bare spec is not a manifest");
    assert!(matches!(err, Error::WrongKind { .. }), "{err:?}");
}

#[test]
fn load_rejects_misspelt_fields_naming_each_path() {
    let text = include_str!("../../../examples/pool.yaml")
        .replace("  suspend: false", "  suspnd: true")
        .replace("allowDataLoss: false", "alowDataLoss: false")
        .replacen("copyDestination:", "copyDestinaton:", 1);
    let err = load_pool_yaml(&text).expect_err("misspelt fields are refused");
    match &err {
        Error::UnknownFields { paths } => assert_eq!(
            paths,
            &[
                "spec.failover.alowDataLoss",
                "spec.sites[0].copyDestinaton",
                "spec.suspnd",
            ]
        ),
        other => panic!("expected unknown fields, got {other:?}"),
    }
    assert!(err.to_string().contains("spec.suspnd"), "{err}");
}

#[test]
fn load_accepts_any_metadata_and_a_status() {
    let text = format!(
        "{}status:\n  phase: Protected\n  servingSite: atlanta\n",
        include_str!("../../../examples/pool.yaml").replace(
            "  name: atl-cs-001\n",
            "  name: atl-cs-001\n  namespace: pchat\n  labels: {team: uc}\n  annotations: {a: b}\n"
        )
    );
    let pool = load_pool_yaml(&text).expect("metadata and status are accepted");
    assert_eq!(pool.metadata.namespace.as_deref(), Some("pchat"));
    assert_eq!(
        pool.status.and_then(|s| s.serving_site).as_deref(),
        Some("atlanta")
    );
}
