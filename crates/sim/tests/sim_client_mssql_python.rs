//! Microsoft's mssql-python (with its bundled ODBC Driver 18) against the simulator, as a
//! child process, in its default mode: autocommit off, so the driver opens a transaction with
//! a TDS transaction-manager request right after login and ends each with TM_COMMIT_XACT or
//! TM_ROLLBACK_XACT that begins the next.
//!
//! Settings: the driver's defaults (`Encrypt=yes`: TLS inside PRELOGIN, the certificate
//! verified), then `Encrypt=strict` (TDS 8). The driver trusts what OpenSSL trusts, so the
//! simulator's CA is given as `SSL_CERT_FILE`; the server is named `localhost`, since the
//! driver matches the certificate's DNS names only, never an IP address.

mod support;

use std::process::Command;

use support::clients::{clients_dir, mssql_python, run_client, step};
use support::model::world;

/// Run the client with `encrypt` (empty: the driver's default) against a fresh simulator.
fn transactions_with(test: &str, encrypt: &str) {
    let python = mssql_python();
    let w = world(test);
    let addr = w.addr("atl-sql1");
    let connection_string = format!(
        "Server=tcp:localhost,{};Database=master;UID=sa;PWD=Pchat-Sim-1;{encrypt}",
        addr.port()
    );
    let lines = run_client(
        Command::new(&python)
            .arg(clients_dir().join("mssql-python/client.py"))
            .arg(&connection_string)
            .env("SSL_CERT_FILE", w.ca_file()),
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

#[test]
fn mssql_python_with_the_drivers_default_encryption_queries_reads_error_208_and_commits_and_rolls_back()
 {
    transactions_with("mssql-python", "");
}

#[test]
fn mssql_python_with_encrypt_strict_speaks_tds8_and_runs_every_step() {
    transactions_with("mssql-python-strict", "Encrypt=strict");
}

#[test]
fn mssql_python_refuses_the_certificate_when_it_does_not_trust_the_ca() {
    let python = mssql_python();
    let w = world("mssql-python-untrusted");
    let addr = w.addr("atl-sql1");
    let out = Command::new(&python)
        .arg(clients_dir().join("mssql-python/client.py"))
        .arg(format!(
            "Server=tcp:localhost,{};Database=master;UID=sa;PWD=Pchat-Sim-1",
            addr.port()
        ))
        .env("SSL_CERT_FILE", "/nonexistent/ca.crt")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("certificate verify failed"), "{stderr}");
}
