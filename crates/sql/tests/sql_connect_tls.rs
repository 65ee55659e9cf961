//! The executor's TLS policy against a server that cannot encrypt (the simulator): with
//! `tls.encrypt: Required` (the default) the connection fails closed, promptly, with a message
//! that names the setting; `NotSupported`, chosen in the spec, connects.

mod support;

use std::time::{Duration, Instant};

use pchat_core::api::EncryptMode;
use pchat_sim::cluster::RunningSim;
use pchat_sql::connect::{ConnectSettings, Credentials, Target, connect};

const TOPOLOGY: &str = r#"
instances:
  - {name: atl-sql1, site: atlanta, listen: "127.0.0.1:0", logins: [{name: sa, password: Pchat-Sim-1}]}
"#;

async fn sim(name: &str) -> (RunningSim, Target) {
    support::single_instance(&format!("tls-{name}"), TOPOLOGY, "atl-sql1").await
}

fn settings(encrypt: EncryptMode) -> ConnectSettings {
    ConnectSettings {
        encrypt,
        ca_certificate: None,
        connect_timeout: Duration::from_secs(5),
        command_timeout: Duration::from_secs(5),
        credentials: Credentials::new("sa", "Pchat-Sim-1"),
        client_name: None,
    }
}

#[tokio::test]
async fn required_encryption_against_a_server_that_cannot_encrypt_fails_closed_naming_the_setting()
{
    let (running, target) = sim("required").await;
    let started = Instant::now();
    let Err(err) = connect(&target, &settings(EncryptMode::Required)).await else {
        panic!("an unencrypted connection was accepted although the spec requires encryption");
    };
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "it must not hang"
    );
    let text = err.to_string();
    assert!(text.contains("atl-sql1"), "{text}");
    assert!(text.contains("spec.tls.encrypt is Required"), "{text}");
    assert!(!text.contains("Pchat-Sim-1"), "{text}");
    support::stop(running, "tls-required").await;
}

#[tokio::test]
async fn encryption_not_supported_by_choice_connects_and_logs_in() {
    let (running, target) = sim("notsupported").await;
    let mut client = connect(&target, &settings(EncryptMode::NotSupported))
        .await
        .expect("connects without encryption when the spec says NotSupported");
    let row = client
        .simple_query("SELECT @@SERVERNAME")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.get::<&str, _>(0), Some("atl-sql1"));
    support::stop(running, "tls-notsupported").await;
}
