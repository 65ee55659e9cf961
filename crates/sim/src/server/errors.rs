//! SQL Server's error messages that the model raises, with their documented numbers, severities
//! (class), states and texts (substitutions filled in the way SQL Server fills them).

use super::model::{Database, DbState};
use crate::backend::ServerMessage;

/// One error (or informational message) raised by a statement, before the server name, procedure
/// and line are attached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqlError {
    pub number: i32,
    pub state: u8,
    pub class: u8,
    pub text: String,
}

impl SqlError {
    /// An error with severity 16 and state 1, the common case.
    pub fn new(number: i32, text: impl Into<String>) -> Self {
        SqlError {
            number,
            state: 1,
            class: 16,
            text: text.into(),
        }
    }

    pub fn with_class(mut self, class: u8) -> Self {
        self.class = class;
        self
    }

    pub fn with_state(mut self, state: u8) -> Self {
        self.state = state;
        self
    }

    /// An informational message (class 0), e.g. the "processed N pages" lines of BACKUP.
    pub fn info(number: i32, text: impl Into<String>) -> Self {
        SqlError {
            number,
            state: 1,
            class: 0,
            text: text.into(),
        }
    }

    /// The TDS token content for this error as raised on `server` at `line` of the batch.
    pub fn to_message(&self, server: &str, procedure: &str, line: i32) -> ServerMessage {
        ServerMessage {
            number: self.number,
            state: self.state,
            class: self.class,
            text: self.text.clone(),
            server: server.to_string(),
            procedure: procedure.to_string(),
            line,
        }
    }
}

impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Msg {}, Level {}, State {}: {}",
            self.number, self.class, self.state, self.text
        )
    }
}

/// A statement's failure: one or more errors in the order SQL Server sends them (e.g. 4305
/// followed by 3013).
pub type Failure = Vec<SqlError>;

pub fn syntax(near: &str) -> SqlError {
    SqlError::new(102, format!("Incorrect syntax near '{near}'.")).with_class(15)
}

pub fn syntax_end() -> SqlError {
    SqlError::new(
        102,
        "Incorrect syntax near the end of the batch.".to_string(),
    )
    .with_class(15)
}

pub fn invalid_object(name: &str) -> SqlError {
    SqlError::new(208, format!("Invalid object name '{name}'."))
}

pub fn invalid_column(name: &str) -> SqlError {
    SqlError::new(207, format!("Invalid column name '{name}'."))
}

pub fn must_declare(var: &str) -> SqlError {
    SqlError::new(137, format!("Must declare the scalar variable \"{var}\".")).with_class(15)
}

pub fn no_such_procedure(name: &str) -> SqlError {
    SqlError::new(2812, format!("Could not find stored procedure '{name}'.")).with_state(62)
}

pub fn missing_param(proc_name: &str, param: &str) -> SqlError {
    SqlError::new(
        201,
        format!("Procedure or function '{proc_name}' expects parameter '{param}', which was not supplied."),
    )
    .with_state(4)
}

pub fn db_absent_use(db: &str) -> SqlError {
    SqlError::new(
        911,
        format!("Database '{db}' does not exist. Make sure that the name is entered correctly."),
    )
}

pub fn db_absent_alter(db: &str) -> SqlError {
    SqlError::new(
        5011,
        format!("User does not have permission to alter database '{db}', the database does not exist, or the database is not in a state that allows access checks."),
    )
    .with_class(14)
}

pub fn db_absent_drop(db: &str) -> SqlError {
    SqlError::new(
        3701,
        format!("Cannot drop the database '{db}', because it does not exist or you do not have permission."),
    )
    .with_class(11)
}

pub fn db_exists(db: &str) -> SqlError {
    SqlError::new(
        1801,
        format!("Database '{db}' already exists. Choose a different database name."),
    )
}

/// Why a database that is not ONLINE cannot be opened (954 for a mirror copy, 927 while it is
/// restoring, 942 offline, 945 recovery pending); None when it is ONLINE.
pub fn cannot_open(db: &Database) -> Option<SqlError> {
    match db.state {
        DbState::Online => None,
        DbState::Restoring if db.mirroring.is_some() => Some(acting_as_mirror(&db.name)),
        DbState::Restoring => Some(in_restore(&db.name)),
        DbState::Offline => Some(offline(&db.name)),
        DbState::RecoveryPending => Some(recovery_pending(&db.name)),
    }
}

