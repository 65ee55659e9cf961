//! Shared helpers for the TDS front-end tests: a small test backend standing in for the SQL
//! Server model (a test double: it understands a handful of made-up statements, not T-SQL),
//! a server on a loopback port, and tiberius clients.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::NaiveDateTime;
use futures::FutureExt;
use futures::future::BoxFuture;
use pchat_sim::backend::{
    Backend, Column, ColumnType, LoginRequest, Outcome, Output, ResultSet, RpcParam, RpcRequest,
    ServerMessage, Session, SharedBackend, Value,
};
use tiberius::{AuthMethod, Client, Config, EncryptionLevel};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};
use tokio_util::sync::CancellationToken;

pub const USER: &str = "sa";
pub const PASSWORD: &str = "Pchat-Sim-1";
pub const SERVER: &str = "TESTSQL";

/// What the test backend saw and holds.
#[derive(Default)]
pub struct State {
    pub logins: Vec<LoginRequest>,
    pub sessions: Vec<Session>,
    pub logouts: usize,
    pub rpcs: Vec<RpcRequest>,
    /// `dbo.Messages` rows by database: (MessageId, ChatServer, Body, PostedAt).
    pub messages: HashMap<String, Vec<(i64, String, String, NaiveDateTime)>>,
    /// Session ids by the database they use.
    pub current_db: HashMap<i16, String>,
}

/// The test double. Batch statements are separated by `;`:
/// `SELECT <int>`, `ROWS <n>` (n typed rows), `COUNT <n>` (a row count),
/// `INFO <number> <text>`, `ERROR <number> <state> <class> <line> <text>` (aborts the batch),
/// `USE <db>`, `DB` (current database as a result set), `WAIT` (waits for the cancel token,
/// up to 10 s). RPC: `sp_executesql` with `ECHO` echoes every parameter as a column;
/// `INSERT INTO dbo.Messages ...` stores a message; procedure `dbo.sp_answer @x, @doubled
/// OUTPUT` returns one row, output `@doubled = 2 * @x` and return status 42.
#[derive(Default)]
pub struct TestBackend {
    pub state: Mutex<State>,
    next_spid: AtomicI16,
    /// Set when a `WAIT` saw its cancel token fire (ATTENTION reached the model).
    pub cancelled: Arc<AtomicBool>,
    /// When set, every login fails (an instance that refuses connections).
    pub refuse_logins: AtomicBool,
}

fn msg(number: i32, state: u8, class: u8, line: i32, text: &str) -> ServerMessage {
    ServerMessage {
        number,
        state,
        class,
        text: text.to_string(),
        server: SERVER.to_string(),
        procedure: String::new(),
        line,
    }
}

fn col(name: &str, ty: ColumnType, nullable: bool) -> Column {
    Column {
        name: name.to_string(),
        ty,
        nullable,
    }
}

pub fn sample_time(i: i64) -> NaiveDateTime {
    chrono::DateTime::from_timestamp(1_764_000_000 + i, 0)
        .unwrap()
        .naive_utc()
}

/// `ROWS n`: id, name, created, flag (NULL on odd rows, to exercise NBCROW).
pub fn rows(n: i64) -> ResultSet {
    ResultSet {
        columns: vec![
            col("id", ColumnType::BigInt, false),
            col("name", ColumnType::NVarChar(Some(50)), false),
            col("created", ColumnType::DateTime2, false),
            col("flag", ColumnType::Bit, true),
        ],
        rows: (0..n)
            .map(|i| {
                vec![
                    Value::BigInt(i),
                    Value::NVarChar(format!("row {i}")),
                    Value::DateTime(sample_time(i)),
                    if i % 2 == 0 {
                        Value::Bit(true)
                    } else {
                        Value::Null
                    },
                ]
            })
            .collect(),
    }
}

fn column_type_of(v: &Value) -> ColumnType {
    match v {
        Value::Null => ColumnType::Int,
        Value::Bit(_) => ColumnType::Bit,
        Value::Int(_) => ColumnType::Int,
        Value::BigInt(_) => ColumnType::BigInt,
        Value::Float(_) => ColumnType::Float,
        Value::Numeric(_) => ColumnType::Numeric {
            precision: 38,
            scale: 0,
        },
        Value::NVarChar(_) => ColumnType::NVarChar(None),
        Value::DateTime(_) => ColumnType::DateTime2,
        Value::VarBinary(_) => ColumnType::VarBinary(None),
        Value::UniqueIdentifier(_) => ColumnType::UniqueIdentifier,
    }
}

