//! Conformance of the simulator's TDS front end with tiberius, the client the operator and
//! the chat workload use. The backend is a test double (tests/support), not the SQL Server
//! model: these tests prove the wire protocol only.

mod support;

use std::time::Duration;

use futures::TryStreamExt;
use pchat_sim::backend::{RpcRequest, Value};
use support::tds::*;
use tiberius::{Command, EncryptionLevel, Query};
use tokio::io::AsyncReadExt;
use tokio_util::compat::TokioAsyncWriteCompatExt;

const LIMIT: Duration = Duration::from_secs(10);

async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(LIMIT, f).await.expect("timed out")
}

#[tokio::test]
async fn login_succeeds_and_the_session_sees_the_requested_database_and_client_names() {
    let server = start().await;
    let mut config = config(server.addr, USER, PASSWORD);
    config.database("mgc");
    config.application_name("Persistent Chat Server");
    config.client_name("pchat1.contoso.com");
    let mut client = bounded(connect_with(config)).await.unwrap();
    let row = client
        .simple_query("DB")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.get::<&str, _>(0), Some("mgc"));
    let st = server.backend.state.lock().unwrap();
    let login = &st.logins[0];
    assert_eq!(login.user, USER);
    assert_eq!(login.password, PASSWORD);
    assert_eq!(login.host_name, "pchat1.contoso.com");
    assert_eq!(login.app_name, "Persistent Chat Server");
    assert_eq!(login.database, "mgc");
    assert_eq!(login.client_addr, "127.0.0.1");
}

#[tokio::test]
async fn bad_login_gets_error_18456_and_the_server_closes_the_connection() {
    let server = start().await;
    let std_tcp = std::net::TcpStream::connect(server.addr).unwrap();
    let watcher = std_tcp.try_clone().unwrap();
    std_tcp.set_nonblocking(true).unwrap();
    let tcp = tokio::net::TcpStream::from_std(std_tcp).unwrap();
    let config = config(server.addr, USER, "wrong");
    let err = bounded(tiberius::Client::connect(config, tcp.compat_write()))
        .await
        .unwrap_err();
    match err {
        tiberius::error::Error::Server(e) => {
            assert_eq!(e.code(), 18456);
            assert_eq!(e.class(), 14);
            assert_eq!(e.message(), "Login failed for user 'sa'.");
        }
        other => panic!("expected a server error, got {other:?}"),
    }
    // Everything tiberius did not read is gone: the next read on the socket is EOF.
    watcher.set_nonblocking(true).unwrap();
    let mut watcher = tokio::net::TcpStream::from_std(watcher).unwrap();
    let mut buf = [0u8; 16];
    let n = bounded(watcher.read(&mut buf)).await.unwrap();
    assert_eq!(
        n, 0,
        "the server must close the connection after a failed login"
    );
}

#[tokio::test]
async fn client_requiring_encryption_gets_a_clean_error_without_hanging() {
    let server = start().await;
    let mut config = config(server.addr, USER, PASSWORD);
    config.encryption(EncryptionLevel::Required);
    let err = bounded(connect_with(config)).await.unwrap_err();
    assert!(
        err.to_string().contains("encryption"),
        "unexpected error: {err}"
    );
    assert!(server.backend.state.lock().unwrap().logins.is_empty());
}

#[tokio::test]
async fn clients_asking_for_encryption_on_or_off_also_fail_cleanly_without_hanging() {
    // tiberius turns Off + ENCRYPT_NOT_SUP into a TLS handshake; the server refuses it and
    // closes instead of waiting for a LOGIN7 that will never come.
    let server = start().await;
    for level in [EncryptionLevel::On, EncryptionLevel::Off] {
        let mut config = config(server.addr, USER, PASSWORD);
        config.encryption(level);
        assert!(bounded(connect_with(config)).await.is_err(), "{level:?}");
    }
    assert!(server.backend.state.lock().unwrap().logins.is_empty());
}

#[tokio::test]
async fn batch_returns_several_result_sets_in_order() {
    let server = start().await;
    let mut client = connect(server.addr).await;
    let results = client
        .simple_query("SELECT 1; SELECT 2; ROWS 3")
        .await
        .unwrap()
        .into_results()
        .await
        .unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0][0].get::<i32, _>(0), Some(1));
    assert_eq!(results[1][0].get::<i32, _>(0), Some(2));
    assert_eq!(results[2].len(), 3);
    assert_eq!(results[2][2].get::<&str, _>("name"), Some("row 2"));
}

