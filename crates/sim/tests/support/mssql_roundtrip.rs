//! The backup and restore round trip through Microsoft's `mssql-tds` client. It needs the
//! SQL Server model (the test double of this folder has no BACKUP/RESTORE), so the lead wires
//! it into a test at merge, e.g.:
//!
//! ```ignore
//! let (atl, dal) = (topology.addr("atl-sql1"), topology.addr("dal-sql1"));
//! backup_restore_round_trip(atl, dal, "sa", "Pchat-Sim-1", "mgc",
//!     r"\\atl-fs\pchat-ls\mgc_roundtrip.bak").await.unwrap();
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use mssql_tds::connection::client_context::ClientContext;
use mssql_tds::connection::tds_client::{ResultSet, StatementResult, TdsClient};
use mssql_tds::connection_provider::tds_connection_provider::TdsConnectionProvider;
use mssql_tds::core::EncryptionSetting;
use mssql_tds::datatypes::column_values::ColumnValues;

/// Connects with `mssql-tds` without encryption (the simulator answers ENCRYPT_NOT_SUP).
pub async fn mssql_connect(
    addr: SocketAddr,
    user: &str,
    password: &str,
) -> Result<TdsClient, String> {
    let mut context = ClientContext::default();
    context.user_name = user.into();
    context.password = password.into();
    context.database = "master".into();
    context.encryption_options.mode = EncryptionSetting::PreferOff;
    context.multi_subnet_failover = Some(false);
    let datasource = format!("tcp:{},{}", addr.ip(), addr.port());
    let connect = TdsConnectionProvider {}.create_client(context, &datasource, None);
    tokio::time::timeout(Duration::from_secs(30), connect)
        .await
        .map_err(|_| format!("connecting to {addr} timed out"))?
        .map_err(|e| format!("connecting to {addr}: {e}"))
}

/// Runs one statement and returns the rows of its result sets, each row as (column, value).
pub async fn mssql_run(
    client: &mut TdsClient,
    sql: &str,
) -> Result<Vec<Vec<(String, ColumnValues)>>, String> {
    let fail = |e: mssql_tds::error::Error| format!("{sql}: {e}");
    let mut rows = Vec::new();
    let mut result = client.execute(sql.to_string(), ()).await.map_err(fail)?;
    loop {
        match result {
            StatementResult::Rows => {
                let names: Vec<String> = client
                    .get_metadata()
                    .iter()
                    .map(|c| c.column_name.clone())
                    .collect();
                while let Some(row) = client.next_row().await.map_err(fail)? {
                    rows.push(names.iter().cloned().zip(row).collect());
                }
            }
            StatementResult::NoRows { .. } => {}
            StatementResult::End => return Ok(rows),
        }
        result = client.advance().await.map_err(fail)?;
    }
}

fn text(v: &ColumnValues) -> Option<String> {
    match v {
        ColumnValues::String(s) => Some(s.to_utf8_string()),
        _ => None,
    }
}

fn integer(v: &ColumnValues) -> Option<i64> {
    match v {
        ColumnValues::TinyInt(i) => Some(i64::from(*i)),
        ColumnValues::SmallInt(i) => Some(i64::from(*i)),
        ColumnValues::Int(i) => Some(i64::from(*i)),
        ColumnValues::BigInt(i) => Some(*i),
        _ => None,
    }
}

fn column<'r>(row: &'r [(String, ColumnValues)], name: &str) -> Option<&'r ColumnValues> {
    row.iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// A full backup on `source`, its header read and the database restored WITH RECOVERY on
/// `target`, which must then list it ONLINE. The error names the step that failed.
pub async fn backup_restore_round_trip(
    source: SocketAddr,
    target: SocketAddr,
    user: &str,
    password: &str,
    database: &str,
    file: &str,
) -> Result<(), String> {
    let file_literal = file.replace('\'', "''");
    let mut src = mssql_connect(source, user, password).await?;
    mssql_run(
        &mut src,
        &format!("BACKUP DATABASE [{database}] TO DISK = N'{file_literal}' WITH INIT"),
    )
    .await?;
    let mut dst = mssql_connect(target, user, password).await?;
    let header = mssql_run(
        &mut dst,
        &format!("RESTORE HEADERONLY FROM DISK = N'{file_literal}'"),
    )
    .await?;
    let first = header
        .first()
        .ok_or_else(|| format!("RESTORE HEADERONLY of {file} returned no backup set"))?;
    let name = column(first, "DatabaseName").and_then(text);
    if name.as_deref() != Some(database) {
        return Err(format!(
            "RESTORE HEADERONLY: DatabaseName is {name:?}, expected {database}"
        ));
    }
    let kind = column(first, "BackupType").and_then(integer);
    if kind != Some(1) {
        return Err(format!(
            "RESTORE HEADERONLY: BackupType is {kind:?}, expected 1 (full)"
        ));
    }
    // The target keeps its files in its own folders: each file of the backup (FILELISTONLY)
    // is moved into the target's default folder for its kind.
    let folders = mssql_run(
        &mut dst,
        "SELECT CAST(SERVERPROPERTY('InstanceDefaultDataPath') AS nvarchar(260)) AS data_path, \
                CAST(SERVERPROPERTY('InstanceDefaultLogPath') AS nvarchar(260)) AS log_path",
    )
    .await?;
    let folder = |name: &str| {
        folders
            .first()
            .and_then(|row| column(row, name))
            .and_then(text)
            .ok_or_else(|| format!("SERVERPROPERTY gave no {name}"))
    };
    let (data_path, log_path) = (folder("data_path")?, folder("log_path")?);
    let files = mssql_run(
        &mut dst,
        &format!("RESTORE FILELISTONLY FROM DISK = N'{file_literal}'"),
    )
    .await?;
    let mut moves = String::new();
    for f in &files {
        let logical = column(f, "LogicalName").and_then(text).unwrap_or_default();
        let physical = column(f, "PhysicalName").and_then(text).unwrap_or_default();
        let file_name = physical.rsplit('\\').next().unwrap_or_default();
        let kind = column(f, "Type").and_then(text).unwrap_or_default();
        let folder = if kind == "L" { &log_path } else { &data_path };
        moves.push_str(&format!(", MOVE N'{logical}' TO N'{folder}{file_name}'"));
    }
    mssql_run(
        &mut dst,
        &format!(
            "RESTORE DATABASE [{database}] FROM DISK = N'{file_literal}' WITH REPLACE, RECOVERY{moves}"
        ),
    )
    .await?;
    let state = mssql_run(
        &mut dst,
        &format!("SELECT state_desc FROM sys.databases WHERE name = N'{database}'"),
    )
    .await?;
    let state = state
        .first()
        .and_then(|r| column(r, "state_desc"))
        .and_then(text);
    if state.as_deref() != Some("ONLINE") {
        return Err(format!(
            "after RESTORE, {database} is {state:?}, expected ONLINE"
        ));
    }
    Ok(())
}
