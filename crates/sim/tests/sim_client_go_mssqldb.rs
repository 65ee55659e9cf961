//! Microsoft's Go driver (go-mssqldb) against the simulator, as a child process: a client
//! nobody here wrote logs in, queries, reads an error's number and text, and commits and
//! rolls back transactions (which it sends as TDS transaction-manager requests), with the
//! driver's default encryption (`encrypt=false`: TLS for the login packet only), with
//! `encrypt=true` (all traffic) and with `encrypt=strict` (TDS 8: TLS before PRELOGIN), each
//! verifying the simulator's certificate against its CA.

mod support;

use std::process::Command;

use support::clients::{go_mssqldb_client, run_client, step};
use support::model::{World, world};

/// Run the client against a fresh simulator with `options` added to the DSN and check every
/// step.
fn transactions_with(test: &str, options: &str) {
    let w = world(test);
    let lines = run_client(
        Command::new(go_mssqldb_client()).arg(dsn(&w, options)),
        "the go-mssqldb client",
    );
    check_steps(&w, &lines);
}

/// The DSN of atl-sql1 trusting the simulator's CA, with `options` added. go-mssqldb reads a
/// CA file by its extension (.pem or .der), hence the copy.
fn dsn(w: &World, options: &str) -> String {
    let addr = w.addr("atl-sql1");
    let ca = w.dir.join("ca.pem");
    std::fs::copy(w.ca_file(), &ca).unwrap();
    format!(
        "sqlserver://sa:Pchat-Sim-1@{}:{}?database=master&certificate={}{options}",
        addr.ip(),
        addr.port(),
        ca.display()
    )
}

fn check_steps(w: &World, lines: &[serde_json::Value]) {
    assert_eq!(step(lines, "query")["server"], "atl-sql1");
    let error = step(lines, "error");
    assert_eq!(error["number"], 208);
    assert_eq!(error["message"], "Invalid object name 'dbo.NoSuchTable'.");
    assert_eq!(step(lines, "commit")["trancount"], 1);
    assert_eq!(step(lines, "rollback")["trancount"], 1);
    // The committed message is in the database, the rolled-back one is not.
    assert_eq!(step(lines, "after")["ids"], serde_json::json!([1001]));
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

#[test]
fn go_mssqldb_with_its_default_login_only_encryption_queries_reads_error_208_and_commits_and_rolls_back()
 {
    transactions_with("go-mssqldb-default", "");
}

#[test]
fn go_mssqldb_with_encrypt_true_verifies_the_certificate_and_runs_every_step_encrypted() {
    transactions_with("go-mssqldb-encrypt", "&encrypt=true");
}

#[test]
fn go_mssqldb_with_encrypt_strict_speaks_tds8_and_runs_every_step() {
    transactions_with("go-mssqldb-strict", "&encrypt=strict");
}

#[test]
fn go_mssqldb_refuses_a_certificate_that_does_not_name_the_host_it_verifies() {
    let w = world("go-mssqldb-wrong-host");
    let out = Command::new(go_mssqldb_client())
        .arg(dsn(&w, "&encrypt=true&hostNameInCertificate=wrong.example"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("not wrong.example"),
        "the driver must refuse the certificate: {stdout}"
    );
    assert!(w.sim.message_ids("atl-sql1", "mgc").unwrap().is_empty());
}