/// MSSQLSERVER_3906: a write to a database set READ_ONLY, whoever the login.
pub fn read_only(db: &str) -> SqlError {
    SqlError::new(
        3906,
        format!("Failed to update database \"{db}\" because the database is read-only."),
    )
}

pub fn in_restore(db: &str) -> SqlError {
    SqlError::new(
        927,
        format!("Database '{db}' cannot be opened. It is in the middle of a restore."),
    )
    .with_class(14)
    .with_state(2)
}

pub fn acting_as_mirror(db: &str) -> SqlError {
    SqlError::new(
        954,
        format!("The database \"{db}\" cannot be opened. It is acting as the mirror database in a database mirroring session."),
    )
    .with_class(14)
}

pub fn offline(db: &str) -> SqlError {
    SqlError::new(
        942,
        format!("Database '{db}' cannot be opened because it is offline."),
    )
    .with_class(14)
    .with_state(4)
}

pub fn recovery_pending(db: &str) -> SqlError {
    SqlError::new(
        945,
        format!("Database '{db}' cannot be opened due to inaccessible files or insufficient memory or disk space.  See the SQL Server errorlog for details."),
    )
    .with_class(14)
    .with_state(2)
}

pub fn single_user_in_use(db: &str) -> SqlError {
    SqlError::new(
        924,
        format!("Database '{db}' is already open and can only have one user at a time."),
    )
    .with_class(14)
}

pub fn cannot_open_login_db(db: &str) -> SqlError {
    SqlError::new(
        4060,
        format!("Cannot open database \"{db}\" requested by the login. The login failed."),
    )
    .with_class(11)
}

/// The login names no database and its default database cannot be opened (RESTORING,
/// OFFLINE, gone): SQL Server's DB_UFAIL_FATAL, before the 18456 that ends every failed login.
pub fn cannot_open_default_db() -> SqlError {
    SqlError::new(4064, "Cannot open user default database. Login failed.").with_class(11)
}

/// MSSQLSERVER_15151: the same text whether the login is missing or not the caller's to change.
pub fn cannot_alter_login(login: &str) -> SqlError {
    SqlError::new(
        15151,
        format!("Cannot alter the login '{login}', because it does not exist or you do not have permission."),
    )
    .with_class(16)
}

pub fn login_failed(user: &str) -> SqlError {
    SqlError::new(18456, format!("Login failed for user '{user}'.")).with_class(14)
}

pub fn session_killed() -> SqlError {
    SqlError::new(
        596,
        "Cannot continue the execution because the session is in the kill state.",
    )
    .with_class(21)
}

pub fn not_ready() -> SqlError {
    SqlError::new(
        17187,
        "SQL Server is not ready to accept new client connections. Wait a few minutes before trying again.",
    )
}

/// The 3013 that follows every BACKUP/RESTORE root error; `what` is e.g. "BACKUP LOG".
/// 3234: WITH MOVE names a logical file the backup set does not have.
pub fn not_a_file_of(logical: &str, database: &str) -> SqlError {
    SqlError::new(
        3234,
        format!(
            "Logical file '{logical}' is not part of database '{database}'. Use RESTORE FILELISTONLY to list the logical file names."
        ),
    )
}

/// 5133: a restore target in a folder that does not exist on this server (OS error 3).
pub fn directory_lookup_failed(physical: &str) -> SqlError {
    SqlError::new(
        5133,
        format!(
            "Directory lookup for the file \"{physical}\" failed with the operating system error 3(The system cannot find the path specified.)."
        ),
    )
}

/// 3156: the file cannot go where the restore would put it.
pub fn use_with_move(logical: &str, physical: &str) -> SqlError {
    SqlError::new(
        3156,
        format!(
            "File '{logical}' cannot be restored to '{physical}'. Use WITH MOVE to identify a valid location for the file."
        ),
    )
}

/// 1834: a restore target that another database's file already is.
pub fn file_in_use(physical: &str, database: &str) -> SqlError {
    SqlError::new(
        1834,
        format!(
            "The file '{physical}' cannot be overwritten.  It is being used by database '{database}'."
        ),
    )
}

/// 3119: the restore plan failed; the messages before it say why.
pub fn restore_planning_failed() -> SqlError {
    SqlError::new(
        3119,
        "Problems were identified while planning for the RESTORE statement. Previous messages provide details.",
    )
}

pub fn terminating(what: &str) -> SqlError {
    SqlError::new(3013, format!("{what} is terminating abnormally."))
}

