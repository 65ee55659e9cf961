//! Shared helpers for the simulator model tests: a two-site world served over TCP by a
//! `RunningSim` (on its own runtime, so that a test may block while the server runs), and
//! tiberius connections that run T-SQL through the TDS front end. What a test asserts on
//! (every ERROR and INFO, return status and values, row counts, column types) is read from
//! a tap on the bytes tiberius received (`tap.rs`) and cross-checked against what tiberius
//! itself returned (result sets, rows, column names, values and the first error).
//!
//! A direct path to `Backend::batch` remains (`World::connect_direct`) only where TDS cannot
//! express the behaviour: a batch on a session that was already killed (error 596: over TDS
//! the connection is closed first), logins while an instance is down (17187: over TDS the
//! listener is closed, so the connection is refused) and ATTENTION racing a batch on one
//! connection (tiberius cannot cancel a query it is awaiting).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::TryStreamExt;
use pchat_sim::backend::{
    LoginRequest, Outcome, Output, RpcParam, RpcRequest, ServerMessage, Session, SharedBackend,
    Value,
};
use pchat_sim::cluster::{RunningSim, with_free_ports};
use pchat_sim::server::{Simulator, Topology};
use tiberius::{
    AuthMethod, Client, ColumnData, Command, Config, EncryptionLevel, QueryItem, ToSql,
};
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};
use tokio_util::sync::CancellationToken;

