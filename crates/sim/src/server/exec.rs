//! Running requests: login, batches (parsed, then run statement by statement with latency
//! faults, FailNext rules and cancellation between statements), RPCs, and the per-statement
//! semantics that are not backup/mirroring/log-shipping (USE, KILL, CREATE/DROP DATABASE, ALTER
//! DATABASE options, INSERT, the job and listing procedures).

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use super::Simulator;
use super::agent;
use super::ast::*;
use super::backup::{self, BackupArgs, RestoreArgs, RestoreWhat};
use super::catalog::MESSAGES_COLUMNS;
use super::errors::{self as e, Failure, SqlError};
use super::logship;
use super::mirroring;
use super::model::{Access, Database, DbState, Instance, Message, SessionInfo, State, now};
use super::model::{LoggedStatement, RunningRequest, STATEMENT_LOG_CAP};
use super::parse::parse_batch;
use super::paths;
use super::query::{self, QueryContext};
use super::topology::StatementKind;
use super::transaction;
use crate::backend::{
    Backend, Column, ColumnType, LoginRequest, Outcome, Output, ResultSet, RpcParam, RpcRequest,
    ServerMessage, Session, TransactionRequest, Value,
};

/// The backend of one instance.
pub struct InstanceBackend {
    pub sim: Arc<Simulator>,
    pub instance: String,
}

impl Backend for InstanceBackend {
    fn login(&self, request: LoginRequest) -> Result<Session, ServerMessage> {
        self.sim.login(&self.instance, request)
    }

