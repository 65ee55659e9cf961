//! Running one planner step: its statements ([`super::statements::statements`]) in order,
//! each on its instance, with the "already done" and "not now" answers each statement lists.

use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use super::SqlError;
use super::connect::{ConnectSettings, Connections, SqlClient, Target};
use super::observe::{Answer, Cell};
use super::statements::{IN_USE, RETURN_CODE, Statement, StatementContext, statements};
use super::target::target;
use pchat_core::api::PersistentChatPoolSpec;
use pchat_core::plan::Step;

/// How persistent a step is with statements that answer "not now".
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Attempts of a statement whose error is in its `retry_if` before the error is returned
    /// (it is retryable: the next pass re-plans and tries again).
    pub attempts: u32,
    /// Wait before the second attempt; doubled before each next one.
    pub backoff: Duration,
    /// For Recover and DemoteOldPrimary: rounds of "KILL the sessions on the database, try
    /// again" answering 3101 before it is returned.
    pub kill_rounds: u32,
    /// Stops the step between statements (and during a backoff): the statements already run
    /// stay run, which is safe because every statement repeats harmlessly.
    pub cancel: CancellationToken,
    /// Where the progress of a BACKUP or RESTORE is reported while it runs; none by default.
    pub progress: Option<ProgressReports>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            attempts: 4,
            backoff: Duration::from_millis(250),
            kill_rounds: 3,
            cancel: CancellationToken::new(),
            progress: None,
        }
    }
}

/// A BACKUP or RESTORE of a step, as SQL Server reports it while it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatementProgress {
    pub instance: String,
    /// `sys.dm_exec_requests.command`, e.g. `RESTORE DATABASE`.
    pub command: String,
    /// `sys.dm_exec_requests.percent_complete`, 0 to 100.
    pub percent_complete: u8,
}

/// How often the progress of a long statement is read, and where it goes: the latest
/// reading while one runs, `None` once it has ended.
#[derive(Clone, Debug)]
pub struct ProgressReports {
    pub every: Duration,
    pub sender: tokio::sync::watch::Sender<Option<StatementProgress>>,
}

/// This process's BACKUP and RESTORE requests on the instance (the same program and
/// workstation name as the asking connection: the statement's own connection is the other one).
const OWN_PROGRESS: &str = "\
SELECT r.command, CAST(r.percent_complete AS int) AS percent_complete
  FROM sys.dm_exec_requests r
  JOIN sys.dm_exec_sessions s ON s.session_id = r.session_id
 WHERE (r.command LIKE N'BACKUP%' OR r.command LIKE N'RESTORE%')
   AND r.session_id <> @@SPID
   AND ISNULL(s.program_name, N'') = APP_NAME() AND ISNULL(s.host_name, N'') = HOST_NAME()";

/// Whether this process may still change anything, asked before every statement a step sends
/// (each attempt, and each KILL): in Kubernetes a replica paused (SIGSTOP, a stalled node) in
/// the middle of a step, past its Lease, resumes with the rest of the step to send while
/// another replica already acts; asking before the step alone would let those through.
pub trait WriteGate: Send + Sync {
    fn may_write(&self) -> BoxFuture<'_, bool>;
}

/// The gate of a mode with no other writer (local mode, the demo, tests).
pub struct AlwaysWrite;

impl WriteGate for AlwaysWrite {
    fn may_write(&self) -> BoxFuture<'_, bool> {
        Box::pin(async { true })
    }
}

/// What running a step took.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepReport {
    /// Every request sent, the step's statements (each attempt) and the session look-ups and
    /// KILLs sent to answer 3101.
    pub statements_sent: u64,
    /// The step's own statements sent, each attempt counted.
    pub writes: u64,
    pub elapsed: Duration,
    /// Statements that answered with one of their `done_if` errors (already in effect).
    pub already_done: u64,
    /// The step stopped early because `cancel` fired.
    pub cancelled: bool,
}

/// Whether the step answers 3101 (sessions in the database) by ending them: the chat servers
/// were drained first, so the sessions left are ended with KILL and the statement retried, for
/// the steps that need the database to themselves.
fn kills_on_in_use(step: &Step) -> bool {
    matches!(step, Step::Recover { .. } | Step::DemoteOldPrimary { .. })
}

/// Run `step`'s statements in order. An error whose number is in the statement's `done_if`
/// counts as done; one in `retry_if` is retried with a backoff, then returned; any other stops
/// the step and is returned. Publishing steps send nothing. `gate` is asked before every
/// request that may write; when it says no the step stops with [`SqlError::Withdrawn`].
pub async fn run_step(
    conns: &mut Connections,
    settings: &ConnectSettings,
    spec: &PersistentChatPoolSpec,
    step: &Step,
    ctx: &StatementContext,
    opts: &RunOptions,
    gate: &dyn WriteGate,
) -> Result<StepReport, SqlError> {
    let started = Instant::now();
    let mut report = StepReport::default();
    let result = run_all(conns, settings, spec, step, ctx, opts, gate, &mut report).await;
    report.elapsed = started.elapsed();
    result.map(|()| report)
}