#[tokio::test]
async fn row_counts_of_a_batch_reach_execute() {
    let server = start().await;
    let mut client = connect(server.addr).await;
    let result = client.execute("COUNT 3; COUNT 4", &[]).await.unwrap();
    assert_eq!(result.rows_affected(), &[3, 4]);
}

#[tokio::test]
async fn error_reaches_tiberius_with_number_state_class_server_procedure_and_line() {
    let server = start().await;
    let mut client = connect(server.addr).await;
    let err = client
        .simple_query("SELECT 1; ERROR 4305 2 16 7 The log in this backup set begins at LSN 42")
        .await
        .unwrap()
        .into_results()
        .await
        .unwrap_err();
    let tiberius::error::Error::Server(e) = err else {
        panic!("expected a server error, got {err:?}");
    };
    assert_eq!(e.code(), 4305);
    assert_eq!(e.state(), 2);
    assert_eq!(e.class(), 16);
    assert_eq!(e.line(), 7);
    assert_eq!(e.server(), SERVER);
    assert_eq!(e.procedure(), "sp_test");
    assert_eq!(e.message(), "The log in this backup set begins at LSN 42");
    // The connection is still usable after a statement error.
    let row = client
        .simple_query("SELECT 5")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.get::<i32, _>(0), Some(5));
}

#[tokio::test]
async fn info_messages_do_not_fail_the_batch() {
    let server = start().await;
    let mut client = connect(server.addr).await;
    let results = client
        .simple_query("INFO 3014 BACKUP DATABASE successfully processed 42 pages; SELECT 9")
        .await
        .unwrap()
        .into_results()
        .await
        .unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0][0].get::<i32, _>(0), Some(9));
}

#[tokio::test]
async fn use_changes_the_database_and_later_requests_see_it() {
    let server = start().await;
    let mut client = connect(server.addr).await;
    client
        .simple_query("USE mgccomp")
        .await
        .unwrap()
        .into_results()
        .await
        .unwrap();
    let row = client
        .simple_query("DB")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.get::<&str, _>(0), Some("mgccomp"));
}

#[tokio::test]
async fn result_of_ten_thousand_rows_spans_many_packets_and_arrives_whole() {
    let server = start().await;
    let mut client = connect(server.addr).await;
    let rows = bounded(async {
        client
            .simple_query("ROWS 10000")
            .await
            .unwrap()
            .into_first_result()
            .await
            .unwrap()
    })
    .await;
    assert_eq!(rows.len(), 10_000);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row.get::<i64, _>("id"), Some(i as i64));
        let flag = row.get::<bool, _>("flag");
        assert_eq!(flag, if i % 2 == 0 { Some(true) } else { None });
    }
    let last = &rows[9999];
    assert_eq!(last.get::<&str, _>("name"), Some("row 9999"));
    assert_eq!(
        last.get::<chrono::NaiveDateTime, _>("created"),
        Some(sample_time(9999))
    );
}

#[tokio::test]
async fn larger_negotiated_packet_size_still_delivers_large_results() {
    let server = start().await;
    let mut config = config(server.addr, USER, PASSWORD);
    config.packet_size(16384);
    let mut client = bounded(connect_with(config)).await.unwrap();
    let rows = client
        .simple_query("ROWS 3000")
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    assert_eq!(rows.len(), 3000);
}

#[tokio::test]
async fn sp_executesql_decodes_nvarchar_int_bigint_bit_and_datetime2_parameters() {
    let server = start().await;
    let mut client = connect(server.addr).await;
    let at = chrono::NaiveDate::from_ymd_opt(2026, 11, 26)
        .unwrap()
        .and_hms_micro_opt(12, 34, 56, 789_012)
        .unwrap();
    let long_text = "ü".repeat(5000);
    let mut q = Query::new("ECHO");
    q.bind("héllo");
    q.bind(42i32);
    q.bind(1i64 << 40);
    q.bind(true);
    q.bind(at);
    q.bind(long_text.as_str());
    q.bind(Option::<i32>::None);
    let row = q
        .query(&mut client)
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.get::<&str, _>("@P1"), Some("héllo"));
    assert_eq!(row.get::<i32, _>("@P2"), Some(42));
    assert_eq!(row.get::<i64, _>("@P3"), Some(1 << 40));
    assert_eq!(row.get::<bool, _>("@P4"), Some(true));
    assert_eq!(row.get::<chrono::NaiveDateTime, _>("@P5"), Some(at));
    assert_eq!(row.get::<&str, _>("@P6"), Some(long_text.as_str()));
    assert_eq!(row.get::<i32, _>("@P7"), None);
    let st = server.backend.state.lock().unwrap();
    let RpcRequest::ExecuteSql { statement, params } = &st.rpcs[0] else {
        panic!("expected sp_executesql, got {:?}", st.rpcs[0]);
    };
    assert_eq!(statement, "ECHO");
    assert_eq!(params.len(), 7, "only the values, not @stmt/@params");
    assert_eq!(params[0].value, Value::NVarChar("héllo".into()));
    assert_eq!(params[1].value, Value::Int(42));
    assert_eq!(params[2].value, Value::BigInt(1 << 40));
    assert_eq!(params[3].value, Value::Bit(true));
    assert_eq!(params[4].value, Value::DateTime(at));
    assert!(
        params[5].value == Value::NVarChar(long_text.clone()),
        "the PLP text differs"
    );
    assert_eq!(params[6].value, Value::Null);
    assert_eq!(params[0].name, "@P1");
    assert!(params.iter().all(|p| !p.output));
}