    fn batch(
        &self,
        session: &Session,
        sql: String,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, Outcome> {
        let sim = self.sim.clone();
        let inst = self.instance.clone();
        let spid = session.session_id;
        Box::pin(async move {
            let outputs = sim
                .run_text(&inst, spid, &sql, HashMap::new(), cancel)
                .await;
            Outcome { outputs }
        })
    }

    fn rpc(
        &self,
        session: &Session,
        request: RpcRequest,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, Outcome> {
        let sim = self.sim.clone();
        let inst = self.instance.clone();
        let spid = session.session_id;
        Box::pin(async move {
            let outputs = match request {
                RpcRequest::ExecuteSql { statement, params } => {
                    let vars = params
                        .into_iter()
                        .map(|p| (var_name(&p.name), p.value))
                        .collect();
                    sim.run_text(&inst, spid, &statement, vars, cancel).await
                }
                RpcRequest::Procedure { name, params } => {
                    sim.rpc_procedure(&inst, spid, &name, params, cancel).await
                }
            };
            Outcome { outputs }
        })
    }

    /// A transaction-manager request runs as the statements it stands for, so it is logged,
    /// delayed and failed like them and its ENVCHANGE comes from the same place.
    fn transaction(
        &self,
        session: &Session,
        request: TransactionRequest,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, Outcome> {
        let sim = self.sim.clone();
        let inst = self.instance.clone();
        let spid = session.session_id;
        let (first, begin_next) = match request {
            TransactionRequest::Begin => (Stmt::BeginTransaction, false),
            TransactionRequest::Commit { begin_next } => (Stmt::CommitTransaction, begin_next),
            TransactionRequest::Rollback { begin_next } => (Stmt::RollbackTransaction, begin_next),
        };
        let mut stmts = vec![first];
        if begin_next {
            stmts.push(Stmt::BeginTransaction);
        }
        let stmts = stmts
            .into_iter()
            .map(|stmt| Located {
                text: match stmt {
                    Stmt::BeginTransaction => "BEGIN TRANSACTION",
                    Stmt::CommitTransaction => "COMMIT TRANSACTION",
                    _ => "ROLLBACK TRANSACTION",
                }
                .to_string(),
                stmt,
                line: 1,
            })
            .collect();
        Box::pin(async move {
            let outputs = sim.run(&inst, spid, stmts, HashMap::new(), cancel).await;
            Outcome { outputs }
        })
    }

    fn logout(&self, session: &Session) {
        let mut st = self.sim.lock();
        if let Some(i) = st.inst_mut(&self.instance) {
            i.sessions.remove(&session.session_id);
        }
    }
}

/// Sleep for `d` to within a fraction of a millisecond. tokio's timer fires on the first
/// whole-millisecond tick after the deadline, which made every simulated latency up to a
/// millisecond longer than the latency table says; the last stretch is slept on a blocking
/// thread instead, whose sleep is precise.
async fn sleep_precisely(d: std::time::Duration) {
    const TIMER_SLACK: std::time::Duration = std::time::Duration::from_millis(2);
    let deadline = tokio::time::Instant::now() + d;
    if d > TIMER_SLACK {
        tokio::time::sleep_until(deadline - TIMER_SLACK).await;
    }
    let rest = deadline.saturating_duration_since(tokio::time::Instant::now());
    if !rest.is_zero() {
        // A join error only means the runtime is shutting down: there is nothing to wait for.
        let _ = tokio::task::spawn_blocking(move || std::thread::sleep(rest)).await;
    }
}

fn var_name(n: &str) -> String {
    let n = n.to_ascii_lowercase();
    if n.starts_with('@') {
        n
    } else {
        format!("@{n}")
    }
}

/// What `sys.dm_exec_requests.command` shows while a statement runs, for the statements that
/// report `percent_complete` (BACKUP and RESTORE of a database or log).
fn long_command(stmt: &Stmt) -> Option<&'static str> {
    match stmt {
        Stmt::Backup { log: false, .. } => Some("BACKUP DATABASE"),
        Stmt::Backup { log: true, .. } => Some("BACKUP LOG"),
        Stmt::Restore {
            kind: RestoreKind::Database,
            ..
        } => Some("RESTORE DATABASE"),
        Stmt::Restore {
            kind: RestoreKind::Log,
            ..
        } => Some("RESTORE LOG"),
        _ => None,
    }
}

fn kind_of(stmt: &Stmt) -> Option<StatementKind> {
    Some(match stmt {
        Stmt::Select { .. } => StatementKind::Select,
        Stmt::Insert { .. } => StatementKind::Insert,
        Stmt::Backup { .. } => StatementKind::Backup,
        // Reading a backup's header or file list reads a few pages of the media, not the
        // data: it costs what a query costs, not what a restore does.
        Stmt::Restore {
            kind: RestoreKind::HeaderOnly | RestoreKind::FileListOnly,
            ..
        } => StatementKind::Select,
        Stmt::Restore { .. } => StatementKind::Restore,
        Stmt::AlterDatabase { .. } => StatementKind::AlterDatabase,
        Stmt::Exec { .. } => StatementKind::Exec,
        Stmt::Kill { .. } => StatementKind::Kill,
        Stmt::AlterLogin { .. } => StatementKind::Exec,
        _ => return None,
    })
}

/// Whether a statement can change state (see `LoggedStatement::writes`). IF and blocks are
/// not writes themselves: the statements they expand to are logged one by one.
fn writes(stmt: &Stmt) -> bool {
    const READ_ONLY_PROCEDURES: &[&str] = &["sp_who", "sp_who2", "xp_dirtree", "xp_fileexist"];
    match stmt {
        Stmt::Select { .. }
        | Stmt::Use { .. }
        | Stmt::Declare { .. }
        | Stmt::SetVar { .. }
        | Stmt::SetOption
        | Stmt::SetImplicitTransactions(_)
        | Stmt::BeginTransaction
        | Stmt::RollbackTransaction
        | Stmt::WaitFor { .. }
        | Stmt::Print(_)
        | Stmt::If { .. }
        | Stmt::Block(_) => false,
        Stmt::Restore { kind, .. } => matches!(kind, RestoreKind::Database | RestoreKind::Log),
        Stmt::Exec { procedure, .. } => !procedure.last().is_some_and(|p| {
            READ_ONLY_PROCEDURES
                .iter()
                .any(|r| p.eq_ignore_ascii_case(r))
        }),
        _ => true,
    }
}

fn log_statement(inst: &mut Instance, spid: i16, st: &Located) {
    let (host_name, program_name, encrypted) = inst
        .sessions
        .get(&spid)
        .map(|s| (s.host_name.clone(), s.program_name.clone(), s.encrypted))
        .unwrap_or_default();
    if inst.statement_log.len() >= STATEMENT_LOG_CAP {
        inst.statement_log.pop_front();
    }
    inst.statement_log.push_back(LoggedStatement {
        at: now(),
        session_id: spid,
        host_name,
        program_name,
        text: st.text.clone(),
        writes: writes(&st.stmt),
        encrypted,
    });
}

/// Result of one statement: outputs, and whether the batch stops.
struct StepResult {
    outputs: Vec<Output>,
    abort: bool,
}

/// Does this error end the whole batch? In SQL Server compile-time errors (syntax, unknown
/// objects, columns, variables), conversion errors and severity 20+ abort the batch; other
/// errors end only their statement and the batch goes on.
fn aborts_batch(err: &SqlError) -> bool {
    err.class >= 20
        || matches!(
            err.number,
            102 | 105 | 113 | 137 | 141 | 148 | 195 | 207 | 208 | 209 | 241 | 245 | 596
        )
}

/// Whether the session may open `db` (USE, login database, three-part names).
fn check_open(inst: &Instance, db_name: &str, spid: Option<i16>) -> Result<(), SqlError> {
    let Some(d) = inst.db(db_name) else {
        return Err(e::db_absent_use(db_name));
    };
    if let Some(err) = e::cannot_open(d) {
        return Err(err);
    }
    if d.access == Access::Single && !inst.sessions_in(&d.name, spid).is_empty() {
        return Err(e::single_user_in_use(&d.name));
    }
    Ok(())
}

impl Simulator {
    pub(crate) fn login(
        &self,
        instance: &str,
        req: LoginRequest,
    ) -> Result<Session, ServerMessage> {
        let mut st = self.lock();
        let Some(inst) = st.inst_mut(instance) else {
            return Err(e::not_ready().to_message(instance, "", 1));
        };
        let server = inst.name.clone();
        if !inst.up {
            return Err(e::not_ready().to_message(&server, "", 1));
        }
        let Some(login) = inst
            .logins
            .iter()
            .find(|l| l.name.eq_ignore_ascii_case(&req.user) && l.password == req.password)
        else {
            return Err(e::login_failed(&req.user).to_message(&server, "", 1));
        };
        // A database named in LOGIN7 that cannot be opened fails with 4060 naming it; the
        // login's default database, used when LOGIN7 names none, with 4064.
        let database = if req.database.is_empty() {
            let default = login.default_database.as_deref().unwrap_or("master");
            if check_open(inst, default, None).is_err() {
                return Err(e::cannot_open_default_db().to_message(&server, "", 1));
            }
            default.to_string()
        } else {
            if check_open(inst, &req.database, None).is_err() {
                return Err(e::cannot_open_login_db(&req.database).to_message(&server, "", 1));
            }
            req.database.clone()
        };
        let database = inst
            .db(&database)
            .map(|d| d.name.clone())
            .unwrap_or(database);
        // Session ids start at 51 like SQL Server's user sessions; skip ids still in use.
        let mut spid = inst.next_spid;
        while inst.sessions.contains_key(&spid) {
            spid = if spid >= i16::MAX - 1 { 51 } else { spid + 1 };
        }
        inst.next_spid = if spid >= i16::MAX - 1 { 51 } else { spid + 1 };
        let killed = CancellationToken::new();
        let t = now();
        inst.sessions.insert(
            spid,
            SessionInfo {
                spid,
                login: req.user.clone(),
                host_name: req.host_name.clone(),
                program_name: req.app_name.clone(),
                client_addr: req.client_addr.clone(),
                encrypted: req.encrypted,
                database: database.clone(),
                login_time: t,
                last_request: t,
                killed: killed.clone(),
                transaction: Default::default(),
                request: None,
            },
        );
        Ok(Session {
            session_id: spid,
            database,
            server_name: server,
            killed,
        })
    }

    fn latency_for(&self, kind: Option<StatementKind>) -> u64 {
        let latency = self.latency.read().unwrap_or_else(|p| p.into_inner());
        let any = latency.get(&StatementKind::Any).copied().unwrap_or(0);
        let specific = kind.and_then(|k| latency.get(&k).copied()).unwrap_or(0);
        any + specific
    }

    /// Parse and run a batch's text for session `spid`; a batch that does not parse runs
    /// nothing and reports its syntax error.
    async fn run_text(
        &self,
        instance: &str,
        spid: i16,
        sql: &str,
        vars: HashMap<String, Value>,
        cancel: CancellationToken,
    ) -> Vec<Output> {
        match parse_batch(sql) {
            Ok(stmts) => self.run(instance, spid, stmts, vars, cancel).await,
            Err(err) => vec![Output::Message(err.to_message(instance, "", 1))],
        }
    }

    /// Run parsed statements for session `spid`.
    /// Show (or, with `None`, clear) the long statement session `spid` is running.
    fn set_request(
        &self,
        instance: &str,
        spid: i16,
        command: Option<&'static str>,
        duration: std::time::Duration,
    ) {
        let mut state = self.lock();
        let Some(session) = state
            .inst_mut(instance)
            .and_then(|i| i.sessions.get_mut(&spid))
        else {
            return;
        };
        session.request = command.map(|command| RunningRequest {
            command,
            start_time: now(),
            started: std::time::Instant::now(),
            duration,
        });
    }

    pub(crate) async fn run(
        &self,
        instance: &str,
        spid: i16,
        stmts: Vec<Located>,
        mut vars: HashMap<String, Value>,
        cancel: CancellationToken,
    ) -> Vec<Output> {
        let mut outputs = Vec::new();
        let mut queue: std::collections::VecDeque<Located> = stmts.into();
        // sys.dm_exec_sessions.last_request_start_time is when the request (this batch or RPC)
        // started, the same for each of its statements.
        let mut starts_request = true;
        while let Some(st) = queue.pop_front() {
            if cancel.is_cancelled() {
                break;
            }
            let delay = self.latency_for(kind_of(&st.stmt));
            let wait = match &st.stmt {
                Stmt::WaitFor { millis } => delay + millis,
                _ => delay,
            };
            if wait > 0 {
                let duration = std::time::Duration::from_millis(wait);
                self.set_request(instance, spid, long_command(&st.stmt), duration);
                let cancelled = tokio::select! {
                    _ = cancel.cancelled() => true,
                    _ = sleep_precisely(duration) => false,
                };
                self.set_request(instance, spid, None, duration);
                if cancelled {
                    break;
                }
            }
            let mut expand: Vec<Located> = Vec::new();
            let step = if reads_only(&st.stmt) {
                self.run_reading(instance, spid, &st, starts_request, &mut vars, &mut expand)
                    .await
            } else {
                let _turn = self.turn.write().await;
                let mut state = self.lock();
                match begin_statement(&mut state, instance, spid, &st, starts_request) {
                    Ok(inst) => {
                        let res = exec_stmt(&mut state, inst, spid, &st.stmt, &mut vars);
                        mirroring::refresh_around(&mut state, inst);
                        step_result(instance, &st, res)
                    }
                    Err(refused) => refused,
                }
            };
            starts_request = false;
            let wake = matches!(&st.stmt, Stmt::Exec { procedure, .. }
                if procedure.last().is_some_and(|p| p.eq_ignore_ascii_case("sp_start_job")));
            outputs.extend(step.outputs);
            for s in expand.into_iter().rev() {
                queue.push_front(s);
            }
            if wake {
                self.wake.notify_one();
            }
            if step.abort {
                break;
            }
        }
        outputs
    }

    /// Run a statement that only reads the model: the bookkeeping under the model's lock alone,
    /// briefly, then the statement under a shared lock, at the same time as reads on other
    /// instances (and on this one, whose SQLite tables have their own lock).
    async fn run_reading(
        &self,
        instance: &str,
        spid: i16,
        st: &Located,
        starts_request: bool,
        vars: &mut HashMap<String, Value>,
        expand: &mut Vec<Located>,
    ) -> StepResult {
        {
            let _turn = self.turn.write().await;
            let mut state = self.lock();
            // No mirroring refresh here: every change a session's state depends on (a
            // statement, an agent job, a fault) refreshes what it touched before it lets go
            // of the lock, so the model a read sees is already settled.
            if let Err(refused) = begin_statement(&mut state, instance, spid, st, starts_request) {
                return refused;
            }
        }
        let _turn = self.turn.read().await;
        let state = self.read();
        let inst = match session_alive(&state, instance, spid, st) {
            Ok(inst) => inst,
            Err(refused) => return refused,
        };
        let res = exec_read(&state, inst, spid, &st.stmt, vars, expand);
        step_result(instance, st, res)
    }

    /// An RPC to a named procedure: the same as `EXEC name @p = v, ...`, plus RETURNVALUE tokens
    /// for OUTPUT parameters.
    async fn rpc_procedure(
        &self,
        instance: &str,
        spid: i16,
        name: &str,
        params: Vec<RpcParam>,
        cancel: CancellationToken,
    ) -> Vec<Output> {
        let procedure: Vec<String> = name
            .split('.')
            .map(|p| p.trim_matches(['[', ']']).to_string())
            .collect();
        let mut vars = HashMap::new();
        let mut args = Vec::new();
        for (i, p) in params.iter().enumerate() {
            let slot = format!("@__rpc{i}");
            vars.insert(slot.clone(), p.value.clone());
            args.push(ExecArg {
                name: if p.name.is_empty() {
                    None
                } else {
                    Some(var_name(&p.name))
                },
                value: Expr::Var(slot),
                output: p.output,
            });
        }
        let stmt = Located {
            stmt: Stmt::Exec {
                procedure,
                args,
                return_var: None,
            },
            line: 1,
            text: format!("EXEC {name}"),
        };
        self.run(instance, spid, vec![stmt], vars, cancel).await
    }
}

/// What comes before every statement, under the model's lock alone: the statement is refused
/// for a killed session or a stopped instance, logged, and failed by a FailNext rule that
/// matches it; the first of a request starts the session's last request. The instance's index
/// when it may run.
fn begin_statement(
    state: &mut State,
    instance: &str,
    spid: i16,
    st: &Located,
    starts_request: bool,
) -> Result<usize, StepResult> {
    let inst = session_alive(state, instance, spid, st)?;
    if starts_request && let Some(s) = state.instances[inst].sessions.get_mut(&spid) {
        s.last_request = now();
    }
    log_statement(&mut state.instances[inst], spid, st);
    let server = state.instances[inst].name.clone();
    match take_fail_rule(state, &server, &st.text) {
        Some(err) => Err(step_result(&server, st, Err(vec![err]))),
        None => Ok(inst),
    }
}

/// The instance's index, when it is up and session `spid` is still on it. A killed session (or
/// a stopped instance) never reports success for work it did not do: the client sees the
/// kill-state error, and the batch ends.
fn session_alive(
    state: &State,
    instance: &str,
    spid: i16,
    st: &Located,
) -> Result<usize, StepResult> {
    let alive = state
        .inst_index(instance)
        .filter(|&i| state.instances[i].up && state.instances[i].sessions.contains_key(&spid));
    alive.ok_or_else(|| StepResult {
        outputs: vec![Output::Message(
            e::session_killed().to_message(instance, "", st.line),
        )],
        abort: true,
    })
}

/// Whether a statement only reads the model (its variables are the batch's own), so that it
/// may run under a shared lock: `run` sends these to [`exec_read`], the others to
/// [`exec_stmt`].
/// Every kind is named, so a new one is put on one side or the other.
fn reads_only(stmt: &Stmt) -> bool {
    match stmt {
        Stmt::Select { .. }
        | Stmt::If { .. }
        | Stmt::Block(_)
        | Stmt::Declare { .. }
        | Stmt::SetVar { .. }
        | Stmt::SetOption
        | Stmt::WaitFor { .. }
        | Stmt::Print(_) => true,
        Stmt::Insert { .. }
        | Stmt::Backup { .. }
        | Stmt::Restore { .. }
        | Stmt::AlterDatabase { .. }
        | Stmt::AlterLogin { .. }
        | Stmt::Kill { .. }
        | Stmt::Use { .. }
        | Stmt::CreateDatabase { .. }
        | Stmt::DropDatabase { .. }
        | Stmt::Exec { .. }
        | Stmt::SetImplicitTransactions(_)
        | Stmt::BeginTransaction
        | Stmt::CommitTransaction
        | Stmt::RollbackTransaction => false,
    }
}

/// Run a statement that only reads the model (see [`reads_only`]) under a shared lock. IF and
/// BEGIN ... END leave the statements to run next in `expand`; WAITFOR was slept in `run`.
fn exec_read(
    state: &State,
    inst: usize,
    spid: i16,
    stmt: &Stmt,
    vars: &mut HashMap<String, Value>,
    expand: &mut Vec<Located>,
) -> Result<Vec<Output>, Failure> {
    set_utc_offset(state, inst, vars);
    match stmt {
        Stmt::If {
            condition,
            then_branch,
            else_branch,
        } => condition_holds(state, inst, spid, condition, vars)
            .map(|holds| {
                *expand = if holds {
                    then_branch.clone()
                } else {
                    else_branch.clone()
                };
                Vec::new()
            })
            .map_err(|x| vec![x]),
        Stmt::Block(v) => {
            *expand = v.clone();
            Ok(Vec::new())
        }
        Stmt::Select { sql } => run_query(state, inst, spid, sql, vars)
            .map(|rs| vec![Output::ResultSet(rs)])
            .map_err(|x| vec![x]),
        Stmt::Declare { vars: decls } => declare(decls, vars).map(|()| Vec::new()),
        Stmt::SetVar { var, value } => set_var(var, value, vars).map(|()| Vec::new()),
        Stmt::Print(x) => print(x, vars, &state.instances[inst].name),
        Stmt::SetOption | Stmt::WaitFor { .. } => Ok(Vec::new()),
        write => unreachable!("run sends {write:?} to exec_stmt (reads_only)"),
    }
}

/// Give the statement's GETDATE() its instance's offset from UTC (see [`UTC_OFFSET_VAR`]).
fn set_utc_offset(state: &State, inst: usize, vars: &mut HashMap<String, Value>) {
    vars.insert(
        UTC_OFFSET_VAR.to_string(),
        Value::Int(state.instances[inst].utc_offset_minutes),
    );
}

/// What the client receives for a statement: its outputs, or its errors with the server,
/// procedure and line attached, and for a procedure that exists return status 1. Whether the
/// errors end the batch is SQL Server's rule in [`aborts_batch`].
fn step_result(server: &str, st: &Located, res: Result<Vec<Output>, Failure>) -> StepResult {
    let errs = match res {
        Ok(outputs) => {
            return StepResult {
                outputs,
                abort: false,
            };
        }
        Err(errs) => errs,
    };
    let (procedure, is_proc) = match &st.stmt {
        Stmt::Exec { procedure, .. } => (
            procedure.last().cloned().unwrap_or_default(),
            errs.first().is_some_and(|x| x.number != 2812),
        ),
        _ => (String::new(), false),
    };
    let mut outputs: Vec<Output> = errs
        .iter()
        .map(|x| Output::Message(x.to_message(server, &procedure, st.line)))
        .collect();
    if is_proc {
        outputs.push(Output::ReturnStatus(1));
    }
    StepResult {
        outputs,
        abort: errs.iter().any(aborts_batch),
    }
}

/// Remove and return the first FailNext rule that matches this statement on this instance.
fn take_fail_rule(state: &mut State, server: &str, text: &str) -> Option<SqlError> {
    let pos = state.fail_next.iter().position(|r| {
        r.instance
            .as_ref()
            .is_none_or(|i| i.eq_ignore_ascii_case(server))
            && if r.regex {
                regex::RegexBuilder::new(&r.pattern)
                    .case_insensitive(true)
                    .build()
                    .is_ok_and(|re| re.is_match(text))
            } else {
                text.to_ascii_lowercase()
                    .contains(&r.pattern.to_ascii_lowercase())
            }
    })?;
    let rule = state.fail_next.remove(pos);
    Some(e::user_error(rule.error))
}

fn eval(expr: &Expr, vars: &HashMap<String, Value>) -> Result<Value, SqlError> {
    match expr {
        Expr::Literal(v) => Ok(v.clone()),
        Expr::Var(v) => vars.get(v).cloned().ok_or_else(|| e::must_declare(v)),
        Expr::Now => Ok(Value::DateTime(now())),
        Expr::LocalNow => {
            let offset = match vars.get(UTC_OFFSET_VAR) {
                Some(Value::Int(minutes)) => *minutes,
                _ => 0,
            };
            Ok(Value::DateTime(super::model::local(now(), offset)))
        }
    }
}

/// The variable through which a statement's GETDATE() learns its instance's offset from UTC
/// (`@@` names cannot be declared in T-SQL, so no batch can shadow it).
const UTC_OFFSET_VAR: &str = "@@utc_offset_minutes";

fn eval_str(expr: &Expr, vars: &HashMap<String, Value>) -> Result<String, SqlError> {
    match eval(expr, vars)? {
        Value::NVarChar(s) => Ok(s),
        Value::Int(i) => Ok(i.to_string()),
        Value::BigInt(i) => Ok(i.to_string()),
        Value::Null => Err(SqlError::new(
            3285,
            "Backup or restore device name must not be NULL.",
        )),
        other => Err(e::conversion(&format!("{other:?}"), "nvarchar")),
    }
}

fn has_opt(opts: &[WithOption], name: &str) -> bool {
    opts.iter().any(|o| o.name == name)
}

/// The informational messages a statement prints, as the client receives them.
fn info_messages(infos: Vec<SqlError>, server: &str) -> Vec<Output> {
    infos
        .into_iter()
        .map(|x| Output::Message(x.to_message(server, "", 1)))
        .collect()
}

/// Run a statement that may change the model, under its exclusive lock (the reads run in
/// [`exec_read`]; IF and blocks are expanded by `run`, WAITFOR is slept there).
fn exec_stmt(
    state: &mut State,
    inst: usize,
    spid: i16,
    stmt: &Stmt,
    vars: &mut HashMap<String, Value>,
) -> Result<Vec<Output>, Failure> {
    set_utc_offset(state, inst, vars);
    if transaction::trancount(state, inst, spid) > 0
        && let Some(err) = refused_in_transaction(stmt)
    {
        return Err(vec![err]);
    }
    match stmt {
        Stmt::BeginTransaction => Ok(transaction::begin(state, inst, spid)),
        Stmt::CommitTransaction => transaction::commit(state, inst, spid).map_err(|x| vec![x]),
        Stmt::RollbackTransaction => transaction::rollback(state, inst, spid).map_err(|x| vec![x]),
        Stmt::SetImplicitTransactions(on) => {
            transaction::set_implicit(state, inst, spid, *on);
            Ok(Vec::new())
        }
        Stmt::Insert {
            table,
            columns,
            rows,
        } => insert(state, inst, spid, table, columns.as_deref(), rows, vars),
        Stmt::Backup {
            log,
            database,
            disk,
            options,
        } => {
            let args = backup_args(*log, database, disk, options, vars)?;
            let infos = backup::backup(state, inst, Some(spid), &args)?;
            Ok(info_messages(infos, &state.instances[inst].name))
        }
        Stmt::Restore {
            kind,
            database,
            disk,
            options,
        } => {
            let disk = disk
                .as_ref()
                .map(|d| eval_str(d, vars))
                .transpose()
                .map_err(|x| vec![x])?;
            let file = restore_file(options, vars)?;
            let disk_text = disk.as_deref().unwrap_or_default();
            if let Some(outputs) = inspect_media(state, inst, *kind, disk_text, file)? {
                return Ok(outputs);
            }
            let what = if *kind == RestoreKind::Log {
                RestoreWhat::Log
            } else {
                RestoreWhat::Database
            };
            let args = restore_args(what, database.as_ref(), disk, file, options, vars)?;
            let infos = backup::restore(state, inst, Some(spid), &args)?;
            Ok(info_messages(infos, &state.instances[inst].name))
        }
        Stmt::AlterDatabase { database, action } => {
            alter(state, inst, spid, database, action, vars)?;
            Ok(Vec::new())
        }
        Stmt::Kill { spid: target } => kill(state, inst, spid, *target),
        Stmt::AlterLogin { login, password } => {
            let password = eval_str(password, vars).map_err(|x| vec![x])?;
            alter_login(state, inst, login, password)
        }
        Stmt::Use { database } => use_database(state, inst, spid, database),
        Stmt::CreateDatabase { database } => create_database(state, inst, database),
        Stmt::DropDatabase { databases } => drop_databases(state, inst, databases),
        Stmt::Exec {
            procedure,
            args,
            return_var,
        } => exec_proc(
            state,
            inst,
            spid,
            procedure,
            args,
            return_var.as_deref(),
            vars,
        ),
        read => unreachable!("run sends {read:?} to exec_read (reads_only)"),
    }
}

/// DECLARE @a type [= value], ...
fn declare(
    decls: &[(String, Option<Expr>)],
    vars: &mut HashMap<String, Value>,
) -> Result<(), Failure> {
    for (name, init) in decls {
        let v = match init {
            Some(x) => eval(x, vars).map_err(|x| vec![x])?,
            None => Value::Null,
        };
        vars.insert(name.clone(), v);
    }
    Ok(())
}

/// SET @a = value, for a declared variable.
fn set_var(var: &str, value: &Expr, vars: &mut HashMap<String, Value>) -> Result<(), Failure> {
    if !vars.contains_key(var) {
        return Err(vec![e::must_declare(var)]);
    }
    let v = eval(value, vars).map_err(|x| vec![x])?;
    vars.insert(var.to_string(), v);
    Ok(())
}

/// PRINT: the value as an informational message.
fn print(x: &Expr, vars: &HashMap<String, Value>, server: &str) -> Result<Vec<Output>, Failure> {
    let text = match eval(x, vars).map_err(|x| vec![x])? {
        Value::NVarChar(s) => s,
        Value::Null => String::new(),
        other => format!("{other:?}"),
    };
    Ok(info_messages(vec![SqlError::info(0, text)], server))
}

/// A query in the session's current database, which SQLite answers over the catalog tables.
fn run_query(
    state: &State,
    inst: usize,
    spid: i16,
    sql: &str,
    vars: &HashMap<String, Value>,
) -> Result<ResultSet, SqlError> {
    let current = current_db(state, inst, spid);
    let ctx = QueryContext {
        state,
        inst: &state.instances[inst],
        database: &current,
        spid,
        vars,
    };
    query::run_select(&ctx, sql)
}

/// The value of `WITH name = value`, if the option is given with a value.
fn option_value<'a>(options: &'a [WithOption], name: &str) -> Option<&'a Expr> {
    options
        .iter()
        .find(|o| o.name == name)
        .and_then(|o| o.value.as_ref())
}