impl TestBackend {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            next_spid: AtomicI16::new(51),
            ..Self::default()
        })
    }

    /// Kills every session (as `KILL` or an instance going down would).
    pub fn kill_all(&self) {
        for s in &self.state.lock().unwrap().sessions {
            s.killed.cancel();
        }
    }

    /// Every message id stored in `db`.
    pub fn message_ids(&self, db: &str) -> Vec<i64> {
        self.state
            .lock()
            .unwrap()
            .messages
            .get(db)
            .map(|m| m.iter().map(|r| r.0).collect())
            .unwrap_or_default()
    }

    fn db_of(&self, session: &Session) -> String {
        self.state
            .lock()
            .unwrap()
            .current_db
            .get(&session.session_id)
            .cloned()
            .unwrap_or_else(|| session.database.clone())
    }

    fn statement(&self, session: &Session, stmt: &str, out: &mut Vec<Output>) -> bool {
        let mut words = stmt.split_whitespace();
        let verb = words.next().unwrap_or("").to_ascii_uppercase();
        let rest: Vec<&str> = words.collect();
        match verb.as_str() {
            "SELECT" => {
                let n: i32 = rest.first().and_then(|w| w.parse().ok()).unwrap_or(0);
                out.push(Output::ResultSet(ResultSet {
                    columns: vec![col("", ColumnType::Int, false)],
                    rows: vec![vec![Value::Int(n)]],
                }));
            }
            "ROWS" => {
                let n: i64 = rest.first().and_then(|w| w.parse().ok()).unwrap_or(0);
                out.push(Output::ResultSet(rows(n)));
            }
            "COUNT" => {
                let n: u64 = rest.first().and_then(|w| w.parse().ok()).unwrap_or(0);
                out.push(Output::RowCount(n));
            }
            "INFO" => {
                let n: i32 = rest.first().and_then(|w| w.parse().ok()).unwrap_or(0);
                out.push(Output::Message(msg(n, 1, 0, 1, &rest[1..].join(" "))));
            }
            "ERROR" => {
                let p = |i: usize| rest.get(i).and_then(|w| w.parse::<i32>().ok()).unwrap_or(0);
                let mut m = msg(p(0), p(1) as u8, p(2) as u8, p(3), &rest[4..].join(" "));
                m.procedure = "sp_test".into();
                out.push(Output::Message(m));
                return false;
            }
            "USE" => {
                let new = rest
                    .first()
                    .copied()
                    .unwrap_or("")
                    .trim_matches(|c| c == '[' || c == ']')
                    .to_string();
                let old = self.db_of(session);
                self.state
                    .lock()
                    .unwrap()
                    .current_db
                    .insert(session.session_id, new.clone());
                out.push(Output::DatabaseChanged { old, new });
            }
            "DB" => out.push(Output::ResultSet(ResultSet {
                columns: vec![col("db", ColumnType::NVarChar(Some(128)), false)],
                rows: vec![vec![Value::NVarChar(self.db_of(session))]],
            })),
            _ => {
                out.push(Output::Message(msg(
                    2812,
                    62,
                    16,
                    1,
                    &format!("Could not find stored procedure '{verb}'."),
                )));
                return false;
            }
        }
        true
    }

    fn insert_message(&self, session: &Session, params: &[RpcParam]) -> Output {
        let get = |i: usize| {
            params
                .get(i)
                .map(|p| p.value.clone())
                .unwrap_or(Value::Null)
        };
        match (get(0), get(1), get(2), get(3)) {
            (
                Value::BigInt(id),
                Value::NVarChar(server),
                Value::NVarChar(body),
                Value::DateTime(at),
            ) => {
                let db = self.db_of(session);
                self.state
                    .lock()
                    .unwrap()
                    .messages
                    .entry(db)
                    .or_default()
                    .push((id, server, body, at));
                Output::RowCount(1)
            }
            other => Output::Message(msg(
                8178,
                1,
                16,
                1,
                &format!("bad parameters for dbo.Messages: {other:?}"),
            )),
        }
    }
}

impl Backend for TestBackend {
    fn login(&self, request: LoginRequest) -> Result<Session, ServerMessage> {
        if self.refuse_logins.load(Ordering::SeqCst)
            || request.user != USER
            || request.password != PASSWORD
        {
            return Err(msg(
                18456,
                1,
                14,
                1,
                &format!("Login failed for user '{}'.", request.user),
            ));
        }
        let session = Session {
            session_id: self.next_spid.fetch_add(1, Ordering::SeqCst),
            database: if request.database.is_empty() {
                "master".into()
            } else {
                request.database.clone()
            },
            server_name: SERVER.into(),
            killed: CancellationToken::new(),
        };
        let mut st = self.state.lock().unwrap();
        st.logins.push(request);
        st.sessions.push(session.clone());
        Ok(session)
    }

