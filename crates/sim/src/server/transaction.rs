//! User transactions: `BEGIN TRAN`, `COMMIT`, `ROLLBACK`, `SET IMPLICIT_TRANSACTIONS` and the
//! transaction-manager requests that drivers send in their place, with `@@TRANCOUNT`, the
//! errors SQL Server raises, and the statements it refuses inside a transaction.
//!
//! What a transaction holds: the rows its INSERTs add to `dbo.Messages`. They stay with the
//! session until the outermost COMMIT writes them as one commit record (so mirroring and log
//! backups see them only then, as they see a committed transaction), and a ROLLBACK discards
//! them. Nothing else the model does is transactional: statements that change the model in
//! other ways are either refused inside a transaction (as SQL Server refuses them) or have no
//! undo (`sp_start_job` and the other procedures act at once).

use super::errors::SqlError;
use super::mirroring;
use super::model::{Message, State};
use crate::backend::{Output, TransactionChange};

/// One session's transaction state.
#[derive(Clone, Debug, Default)]
pub struct SessionTransaction {
    /// `@@TRANCOUNT`: BEGIN TRAN adds one, COMMIT takes one, ROLLBACK sets it to zero.
    pub count: u32,
    /// The outermost transaction's descriptor, sent to the client in ENVCHANGE.
    pub descriptor: u64,
    /// Descriptors handed out so far by this session, for the next one.
    began: u32,
    /// `SET IMPLICIT_TRANSACTIONS ON`: an INSERT with no transaction open begins one.
    pub implicit: bool,
    /// Rows inserted inside the transaction, by database, not yet committed.
    pub pending: Vec<(String, Message)>,
}

/// Error 3902 (MSSQLSERVER_3902, severity 16).
fn commit_without_begin() -> SqlError {
    SqlError::new(
        3902,
        "The COMMIT TRANSACTION request has no corresponding BEGIN TRANSACTION.",
    )
}

/// Error 3903 (MSSQLSERVER_3903, severity 16).
fn rollback_without_begin() -> SqlError {
    SqlError::new(
        3903,
        "The ROLLBACK TRANSACTION request has no corresponding BEGIN TRANSACTION.",
    )
}

/// Error 3021: BACKUP and RESTORE are refused inside a user transaction ("Transact-SQL
/// Statements Allowed in Transactions", SQL Server documentation, lists BACKUP and RESTORE).
pub fn backup_in_transaction() -> SqlError {
    SqlError::new(
        3021,
        "Cannot perform a backup or restore operation within a transaction.",
    )
}

/// Error 226, "%ls statement not allowed within multi-statement transaction.": the same
/// documented list names ALTER DATABASE, CREATE DATABASE and DROP DATABASE; SQL Server
/// raises 226 for each, with the statement's name (the number is shared with Sybase ASE,
/// whose error reference documents 226 for exactly these statements).
pub fn not_in_transaction(statement: &str) -> SqlError {
    SqlError::new(
        226,
        format!("{statement} statement not allowed within multi-statement transaction."),
    )
}

fn session_mut(
    state: &mut State,
    inst: usize,
    spid: i16,
) -> Option<&mut super::model::SessionInfo> {
    state.instances[inst].sessions.get_mut(&spid)
}

/// The session's `@@TRANCOUNT`.
pub fn trancount(state: &State, inst: usize, spid: i16) -> u32 {
    state.instances[inst]
        .sessions
        .get(&spid)
        .map_or(0, |s| s.transaction.count)
}

/// `BEGIN TRAN`: the outermost one tells the client its descriptor (ENVCHANGE 8).
pub fn begin(state: &mut State, inst: usize, spid: i16) -> Vec<Output> {
    let Some(s) = session_mut(state, inst, spid) else {
        return Vec::new();
    };
    let t = &mut s.transaction;
    t.count += 1;
    if t.count > 1 {
        return Vec::new();
    }
    t.began += 1;
    // Unique per session and never zero (zero is "no transaction" in ALL_HEADERS).
    t.descriptor = ((spid as u64) << 32) | t.began as u64;
    vec![Output::TransactionChanged(TransactionChange::Began {
        descriptor: t.descriptor,
    })]
}