/// The arguments of BACKUP DATABASE/LOG ... TO DISK = ... WITH ...
fn backup_args(
    log: bool,
    database: &Expr,
    disk: &Expr,
    options: &[WithOption],
    vars: &HashMap<String, Value>,
) -> Result<BackupArgs, Failure> {
    Ok(BackupArgs {
        log,
        database: eval_str(database, vars).map_err(|x| vec![x])?,
        disk: eval_str(disk, vars).map_err(|x| vec![x])?,
        init: has_opt(options, "INIT") || has_opt(options, "FORMAT"),
        copy_only: has_opt(options, "COPY_ONLY"),
        norecovery: has_opt(options, "NORECOVERY"),
        checksum: has_opt(options, "CHECKSUM"),
        name: option_value(options, "NAME")
            .map(|v| eval_str(v, vars))
            .transpose()
            .map_err(|x| vec![x])?,
    })
}

/// `WITH FILE = n` of RESTORE: which backup set of the media (1 when not given).
fn restore_file(options: &[WithOption], vars: &HashMap<String, Value>) -> Result<usize, Failure> {
    let Some(v) = option_value(options, "FILE") else {
        return Ok(1);
    };
    match eval(v, vars).map_err(|x| vec![x])? {
        Value::Int(i) if i > 0 => Ok(i as usize),
        Value::BigInt(i) if i > 0 => Ok(i as usize),
        _ => Err(vec![e::syntax("FILE")]),
    }
}

