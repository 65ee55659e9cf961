//! The seam between the simulator's TDS front end (`sim::tds`) and its SQL Server model
//! (`sim::server`). The front end decodes packets into requests and encodes outcomes into
//! tokens; the model decides what a statement does. Neither knows the other's insides.

use std::sync::Arc;

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

/// A value in a result set or an RPC parameter.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bit(bool),
    Int(i32),
    BigInt(i64),
    Float(f64),
    /// A `numeric(p, s)` value as its unscaled integer (LSNs are `numeric(25,0)`).
    Numeric(i128),
    NVarChar(String),
    /// `datetime2`/`datetime`, UTC.
    DateTime(chrono::NaiveDateTime),
    VarBinary(Vec<u8>),
    UniqueIdentifier([u8; 16]),
}

/// The SQL type of a result-set column, as sent in COLMETADATA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnType {
    Bit,
    TinyInt,
    SmallInt,
    Int,
    BigInt,
    Float,
    /// `numeric(precision, scale)`.
    Numeric {
        precision: u8,
        scale: u8,
    },
    /// `nvarchar(max_chars)`; `None` is `nvarchar(max)`.
    NVarChar(Option<u16>),
    DateTime,
    DateTime2,
    VarBinary(Option<u16>),
    UniqueIdentifier,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    pub name: String,
    pub ty: ColumnType,
    pub nullable: bool,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct ResultSet {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Value>>,
}

/// An ERROR or INFO token's content, as SQL Server sends it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerMessage {
    pub number: i32,
    pub state: u8,
    /// Severity: 0-10 are INFO, 11 and above are ERROR.
    pub class: u8,
    pub text: String,
    pub server: String,
    pub procedure: String,
    pub line: i32,
}

/// One item of a request's response, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// COLMETADATA + ROWs + DONE(count).
    ResultSet(ResultSet),
    /// A DONE with a row count and no result set (INSERT/UPDATE/DELETE and friends).
    RowCount(u64),
    /// An INFO (class <= 10) or ERROR (class > 10) token. An error that aborts the batch is
    /// the last output.
    Message(ServerMessage),
    /// ENVCHANGE type 1 after `USE`: the session's database changed.
    DatabaseChanged { old: String, new: String },
    /// A stored procedure's RETURN value (RETURNSTATUS token) for RPC requests.
    ReturnStatus(i32),
    /// An OUTPUT parameter's value (RETURNVALUE token) for RPC requests.
    ReturnValue {
        name: String,
        value: Value,
        ty: ColumnType,
    },
    /// ENVCHANGE type 8, 9 or 10: the session's outermost transaction began, committed or
    /// rolled back. The client sends the descriptor back in later requests' ALL_HEADERS.
    TransactionChanged(TransactionChange),
}

/// A change of the session's transaction, with its 8-byte descriptor (MS-TDS 2.2.7.9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransactionChange {
    Began { descriptor: u64 },
    Committed { descriptor: u64 },
    RolledBack { descriptor: u64 },
}

/// A transaction-manager request (MS-TDS 2.2.6.9) the model serves: the local transaction
/// requests a driver sends instead of `BEGIN TRAN`/`COMMIT`/`ROLLBACK` text (ODBC with
/// autocommit off, go-mssqldb's `BeginTx`). Distributed-transaction requests are refused by
/// the front end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransactionRequest {
    Begin,
    /// `begin_next`: TM_COMMIT_XACT's fBeginXact, a new transaction starts right after.
    Commit {
        begin_next: bool,
    },
    Rollback {
        begin_next: bool,
    },
}

/// What a request produced.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Outcome {
    pub outputs: Vec<Output>,
}

/// LOGIN7 as the client sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginRequest {
    pub user: String,
    pub password: String,
    pub host_name: String,
    pub app_name: String,
    /// Initial database, empty for the login's default.
    pub database: String,
    pub client_addr: String,
    /// Whether the connection stays encrypted after login (`sys.dm_exec_connections.
    /// encrypt_option`): false when nothing, or only the login, was encrypted.
    pub encrypted: bool,
}

/// A logged-in session, handed to every request of its connection.
#[derive(Clone, Debug)]
pub struct Session {
    pub session_id: i16,
    /// The current database name after login (for the ENVCHANGE the front end sends).
    pub database: String,
    /// The server name for ERROR/INFO tokens and LOGINACK.
    pub server_name: String,
    /// Cancelled by the model when the session is killed (`KILL`, ROLLBACK IMMEDIATE, instance
    /// down): the front end then closes the connection.
    pub killed: CancellationToken,
}

/// An RPC parameter as decoded from the request.
#[derive(Clone, Debug, PartialEq)]
pub struct RpcParam {
    /// `@name`, or empty for positional parameters.
    pub name: String,
    pub value: Value,
    pub output: bool,
}

/// An RPC request: `sp_executesql` (proc id 10) is decoded into its statement, parameter
/// declarations and values; any other procedure is passed by name.
#[derive(Clone, Debug, PartialEq)]
pub enum RpcRequest {
    ExecuteSql {
        statement: String,
        params: Vec<RpcParam>,
    },
    Procedure {
        name: String,
        params: Vec<RpcParam>,
    },
}

/// The SQL Server model behind one listening instance.
pub trait Backend: Send + Sync + 'static {
    /// Check LOGIN7. An error is sent as an ERROR token (18456 for a bad login) and the
    /// connection is closed.
    fn login(&self, request: LoginRequest) -> Result<Session, ServerMessage>;

    /// Run a SQL batch. `cancel` is triggered when the client sends ATTENTION: the model stops
    /// at the next statement boundary (or while waiting) and returns what it produced so far.
    fn batch(
        &self,
        session: &Session,
        sql: String,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, Outcome>;

    /// Run an RPC request.
    fn rpc(
        &self,
        session: &Session,
        request: RpcRequest,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, Outcome>;

    /// Run a transaction-manager request. A backend without transactions refuses it with an
    /// error; the connection stays usable.
    fn transaction(
        &self,
        session: &Session,
        request: TransactionRequest,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, Outcome> {
        let _ = (request, cancel);
        let message = ServerMessage {
            number: 50000,
            state: 1,
            class: 16,
            text: "This server does not support transactions.".into(),
            server: session.server_name.clone(),
            procedure: String::new(),
            line: 1,
        };
        Box::pin(async move {
            Outcome {
                outputs: vec![Output::Message(message)],
            }
        })
    }

    /// The connection ended (client closed, killed, or server shut down).
    fn logout(&self, session: &Session);
}

/// A shared backend.
pub type SharedBackend = Arc<dyn Backend>;
