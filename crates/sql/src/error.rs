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

/// How a connection was lost while a statement ran on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionLoss {
    /// The socket read timed out: the server may still be running the statement, so it is not
    /// sent again on a new connection at once (a second RESTORE or BACKUP would find the first
    /// one holding the database).
    TimedOut,
    /// The connection was closed, reset or refused: the statement did not finish on it, and
    /// every statement of a step repeats safely, so it may be sent again on a fresh one.
    Broken,
}

impl ConnectionLoss {
    fn of(kind: std::io::ErrorKind) -> Self {
        match kind {
            std::io::ErrorKind::TimedOut => ConnectionLoss::TimedOut,
            _ => ConnectionLoss::Broken,
        }
    }
}

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
        /// What happened to the connection, for the decision to resend the statement.
        loss: ConnectionLoss,
        reason: String,
    },
    /// A stored procedure returned non-zero, which msdb's and master's procedures do for
    /// some failures without raising an error. Not retryable: the same call fails the same way.
    #[error("{instance}: {procedure} returned {code} running {statement}")]
    ReturnCode {
        instance: String,
        statement: String,
        procedure: String,
        code: i64,
    },
    /// Not sent: the write gate said this process may no longer write (in Kubernetes, another
    /// replica holds the Lease). Retryable: the replica that leads re-plans from what it sees.
    #[error(
        "{instance}: {statement} was not sent: this process may no longer write (another replica holds the Lease)"
    )]
    Withdrawn { instance: String, statement: String },
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
            | SqlError::ConnectionLost { .. }
            | SqlError::Withdrawn { .. } => true,
            SqlError::Unexpected { .. } | SqlError::ReturnCode { .. } => false,
        }
    }

    /// Whether the statement may be sent again at once on a fresh connection: only when the
    /// connection broke under it. A statement that outlived a timeout may still be running on
    /// the server, and a server error is answered by the statement's own retry list.
    pub fn may_resend_at_once(&self) -> bool {
        matches!(
            self,
            SqlError::ConnectionLost {
                loss: ConnectionLoss::Broken,
                ..
            }
        )
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
                loss: ConnectionLoss::of(kind),
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
    fn every_listed_server_error_is_retryable() {
        for number in RETRYABLE {
            assert!(server(*number).is_retryable(), "{number}");
        }
    }

    #[test]
    fn backup_of_another_database_is_fatal() {
        assert!(!server(3154).is_retryable());
        assert!(!server(4305).is_retryable());
    }

    fn io_error(kind: std::io::ErrorKind) -> SqlError {
        SqlError::from_tiberius(
            "dal-sql1",
            "RESTORE LOG",
            tiberius::error::Error::Io {
                kind,
                message: "m".into(),
            },
        )
    }

    fn connect_failure() -> SqlError {
        SqlError::Connect {
            instance: "dal-sql1".into(),
            address: "10.0.0.1:1433".into(),
            reason: "refused".into(),
        }
    }

    fn timeout() -> SqlError {
        SqlError::Timeout {
            instance: "dal-sql1".into(),
            statement: "RESTORE LOG".into(),
            seconds: 30,
        }
    }

    fn unexpected() -> SqlError {
        SqlError::Unexpected {
            instance: "dal-sql1".into(),
            statement: "RESTORE LOG".into(),
            reason: "no result set".into(),
        }
    }

    #[test]
    fn io_timeout_is_a_timed_out_connection_loss_and_any_other_io_error_a_broken_one() {
        let timed_out = io_error(std::io::ErrorKind::TimedOut);
        assert!(matches!(
            timed_out,
            SqlError::ConnectionLost {
                loss: ConnectionLoss::TimedOut,
                ..
            }
        ));
        for kind in [
            std::io::ErrorKind::ConnectionReset,
            std::io::ErrorKind::ConnectionAborted,
            std::io::ErrorKind::BrokenPipe,
            std::io::ErrorKind::UnexpectedEof,
        ] {
            assert!(matches!(
                io_error(kind),
                SqlError::ConnectionLost {
                    loss: ConnectionLoss::Broken,
                    ..
                }
            ));
        }
    }

    #[test]
    fn every_connection_failure_and_timeout_is_retryable_later() {
        assert!(connect_failure().is_retryable());
        assert!(timeout().is_retryable());
        assert!(io_error(std::io::ErrorKind::TimedOut).is_retryable());
        assert!(io_error(std::io::ErrorKind::ConnectionReset).is_retryable());
    }

    #[test]
    fn an_unexpected_answer_is_not_retryable() {
        assert!(!unexpected().is_retryable());
    }

    #[test]
    fn only_a_broken_connection_lets_the_statement_be_resent_at_once() {
        assert!(io_error(std::io::ErrorKind::ConnectionReset).may_resend_at_once());
        assert!(!io_error(std::io::ErrorKind::TimedOut).may_resend_at_once());
        assert!(!timeout().may_resend_at_once());
        assert!(!connect_failure().may_resend_at_once());
        assert!(!unexpected().may_resend_at_once());
        assert!(!server(3101).may_resend_at_once());
    }

    #[test]
    fn the_connection_loss_text_keeps_the_io_error_kind() {
        let text = io_error(std::io::ErrorKind::TimedOut).to_string();
        assert!(text.contains("TimedOut: m"), "{text}");
    }

    #[test]
    fn server_error_message_names_instance_statement_and_number() {
        let text = server(3101).to_string();
        assert!(text.contains("dal-sql1") && text.contains("RESTORE LOG") && text.contains("3101"));
    }
}