/// RESTORE HEADERONLY, FILELISTONLY and VERIFYONLY, which read the media and change nothing;
/// None for RESTORE DATABASE/LOG.
fn inspect_media(
    state: &State,
    inst: usize,
    kind: RestoreKind,
    disk: &str,
    file: usize,
) -> Result<Option<Vec<Output>>, Failure> {
    Ok(Some(match kind {
        RestoreKind::HeaderOnly => vec![Output::ResultSet(backup::headeronly(state, inst, disk)?)],
        RestoreKind::FileListOnly => vec![Output::ResultSet(backup::filelistonly(
            state, inst, disk, file,
        )?)],
        RestoreKind::VerifyOnly => {
            backup::read_set(state, inst, disk, file, "VERIFY DATABASE")?;
            let valid = SqlError::info(3262, format!("The backup set on file {file} is valid."));
            info_messages(vec![valid], &state.instances[inst].name)
        }
        RestoreKind::Database | RestoreKind::Log => return Ok(None),
    }))
}

/// The arguments of RESTORE DATABASE/LOG ... FROM DISK = ... WITH ...
fn restore_args(
    what: RestoreWhat,
    database: Option<&Expr>,
    disk: Option<String>,
    file: usize,
    options: &[WithOption],
    vars: &HashMap<String, Value>,
) -> Result<RestoreArgs, Failure> {
    if has_opt(options, "STANDBY") {
        return Err(vec![SqlError::new(
            3032,
            "One or more of the options (standby) are not supported for this statement in the simulator. Use NORECOVERY.",
        )]);
    }
    let mut moves = Vec::new();
    for option in options.iter().filter(|o| o.name == "MOVE") {
        let (Some(logical), Some(physical)) = (&option.value, &option.to) else {
            continue;
        };
        moves.push((
            eval_str(logical, vars).map_err(|x| vec![x])?,
            eval_str(physical, vars).map_err(|x| vec![x])?,
        ));
    }
    Ok(RestoreArgs {
        what,
        database: eval_str(database.expect("parsed"), vars).map_err(|x| vec![x])?,
        disk,
        recovery: !has_opt(options, "NORECOVERY"),
        replace: has_opt(options, "REPLACE"),
        file,
        moves,
    })
}