    fn batch(
        &self,
        session: &Session,
        sql: String,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, Outcome> {
        let mut outputs = Vec::new();
        let mut wait = false;
        for stmt in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            if stmt.eq_ignore_ascii_case("WAIT") {
                wait = true;
                break;
            }
            if !self.statement(session, stmt, &mut outputs) {
                break;
            }
        }
        let seen_cancel = self.cancelled.clone();
        async move {
            if wait {
                tokio::select! {
                    _ = cancel.cancelled() => seen_cancel.store(true, Ordering::SeqCst),
                    _ = tokio::time::sleep(Duration::from_secs(10)) => {}
                }
            }
            Outcome { outputs }
        }
        .boxed()
    }

    fn rpc(
        &self,
        session: &Session,
        request: RpcRequest,
        _cancel: CancellationToken,
    ) -> BoxFuture<'static, Outcome> {
        self.state.lock().unwrap().rpcs.push(request.clone());
        let outputs = match &request {
            RpcRequest::ExecuteSql { statement, params } if statement == "ECHO" => {
                vec![Output::ResultSet(ResultSet {
                    columns: params
                        .iter()
                        .map(|p| col(&p.name, column_type_of(&p.value), true))
                        .collect(),
                    rows: vec![params.iter().map(|p| p.value.clone()).collect()],
                })]
            }
            RpcRequest::ExecuteSql { statement, params }
                if statement.starts_with("INSERT INTO dbo.Messages") =>
            {
                vec![self.insert_message(session, params)]
            }
            RpcRequest::ExecuteSql { statement, .. } => {
                let mut out = Vec::new();
                for stmt in statement
                    .split(';')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                {
                    if !self.statement(session, stmt, &mut out) {
                        break;
                    }
                }
                out
            }
            RpcRequest::Procedure { name, params } if name == "dbo.sp_answer" => {
                let x = match params.first().map(|p| &p.value) {
                    Some(Value::Int(x)) => *x,
                    _ => 0,
                };
                let mut out = vec![Output::ResultSet(ResultSet {
                    columns: vec![col("answer", ColumnType::Int, false)],
                    rows: vec![vec![Value::Int(x + 1)]],
                })];
                for p in params.iter().filter(|p| p.output) {
                    out.push(Output::ReturnValue {
                        name: p.name.clone(),
                        value: Value::Int(2 * x),
                        ty: ColumnType::Int,
                    });
                }
                out.push(Output::ReturnStatus(42));
                out
            }
            RpcRequest::Procedure { name, .. } => vec![Output::Message(msg(
                2812,
                62,
                16,
                1,
                &format!("Could not find stored procedure '{name}'."),
            ))],
        };
        async move { Outcome { outputs } }.boxed()
    }

    fn logout(&self, _session: &Session) {
        self.state.lock().unwrap().logouts += 1;
    }
}

/// A running front end on a loopback port.
pub struct Server {
    pub addr: SocketAddr,
    pub backend: Arc<TestBackend>,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<()>,
}

pub async fn start() -> Server {
    start_with(TestBackend::new()).await
}

pub async fn start_with(backend: Arc<TestBackend>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let shared: SharedBackend = backend.clone();
    let task = tokio::spawn(pchat_sim::tds::serve(listener, shared, shutdown.clone()));
    Server {
        addr,
        backend,
        shutdown,
        task,
    }
}

pub fn config(addr: SocketAddr, user: &str, password: &str) -> Config {
    let mut config = Config::new();
    config.host("127.0.0.1");
    config.port(addr.port());
    config.authentication(AuthMethod::sql_server(user, password));
    config.encryption(EncryptionLevel::NotSupported);
    config
}

pub type TestClient = Client<Compat<TcpStream>>;

pub async fn connect_with(config: Config) -> tiberius::Result<TestClient> {
    let tcp = TcpStream::connect(config.get_addr()).await?;
    tcp.set_nodelay(true)?;
    Client::connect(config, tcp.compat_write()).await
}

pub async fn connect(addr: SocketAddr) -> TestClient {
    tokio::time::timeout(
        Duration::from_secs(10),
        connect_with(config(addr, USER, PASSWORD)),
    )
    .await
    .expect("login timed out")
    .expect("login failed")
}
