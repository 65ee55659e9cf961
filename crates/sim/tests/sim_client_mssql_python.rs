//! Microsoft's mssql-python (with its bundled ODBC Driver 18) against the simulator, as a
//! child process, in its default mode: autocommit off, so the driver opens a transaction with
//! a TDS transaction-manager request right after login and ends each with TM_COMMIT_XACT or
//! TM_ROLLBACK_XACT that begins the next.
//!
//! Settings: the driver's defaults except `Encrypt=no`, since the simulator has no TLS (ODBC
//! Driver 18 encrypts by default).

mod support;

use std::process::Command;

use support::clients::{clients_dir, mssql_python, run_client, step};
use support::model::world;

#[test]
fn mssql_python_with_autocommit_off_queries_reads_error_208_and_commits_and_rolls_back() {
    let python = mssql_python();
    let w = world("mssql-python");
    let addr = w.addr("atl-sql1");
    let connection_string = format!(
        "Server=tcp:{},{};Database=master;UID=sa;PWD=Pchat-Sim-1;Encrypt=no",
        addr.ip(),
        addr.port()
    );
    let lines = run_client(
        Command::new(&python)
            .arg(clients_dir().join("mssql-python/client.py"))
            .arg(&connection_string),
        "the mssql-python client",
    );

    assert_eq!(step(&lines, "connect")["autocommit"], false);
    let query = step(&lines, "query");
    assert_eq!(query["server"], "atl-sql1");
    // The driver's transaction is open from the start.
    assert_eq!(query["trancount"], 1);
    // mssql-python's exceptions carry no native error number: error 208 is seen as the
    // class and description the driver gives its SQLSTATE (42S02) and SQL Server's text.
    let error = step(&lines, "error");
    assert_eq!(error["type"], "ProgrammingError", "{error}");
    assert_eq!(
        error["driver_error"], "Base table or view not found",
        "{error}"
    );
    assert_eq!(
        error["server_text"], "[Microsoft][SQL Server]Invalid object name 'dbo.NoSuchTable'.",
        "{error}"
    );
    assert_eq!(step(&lines, "commit")["trancount"], 1);
    assert_eq!(step(&lines, "rollback")["trancount"], 1);
    assert_eq!(step(&lines, "after")["ids"], serde_json::json!([2001]));
    assert_eq!(w.sim.message_ids("atl-sql1", "mgc").unwrap(), vec![2001]);
    // The transactions went through transaction-manager requests, which the model logs as
    // the statements they stand for.
    let log: Vec<String> = w
        .sim
        .statement_log("atl-sql1")
        .into_iter()
        .map(|s| s.text)
        .collect();
    for text in [
        "BEGIN TRANSACTION",
        "COMMIT TRANSACTION",
        "ROLLBACK TRANSACTION",
    ] {
        assert!(log.iter().any(|t| t == text), "no {text} in {log:?}");
    }
}