/// KILL spid: end another session (error 6104 for the session's own id).
fn kill(state: &mut State, inst: usize, spid: i16, target: i64) -> Result<Vec<Output>, Failure> {
    if target == spid as i64 {
        return Err(vec![e::kill_own()]);
    }
    let killed = i16::try_from(target)
        .ok()
        .is_some_and(|t| state.instances[inst].kill(t));
    if !killed {
        return Err(vec![e::not_active_process(target)]);
    }
    Ok(Vec::new())
}

/// ALTER LOGIN ... WITH PASSWORD: new logins need the new password; sessions already logged
/// in keep running, as on SQL Server. The simulator has no server roles, so any login may
/// change any password (SQL Server asks for ALTER ANY LOGIN, or OLD_PASSWORD for one's own).
fn alter_login(
    state: &mut State,
    inst: usize,
    login: &str,
    password: String,
) -> Result<Vec<Output>, Failure> {
    let Some(def) = state.instances[inst]
        .logins
        .iter_mut()
        .find(|l| l.name.eq_ignore_ascii_case(login))
    else {
        return Err(vec![e::cannot_alter_login(login)]);
    };
    def.password = password;
    Ok(Vec::new())
}

/// USE database: the session's current database changes, and the client is told (ENVCHANGE
/// and message 5701).
fn use_database(
    state: &mut State,
    inst: usize,
    spid: i16,
    database: &str,
) -> Result<Vec<Output>, Failure> {
    let instance = &mut state.instances[inst];
    check_open(instance, database, Some(spid)).map_err(|x| vec![x])?;
    let new = instance
        .db(database)
        .map(|d| d.name.clone())
        .unwrap_or_default();
    let session = instance.sessions.get_mut(&spid).expect("checked by run");
    let old = std::mem::replace(&mut session.database, new.clone());
    let changed = SqlError::info(5701, format!("Changed database context to '{new}'."));
    let mut outputs = vec![Output::DatabaseChanged { old, new }];
    outputs.extend(info_messages(vec![changed], &instance.name));
    Ok(outputs)
}

fn create_database(state: &mut State, inst: usize, database: &str) -> Result<Vec<Output>, Failure> {
    if state.instances[inst].db(database).is_some() {
        return Err(vec![e::db_exists(database)]);
    }
    let guid = state.new_guid();
    let instance = &mut state.instances[inst];
    instance.next_db_id += 1;
    let id = instance.next_db_id;
    let mut created = Database::new(id, database, guid, now());
    created.files = instance.default_files(database);
    instance.databases.push(created);
    Ok(Vec::new())
}

/// DROP DATABASE a, b, ...: each in turn; the first that cannot be dropped ends the statement.
fn drop_databases(
    state: &mut State,
    inst: usize,
    databases: &[String],
) -> Result<Vec<Output>, Failure> {
    for name in databases {
        let instance = &state.instances[inst];
        let Some(d) = instance.db(name) else {
            return Err(vec![e::db_absent_drop(name)]);
        };
        if d.is_system() {
            return Err(vec![SqlError::new(
                3708,
                format!(
                    "Cannot drop the database '{}' because it is a system database.",
                    d.name
                ),
            )]);
        }
        if d.mirroring.is_some() {
            return Err(vec![e::drop_mirrored(&d.name)]);
        }
        if !instance.sessions_in(name, None).is_empty() {
            return Err(vec![e::drop_in_use(&d.name)]);
        }
        let id = d.id;
        state.instances[inst].databases.retain(|d| d.id != id);
    }
    Ok(Vec::new())
}

/// Evaluate an IF condition with SQLite (`CASE WHEN <condition> THEN 1 ELSE 0 END`).
fn condition_holds(
    state: &State,
    inst: usize,
    spid: i16,
    condition: &str,
    vars: &HashMap<String, Value>,
) -> Result<bool, SqlError> {
    let sql = format!("SELECT CASE WHEN {condition} THEN 1 ELSE 0 END");
    let rs = run_query(state, inst, spid, &sql, vars)?;
    Ok(rs.rows.first().and_then(|r| r.first()) == Some(&Value::Int(1)))
}

fn current_db(state: &State, inst: usize, spid: i16) -> String {
    state.instances[inst]
        .sessions
        .get(&spid)
        .map_or_else(|| "master".to_string(), |s| s.database.clone())
}

/// INSERT INTO [db.]dbo.Messages [(columns)] VALUES (...), ...: the rows commit as one
/// transaction (one log record), which a mirroring session then ships to the mirror.
fn insert(
    state: &mut State,
    inst: usize,
    spid: i16,
    table: &[String],
    columns: Option<&[String]>,
    rows: &[Vec<Expr>],
    vars: &HashMap<String, Value>,
) -> Result<Vec<Output>, Failure> {
    let db_name = insert_target(state, inst, spid, table)?;
    let column_indexes = insert_columns(columns)?;
    let full = format!("{db_name}.dbo.Messages");
    let new_rows = rows
        .iter()
        .map(|row| message_from_values(&column_indexes, row, &full, vars))
        .collect::<Result<Vec<Message>, Failure>>()?;
    let pending = transaction::pending_ids(state, inst, spid, &db_name).unwrap_or_default();
    let db = state.instances[inst].db(&db_name).expect("checked");
    for (k, m) in new_rows.iter().enumerate() {
        let dup = db.rows.iter().any(|r| r.id == m.id)
            || new_rows[..k].iter().any(|r| r.id == m.id)
            || pending.contains(&m.id);
        if dup {
            return Err(vec![e::duplicate_key(&full, m.id)]);
        }
    }
    let mut outputs = transaction::begin_implicitly(state, inst, spid);
    let n = new_rows.len();
    if transaction::trancount(state, inst, spid) > 0 {
        // Inside a user transaction the rows wait for its COMMIT (see `transaction`).
        transaction::hold(state, inst, spid, &db_name, new_rows);
        outputs.push(Output::RowCount(n as u64));
        return Ok(outputs);
    }
    // One statement is one transaction: one commit record.
    let db = state.instances[inst].db_mut(&db_name).expect("checked");
    let lsn = db.log_record();
    for mut m in new_rows {
        m.lsn = lsn;
        db.rows.push(m);
    }
    let name = db.name.clone();
    mirroring::on_commit(state, inst, &name);
    outputs.push(Output::RowCount(n as u64));
    Ok(outputs)
}