#[tokio::test]
async fn sp_executesql_decodes_float_numeric_and_binary_parameters() {
    let server = start().await;
    let mut client = connect(server.addr).await;
    let mut q = Query::new("ECHO");
    q.bind(2.5f64);
    q.bind(tiberius::numeric::Numeric::new_with_scale(
        31_000_000_012_300_001,
        0,
    ));
    q.bind(vec![1u8, 2, 3]);
    q.bind(7u8);
    q.bind(-3i16);
    let row = q
        .query(&mut client)
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.get::<f64, _>("@P1"), Some(2.5));
    let n: tiberius::numeric::Numeric = row.get("@P2").unwrap();
    assert_eq!(n.value(), 31_000_000_012_300_001);
    assert_eq!(row.get::<&[u8], _>("@P3"), Some(&[1u8, 2, 3][..]));
    let st = server.backend.state.lock().unwrap();
    let RpcRequest::ExecuteSql { params, .. } = &st.rpcs[0] else {
        panic!("expected sp_executesql");
    };
    assert_eq!(params[3].value, Value::Int(7));
    assert_eq!(params[4].value, Value::Int(-3));
}

#[tokio::test]
async fn named_procedure_by_rpc_returns_rows_output_parameter_and_return_status() {
    let server = start().await;
    let mut client = connect(server.addr).await;
    let mut cmd = Command::new("dbo.sp_answer");
    cmd.bind_param("@x", 21i32);
    cmd.bind_out_param("@doubled", 0i32);
    let result = cmd
        .exec(&mut client)
        .await
        .unwrap()
        .into_command_result()
        .await
        .unwrap();
    assert_eq!(result.return_code(), 42);
    assert_eq!(
        result.try_return_value::<i32>("@doubled").unwrap(),
        Some(42)
    );
    let rows = result.to_query_result(0).unwrap();
    assert_eq!(rows[0].get::<i32, _>("answer"), Some(22));
    let st = server.backend.state.lock().unwrap();
    let RpcRequest::Procedure { name, params } = &st.rpcs[0] else {
        panic!("expected a named procedure");
    };
    assert_eq!(name, "dbo.sp_answer");
    assert_eq!(params[0].value, Value::Int(21));
    assert!(!params[0].output);
    assert!(params[1].output);
}

#[tokio::test]
async fn unknown_procedure_by_rpc_reports_2812() {
    let server = start().await;
    let mut client = connect(server.addr).await;
    let err = Command::new("dbo.nope")
        .exec(&mut client)
        .await
        .unwrap()
        .into_command_result()
        .await
        .unwrap_err();
    let tiberius::error::Error::Server(e) = err else {
        panic!("expected a server error");
    };
    assert_eq!(e.code(), 2812);
}

#[tokio::test]
async fn attention_cancels_a_slow_request_and_the_connection_stays_usable() {
    let server = start().await;
    let mut client = connect(server.addr).await;
    let started = std::time::Instant::now();
    let gave_up = tokio::time::timeout(Duration::from_millis(300), client.simple_query("WAIT"))
        .await
        .is_err();
    assert!(
        gave_up,
        "WAIT must still be running when the client gives up"
    );
    bounded(client.cancel_query()).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "cancel must not wait for the request"
    );
    assert!(
        server
            .backend
            .cancelled
            .load(std::sync::atomic::Ordering::SeqCst)
    );
    let row = client
        .simple_query("SELECT 8")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.get::<i32, _>(0), Some(8));
}

#[tokio::test]
async fn attention_after_the_request_finished_is_still_acknowledged() {
    let server = start().await;
    let mut client = connect(server.addr).await;
    client
        .simple_query("SELECT 1")
        .await
        .unwrap()
        .into_results()
        .await
        .unwrap();
    bounded(client.cancel_query()).await.unwrap();
    let row = client
        .simple_query("SELECT 2")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.get::<i32, _>(0), Some(2));
}

