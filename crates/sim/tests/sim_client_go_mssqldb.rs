//! Microsoft's Go driver (go-mssqldb) against the simulator, as a child process: a client
//! nobody here wrote logs in, queries, reads an error's number and text, and commits and
//! rolls back transactions (which it sends as TDS transaction-manager requests).
//!
//! Settings: the driver's defaults except `encrypt=disable`, since the simulator has no TLS
//! (with the default `encrypt=false` the driver still encrypts the login packet).

mod support;

use std::process::Command;

use support::clients::{go_mssqldb_client, run_client, step};
use support::model::world;

#[test]
fn go_mssqldb_logs_in_queries_reads_error_208_and_commits_and_rolls_back_transactions() {
    let client = go_mssqldb_client();
    let w = world("go-mssqldb");
    let addr = w.addr("atl-sql1");
    let dsn = format!(
        "sqlserver://sa:Pchat-Sim-1@{}:{}?database=master&encrypt=disable",
        addr.ip(),
        addr.port()
    );
    let lines = run_client(Command::new(&client).arg(&dsn), "the go-mssqldb client");

    assert_eq!(step(&lines, "query")["server"], "atl-sql1");
    let error = step(&lines, "error");
    assert_eq!(error["number"], 208);
    assert_eq!(error["message"], "Invalid object name 'dbo.NoSuchTable'.");
    assert_eq!(step(&lines, "commit")["trancount"], 1);
    assert_eq!(step(&lines, "rollback")["trancount"], 1);
    // The committed message is in the database, the rolled-back one is not.
    assert_eq!(step(&lines, "after")["ids"], serde_json::json!([1001]));
    assert_eq!(w.sim.message_ids("atl-sql1", "mgc").unwrap(), vec![1001]);
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