/// The error SQL Server raises for a statement it does not allow inside a user transaction.
fn refused_in_transaction(stmt: &Stmt) -> Option<SqlError> {
    match stmt {
        Stmt::Backup { .. }
        | Stmt::Restore {
            kind: RestoreKind::Database | RestoreKind::Log,
            ..
        } => Some(transaction::backup_in_transaction()),
        Stmt::AlterDatabase { .. } => Some(transaction::not_in_transaction("ALTER DATABASE")),
        Stmt::CreateDatabase { .. } => Some(transaction::not_in_transaction("CREATE DATABASE")),
        Stmt::DropDatabase { .. } => Some(transaction::not_in_transaction("DROP DATABASE")),
        _ => None,
    }
}

/// The database whose `dbo.Messages` an INSERT names (`Messages`, `dbo.Messages` in the
/// session's database, `db.dbo.Messages`), which must be a user database that can be opened.
fn insert_target(
    state: &State,
    inst: usize,
    spid: i16,
    table: &[String],
) -> Result<String, Failure> {
    let written = table.join(".");
    let lower: Vec<String> = table.iter().map(|p| p.to_ascii_lowercase()).collect();
    let db_name = match lower.as_slice() {
        [t] if t == "messages" => current_db(state, inst, spid),
        [s, t] if s == "dbo" && t == "messages" => current_db(state, inst, spid),
        [_, s, t] if (s == "dbo" || s.is_empty()) && t == "messages" => table[0].clone(),
        _ => return Err(vec![e::invalid_object(&written)]),
    };
    match state.instances[inst].db(&db_name) {
        None => Err(vec![e::invalid_object(&written)]),
        Some(d) if d.is_system() => Err(vec![e::invalid_object(&written)]),
        Some(d) => match e::cannot_open(d) {
            Some(err) => Err(vec![err]),
            None if d.read_only => Err(vec![e::read_only(&d.name)]),
            None => Ok(db_name),
        },
    }
}

/// The indexes (into `dbo.Messages`' columns) of an INSERT's column list; all four in order
/// when it has none.
fn insert_columns(columns: Option<&[String]>) -> Result<Vec<usize>, Failure> {
    match columns {
        None => Ok((0..MESSAGES_COLUMNS.len()).collect()),
        Some(names) => names
            .iter()
            .map(|c| {
                MESSAGES_COLUMNS
                    .iter()
                    .position(|(m, _)| m.eq_ignore_ascii_case(c))
                    .ok_or_else(|| vec![e::invalid_column(c)])
            })
            .collect(),
    }
}

/// One row of VALUES as a message: as many values as columns (errors 109 and 110), each
/// converted to its column's type, and a MessageId (it is NOT NULL).
fn message_from_values(
    column_indexes: &[usize],
    values: &[Expr],
    full: &str,
    vars: &HashMap<String, Value>,
) -> Result<Message, Failure> {
    if values.len() > column_indexes.len() {
        return Err(vec![SqlError::new(
            110,
            "There are fewer columns in the INSERT statement than values specified in the VALUES clause. The number of values in the VALUES clause must match the number of columns specified in the INSERT statement.",
        )
        .with_class(15)]);
    }
    if values.len() < column_indexes.len() {
        return Err(vec![SqlError::new(
            109,
            "There are more columns in the INSERT statement than values specified in the VALUES clause. The number of values in the VALUES clause must match the number of columns specified in the INSERT statement.",
        )
        .with_class(15)]);
    }
    let mut m = Message {
        id: 0,
        chat_server: None,
        body: None,
        posted_at: None,
        lsn: 0,
    };
    let mut has_id = false;
    for (column, x) in column_indexes.iter().zip(values) {
        let v = eval(x, vars).map_err(|x| vec![x])?;
        match column {
            0 => {
                m.id = message_id(v, full)?;
                has_id = true;
            }
            1 => m.chat_server = nvarchar_value(v),
            2 => m.body = nvarchar_value(v),
            _ => m.posted_at = datetime2_value(v)?,
        }
    }
    if !has_id {
        return Err(vec![e::cannot_insert_null("MessageId", full)]);
    }
    Ok(m)
}

/// A value for the bigint MessageId column.
fn message_id(v: Value, full: &str) -> Result<i64, Failure> {
    match v {
        Value::Int(i) => Ok(i as i64),
        Value::BigInt(i) => Ok(i),
        Value::Numeric(n) => Ok(n as i64),
        Value::NVarChar(s) => s
            .trim()
            .parse()
            .map_err(|_| vec![e::conversion(&s, "bigint")]),
        Value::Null => Err(vec![e::cannot_insert_null("MessageId", full)]),
        other => Err(vec![e::conversion(&format!("{other:?}"), "bigint")]),
    }
}

/// A value for an nvarchar column: numbers convert to their text.
fn nvarchar_value(v: Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::NVarChar(s) => Some(s),
        Value::Int(i) => Some(i.to_string()),
        Value::BigInt(i) => Some(i.to_string()),
        other => Some(format!("{other:?}")),
    }
}

/// A value for the datetime2 PostedAt column: text must be a date and time (error 241).
fn datetime2_value(v: Value) -> Result<Option<chrono::NaiveDateTime>, Failure> {
    match v {
        Value::Null => Ok(None),
        Value::DateTime(d) => Ok(Some(d)),
        Value::NVarChar(s) => query::parse_datetime(&s).map(Some).ok_or_else(|| {
            vec![SqlError::new(
                241,
                "Conversion failed when converting date and/or time from character string.",
            )]
        }),
        other => Err(vec![e::conversion(&format!("{other:?}"), "datetime2")]),
    }
}

/// Sessions other than `except` that use database `name` end when the ALTER DATABASE has WITH
/// ROLLBACK IMMEDIATE; without it, the ALTER cannot get its lock (5061, then 5069).
fn end_other_sessions(
    state: &mut State,
    inst: usize,
    name: &str,
    except: Option<i16>,
    rollback_immediate: bool,
) -> Result<(), Failure> {
    let others = state.instances[inst].sessions_in(name, except);
    if others.is_empty() {
        return Ok(());
    }
    if !rollback_immediate {
        return Err(vec![e::lock_not_placed(name), e::alter_failed()]);
    }
    for spid in others {
        state.instances[inst].kill(spid);
    }
    Ok(())
}