#[allow(clippy::too_many_arguments)] // run_step's arguments, passed on whole
async fn run_all(
    conns: &mut Connections,
    settings: &ConnectSettings,
    spec: &PersistentChatPoolSpec,
    step: &Step,
    ctx: &StatementContext,
    opts: &RunOptions,
    gate: &dyn WriteGate,
    report: &mut StepReport,
) -> Result<(), SqlError> {
    let list = statements(step, ctx);
    let total = list.len();
    for (i, st) in list.iter().enumerate() {
        if opts.cancel.is_cancelled() {
            report.cancelled = true;
            return Ok(());
        }
        tracing::info!(
            step = step.name(),
            instance = %st.instance,
            statement = i + 1,
            of = total,
            purpose = %st.purpose,
            "running statement"
        );
        let mut attempt = 0;
        let mut kill_round = 0;
        loop {
            withhold_unless_allowed(gate, &st.instance, &st.purpose).await?;
            attempt += 1;
            report.statements_sent += 1;
            report.writes += 1;
            let err = match send(conns, settings, spec, st, opts.progress.as_ref()).await {
                Ok(()) => break,
                Err(e) => e,
            };
            let number = err.number();
            if number.is_some_and(|n| st.done_if.contains(&n)) {
                tracing::info!(step = step.name(), instance = %st.instance, error = number, "already in effect");
                report.already_done += 1;
                break;
            }
            if number == Some(IN_USE)
                && kills_on_in_use(step)
                && kill_round < opts.kill_rounds
                && let Some(database) = step.databases().first().copied()
            {
                kill_round += 1;
                withhold_unless_allowed(gate, &st.instance, "KILL").await?;
                end_sessions(conns, settings, spec, &st.instance, database, report).await?;
                continue;
            }
            // A lost connection is worth one more try on a fresh one (every statement repeats
            // safely); a statement that outlived the command timeout is not resent at once:
            // it may still be running on the server.
            let retryable =
                number.is_some_and(|n| st.retry_if.contains(&n)) || err.may_resend_at_once();
            if retryable && attempt < opts.attempts {
                let wait = opts.backoff * 2u32.saturating_pow(attempt - 1);
                tracing::info!(step = step.name(), instance = %st.instance, error = %err, wait_ms = wait.as_millis() as u64, "not now; retrying");
                tokio::select! {
                    () = tokio::time::sleep(wait) => continue,
                    () = opts.cancel.cancelled() => {
                        report.cancelled = true;
                        return Ok(());
                    }
                }
            }
            return Err(err);
        }
    }
    Ok(())
}

/// `Err(Withdrawn)` naming what would have been sent, when the gate says this process may no
/// longer write.
async fn withhold_unless_allowed(
    gate: &dyn WriteGate,
    instance: &str,
    statement: &str,
) -> Result<(), SqlError> {
    if gate.may_write().await {
        return Ok(());
    }
    tracing::warn!(%instance, %statement, "not sent: this process may no longer write");
    Err(SqlError::Withdrawn {
        instance: instance.to_string(),
        statement: statement.to_string(),
    })
}

/// Send one statement on its instance's kept connection (opened when there is none). A
/// connection that fails is discarded, so the next attempt opens a fresh one.
async fn send(
    conns: &mut Connections,
    settings: &ConnectSettings,
    spec: &PersistentChatPoolSpec,
    st: &Statement,
    progress: Option<&ProgressReports>,
) -> Result<(), SqlError> {
    let reach = Reach {
        instance: &st.instance,
        what: &st.purpose,
        unbounded: st.runs_long(),
    };
    let answer = match progress.filter(|_| st.runs_long()) {
        Some(reports) => {
            watched_request(conns, settings, spec, &reach, st.query(), reports).await?
        }
        None => request(conns, settings, spec, &reach, st.query()).await?,
    };
    match answer.error {
        None => return_code(st, &answer),
        Some(e) => Err(SqlError::Server {
            instance: st.instance.clone(),
            statement: st.purpose.clone(),
            number: e.number,
            state: e.state,
            class: e.class,
            message: e.message,
        }),
    }
}

