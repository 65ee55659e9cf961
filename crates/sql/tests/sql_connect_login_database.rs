//! Which database a login opens. SQL Server opens the database LOGIN7 names (failing with 4060
//! naming it when it cannot), else the login's default database (failing with 4064). A
//! secondary's chat database is RESTORING, so a login whose default is that database can only
//! log in by naming another: the operator names master.

mod support;

use std::time::Duration;

use pchat_core::api::EncryptMode;
use pchat_sim::cluster::RunningSim;
use pchat_sql::connect::{ConnectSettings, Credentials, Target, connect};
use tiberius::{AuthMethod, Client, Config, EncryptionLevel};
use tokio::net::TcpStream;
use tokio_util::compat::TokioAsyncWriteCompatExt;

// The login's default database, mgc, cannot be opened on this instance (here it is absent, as
// after a drop; RESTORING gives the same errors).
const TOPOLOGY: &str = r#"
instances:
  - name: dal-sql1
    site: dallas
    listen: "127.0.0.1:0"
    logins: [{name: pchat, password: Pchat-Sim-1, defaultDatabase: mgc}]
"#;

async fn sim(name: &str) -> (RunningSim, Target) {
    support::single_instance(&format!("logindb-{name}"), TOPOLOGY, "dal-sql1").await
}

/// A plain tiberius login, naming `database` or none; the server's error number and text.
async fn plain_login(target: &Target, database: Option<&str>) -> Result<(), (u32, String)> {
    let mut config = Config::new();
    config.host(&target.host);
    config.port(target.port);
    config.authentication(AuthMethod::sql_server("pchat", "Pchat-Sim-1"));
    config.encryption(EncryptionLevel::NotSupported);
    if let Some(database) = database {
        config.database(database);
    }
    let tcp = TcpStream::connect(target.address()).await.unwrap();
    match Client::connect(config, tcp.compat_write()).await {
        Ok(_) => Ok(()),
        Err(tiberius::error::Error::Server(token)) => Err((token.code(), token.message().into())),
        Err(other) => panic!("not a server error: {other}"),
    }
}

#[tokio::test]
async fn a_login_naming_no_database_fails_with_4064_when_its_default_cannot_be_opened() {
    let (running, target) = sim("default").await;
    let (number, message) = plain_login(&target, None).await.unwrap_err();
    assert_eq!(number, 4064, "{message}");
    assert_eq!(message, "Cannot open user default database. Login failed.");
    support::stop(running, "logindb-default").await;
}

#[tokio::test]
async fn a_login_naming_a_database_it_cannot_open_fails_with_4060_naming_it() {
    let (running, target) = sim("named").await;
    let (number, message) = plain_login(&target, Some("mgc")).await.unwrap_err();
    assert_eq!(number, 4060, "{message}");
    assert!(message.contains("\"mgc\""), "{message}");
    assert_eq!(plain_login(&target, Some("master")).await, Ok(()));
    support::stop(running, "logindb-named").await;
}

#[tokio::test]
async fn the_operator_logs_in_to_master_whatever_the_logins_default_database() {
    let (running, target) = sim("operator").await;
    let settings = ConnectSettings {
        encrypt: EncryptMode::Required,
        ca_certificate: running.ca_file.clone(),
        host_name_in_certificate: None,
        trust_server_certificate: false,
        connect_timeout: Duration::from_secs(5),
        command_timeout: Some(Duration::from_secs(5)),
        credentials: Credentials::new("pchat", "Pchat-Sim-1"),
        client_name: None,
    };
    let mut client = connect(&target, &settings)
        .await
        .expect("the operator's login names master");
    let one = client
        .simple_query("SELECT 1 AS one")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .and_then(|row| row.get::<i32, _>(0));
    assert_eq!(one, Some(1));
    support::stop(running, "logindb-operator").await;
}