/// ALTER DATABASE: the mirroring options go to `mirroring`; user access, OFFLINE/ONLINE and the
/// recovery model are changed here.
fn alter(
    state: &mut State,
    inst: usize,
    spid: i16,
    database: &str,
    action: &AlterAction,
    vars: &HashMap<String, Value>,
) -> Result<(), Failure> {
    let Some(d) = state.instances[inst].db(database) else {
        return Err(vec![e::db_absent_alter(database), e::alter_failed()]);
    };
    let name = d.name.clone();
    let mirrored = d.mirroring.is_some();
    let db_state = d.state;
    match action {
        AlterAction::Partner(PartnerAction::Address(x)) => {
            let endpoint = eval_str(x, vars).map_err(|x| vec![x])?;
            mirroring::set_partner(state, inst, &name, &endpoint)
        }
        AlterAction::Partner(other) => mirroring::partner_option(state, inst, &name, other),
        AlterAction::Witness(w) => {
            let w = w
                .as_ref()
                .map(|x| eval_str(x, vars))
                .transpose()
                .map_err(|x| vec![x])?;
            mirroring::set_witness(state, inst, &name, w)
        }
        AlterAction::UserAccess {
            access,
            rollback_immediate,
        } => {
            if db_state == DbState::Restoring {
                return Err(vec![e::in_restore(&name), e::alter_failed()]);
            }
            let new = match access {
                UserAccess::Multi => Access::Multi,
                UserAccess::Single => Access::Single,
                UserAccess::Restricted => Access::Restricted,
            };
            if new != Access::Multi {
                end_other_sessions(state, inst, &name, Some(spid), *rollback_immediate)?;
            }
            state.instances[inst].db_mut(&name).expect("exists").access = new;
            Ok(())
        }
        AlterAction::ReadOnly {
            read_only,
            rollback_immediate,
        } => {
            // A mirroring partner cannot be made read-only (5004-type refusals; inferred) and a
            // RESTORING copy cannot be altered at all.
            if mirrored {
                return Err(vec![e::involved_in_mirroring(&name), e::alter_failed()]);
            }
            if db_state == DbState::Restoring {
                return Err(vec![e::in_restore(&name), e::alter_failed()]);
            }
            // Changing the updateability needs the database to itself.
            end_other_sessions(state, inst, &name, Some(spid), *rollback_immediate)?;
            let db = state.instances[inst].db_mut(&name).expect("exists");
            // The change is logged (and checkpointed) in the database itself before it stops
            // taking writes: its end of log moves though no user wrote anything, which is why
            // the operator cannot read "writes of its own" from a fenced copy's LSNs alone.
            if db.read_only != *read_only {
                db.log_record();
            }
            db.read_only = *read_only;
            Ok(())
        }
        AlterAction::Offline { rollback_immediate } => {
            if mirrored {
                return Err(vec![e::involved_in_mirroring(&name), e::alter_failed()]);
            }
            end_other_sessions(state, inst, &name, None, *rollback_immediate)?;
            if db_state == DbState::Restoring {
                return Err(vec![e::in_restore(&name), e::alter_failed()]);
            }
            state.instances[inst].db_mut(&name).expect("exists").state = DbState::Offline;
            Ok(())
        }
        AlterAction::Online => {
            match db_state {
                DbState::Offline | DbState::RecoveryPending => {
                    state.instances[inst].db_mut(&name).expect("exists").state = DbState::Online;
                }
                DbState::Online => {}
                DbState::Restoring => return Err(vec![e::in_restore(&name), e::alter_failed()]),
            }
            Ok(())
        }
        AlterAction::Recovery(model) => {
            if mirrored && model != "FULL" {
                return Err(vec![e::involved_in_mirroring(&name), e::alter_failed()]);
            }
            let d = state.instances[inst].db_mut(&name).expect("exists");
            if d.recovery != *model {
                // SIMPLE truncates the log, and a database leaving SIMPLE has no log chain yet:
                // either way the chain ends and a new full backup is needed.
                if model == "SIMPLE" || d.recovery == "SIMPLE" {
                    d.log_chain = None;
                }
                d.recovery = model.clone();
            }
            Ok(())
        }
    }
}

fn value_type(v: &Value) -> ColumnType {
    match v {
        Value::Bit(_) => ColumnType::Bit,
        Value::Int(_) => ColumnType::Int,
        Value::BigInt(_) => ColumnType::BigInt,
        Value::Float(_) => ColumnType::Float,
        Value::Numeric(_) => ColumnType::Numeric {
            precision: 25,
            scale: 0,
        },
        Value::DateTime(_) => ColumnType::DateTime2,
        Value::VarBinary(_) => ColumnType::VarBinary(None),
        Value::UniqueIdentifier(_) => ColumnType::UniqueIdentifier,
        Value::NVarChar(_) | Value::Null => ColumnType::NVarChar(Some(4000)),
    }
}

fn nvarchar_column(name: &str) -> Column {
    Column {
        name: name.into(),
        ty: ColumnType::NVarChar(Some(128)),
        nullable: true,
    }
}

/// The evaluated arguments of an EXEC: by lower-cased `@name`, and by position.
struct ProcArgs {
    named: HashMap<String, Value>,
    positional: Vec<Value>,
}

/// Evaluate an EXEC's arguments. An OUTPUT argument passes its variable's current value.
fn evaluate_args(args: &[ExecArg], vars: &HashMap<String, Value>) -> Result<ProcArgs, Failure> {
    let mut named: HashMap<String, Value> = HashMap::new();
    let mut positional: Vec<Value> = Vec::new();
    for a in args {
        let v = match &a.value {
            Expr::Var(v) if a.output => vars
                .get(v)
                .cloned()
                .ok_or_else(|| vec![e::must_declare(v)])?,
            other => eval(other, vars).map_err(|x| vec![x])?,
        };
        match &a.name {
            Some(n) => {
                named.insert(n.clone(), v);
            }
            None => positional.push(v),
        }
    }
    Ok(ProcArgs { named, positional })
}

/// The arguments of a procedure with documented parameters `known`, by name: a name it does not
/// have is error 8145, and positional arguments take the documented order.
fn bind_documented_params(
    proc_name: &str,
    known: &[&str],
    args: ProcArgs,
) -> Result<HashMap<String, Value>, Failure> {
    let ProcArgs {
        mut named,
        positional,
    } = args;
    if let Some(unknown) = named.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(vec![SqlError::new(
            8145,
            format!("{unknown} is not a parameter for procedure {proc_name}."),
        )]);
    }
    for (i, v) in positional.into_iter().enumerate() {
        if let Some(k) = known.get(i) {
            named.entry(k.to_string()).or_insert(v);
        }
    }
    Ok(named)
}

/// Run `EXEC procedure args`: the log-shipping and agent procedures, sp_start_job and
/// sp_update_job, sp_who2 and xp_dirtree. A procedure that succeeds returns status 0 and sets
/// its OUTPUT parameters; one that fails raises its errors, and `run` adds return status 1.
fn exec_proc(
    state: &mut State,
    inst: usize,
    spid: i16,
    procedure: &[String],
    args: &[ExecArg],
    return_var: Option<&str>,
    vars: &mut HashMap<String, Value>,
) -> Result<Vec<Output>, Failure> {
    let written = procedure.join(".");
    let proc_name = procedure
        .last()
        .map(|p| p.to_ascii_lowercase())
        .unwrap_or_default();
    let db_part = if procedure.len() >= 3 {
        procedure[0].to_ascii_lowercase()
    } else {
        current_db(state, inst, spid).to_ascii_lowercase()
    };
    let evaluated = evaluate_args(args, vars)?;
    let is_job_proc = matches!(proc_name.as_str(), "sp_start_job" | "sp_update_job")
        || agent::known_params(&proc_name).is_some();
    if is_job_proc && db_part != "msdb" {
        // The agent procedures live in msdb: `EXEC sp_start_job` from master is 2812.
        return Err(vec![e::no_such_procedure(&written)]);
    }
    let (mut outputs, out_values) = match proc_name.as_str() {
        p if logship::known_params(p).is_some() => {
            let known = logship::known_params(p).expect("checked");
            let named = bind_documented_params(p, known, evaluated)?;
            let args = logship::Args {
                proc_name: p,
                named,
            };
            (Vec::new(), logship::run(state, inst, p, &args)?)
        }
        p if agent::known_params(p).is_some() => {
            let known = agent::known_params(p).expect("checked");
            let named = bind_documented_params(p, known, evaluated)?;
            (Vec::new(), agent::run(state, inst, p, &named)?)
        }
        "sp_start_job" | "sp_update_job" => (
            start_or_update_job(state, inst, &proc_name, &evaluated)?,
            Vec::new(),
        ),
        "sp_who2" => (
            vec![Output::ResultSet(sp_who2(&state.instances[inst], spid))],
            Vec::new(),
        ),
        "xp_dirtree" => (
            vec![Output::ResultSet(xp_dirtree(state, inst, &evaluated)?)],
            Vec::new(),
        ),
        "xp_fileexist" => (
            vec![Output::ResultSet(xp_fileexist(state, inst, &evaluated)?)],
            Vec::new(),
        ),
        _ => return Err(vec![e::no_such_procedure(&written)]),
    };
    const SUCCESS: i32 = 0;
    outputs.push(Output::ReturnStatus(SUCCESS));
    if let Some(rv) = return_var {
        vars.insert(rv.to_string(), Value::Int(SUCCESS));
    }
    set_output_params(args, &out_values, vars, &mut outputs);
    Ok(outputs)
}

