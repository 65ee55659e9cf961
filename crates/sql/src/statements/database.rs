//! Statements on a database as a whole: ending sessions, bringing a copy online, fencing it,
//! creating it.

use super::codes::*;
use super::{Batch, Statement};
use crate::quote;

/// `KILL <id>` for one session. KILL takes no variable; the id is an integer, formatted.
fn kill(instance: &str, session_id: i32, why: &str) -> Statement {
    Batch::new(&format!("KILL {session_id}"))
        .on(
            instance,
            format!("end session {session_id} on {instance} ({why})"),
        )
        // The session already ended (it left, or an earlier KILL got it).
        .done_if(&[NOT_ACTIVE_PROCESS])
}

/// KillChatSessions: one KILL per session, in the given order.
pub(super) fn kill_sessions(instance: &str, session_ids: &[i32]) -> Vec<Statement> {
    session_ids
        .iter()
        .map(|id| {
            kill(
                instance,
                *id,
                "chat server still connected after the drain timeout",
            )
        })
        .collect()
}

/// Recover: KILL the sessions on the database, then `RESTORE DATABASE [db] WITH RECOVERY`.
pub(super) fn recover(instance: &str, database: &str, kill_session_ids: &[i32]) -> Vec<Statement> {
    let mut out: Vec<Statement> = kill_session_ids
        .iter()
        .map(|id| {
            kill(
                instance,
                *id,
                &format!("still on {database}, which must come online"),
            )
        })
        .collect();
    out.push(
        Batch::new(&format!(
            "RESTORE DATABASE {} WITH RECOVERY",
            quote::ident(database)
        ))
        .on(
            instance,
            format!("bring {database} on {instance} ONLINE (RESTORE WITH RECOVERY)"),
        )
        .done_if(&[ALREADY_RECOVERED])
        .retry_if(&[IN_USE]),
    );
    out
}

/// FenceStaleCopy: `ALTER DATABASE [db] SET READ_ONLY WITH ROLLBACK IMMEDIATE`. Setting
/// the access mode it already has is no error, so the statement repeats safely as it is.
pub(super) fn fence(instance: &str, database: &str) -> Statement {
    // READ_ONLY, not RESTRICTED_USER: RESTRICTED_USER still admits db_owner and sysadmin, and
    // chat service logins are often both. A read-only database takes no write from any login,
    // yet stays ONLINE, so its end of log can be read and it can be salvaged by a backup.
    Batch::new(&format!(
        "ALTER DATABASE {} SET READ_ONLY WITH ROLLBACK IMMEDIATE",
        quote::ident(database)
    ))
    .on(
        instance,
        format!(
            "fence the stale copy of {database} on {instance} (READ_ONLY: no login can write to it)"
        ),
    )
    .retry_if(&[LOCK_NOT_PLACED])
}

/// CreateComplianceDatabase: `CREATE DATABASE [db]`, then `SET RECOVERY FULL` (mirroring needs
/// FULL on both partners; the second statement repeats safely as it is).
pub(super) fn create(instance: &str, database: &str) -> Vec<Statement> {
    let name = quote::ident(database);
    vec![
        Batch::new(&format!("CREATE DATABASE {name}"))
            .on(
                instance,
                format!("create an empty {database} on {instance}"),
            )
            .done_if(&[DATABASE_EXISTS]),
        Batch::new(&format!("ALTER DATABASE {name} SET RECOVERY FULL"))
            .on(
                instance,
                format!("set {database} on {instance} to the FULL recovery model"),
            )
            .retry_if(&[LOCK_NOT_PLACED]),
    ]
}