/// For a statement that reports a procedure's return code: `Ok` when it is 0, the error
/// naming the procedure otherwise (and when the answer does not carry it).
fn return_code(st: &Statement, answer: &Answer) -> Result<(), SqlError> {
    let Some(procedure) = &st.return_code_of else {
        return Ok(());
    };
    let code = answer
        .tables
        .iter()
        .rev()
        .find(|t| t.key().eq_ignore_ascii_case(RETURN_CODE))
        .and_then(|t| t.records().next())
        .and_then(|r| r.get(RETURN_CODE).int());
    match code {
        Some(0) => Ok(()),
        Some(code) => Err(SqlError::ReturnCode {
            instance: st.instance.clone(),
            statement: st.purpose.clone(),
            procedure: procedure.clone(),
            code,
        }),
        None => Err(SqlError::Unexpected {
            instance: st.instance.clone(),
            statement: st.purpose.clone(),
            reason: format!("no return code of {procedure} in the answer"),
        }),
    }
}

/// Where a request goes: the instance, what it is for (in messages), and whether it goes on
/// the connection without a command timeout (BACKUP and RESTORE).
struct Reach<'a> {
    instance: &'a str,
    what: &'a str,
    unbounded: bool,
}

impl Reach<'_> {
    /// The instance's connection target in the spec.
    fn target(&self, spec: &PersistentChatPoolSpec) -> Result<Target, SqlError> {
        target(spec, self.instance).ok_or_else(|| SqlError::Unexpected {
            instance: self.instance.to_string(),
            statement: self.what.to_string(),
            reason: format!("the spec names no instance {}", self.instance),
        })
    }
}

/// One request and its whole answer; connection failures discard the connection.
async fn request(
    conns: &mut Connections,
    settings: &ConnectSettings,
    spec: &PersistentChatPoolSpec,
    reach: &Reach<'_>,
    query: tiberius::Query<'_>,
) -> Result<Answer, SqlError> {
    let Reach {
        instance,
        what,
        unbounded,
    } = *reach;
    let t = reach.target(spec)?;
    let client = if unbounded {
        conns.get_unbounded(&t, settings).await?
    } else {
        conns.get(&t, settings).await?
    };
    match super::observe::run_query(client, query).await {
        Ok(answer) => Ok(answer),
        Err(e) => {
            conns.discard(instance);
            Err(SqlError::from_tiberius(instance, what, e))
        }
    }
}

/// [`request`] on the connection without a command timeout, reading the statement's
/// progress on the instance's other connection every `reports.every` while it runs. The
/// progress is only reported: a reading that fails stops the readings, never the statement.
async fn watched_request(
    conns: &mut Connections,
    settings: &ConnectSettings,
    spec: &PersistentChatPoolSpec,
    reach: &Reach<'_>,
    query: tiberius::Query<'_>,
    reports: &ProgressReports,
) -> Result<Answer, SqlError> {
    let instance = reach.instance;
    let t = reach.target(spec)?;
    conns.get_unbounded(&t, settings).await?;
    let mut long = conns.take_unbounded(instance).expect("opened above");
    let mut reader = match conns.get(&t, settings).await {
        Ok(_) => conns.take(instance),
        Err(e) => {
            tracing::debug!(%instance, error = %e, "no connection to read the progress on");
            None
        }
    };
    let answer = {
        let run = super::observe::run_query(&mut long, query);
        tokio::pin!(run);
        let mut ticks = tokio::time::interval(reports.every);
        ticks.tick().await;
        loop {
            tokio::select! {
                answer = &mut run => break answer,
                _ = ticks.tick() => {
                    let Some(client) = reader.as_mut() else { continue };
                    match read_progress(client, instance).await {
                        Ok(Some(reading)) => {
                            reports.sender.send_replace(Some(reading));
                        }
                        Ok(None) => {}
                        Err(e) => {
                            tracing::debug!(%instance, error = %e, "progress reading failed; no more readings");
                            reader = None;
                        }
                    }
                }
            }
        }
    };
    reports.sender.send_replace(None);
    if let Some(client) = reader {
        conns.put(instance, client);
    }
    match answer {
        Ok(answer) => {
            conns.put_unbounded(instance, long);
            Ok(answer)
        }
        Err(e) => Err(SqlError::from_tiberius(instance, reach.what, e)),
    }
}

/// This process's running BACKUP or RESTORE on `instance`, read on `client`.
async fn read_progress(
    client: &mut SqlClient,
    instance: &str,
) -> Result<Option<StatementProgress>, tiberius::error::Error> {
    let answer = super::observe::run_query(client, tiberius::Query::new(OWN_PROGRESS)).await?;
    Ok(answer
        .tables
        .first()
        .and_then(|t| t.records().next())
        .and_then(|r| {
            Some(StatementProgress {
                instance: instance.to_string(),
                command: r.text("command")?,
                percent_complete: r.get("percent_complete").int()?.clamp(0, 100) as u8,
            })
        }))
}