/// Give the OUTPUT arguments of a call the values the procedure set. A batch's EXEC assigns
/// variables; an RPC call also gets a RETURNVALUE token for each.
fn set_output_params(
    args: &[ExecArg],
    out_values: &[(String, Value)],
    vars: &mut HashMap<String, Value>,
    outputs: &mut Vec<Output>,
) {
    for a in args.iter().filter(|a| a.output) {
        let (Some(n), Expr::Var(var)) = (&a.name, &a.value) else {
            continue;
        };
        if let Some((_, v)) = out_values.iter().find(|(k, _)| k == n) {
            vars.insert(var.clone(), v.clone());
            // RETURNVALUE tokens belong to RPC calls only; a batch EXEC assigns variables.
            if !var.starts_with("@__rpc") {
                continue;
            }
            let v = match v {
                Value::NVarChar(s) if s.len() == 36 && s.matches('-').count() == 4 => {
                    backup::guid_bytes(s)
                }
                other => other.clone(),
            };
            outputs.push(Output::ReturnValue {
                name: n.clone(),
                ty: value_type(&v),
                value: v,
            });
        }
    }
}

/// `msdb.dbo.sp_start_job` (the scheduler runs the job soon) and `msdb.dbo.sp_update_job`
/// (only `@enabled` is modelled), the job named by `@job_name` or `@job_id`.
fn start_or_update_job(
    state: &mut State,
    inst: usize,
    proc_name: &str,
    args: &ProcArgs,
) -> Result<Vec<Output>, Failure> {
    let job_name = args.named.get("@job_name").or(args.positional.first());
    let job_id = args.named.get("@job_id");
    let instance = &mut state.instances[inst];
    let found = instance.msdb.jobs.iter().position(|j| {
        let name = match job_name {
            Some(Value::NVarChar(n)) => Some(n.as_str()),
            _ => None,
        };
        agent::job_matches(j, name, job_id)
    });
    let Some(pos) = found else {
        let shown = match (job_name, job_id) {
            (Some(Value::NVarChar(n)), _) => n.clone(),
            (_, Some(v)) => format!("{v:?}"),
            _ => String::new(),
        };
        return Err(vec![e::no_such_job(&shown)]);
    };
    let job = &mut instance.msdb.jobs[pos];
    if proc_name == "sp_start_job" {
        job.run_requested = true;
        let started = SqlError::info(22022, format!("Job '{}' started successfully.", job.name));
        return Ok(info_messages(vec![started], &instance.name));
    }
    if let Some(v) = args.named.get("@enabled") {
        job.enabled = match v {
            Value::Int(i) => *i != 0,
            Value::BigInt(i) => *i != 0,
            Value::Bit(b) => *b,
            Value::NVarChar(s) => s.trim() != "0",
            _ => job.enabled,
        };
    }
    Ok(Vec::new())
}

/// `sp_who2`: one row per session, all columns text as SQL Server returns them.
fn sp_who2(instance: &Instance, spid: i16) -> ResultSet {
    let columns = [
        "SPID",
        "Status",
        "Login",
        "HostName",
        "BlkBy",
        "DBName",
        "Command",
        "CPUTime",
        "DiskIO",
        "LastBatch",
        "ProgramName",
        "SPID",
        "REQUESTID",
    ];
    let text = |s: &str| Value::NVarChar(s.to_string());
    let rows = instance
        .sessions
        .values()
        .map(|s| {
            let busy = s.spid == spid;
            vec![
                Value::NVarChar(format!("{:<5}", s.spid)),
                text(if busy { "RUNNABLE" } else { "sleeping" }),
                text(&s.login),
                text(&s.host_name),
                text("  ."),
                text(&s.database),
                text(if busy {
                    "SELECT INTO"
                } else {
                    "AWAITING COMMAND"
                }),
                text("0"),
                text("0"),
                Value::NVarChar(s.last_request.format("%m/%d %H:%M:%S").to_string()),
                text(&s.program_name),
                Value::NVarChar(format!("{:<5}", s.spid)),
                text("0    "),
            ]
        })
        .collect();
    ResultSet {
        columns: columns.iter().map(|c| nvarchar_column(c)).collect(),
        rows,
    }
}

/// `xp_fileexist @path`: one row saying whether the path is a file, a folder, and whether its
/// parent folder exists, as the instance reaches it. A share whose host is down, or a folder
/// the service account cannot read, is neither: all three are 0.
fn xp_fileexist(state: &State, inst: usize, args: &ProcArgs) -> Result<ResultSet, Failure> {
    let path = match args.named.get("@path").or(args.positional.first()) {
        Some(Value::NVarChar(p)) => p.clone(),
        _ => return Err(vec![e::missing_param("xp_fileexist", "@path")]),
    };
    let (is_file, is_dir, parent) = match paths::resolve(state, &state.instances[inst].name, &path)
    {
        Ok(r) => (
            r.local.is_file(),
            r.is_listable_folder(),
            r.local.parent().is_some_and(|p| p.is_dir()) || r.share_host.is_none(),
        ),
        Err(_) => (false, false, false),
    };
    let int_column = |name: &str| Column {
        name: name.into(),
        ty: ColumnType::Int,
        nullable: false,
    };
    Ok(ResultSet {
        columns: vec![
            int_column("File Exists"),
            int_column("File is a Directory"),
            int_column("Parent Directory Exists"),
        ],
        rows: vec![vec![
            Value::Int(is_file as i32),
            Value::Int(is_dir as i32),
            Value::Int(parent as i32),
        ]],
    })
}

/// `xp_dirtree @path, @depth, @file`: the entries directly in a folder as the instance reaches
/// it (depth 1), with files only when `@file` is 1. A path it cannot read gives an empty set, as
/// SQL Server's does.
fn xp_dirtree(state: &State, inst: usize, args: &ProcArgs) -> Result<ResultSet, Failure> {
    let path = match args.named.get("@path").or(args.positional.first()) {
        Some(Value::NVarChar(p)) => p.clone(),
        _ => return Err(vec![e::missing_param("xp_dirtree", "@path")]),
    };
    let with_files = matches!(
        args.positional.get(2).or(args.named.get("@file")),
        Some(Value::Int(1)) | Some(Value::BigInt(1)) | Some(Value::Bit(true))
    );
    let rows = match paths::resolve(state, &state.instances[inst].name, &path) {
        Ok(r) if r.local.is_dir() => {
            let mut entries: Vec<(String, bool)> = std::fs::read_dir(&r.local)
                .map(|rd| {
                    rd.filter_map(|x| x.ok())
                        .filter_map(|x| {
                            let is_file = x.file_type().ok()?.is_file();
                            Some((x.file_name().into_string().ok()?, is_file))
                        })
                        .collect()
                })
                .unwrap_or_default();
            entries.sort();
            entries
                .into_iter()
                .filter(|(_, is_file)| with_files || !is_file)
                .map(|(name, is_file)| {
                    let mut row = vec![Value::NVarChar(name), Value::Int(1)];
                    if with_files {
                        row.push(Value::Int(is_file as i32));
                    }
                    row
                })
                .collect()
        }
        _ => Vec::new(),
    };
    let int_column = |name: &str| Column {
        name: name.into(),
        ty: ColumnType::Int,
        nullable: true,
    };
    let mut columns = vec![nvarchar_column("subdirectory"), int_column("depth")];
    if with_files {
        columns.push(int_column("file"));
    }
    Ok(ResultSet { columns, rows })
}