#[tokio::test]
async fn fifty_concurrent_connections_are_served() {
    let server = start().await;
    let addr = server.addr;
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            tokio::spawn(async move {
                let mut client = connect(addr).await;
                let sql = format!("SELECT {i}; ROWS 200");
                let results = client
                    .simple_query(sql)
                    .await
                    .unwrap()
                    .into_results()
                    .await
                    .unwrap();
                (results[0][0].get::<i32, _>(0), results[1].len())
            })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        let (n, rows) = bounded(task).await.unwrap();
        assert_eq!(n, Some(i as i32));
        assert_eq!(rows, 200);
    }
    assert_eq!(server.backend.state.lock().unwrap().logins.len(), 50);
}

#[tokio::test]
async fn killed_session_sees_its_connection_closed() {
    let server = start().await;
    let mut client = connect(server.addr).await;
    server.backend.kill_all();
    let result = bounded(async {
        // The close may race the first request; one of the next two must fail.
        match client.simple_query("SELECT 1").await {
            Ok(stream) => stream.into_results().await.map(|_| ()),
            Err(e) => Err(e),
        }?;
        client.simple_query("SELECT 1").await.map(|_| ())
    })
    .await;
    assert!(
        result.is_err(),
        "a killed session's connection must be broken"
    );
    // The model hears the session end.
    bounded(async {
        while server.backend.state.lock().unwrap().logouts == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn server_shutdown_closes_connections_and_stops_listening() {
    let server = start().await;
    let mut client = connect(server.addr).await;
    server.shutdown.cancel();
    bounded(server.task).await.unwrap();
    let result = bounded(client.simple_query("SELECT 1")).await;
    let broken = match result {
        Ok(stream) => stream.into_results().await.is_err(),
        Err(_) => true,
    };
    assert!(broken, "the connection must be closed by shutdown");
    assert!(tokio::net::TcpStream::connect(server.addr).await.is_err());
}

#[tokio::test]
async fn rows_stream_in_order_through_the_row_stream_api() {
    let server = start().await;
    let mut client = connect(server.addr).await;
    let stream = client.simple_query("ROWS 5").await.unwrap();
    let ids: Vec<i64> = stream
        .into_row_stream()
        .map_ok(|r| r.get::<i64, _>("id").unwrap())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(ids, vec![0, 1, 2, 3, 4]);
}

#[tokio::test]
async fn an_instance_can_listen_again_on_its_port_after_shutdown() {
    // Instance down and back up: the model stops `serve` and starts it on the same address.
    let server = start().await;
    let mut client = connect(server.addr).await;
    client
        .simple_query("SELECT 1")
        .await
        .unwrap()
        .into_results()
        .await
        .unwrap();
    server.shutdown.cancel();
    bounded(server.task).await.unwrap();
    let listener = tokio::net::TcpListener::bind(server.addr).await.unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let backend: pchat_sim::backend::SharedBackend = server.backend.clone();
    let task = tokio::spawn(pchat_sim::tds::serve(listener, backend, shutdown.clone()));
    let mut again = connect(server.addr).await;
    let row = again
        .simple_query("SELECT 4")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.get::<i32, _>(0), Some(4));
    shutdown.cancel();
    bounded(task).await.unwrap();
}

#[tokio::test]
async fn serve_while_up_refuses_connections_while_down_and_serves_again_when_up() {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let backend = TestBackend::new();
    let shared: pchat_sim::backend::SharedBackend = backend.clone();
    let (up, rx) = tokio::sync::watch::channel(true);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(pchat_sim::tds::serve_while_up(
        addr,
        shared,
        rx,
        shutdown.clone(),
    ));
    let mut client = bounded(async {
        loop {
            if let Ok(c) = connect_with(config(addr, USER, PASSWORD)).await {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    client
        .simple_query("SELECT 1")
        .await
        .unwrap()
        .into_results()
        .await
        .unwrap();

    up.send(false).unwrap();
    bounded(async {
        while tokio::net::TcpStream::connect(addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let broken = match client.simple_query("SELECT 1").await {
        Ok(stream) => stream.into_results().await.is_err(),
        Err(_) => true,
    };
    assert!(broken, "connections close when the instance goes down");

    up.send(true).unwrap();
    let mut again = bounded(async {
        loop {
            if let Ok(c) = connect_with(config(addr, USER, PASSWORD)).await {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let row = again
        .simple_query("SELECT 6")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.get::<i32, _>(0), Some(6));
    shutdown.cancel();
    bounded(task).await.unwrap().unwrap();
}