pub fn cannot_open_device(path: &str, os_error: &str) -> SqlError {
    SqlError::new(
        3201,
        format!("Cannot open backup device '{path}'. Operating system error {os_error}."),
    )
}

pub fn exclusive_access() -> SqlError {
    SqlError::new(
        3101,
        "Exclusive access could not be obtained because the database is in use.",
    )
}

pub fn in_use_by_this_session(db: &str) -> SqlError {
    SqlError::new(
        3102,
        format!(
            "RESTORE cannot process database '{db}' because it is in use by this session. It is recommended that the master database be used when performing this operation."
        ),
    )
}

pub fn restore_mirrored(db: &str) -> SqlError {
    SqlError::new(
        3104,
        format!(
            "RESTORE cannot operate on database '{db}' because it is configured for database mirroring or has joined an availability group. If you intend to restore the database, use ALTER DATABASE to remove mirroring or to remove the database from its availability group."
        ),
    )
}

pub fn no_rollforward() -> SqlError {
    SqlError::new(
        3117,
        "The log or differential backup cannot be restored because no files are ready to rollforward.",
    )
}

pub fn other_database(db: &str) -> SqlError {
    SqlError::new(
        3154,
        format!(
            "The backup set holds a backup of a database other than the existing '{db}' database."
        ),
    )
}

pub fn tail_not_backed_up(db: &str) -> SqlError {
    SqlError::new(
        3159,
        format!(
            "The tail of the log for the database \"{db}\" has not been backed up. Use BACKUP LOG WITH NORECOVERY to backup the log if it contains work you do not want to lose. Use the WITH REPLACE or WITH STOPAT clause of the RESTORE statement to just overwrite the contents of the log."
        ),
    )
}

pub fn log_too_recent(first: i128, needed: i128) -> SqlError {
    SqlError::new(
        4305,
        format!(
            "The log in this backup set begins at LSN {first}, which is too recent to apply to the database. An earlier log backup that includes LSN {needed} can be restored."
        ),
    )
}

pub fn log_too_early(last: i128, needed: i128) -> SqlError {
    SqlError::new(
        4326,
        format!(
            "The log in this backup set terminates at LSN {last}, which is too early to apply to the database. A more recent log backup that includes LSN {needed} can be restored."
        ),
    )
}

pub fn inconsistent_recovery_path() -> SqlError {
    SqlError::new(
        4330,
        "This backup set cannot be applied because it is on a recovery path that is inconsistent with the database. The recovery path is the sequence of data and log backups that have brought the database to a particular recovery point. Find a compatible backup to restore, or restore the rest of the database to match a recovery point within this backup set, which will restore the database to a different point in time.",
    )
}

pub fn no_current_backup(db: &str) -> SqlError {
    SqlError::new(
        4214,
        format!(
            "BACKUP LOG cannot be performed because there is no current database backup. (database '{db}')"
        ),
    )
}

pub fn log_backup_simple() -> SqlError {
    SqlError::new(
        4208,
        "The statement BACKUP LOG is not allowed while the recovery model is SIMPLE. Use BACKUP DATABASE or change the recovery model using ALTER DATABASE.",
    )
}

pub fn file_not_found_in_media(file: i64, path: &str) -> SqlError {
    SqlError::new(
        3206,
        format!(
            "No entry in sysdevices for backup device '{path}' (file {file}). Update sysdevices and rerun statement."
        ),
    )
}

pub fn not_a_backup(path: &str) -> SqlError {
    SqlError::new(
        3241,
        format!(
            "The media family on device '{path}' is incorrectly formed. SQL Server cannot process this media family."
        ),
    )
}

pub fn mirroring_remote_not_caught_up(db: &str) -> SqlError {
    SqlError::new(
        1412,
        format!(
            "The remote copy of database \"{db}\" has not been rolled forward to a point in time that is encompassed in the local copy of the database log."
        ),
    )
}

pub fn not_mirrored(db: &str) -> SqlError {
    SqlError::new(
        1416,
        format!("Database \"{db}\" is not configured for database mirroring."),
    )
}

pub fn unreachable_address(address: &str) -> SqlError {
    SqlError::new(
        1418,
        format!(
            "The server network address \"{address}\" can not be reached or does not exist. Check the network address name and that the ports for the local and remote endpoints are operational."
        ),
    )
}

pub fn mirror_not_caught_up(db: &str) -> SqlError {
    SqlError::new(
        1422,
        format!(
            "The mirror server instance is not caught up to the recent changes to database \"{db}\". Unable to fail over."
        ),
    )
}

