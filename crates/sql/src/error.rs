//! Typed SQL errors, so the engine can tell a retryable 3101 or 5061 from a fatal 3154.

/// SQL Server error numbers the engine treats as "try again later": the condition is expected to
/// clear by itself (sessions leaving, a lock released, a partner or share coming back).
const RETRYABLE: &[u32] = &[
    1205, // chosen as deadlock victim
    1418, // mirroring partner's network address cannot be reached
    3101, // exclusive access could not be obtained: sessions still on the database
    3201, // cannot open backup device: share host down or file not yet there
    5061, // ALTER DATABASE could not place a lock
    927,  // database in the middle of a restore (a concurrent restore job)
    955,  // database is being recovered
];

/// What went wrong talking to one SQL instance.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// TCP connect, TLS or login failed, or timed out.
    #[error("cannot connect to {instance} at {address}: {reason}")]
    Connect {
        instance: String,
        address: String,
        reason: String,
    },
    /// SQL Server answered with an error token.
    #[error(
        "{instance}: SQL Server error {number} (severity {class}, state {state}) running {statement}: {message}"
    )]
    Server {
        instance: String,
        /// What was being run, in words (never the text of a statement that carries a secret).
        statement: String,
        number: u32,
        state: u8,
        class: u8,
        message: String,
    },
    /// The statement did not finish within the command timeout.
    #[error("{instance}: {statement} did not finish within {seconds}s")]
    Timeout {
        instance: String,
        statement: String,
        seconds: u64,
    },
    /// The connection broke or the server sent something unexpected.
    #[error("{instance}: connection lost running {statement}: {reason}")]
    ConnectionLost {
        instance: String,
        statement: String,
        reason: String,
    },
    /// The server answered, but not in the shape the operator expects.
    #[error("{instance}: unexpected answer to {statement}: {reason}")]
    Unexpected {
        instance: String,
        statement: String,
        reason: String,
    },
}

impl SqlError {
    /// The SQL Server error number, for server errors.
    pub fn number(&self) -> Option<u32> {
        match self {
            SqlError::Server { number, .. } => Some(*number),
            _ => None,
        }
    }

    /// Whether running the same step again later may succeed without anyone's help.
    pub fn is_retryable(&self) -> bool {
        match self {
            SqlError::Server { number, .. } => RETRYABLE.contains(number),
            SqlError::Connect { .. }
            | SqlError::Timeout { .. }
            | SqlError::ConnectionLost { .. } => true,
            SqlError::Unexpected { .. } => false,
        }
    }

    /// Build from a tiberius error raised while running `statement` on `instance`.
    pub fn from_tiberius(instance: &str, statement: &str, e: tiberius::error::Error) -> Self {
        use tiberius::error::Error as T;
        match e {
            T::Server(token) => SqlError::Server {
                instance: instance.to_string(),
                statement: statement.to_string(),
                number: token.code(),
                state: token.state(),
                class: token.class(),
                message: token.message().to_string(),
            },
            T::Io { kind, message } => SqlError::ConnectionLost {
                instance: instance.to_string(),
                statement: statement.to_string(),
                reason: format!("{kind:?}: {message}"),
            },
            other => SqlError::Unexpected {
                instance: instance.to_string(),
                statement: statement.to_string(),
                reason: other.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(number: u32) -> SqlError {
        SqlError::Server {
            instance: "dal-sql1".into(),
            statement: "RESTORE LOG".into(),
            number,
            state: 1,
            class: 16,
            message: "m".into(),
        }
    }

    #[test]
    fn database_in_use_is_retryable() {
        assert!(server(3101).is_retryable());
        assert!(server(5061).is_retryable());
    }

    #[test]
    fn backup_of_another_database_is_fatal() {
        assert!(!server(3154).is_retryable());
        assert!(!server(4305).is_retryable());
    }

    #[test]
    fn server_error_message_names_instance_statement_and_number() {
        let text = server(3101).to_string();
        assert!(text.contains("dal-sql1") && text.contains("RESTORE LOG") && text.contains("3101"));
    }
}