/// The seed topology. Every instance keeps its files in the same folders, as many
/// deployments do, so the conformance tests restore across instances without WITH MOVE; the
/// per-instance folders (the simulator's default) are tested on their own
/// (`PER_INSTANCE_FOLDERS`).
pub const TOPOLOGY: &str = r#"
instances:
  - {name: atl-sql1, site: atlanta, listen: "127.0.0.1:14331", logins: [{name: sa, password: Pchat-Sim-1}], aliases: [atl-sql1.litwareinc.com], data_path: 'D:\SQLData\', log_path: 'L:\SQLLogs\'}
  - {name: atl-sql2, site: atlanta, listen: "127.0.0.1:14332", logins: [{name: sa, password: Pchat-Sim-1}], data_path: 'D:\SQLData\', log_path: 'L:\SQLLogs\'}
  - {name: dal-sql1, site: dallas, listen: "127.0.0.1:14333", logins: [{name: sa, password: Pchat-Sim-1}], data_path: 'D:\SQLData\', log_path: 'L:\SQLLogs\'}
  - {name: dal-sql2, site: dallas, listen: "127.0.0.1:14334", logins: [{name: sa, password: Pchat-Sim-1}], data_path: 'D:\SQLData\', log_path: 'L:\SQLLogs\'}
shares:
  - {host: atl-fs, share: pchat-ls, site: atlanta}
  - {host: dal-fs, share: pchat-ls, site: dallas}
databases:
  - {name: mgc, instance: atl-sql1}
  - {name: mgccomp, instance: atl-sql1}
jobs: {backup_ms: 150, copy_ms: 150, restore_ms: 150, mirroring_ms: 20}
"#;

/// Two instances with the simulator's default folders, one per instance.
pub const PER_INSTANCE_FOLDERS: &str = r#"
instances:
  - {name: atl-sql1, site: atlanta, listen: "127.0.0.1:14331", logins: [{name: sa, password: Pchat-Sim-1}]}
  - {name: dal-sql1, site: dallas, listen: "127.0.0.1:14333", logins: [{name: sa, password: Pchat-Sim-1}]}
shares:
  - {host: atl-fs, share: pchat-ls, site: atlanta}
databases:
  - {name: mgc, instance: atl-sql1}
  - {name: other, instance: dal-sql1}
"#;

/// A simulator serving TDS on free loopback ports, in a fresh state directory.
pub struct World {
    pub sim: Arc<Simulator>,
    pub dir: PathBuf,
    running: Option<RunningSim>,
    runtime: Option<tokio::runtime::Runtime>,
    addrs: HashMap<String, SocketAddr>,
}

impl Drop for World {
    fn drop(&mut self) {
        drop(self.running.take());
        // shutdown_background may run inside the test's runtime (a plain drop may not).
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn world(name: &str) -> World {
    world_with(name, TOPOLOGY)
}

pub fn world_with(name: &str, yaml: &str) -> World {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!("simmodel-{name}-{}-{nanos}", std::process::id()));
    let topo = with_free_ports(Topology::from_yaml(yaml).unwrap());
    let state_dir = dir.clone();
    // The server gets its own runtime on its own threads: a test can then block (waiting for
    // a connection to close) without stopping the server, and no runtime is started from
    // inside the test's.
    let (runtime, running) = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let running = rt
            .block_on(RunningSim::start(topo, &state_dir, None))
            .unwrap();
        (rt, running)
    })
    .join()
    .unwrap();
    let addrs = running
        .instances
        .iter()
        .map(|i| (i.name.to_ascii_lowercase(), i.addr))
        .collect();
    World {
        sim: running.sim.clone(),
        dir,
        running: Some(running),
        runtime: Some(runtime),
        addrs,
    }
}

pub type TapClient = Client<Compat<super::tap::TapStream>>;

/// Whether the server closed a connection (a killed session): `is_cancelled` waits up to
/// two seconds for the close to arrive.
pub struct Closed {
    probe: std::net::TcpStream,
}

impl Closed {
    pub fn is_cancelled(&self) -> bool {
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        let mut b = [0u8; 64];
        loop {
            match self.probe.peek(&mut b) {
                Ok(0) => return true,
                // Unread bytes would be a response nobody asked for; a closed socket reads
                // them first, so keep waiting for the end.
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return true,
            }
            if std::time::Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// What a test knows of its session: its id (`@@SPID`) and whether it was killed.
pub struct SessionView {
    pub session_id: i16,
    pub killed: Closed,
}

/// A tiberius connection to one instance.
pub struct Conn {
    client: tokio::sync::Mutex<TapClient>,
    seen: Arc<Mutex<Vec<u8>>>,
    pub session: SessionView,
}

impl Drop for Conn {
    fn drop(&mut self) {
        // The probe shares the socket: shut it down so the server sees the client leave.
        let _ = self.session.killed.probe.shutdown(std::net::Shutdown::Both);
    }
}

/// A session on the model's backend directly, without TDS.
pub struct DirectConn {
    pub backend: SharedBackend,
    pub session: Session,
}

/// How a test logs in.
#[derive(Clone)]
pub struct LoginAs {
    pub user: String,
    pub password: String,
    pub host: String,
    pub app: String,
    pub database: String,
}

impl World {
    /// The PEM file of the CA the simulator made for its instances' certificates.
    pub fn ca_file(&self) -> PathBuf {
        self.running
            .as_ref()
            .and_then(|r| r.ca_file.clone())
            .expect("the simulator made a CA")
    }

    pub fn addr(&self, instance: &str) -> SocketAddr {
        self.addrs[&instance.to_ascii_lowercase()]
    }

    pub fn connect(&self, instance: &str) -> Conn {
        self.connect_as(instance, "ops-host", "pchat-operator", "")
    }

    pub fn connect_as(&self, instance: &str, host: &str, app: &str, db: &str) -> Conn {
        let login = LoginAs {
            user: "sa".into(),
            password: "Pchat-Sim-1".into(),
            host: host.into(),
            app: app.into(),
            database: db.into(),
        };
        self.try_login(instance, login)
            .unwrap_or_else(|e| panic!("login to {instance} failed: {e:?}"))
    }

    /// Log in with tiberius; a refused login is the server's error.
    pub fn try_login(&self, instance: &str, login: LoginAs) -> Result<Conn, ServerMessage> {
        let addr = self.addr(instance);
        let handle = self.runtime.as_ref().unwrap().handle().clone();
        // Connect on the server's runtime from a plain thread (this function is sync and may
        // be called inside the test's runtime); the socket then works from either runtime.
        let instance = instance.to_string();
        std::thread::spawn(move || handle.block_on(open(addr, login)))
            .join()
            .unwrap_or_else(|_| panic!("connecting to {instance} failed (see the panic above)"))
    }

    pub fn connect_direct(&self, instance: &str) -> DirectConn {
        self.connect_direct_as(instance, "ops-host", "pchat-operator", "")
    }

    pub fn connect_direct_as(&self, instance: &str, host: &str, app: &str, db: &str) -> DirectConn {
        let backend = self.sim.backend(instance).unwrap();
        let session = backend
            .login(LoginRequest {
                user: "sa".into(),
                password: "Pchat-Sim-1".into(),
                host_name: host.into(),
                app_name: app.into(),
                database: db.into(),
                client_addr: "127.0.0.1:50000".into(),
                encrypted: false,
            })
            .unwrap();
        DirectConn { backend, session }
    }
}

fn server_message(e: &tiberius::error::TokenError) -> ServerMessage {
    ServerMessage {
        number: e.code() as i32,
        state: e.state(),
        class: e.class(),
        text: e.message().to_string(),
        server: e.server().to_string(),
        procedure: e.procedure().to_string(),
        line: e.line() as i32,
    }
}

async fn open(addr: SocketAddr, login: LoginAs) -> Result<Conn, ServerMessage> {
    let mut config = Config::new();
    config.host("127.0.0.1");
    config.port(addr.port());
    config.authentication(AuthMethod::sql_server(&login.user, &login.password));
    config.encryption(EncryptionLevel::NotSupported);
    config.application_name(&login.app);
    config.client_name(&login.host);
    if !login.database.is_empty() {
        config.database(&login.database);
    }
    // An instance that just came back up rebinds its listener a moment later.
    let mut attempts = 0;
    let tcp = loop {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(t) => break t,
            Err(e) if attempts < 100 => {
                let _ = e;
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("connect to the simulator at {addr}: {e}"),
        }
    };
    tcp.set_nodelay(true).unwrap();
    let std_tcp = tcp.into_std().unwrap();
    let probe = std_tcp.try_clone().unwrap();
    let tcp = tokio::net::TcpStream::from_std(std_tcp).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let stream = super::tap::TapStream {
        inner: tcp,
        seen: seen.clone(),
    };
    let mut client = match Client::connect(config, stream.compat_write()).await {
        Ok(c) => c,
        Err(tiberius::error::Error::Server(e)) => return Err(server_message(&e)),
        Err(other) => panic!("login: {other}"),
    };
    let first = match client.simple_query("SELECT @@SPID").await {
        Ok(stream) => stream.into_row().await,
        Err(e) => Err(e),
    };
    // The session can end between the login and its first query (a mirroring failover ends
    // the sessions in the database it logged in to): to the caller that is a failed login.
    let row = first.map_err(|e| ServerMessage {
        number: 0,
        state: 0,
        class: 20,
        text: format!("the session ended right after the login: {e}"),
        server: String::new(),
        procedure: String::new(),
        line: 0,
    })?;
    let spid: i16 = row
        .and_then(|r| {
            r.get::<i32, _>(0)
                .or_else(|| r.get::<i16, _>(0).map(i32::from))
        })
        .expect("@@SPID") as i16;
    probe.set_nonblocking(true).unwrap();
    seen.lock().unwrap().clear();
    Ok(Conn {
        client: tokio::sync::Mutex::new(client),
        seen,
        session: SessionView {
            session_id: spid,
            killed: Closed { probe },
        },
    })
}

/// A result set as tiberius returned it: column names and rows.
struct TiberiusSet {
    names: Vec<String>,
    rows: Vec<tiberius::Row>,
}

/// Whether tiberius's value is the one the tap decoded (types tiberius maps one to one).
fn same(cd: &ColumnData<'static>, v: &Value) -> bool {
    match (cd, v) {
        (ColumnData::I32(None), Value::Null)
        | (ColumnData::I64(None), Value::Null)
        | (ColumnData::String(None), Value::Null)
        | (ColumnData::Bit(None), Value::Null)
        | (ColumnData::Numeric(None), Value::Null) => true,
        (ColumnData::I32(Some(a)), Value::Int(b)) => a == b,
        (ColumnData::I64(Some(a)), Value::BigInt(b)) => a == b,
        (ColumnData::Bit(Some(a)), Value::Bit(b)) => a == b,
        (ColumnData::String(Some(a)), Value::NVarChar(b)) => a == b,
        (ColumnData::F64(Some(a)), Value::Float(b)) => a == b,
        (ColumnData::Numeric(Some(a)), Value::Numeric(b)) => a.value() == *b,
        (ColumnData::I32(_) | ColumnData::I64(_) | ColumnData::String(_), _) => false,
        _ => true,
    }
}

/// Check that tiberius saw what the tap decoded: the same result sets, column names, rows
/// and values, and the tap's first error as tiberius's error.
fn cross_check(outputs: &[Output], sets: &[TiberiusSet], error: &Option<tiberius::error::Error>) {
    let tapped: Vec<&pchat_sim::backend::ResultSet> = outputs
        .iter()
        .filter_map(|o| match o {
            Output::ResultSet(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(
        tapped.len(),
        sets.len(),
        "tiberius saw {} result sets, the wire carried {}",
        sets.len(),
        tapped.len()
    );
    for (t, s) in tapped.iter().zip(sets) {
        let names: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, s.names, "column names");
        assert_eq!(t.rows.len(), s.rows.len(), "row count of {names:?}");
        for (tr, sr) in t.rows.iter().zip(&s.rows) {
            for ((_, cd), v) in sr.cells().zip(tr) {
                assert!(same(cd, v), "tiberius read {cd:?}, the wire carried {v:?}");
            }
        }
    }
    let first_error = outputs.iter().find_map(|o| match o {
        Output::Message(m) if m.class > 10 => Some(m.number),
        _ => None,
    });
    match error {
        Some(tiberius::error::Error::Server(e)) => {
            assert_eq!(Some(e.code() as i32), first_error, "tiberius's error")
        }
        // The connection ended (a killed session): `finish` reports it as an error.
        Some(_) => {}
        None => assert_eq!(first_error, None, "an error tiberius did not report"),
    }
}

impl Conn {
    fn take_seen(&self) -> Vec<u8> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }

    async fn finish(
        &self,
        sets: Vec<TiberiusSet>,
        error: Option<tiberius::error::Error>,
    ) -> Outcome {
        let bytes = self.take_seen();
        let outputs =
            super::tap::decode(&bytes).unwrap_or_else(|e| panic!("undecodable response: {e}"));
        cross_check(&outputs, &sets, &error);
        let mut outputs = outputs;
        if let Some(e) = error.filter(|e| !matches!(e, tiberius::error::Error::Server(_))) {
            // Not a server error but the connection failing (closed by KILL, failover or an
            // instance going down): the request was not acknowledged, so it is an error,
            // with number -1 since no server sent one.
            outputs.push(Output::Message(ServerMessage {
                number: -1,
                state: 0,
                class: 20,
                text: format!("connection failed: {e}"),
                server: String::new(),
                procedure: String::new(),
                line: 0,
            }));
        }
        Outcome { outputs }
    }

    async fn drain(
        stream: tiberius::Result<tiberius::QueryStream<'_>>,
    ) -> (Vec<TiberiusSet>, Option<tiberius::error::Error>) {
        let mut sets: Vec<TiberiusSet> = Vec::new();
        let mut stream = match stream {
            Ok(s) => s,
            Err(e) => return (sets, Some(e)),
        };
        loop {
            match stream.try_next().await {
                Ok(Some(QueryItem::Metadata(m))) => sets.push(TiberiusSet {
                    names: m.columns().iter().map(|c| c.name().to_string()).collect(),
                    rows: Vec::new(),
                }),
                Ok(Some(QueryItem::Row(r))) => {
                    sets.last_mut().expect("row before metadata").rows.push(r)
                }
                Ok(None) => return (sets, None),
                Err(e) => return (sets, Some(e)),
            }
        }
    }

    /// Run a SQL batch.
    pub async fn exec(&self, sql: &str) -> Outcome {
        let mut client = self.client.lock().await;
        self.take_seen();
        let (sets, error) = Self::drain(client.simple_query(sql).await).await;
        drop(client);
        self.finish(sets, error).await
    }

    /// `sp_executesql` as tiberius sends it: the parameters must be named `@P1..@Pn` in order.
    pub async fn rpc_sql(&self, statement: &str, params: Vec<(&str, Value)>) -> Outcome {
        for (i, (name, _)) in params.iter().enumerate() {
            assert_eq!(
                *name,
                format!("@P{}", i + 1),
                "tiberius names parameters @P1.."
            );
        }
        let owned: Vec<Box<dyn ToSql>> = params.into_iter().map(|(_, v)| to_sql(v)).collect();
        let refs: Vec<&dyn ToSql> = owned.iter().map(|b| b.as_ref()).collect();
        let mut client = self.client.lock().await;
        self.take_seen();
        let (sets, error) = Self::drain(client.query(statement, &refs).await).await;
        drop(client);
        self.finish(sets, error).await
    }

    /// A named procedure by RPC (tiberius `Command`), with OUTPUT parameters.
    pub async fn rpc_proc(&self, name: &str, params: Vec<RpcParam>) -> Outcome {
        let mut cmd = Command::new(name.to_string());
        for p in params {
            assert!(
                !p.name.is_empty(),
                "tiberius binds procedure parameters by name"
            );
            bind(&mut cmd, p.name, p.value, p.output);
        }
        let mut client = self.client.lock().await;
        self.take_seen();
        let mut sets: Vec<TiberiusSet> = Vec::new();
        let mut error = None;
        match cmd.exec(&mut client).await {
            Err(e) => error = Some(e),
            Ok(mut stream) => loop {
                match stream.try_next().await {
                    Ok(Some(tiberius::CommandItem::Metadata(m))) => sets.push(TiberiusSet {
                        names: m.columns().iter().map(|c| c.name().to_string()).collect(),
                        rows: Vec::new(),
                    }),
                    Ok(Some(tiberius::CommandItem::Row(r))) => {
                        sets.last_mut().expect("row before metadata").rows.push(r)
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(e) => {
                        error = Some(e);
                        break;
                    }
                }
            },
        }
        drop(client);
        self.finish(sets, error).await
    }

    /// Insert messages `ids` into `db` as a chat server would (sp_executesql, @P1..).
    pub async fn post(&self, db: &str, ids: impl IntoIterator<Item = i64>) {
        for id in ids {
            let o = self
                .rpc_sql(
                    &format!("INSERT INTO [{db}].dbo.Messages (MessageId, ChatServer, Body, PostedAt) VALUES (@P1, @P2, @P3, SYSUTCDATETIME())"),
                    vec![
                        ("@P1", Value::BigInt(id)),
                        ("@P2", Value::NVarChar("atl-pc1".into())),
                        ("@P3", Value::NVarChar(format!("message {id}"))),
                    ],
                )
                .await;
            assert!(errors(&o).is_empty(), "insert {id}: {:?}", error_texts(&o));
        }
    }
}

fn to_sql(v: Value) -> Box<dyn ToSql> {
    match v {
        Value::Null => Box::new(Option::<String>::None),
        Value::Bit(b) => Box::new(b),
        Value::Int(i) => Box::new(i),
        Value::BigInt(i) => Box::new(i),
        Value::Float(f) => Box::new(f),
        Value::Numeric(n) => Box::new(tiberius::numeric::Numeric::new_with_scale(n, 0)),
        Value::NVarChar(s) => Box::new(s),
        Value::DateTime(d) => Box::new(d),
        Value::VarBinary(b) => Box::new(b),
        Value::UniqueIdentifier(g) => Box::new(tiberius::Uuid::from_bytes(g)),
    }
}

/// The assertions every test makes on a session, over TDS ([`Conn`]) or directly on the model
/// ([`DirectConn`]): each only needs `exec`.
#[allow(async_fn_in_trait)] // test helpers, awaited in place, never spawned
pub trait RunSql {
    /// Run a SQL batch.
    async fn exec(&self, sql: &str) -> Outcome;

    /// Run and insist on no error.
    async fn ok(&self, sql: &str) -> Outcome {
        let o = self.exec(sql).await;
        assert!(errors(&o).is_empty(), "{sql}\n=> {:?}", error_texts(&o));
        o
    }

    /// Run and return the error numbers (must fail).
    async fn err(&self, sql: &str) -> Vec<i32> {
        let o = self.exec(sql).await;
        let e = errors(&o);
        assert!(!e.is_empty(), "{sql} was expected to fail");
        e
    }

    async fn rows(&self, sql: &str) -> Vec<Vec<Value>> {
        let o = self.ok(sql).await;
        result_sets(&o).pop().expect("a result set").rows
    }

    async fn scalar(&self, sql: &str) -> Value {
        self.rows(sql).await.remove(0).remove(0)
    }

    async fn text(&self, sql: &str) -> String {
        match self.scalar(sql).await {
            Value::NVarChar(s) => s,
            other => panic!("{sql}: expected text, got {other:?}"),
        }
    }

    async fn int(&self, sql: &str) -> i128 {
        match self.scalar(sql).await {
            Value::Int(i) => i as i128,
            Value::BigInt(i) => i as i128,
            Value::Numeric(n) => n,
            Value::Bit(b) => b as i128,
            other => panic!("{sql}: expected a number, got {other:?}"),
        }
    }
}

impl RunSql for Conn {
    async fn exec(&self, sql: &str) -> Outcome {
        Conn::exec(self, sql).await
    }
}

impl RunSql for DirectConn {
    async fn exec(&self, sql: &str) -> Outcome {
        DirectConn::exec(self, sql).await
    }
}

fn bind(cmd: &mut Command<'static>, name: String, v: Value, output: bool) {
    macro_rules! put {
        ($x:expr) => {
            if output {
                cmd.bind_out_param(name, $x)
            } else {
                cmd.bind_param(name, $x)
            }
        };
    }
    match v {
        Value::Null => put!(Option::<String>::None),
        Value::Bit(b) => put!(b),
        Value::Int(i) => put!(i),
        Value::BigInt(i) => put!(i),
        Value::Float(f) => put!(f),
        Value::Numeric(n) => put!(tiberius::numeric::Numeric::new_with_scale(n, 0)),
        Value::NVarChar(s) => put!(s),
        Value::DateTime(d) => put!(d),
        Value::VarBinary(b) => put!(b),
        Value::UniqueIdentifier(g) => put!(tiberius::Uuid::from_bytes(g)),
    }
}
pub fn errors(o: &Outcome) -> Vec<i32> {
    o.outputs
        .iter()
        .filter_map(|x| match x {
            Output::Message(m) if m.class > 10 => Some(m.number),
            _ => None,
        })
        .collect()
}

pub fn error_texts(o: &Outcome) -> Vec<String> {
    o.outputs
        .iter()
        .filter_map(|x| match x {
            Output::Message(m) if m.class > 10 => Some(m.text.clone()),
            _ => None,
        })
        .collect()
}

pub fn result_sets(o: &Outcome) -> Vec<pchat_sim::backend::ResultSet> {
    o.outputs
        .iter()
        .filter_map(|x| match x {
            Output::ResultSet(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

/// A session on the model without TDS (see the module comment for where it is used).
impl DirectConn {
    pub async fn exec(&self, sql: &str) -> Outcome {
        self.backend
            .batch(&self.session, sql.to_string(), CancellationToken::new())
            .await
    }

    pub async fn rpc_sql(&self, statement: &str, params: Vec<(&str, Value)>) -> Outcome {
        self.backend
            .rpc(
                &self.session,
                RpcRequest::ExecuteSql {
                    statement: statement.into(),
                    params: params
                        .into_iter()
                        .map(|(n, v)| RpcParam {
                            name: n.into(),
                            value: v,
                            output: false,
                        })
                        .collect(),
                },
                CancellationToken::new(),
            )
            .await
    }

    pub async fn rpc_proc(&self, name: &str, params: Vec<RpcParam>) -> Outcome {
        self.backend
            .rpc(
                &self.session,
                RpcRequest::Procedure {
                    name: name.into(),
                    params,
                },
                CancellationToken::new(),
            )
            .await
    }

    /// Insert messages `ids` into `db` as a chat server would (sp_executesql, @P1..).
    pub async fn post(&self, db: &str, ids: impl IntoIterator<Item = i64>) {
        for id in ids {
            let o = self
                .rpc_sql(
                    &format!("INSERT INTO [{db}].dbo.Messages (MessageId, ChatServer, Body, PostedAt) VALUES (@P1, @P2, @P3, SYSUTCDATETIME())"),
                    vec![
                        ("@P1", Value::BigInt(id)),
                        ("@P2", Value::NVarChar("atl-pc1".into())),
                        ("@P3", Value::NVarChar(format!("message {id}"))),
                    ],
                )
                .await;
            assert!(errors(&o).is_empty(), "insert {id}: {:?}", error_texts(&o));
        }
    }
}

/// Poll `f` every 10 ms until it is true or `ms` elapse.
pub async fn eventually<F: FnMut() -> bool>(ms: u64, mut f: F) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
    loop {
        if f() {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub fn ids(r: std::ops::Range<i64>) -> Vec<i64> {
    r.collect()
}