pub fn cannot_force(db: &str) -> SqlError {
    SqlError::new(
        1455,
        format!(
            "The database mirroring service cannot be forced for database \"{db}\" because the database is not in the correct state to become the principal database."
        ),
    )
}

pub fn not_recovering(db: &str) -> SqlError {
    SqlError::new(
        1464,
        format!(
            "Database mirroring cannot be enabled for the remote copy of database \"{db}\" because the database is not in a recovering state. The remote database must be restored using WITH NORECOVERY."
        ),
    )
}

pub fn not_full_recovery(db: &str) -> SqlError {
    SqlError::new(
        1465,
        format!(
            "Database mirroring cannot be enabled because the \"{db}\" database is not in full recovery mode on both partners."
        ),
    )
}

pub fn involved_in_mirroring(db: &str) -> SqlError {
    SqlError::new(
        1468,
        format!(
            "The operation cannot be performed on database \"{db}\" because it is involved in a database mirroring session or an availability group. Some operations are not allowed on a database that is participating in a database mirroring session or in an availability group."
        ),
    )
}

pub fn safety_must_be_full(db: &str) -> SqlError {
    SqlError::new(
        1477,
        format!(
            "The database mirroring safety level must be FULL to manually failover database \"{db}\".  Set safety level to FULL and retry."
        ),
    )
}

pub fn insufficient_log(db: &str) -> SqlError {
    SqlError::new(
        1478,
        format!(
            "The mirror database, \"{db}\", has insufficient transaction log data to preserve the log backup chain of the principal database.  This may happen if a log backup from the principal database has not been taken or has not been restored on the mirror database."
        ),
    )
}

/// A partner command run on the wrong partner (e.g. FAILOVER on the mirror, FORCE_SERVICE on
/// the principal): SQL Server's 1404-family text for a role mismatch.
pub fn wrong_role(db: &str, option: &str, role: &str) -> SqlError {
    SqlError::new(
        1404,
        format!(
            "The command failed because the database mirror is busy. Reissue the command later. (ALTER DATABASE \"{db}\" SET PARTNER {option} cannot be run on the {role} partner.)"
        ),
    )
}

pub fn lock_not_placed(db: &str) -> SqlError {
    SqlError::new(
        5061,
        format!(
            "ALTER DATABASE failed because a lock could not be placed on database '{db}'. Try again later."
        ),
    )
}

pub fn alter_failed() -> SqlError {
    SqlError::new(5069, "ALTER DATABASE statement failed.")
}

pub fn drop_mirrored(db: &str) -> SqlError {
    SqlError::new(
        3743,
        format!(
            "The database '{db}' is enabled for database mirroring. Database mirroring must be removed before you drop the database."
        ),
    )
}

pub fn drop_in_use(db: &str) -> SqlError {
    SqlError::new(
        3702,
        format!("Cannot drop database \"{db}\" because it is currently in use."),
    )
}

pub fn not_active_process(spid: i64) -> SqlError {
    SqlError::new(
        6106,
        format!("Process ID {spid} is not an active process ID."),
    )
}

pub fn kill_own() -> SqlError {
    SqlError::new(6104, "Cannot use KILL to kill your own process.")
}

pub fn no_such_job(name: &str) -> SqlError {
    SqlError::new(
        14262,
        format!("The specified @job_name ('{name}') does not exist."),
    )
}

pub fn conversion(value: &str, ty: &str) -> SqlError {
    SqlError::new(
        245,
        format!(
            "Conversion failed when converting the nvarchar value '{value}' to data type {ty}."
        ),
    )
}

pub fn cannot_insert_null(column: &str, table: &str) -> SqlError {
    SqlError::new(
        515,
        format!("Cannot insert the value NULL into column '{column}', table '{table}'; column does not allow nulls. INSERT fails."),
    )
    .with_state(2)
}

pub fn duplicate_key(table: &str, key: i64) -> SqlError {
    SqlError::new(
        2627,
        format!("Violation of PRIMARY KEY constraint 'PK_Messages'. Cannot insert duplicate key in object '{table}'. The duplicate key value is ({key})."),
    )
    .with_class(14)
}

/// A log-shipping procedure's own failure (the 32000-range messages of `sys.messages`).
pub fn log_shipping(number: i32, text: impl Into<String>) -> SqlError {
    SqlError::new(number, text)
}

pub fn user_error(number: i32) -> SqlError {
    SqlError::new(
        number,
        format!("Injected fault: error {number} raised by the simulator's FailNext rule."),
    )
}