/// `COMMIT`: the outermost one writes the pending rows as one commit record per database and
/// tells the client (ENVCHANGE 9); an inner one only decrements `@@TRANCOUNT`.
pub fn commit(state: &mut State, inst: usize, spid: i16) -> Result<Vec<Output>, SqlError> {
    let Some(s) = session_mut(state, inst, spid) else {
        return Ok(Vec::new());
    };
    let t = &mut s.transaction;
    if t.count == 0 {
        return Err(commit_without_begin());
    }
    t.count -= 1;
    if t.count > 0 {
        return Ok(Vec::new());
    }
    let descriptor = t.descriptor;
    let pending = std::mem::take(&mut t.pending);
    let mut databases: Vec<String> = Vec::new();
    for (db, _) in &pending {
        if !databases.iter().any(|d| d.eq_ignore_ascii_case(db)) {
            databases.push(db.clone());
        }
    }
    for name in databases {
        // A database dropped, taken offline or turned into a mirror since the INSERT has
        // nowhere to keep its rows; SQL Server would not have let that happen while the
        // transaction held its locks (the statements that do it end the other sessions).
        let Some(db) = state.instances[inst].db_mut(&name) else {
            continue;
        };
        if super::errors::cannot_open(db).is_some() {
            continue;
        }
        let lsn = db.log_record();
        for (_, mut m) in pending
            .iter()
            .filter(|(d, _)| d.eq_ignore_ascii_case(&name))
            .cloned()
        {
            m.lsn = lsn;
            db.rows.push(m);
        }
        mirroring::on_commit(state, inst, &name);
    }
    Ok(vec![Output::TransactionChanged(
        TransactionChange::Committed { descriptor },
    )])
}

/// `ROLLBACK`: ends every nesting level, discards the pending rows and tells the client
/// (ENVCHANGE 10).
pub fn rollback(state: &mut State, inst: usize, spid: i16) -> Result<Vec<Output>, SqlError> {
    let Some(s) = session_mut(state, inst, spid) else {
        return Ok(Vec::new());
    };
    let t = &mut s.transaction;
    if t.count == 0 {
        return Err(rollback_without_begin());
    }
    t.count = 0;
    t.pending.clear();
    Ok(vec![Output::TransactionChanged(
        TransactionChange::RolledBack {
            descriptor: t.descriptor,
        },
    )])
}

/// `SET IMPLICIT_TRANSACTIONS ON|OFF`.
pub fn set_implicit(state: &mut State, inst: usize, spid: i16, on: bool) {
    if let Some(s) = session_mut(state, inst, spid) {
        s.transaction.implicit = on;
    }
}

/// Before an INSERT: with IMPLICIT_TRANSACTIONS ON and no transaction open, SQL Server begins
/// one. Returns the ENVCHANGE of that begin, if any.
pub fn begin_implicitly(state: &mut State, inst: usize, spid: i16) -> Vec<Output> {
    let implicit = state.instances[inst]
        .sessions
        .get(&spid)
        .is_some_and(|s| s.transaction.implicit && s.transaction.count == 0);
    if implicit {
        begin(state, inst, spid)
    } else {
        Vec::new()
    }
}

/// Whether an INSERT's rows go to the session's transaction rather than straight to the
/// database, and the ids already pending there for `db` (for the duplicate-key check).
pub fn pending_ids(state: &State, inst: usize, spid: i16, db: &str) -> Option<Vec<i64>> {
    let s = state.instances[inst].sessions.get(&spid)?;
    if s.transaction.count == 0 {
        return None;
    }
    Some(
        s.transaction
            .pending
            .iter()
            .filter(|(d, _)| d.eq_ignore_ascii_case(db))
            .map(|(_, m)| m.id)
            .collect(),
    )
}

/// Keeps an INSERT's rows in the session's transaction until it commits.
pub fn hold(state: &mut State, inst: usize, spid: i16, db: &str, rows: Vec<Message>) {
    if let Some(s) = session_mut(state, inst, spid) {
        s.transaction
            .pending
            .extend(rows.into_iter().map(|m| (db.to_string(), m)));
    }
}
