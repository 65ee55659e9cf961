//! The key paths through a second, independent TDS client: Microsoft's `mssql-tds`. The
//! backend is the test double of tests/support (not the SQL Server model), so this proves
//! the wire protocol; the backup/restore round trip needs the model and is wired at merge.

mod support;

use std::time::Duration;

use mssql_tds::connection::client_context::ClientContext;
use mssql_tds::connection::tds_client::{ResultSet, StatementResult, TdsClient};
use mssql_tds::connection_provider::tds_connection_provider::TdsConnectionProvider;
use mssql_tds::core::EncryptionSetting;
use mssql_tds::datatypes::column_values::ColumnValues;
use mssql_tds::error::Error;
use support::tds::*;

fn context(user: &str, password: &str) -> ClientContext {
    let mut context = ClientContext::default();
    context.user_name = user.into();
    context.password = password.into();
    context.database = "mgc".into();
    context.application_name = "mssql-tds conformance".into();
    // The simulator answers ENCRYPT_NOT_SUP; PreferOff is the mode that accepts it.
    context.encryption_options.mode = EncryptionSetting::PreferOff;
    context.multi_subnet_failover = Some(false);
    context
}

async fn connect_as(
    addr: std::net::SocketAddr,
    user: &str,
    password: &str,
) -> mssql_tds::core::TdsResult<TdsClient> {
    let datasource = format!("tcp:127.0.0.1,{}", addr.port());
    let provider = TdsConnectionProvider {};
    tokio::time::timeout(
        Duration::from_secs(20),
        provider.create_client(context(user, password), &datasource, None),
    )
    .await
    .expect("mssql-tds connect timed out")
}

async fn rows_of(client: &mut TdsClient) -> Vec<Vec<ColumnValues>> {
    let mut rows = Vec::new();
    while let Some(row) = client.next_row().await.unwrap() {
        rows.push(row);
    }
    rows
}

fn int(v: &ColumnValues) -> i64 {
    match v {
        ColumnValues::Int(i) => i64::from(*i),
        ColumnValues::BigInt(i) => *i,
        other => panic!("expected an integer, got {other:?}"),
    }
}

#[tokio::test]
async fn mssql_tds_logs_in_and_sees_the_database() {
    let server = start().await;
    let mut client = connect_as(server.addr, USER, PASSWORD).await.unwrap();
    assert_eq!(client.database(), "mgc");
    let first = client.execute("DB".into(), ()).await.unwrap();
    assert!(matches!(first, StatementResult::Rows));
    let rows = rows_of(&mut client).await;
    match &rows[0][0] {
        ColumnValues::String(s) => assert_eq!(s.to_utf8_string(), "mgc"),
        other => panic!("expected text, got {other:?}"),
    }
    client.close_query().await.unwrap();
    let st = server.backend.state.lock().unwrap();
    assert_eq!(st.logins[0].app_name, "mssql-tds conformance");
}

#[tokio::test]
async fn mssql_tds_bad_login_reports_18456() {
    let server = start().await;
    let Err(err) = connect_as(server.addr, USER, "wrong").await else {
        panic!("login must fail");
    };
    match err {
        Error::SqlServerError { diagnostics } => {
            assert_eq!(diagnostics.errors[0].number, 18456);
            assert_eq!(diagnostics.errors[0].class, 14);
        }
        other => panic!("expected a server error, got {other:?}"),
    }
}

#[tokio::test]
async fn mssql_tds_reads_a_multi_result_batch() {
    let server = start().await;
    let mut client = connect_as(server.addr, USER, PASSWORD).await.unwrap();
    let first = client
        .execute("SELECT 1; ROWS 3; SELECT 2".into(), ())
        .await
        .unwrap();
    assert!(matches!(first, StatementResult::Rows));
    let one = rows_of(&mut client).await;
    assert_eq!(int(&one[0][0]), 1);
    assert!(matches!(
        client.advance().await.unwrap(),
        StatementResult::Rows
    ));
    let three = rows_of(&mut client).await;
    assert_eq!(three.len(), 3);
    assert_eq!(int(&three[2][0]), 2);
    assert!(matches!(
        client.advance().await.unwrap(),
        StatementResult::Rows
    ));
    let two = rows_of(&mut client).await;
    assert_eq!(int(&two[0][0]), 2);
    assert!(matches!(
        client.advance().await.unwrap(),
        StatementResult::End
    ));
}

#[tokio::test]
async fn mssql_tds_sees_an_error_with_its_number_state_class_and_line() {
    let server = start().await;
    let mut client = connect_as(server.addr, USER, PASSWORD).await.unwrap();
    let result = client
        .execute(
            "ERROR 3117 1 16 4 The log or differential backup cannot be restored".into(),
            (),
        )
        .await;
    let Err(err) = result else {
        panic!("the batch must fail");
    };
    let Error::SqlServerError { diagnostics } = err else {
        panic!("expected a server error, got {err:?}");
    };
    let e = &diagnostics.errors[0];
    assert_eq!(e.number, 3117);
    assert_eq!(e.state, 1);
    assert_eq!(e.class, 16);
    assert_eq!(e.line_number, Some(4));
    assert_eq!(e.server_name.as_deref(), Some(SERVER));
}

#[tokio::test]
async fn the_backup_restore_helper_names_the_statement_a_server_rejects() {
    // The test double has no BACKUP (it answers 2812), so the helper must fail at step one
    // and say which statement failed; against the model it runs the whole round trip.
    let server = start().await;
    let err = support::mssql_roundtrip::backup_restore_round_trip(
        server.addr,
        server.addr,
        USER,
        PASSWORD,
        "mgc",
        r"\\atl-fs\pchat-ls\mgc.bak",
    )
    .await
    .unwrap_err();
    assert!(err.starts_with("BACKUP DATABASE [mgc] TO DISK"), "{err}");
    assert!(err.contains("2812"), "{err}");
}

#[tokio::test]
async fn mssql_tds_receives_info_messages_with_their_number_and_text() {
    let server = start().await;
    let mut client = connect_as(server.addr, USER, PASSWORD).await.unwrap();
    let mut result = client
        .execute(
            "INFO 3014 BACKUP DATABASE successfully processed 42 pages; SELECT 9".into(),
            (),
        )
        .await
        .unwrap();
    // Read the batch to its end; the INFO is collected on the way.
    while !matches!(result, StatementResult::End) {
        if matches!(result, StatementResult::Rows) {
            rows_of(&mut client).await;
        }
        result = client.advance().await.unwrap();
    }
    let infos = client.take_info_messages();
    let info = infos
        .iter()
        .find(|m| m.number == 3014)
        .unwrap_or_else(|| panic!("no INFO 3014 in {infos:?}"));
    assert_eq!(
        info.message,
        "BACKUP DATABASE successfully processed 42 pages"
    );
    assert_eq!(info.class, 0);
    assert_eq!(info.server_name.as_deref(), Some(SERVER));
}