/// End every other user session on `database` (one query to find them, one KILL each): the
/// drain already asked chat servers to leave, and what is left holds up the step.
async fn end_sessions(
    conns: &mut Connections,
    settings: &ConnectSettings,
    spec: &PersistentChatPoolSpec,
    instance: &str,
    database: &str,
    report: &mut StepReport,
) -> Result<(), SqlError> {
    let what = format!("finding the sessions on {database}");
    let mut q = tiberius::Query::new(
        "SELECT session_id FROM sys.dm_exec_sessions \
         WHERE database_id = DB_ID(@P1) AND session_id <> @@SPID AND is_user_process = 1",
    );
    q.bind(database);
    report.statements_sent += 1;
    let reach = Reach {
        instance,
        what: &what,
        unbounded: false,
    };
    let answer = request(conns, settings, spec, &reach, q).await?;
    if let Some(e) = answer.error {
        return Err(SqlError::Server {
            instance: instance.to_string(),
            statement: what,
            number: e.number,
            state: e.state,
            class: e.class,
            message: e.message,
        });
    }
    let ids: Vec<i64> = answer
        .tables
        .iter()
        .flat_map(|t| t.rows.iter())
        .filter_map(|r| r.first().and_then(Cell::int))
        .collect();
    for id in ids {
        tracing::info!(%instance, %database, session = id, "ending a session still on the database (3101)");
        report.statements_sent += 1;
        // KILL takes no variable; the id is an integer the server gave.
        let kill = format!("KILL {id}");
        let reach = Reach {
            instance,
            what: "KILL",
            unbounded: false,
        };
        let answer = request(conns, settings, spec, &reach, tiberius::Query::new(kill)).await?;
        // 6106: it left meanwhile. Any other refusal shows again as 3101 on the retry.
        if let Some(e) = answer.error {
            tracing::info!(%instance, session = id, error = e.number, "KILL refused");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn procedure_call() -> Statement {
        Statement {
            instance: "dal-sql1".into(),
            sql: "DECLARE @rc int; EXEC @rc = msdb.dbo.sp_update_job @job_name = @P1, @enabled = 1; SELECT @rc AS return_code".into(),
            params: Vec::new(),
            purpose: "enable the SQL Agent job LSCopy_atl-sql1_mgc on dal-sql1".into(),
            done_if: Vec::new(),
            retry_if: Vec::new(),
            return_code_of: Some("msdb.dbo.sp_update_job".into()),
        }
    }

    fn answer_with_code(code: Cell) -> Answer {
        Answer {
            tables: vec![super::super::observe::Table {
                columns: vec![RETURN_CODE.into()],
                rows: vec![vec![code]],
            }],
            error: None,
        }
    }

    #[test]
    fn a_procedure_that_returns_non_zero_fails_the_statement_naming_it() {
        let st = procedure_call();
        assert!(return_code(&st, &answer_with_code(Cell::Int(0))).is_ok());
        let err = return_code(&st, &answer_with_code(Cell::Int(1))).unwrap_err();
        assert!(
            matches!(err, SqlError::ReturnCode { code: 1, .. }),
            "{err:?}"
        );
        assert!(!err.is_retryable());
        let message = err.to_string();
        assert!(
            message.contains("msdb.dbo.sp_update_job returned 1")
                && message.contains("dal-sql1")
                && message.contains("LSCopy_atl-sql1_mgc"),
            "{message}"
        );
        // An answer without the code is a surprise, not a success.
        let empty = Answer {
            tables: Vec::new(),
            error: None,
        };
        assert!(matches!(
            return_code(&st, &empty),
            Err(SqlError::Unexpected { .. })
        ));
        // A statement that calls no procedure has nothing to check.
        let plain = Statement {
            return_code_of: None,
            ..procedure_call()
        };
        assert!(return_code(&plain, &empty).is_ok());
    }

    #[test]
    fn only_recover_and_demote_end_sessions_on_3101() {
        let recover = Step::Recover {
            site: "dallas".into(),
            instance: "dal-sql1".into(),
            database: "mgc".into(),
            kill_session_ids: vec![],
        };
        let demote = Step::DemoteOldPrimary {
            site: "atlanta".into(),
            instance: "atl-sql1".into(),
            database: "mgc".into(),
            file: "f".into(),
        };
        let remove = Step::RemoveMirroring {
            site: "atlanta".into(),
            instance: "atl-sql1".into(),
            databases: vec!["mgc".into()],
        };
        assert!(kills_on_in_use(&recover));
        assert!(kills_on_in_use(&demote));
        assert!(!kills_on_in_use(&remove));
    }
}
