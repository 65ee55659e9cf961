//! The statements of the admin surface the recognizer understands, as data.

use crate::backend::Value;

/// A scalar in a statement: a literal, a variable (`@P1`, a DECLAREd one) or one of the
/// current-time functions.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Literal(Value),
    Var(String),
    /// `GETUTCDATE()`, `SYSUTCDATETIME()`: the model's clock (UTC).
    Now,
    /// `GETDATE()`, `SYSDATETIME()`: the clock in the instance's local time.
    LocalNow,
}

/// One `WITH` option of BACKUP/RESTORE: `NAME` or `NAME = value`.
#[derive(Clone, Debug, PartialEq)]
pub struct WithOption {
    pub name: String,
    pub value: Option<Expr>,
    /// MOVE 'logical' TO 'physical': the physical path (`value` is the logical name).
    pub to: Option<Expr>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestoreKind {
    Database,
    Log,
    HeaderOnly,
    FileListOnly,
    VerifyOnly,
}

#[derive(Clone, Debug, PartialEq)]
pub enum PartnerAction {
    /// `SET PARTNER = N'TCP://host:port'`
    Address(Expr),
    Off,
    Suspend,
    Resume,
    Failover,
    ForceService,
    Safety(bool),
    Timeout(i64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserAccess {
    Multi,
    Single,
    Restricted,
}

#[derive(Clone, Debug, PartialEq)]
pub enum AlterAction {
    Partner(PartnerAction),
    /// `SET WITNESS = N'..'` or `SET WITNESS OFF` (None).
    Witness(Option<Expr>),
    UserAccess {
        access: UserAccess,
        rollback_immediate: bool,
    },
    Offline {
        rollback_immediate: bool,
    },
    Online,
    /// `SET READ_ONLY` (true) or `SET READ_WRITE` (false), with its termination clause.
    ReadOnly {
        read_only: bool,
        rollback_immediate: bool,
    },
    /// `SET RECOVERY FULL|SIMPLE|BULK_LOGGED`
    Recovery(String),
}

/// A named or positional argument of EXEC.
#[derive(Clone, Debug, PartialEq)]
pub struct ExecArg {
    /// `@name` (lower-cased, with the `@`) or None for positional.
    pub name: Option<String>,
    pub value: Expr,
    pub output: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    /// A query handed to SQLite: the raw text of the statement.
    Select {
        sql: String,
    },
    Insert {
        /// Name parts as written (`mgc.dbo.Messages` -> ["mgc", "dbo", "Messages"]).
        table: Vec<String>,
        columns: Option<Vec<String>>,
        rows: Vec<Vec<Expr>>,
    },
    Backup {
        log: bool,
        database: Expr,
        disk: Expr,
        options: Vec<WithOption>,
    },
    Restore {
        kind: RestoreKind,
        database: Option<Expr>,
        disk: Option<Expr>,
        options: Vec<WithOption>,
    },
    AlterDatabase {
        database: String,
        action: AlterAction,
    },
    /// `ALTER LOGIN login WITH PASSWORD = expr` (a password rotation; sessions already logged
    /// in stay, as on SQL Server).
    AlterLogin {
        login: String,
        password: Expr,
    },
    Kill {
        spid: i64,
    },
    Use {
        database: String,
    },
    CreateDatabase {
        database: String,
    },
    DropDatabase {
        databases: Vec<String>,
    },
    Exec {
        /// Name parts (`msdb.dbo.sp_start_job` -> three parts).
        procedure: Vec<String>,
        args: Vec<ExecArg>,
        /// `EXEC @rc = proc ...`
        return_var: Option<String>,
    },
    Declare {
        vars: Vec<(String, Option<Expr>)>,
    },
    SetVar {
        var: String,
        value: Expr,
    },
    /// `SET NOCOUNT ON` and the other session options: accepted, no effect on the model.
    SetOption,
    /// `SET IMPLICIT_TRANSACTIONS ON|OFF`
    SetImplicitTransactions(bool),
    /// `BEGIN TRAN[SACTION] [name]`
    BeginTransaction,
    /// `COMMIT [TRAN[SACTION]|WORK] [name]`
    CommitTransaction,
    /// `ROLLBACK [TRAN[SACTION]|WORK] [name]`
    RollbackTransaction,
    WaitFor {
        millis: u64,
    },
    Print(Expr),
    /// `IF <condition> stmt-or-block [ELSE stmt-or-block]`: SQLite evaluates the condition.
    If {
        condition: String,
        then_branch: Vec<Located>,
        else_branch: Vec<Located>,
    },
    /// `BEGIN ... END`
    Block(Vec<Located>),
}

/// A statement with the line (1-based, within the batch) on which it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Located {
    pub stmt: Stmt,
    pub line: i32,
    /// The statement's source text, for FailNext patterns and statement kinds.
    pub text: String,
}
