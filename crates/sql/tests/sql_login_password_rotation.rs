//! A password rotated with `ALTER LOGIN ... WITH PASSWORD`, as a DBA rotates the operator's
//! login: new logins need the new password (the old one fails with 18456), sessions already
//! logged in keep working, and a login that does not exist cannot be altered (15151).

mod support;

use pchat_sql::connect::Target;
use tiberius::{AuthMethod, Client, Config, EncryptionLevel};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

const TOPOLOGY: &str = r#"
instances:
  - name: dal-sql1
    site: dallas
    listen: "127.0.0.1:0"
    logins: [{name: pchat, password: Before-Rotation-1}]
"#;

type Session = Client<Compat<TcpStream>>;

/// Log in as pchat with `password`: the session, or the server's error number.
async fn login(target: &Target, password: &str) -> Result<Session, u32> {
    let mut config = Config::new();
    config.host(&target.host);
    config.port(target.port);
    config.authentication(AuthMethod::sql_server("pchat", password));
    config.encryption(EncryptionLevel::NotSupported);
    let tcp = TcpStream::connect(target.address()).await.unwrap();
    match Client::connect(config, tcp.compat_write()).await {
        Ok(client) => Ok(client),
        Err(tiberius::error::Error::Server(token)) => Err(token.code()),
        Err(other) => panic!("not a server error: {other}"),
    }
}

/// Run `sql` and return the server's error number, if any.
async fn run(session: &mut Session, sql: &str) -> Option<u32> {
    match session.simple_query(sql).await {
        Ok(stream) => match stream.into_results().await {
            Ok(_) => None,
            Err(tiberius::error::Error::Server(token)) => Some(token.code()),
            Err(other) => panic!("{other}"),
        },
        Err(tiberius::error::Error::Server(token)) => Some(token.code()),
        Err(other) => panic!("{other}"),
    }
}

#[tokio::test]
async fn a_rotated_password_is_needed_for_new_logins_and_open_sessions_keep_working() {
    let (running, target) = support::single_instance("rotation", TOPOLOGY, "dal-sql1").await;
    let mut open = login(&target, "Before-Rotation-1").await.expect("logs in");
    assert_eq!(
        run(
            &mut open,
            "ALTER LOGIN [pchat] WITH PASSWORD = N'After-Rotation-2'"
        )
        .await,
        None
    );
    assert_eq!(
        login(&target, "Before-Rotation-1").await.err(),
        Some(18456),
        "the old password still logs in"
    );
    let mut fresh = login(&target, "After-Rotation-2")
        .await
        .expect("the new password logs in");
    assert_eq!(run(&mut fresh, "SELECT 1").await, None);
    assert_eq!(
        run(&mut open, "SELECT 1").await,
        None,
        "the open session was dropped"
    );
    assert_eq!(
        run(&mut open, "ALTER LOGIN [nobody] WITH PASSWORD = N'x'").await,
        Some(15151)
    );
    support::stop(running, "rotation").await;
}
