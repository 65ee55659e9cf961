//! The hand-written recognizer for the admin surface: it splits a batch into statements the way
//! SQL Server does (`;` or simple juxtaposition) and turns each into an [`ast::Stmt`]. Queries
//! (SELECT, WITH ... SELECT) are kept as text for SQLite. A batch that does not parse is error
//! 102 and runs no statement, as in SQL Server.

use super::ast::*;
use super::errors::{SqlError, syntax, syntax_end};
use super::lexer::{Token, TokenKind, tokenize_cached};
use crate::backend::Value;

/// Keywords that start a new statement when met at paren depth 0 inside a query.
const STATEMENT_STARTS: &[&str] = &[
    "backup", "restore", "alter", "kill", "use", "create", "drop", "exec", "execute", "insert",
    "declare", "set", "waitfor", "print", "update", "delete", "if", "begin", "go", "select",
    "with", "commit", "rollback",
];

/// Parse a whole batch. Remembered per text: a client sends the same batches again and again
/// (an operator's observation every pass), and parsing one was a twentieth of the
/// simulator's work in the demo.
pub fn parse_batch(sql: &str) -> Result<Vec<Located>, SqlError> {
    static PARSED: super::memo::Memo<std::sync::Arc<[Located]>> = super::memo::Memo::new();
    if let Some(parsed) = PARSED.get(sql) {
        return Ok(parsed.to_vec());
    }
    let parsed = parse_uncached(sql)?;
    PARSED.insert(sql.to_string(), parsed.as_slice().into());
    Ok(parsed)
}

fn parse_uncached(sql: &str) -> Result<Vec<Located>, SqlError> {
    let toks = tokenize_cached(sql)?;
    let mut p = Parser {
        sql,
        toks: &toks,
        pos: 0,
    };
    let mut out = Vec::new();
    loop {
        while p.peek_sym(";") {
            p.pos += 1;
        }
        if p.peek().is_none() {
            break;
        }
        if p.peek_kw("end") || p.peek_kw("else") {
            return Err(p.err_here());
        }
        out.push(p.located()?);
    }
    Ok(out)
}

struct Parser<'a> {
    sql: &'a str,
    toks: &'a [Token],
    pos: usize,
}

impl<'a> Parser<'a> {
    /// One statement with its line and text.
    fn located(&mut self) -> Result<Located, SqlError> {
        let first = self.peek().ok_or_else(syntax_end)?;
        let (line, start) = (first.line, first.start);
        let stmt = self.statement()?;
        let end = self.toks[self.pos - 1].end;
        Ok(Located {
            stmt,
            line,
            text: self.sql[start..end].to_string(),
        })
    }

    /// A statement or a `BEGIN ... END` block, as a list.
    fn branch(&mut self) -> Result<Vec<Located>, SqlError> {
        while self.eat_sym(";") {}
        let s = self.located()?;
        Ok(match s.stmt {
            Stmt::Block(v) => v,
            other => vec![Located { stmt: other, ..s }],
        })
    }

    fn block(&mut self) -> Result<Stmt, SqlError> {
        self.pos += 1;
        let mut v = Vec::new();
        loop {
            while self.eat_sym(";") {}
            if self.eat_kw("end") {
                return Ok(Stmt::Block(v));
            }
            if self.peek().is_none() {
                return Err(syntax_end());
            }
            v.push(self.located()?);
        }
    }

    fn if_stmt(&mut self) -> Result<Stmt, SqlError> {
        self.pos += 1;
        let start = self.peek().ok_or_else(syntax_end)?.start;
        let mut end = start;
        let mut depth = 0i32;
        while let Some(t) = self.peek() {
            if t.is_sym("(") {
                depth += 1;
            } else if t.is_sym(")") {
                depth -= 1;
            } else if depth == 0
                && let TokenKind::Word(w) = &t.kind
                && STATEMENT_STARTS.contains(&w.to_ascii_lowercase().as_str())
            {
                break;
            }
            end = t.end;
            self.pos += 1;
        }
        if end == start || depth != 0 {
            return Err(self.err_here());
        }
        let condition = self.sql[start..end].to_string();
        let then_branch = self.branch()?;
        while self.peek_sym(";") && self.peek_at(1).is_some_and(|t| t.is_kw("else")) {
            self.pos += 1;
        }
        let else_branch = if self.eat_kw("else") {
            self.branch()?
        } else {
            Vec::new()
        };
        Ok(Stmt::If {
            condition,
            then_branch,
            else_branch,
        })
    }

    fn peek(&self) -> Option<&'a Token> {
        self.toks.get(self.pos)
    }

    fn peek_at(&self, n: usize) -> Option<&'a Token> {
        self.toks.get(self.pos + n)
    }

    fn peek_kw(&self, kw: &str) -> bool {
        self.peek().is_some_and(|t| t.is_kw(kw))
    }

    fn peek_sym(&self, s: &str) -> bool {
        self.peek().is_some_and(|t| t.is_sym(s))
    }

    fn next(&mut self) -> Result<&'a Token, SqlError> {
        let t = self.toks.get(self.pos).ok_or_else(syntax_end)?;
        self.pos += 1;
        Ok(t)
    }

    fn err_here(&self) -> SqlError {
        match self.peek() {
            Some(t) => syntax(&t.display()),
            None => syntax_end(),
        }
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.peek_kw(kw) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn eat_sym(&mut self, s: &str) -> bool {
        if self.peek_sym(s) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_kw(&mut self, kw: &str) -> Result<(), SqlError> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.err_here())
        }
    }

    fn expect_sym(&mut self, s: &str) -> Result<(), SqlError> {
        if self.eat_sym(s) {
            Ok(())
        } else {
            Err(self.err_here())
        }
    }

    fn ident(&mut self) -> Result<String, SqlError> {
        match self.peek().and_then(|t| t.ident()) {
            Some(s) => {
                self.pos += 1;
                Ok(s.to_string())
            }
            None => Err(self.err_here()),
        }
    }

    /// A multi-part name `a.b.c`, with empty parts for `a..c`.
    fn multipart(&mut self) -> Result<Vec<String>, SqlError> {
        let mut parts = vec![self.ident()?];
        while self.peek_sym(".") {
            self.pos += 1;
            if self.peek_sym(".") {
                parts.push(String::new());
                continue;
            }
            parts.push(self.ident()?);
        }
        Ok(parts)
    }

    /// A database name, or a variable holding one (BACKUP/RESTORE accept `@db`).
    fn db_expr(&mut self) -> Result<Expr, SqlError> {
        if let Some(TokenKind::Var(v)) = self.peek().map(|t| &t.kind) {
            self.pos += 1;
            return Ok(Expr::Var(v.to_ascii_lowercase()));
        }
        Ok(Expr::Literal(Value::NVarChar(self.ident()?)))
    }

    /// A scalar: literal, variable, NULL, or one of the clock functions.
    fn expr(&mut self) -> Result<Expr, SqlError> {
        let t = self.next()?;
        match &t.kind {
            TokenKind::Str { value, .. } => Ok(Expr::Literal(Value::NVarChar(value.clone()))),
            TokenKind::Number(n) => number(n).ok_or_else(|| syntax(n)),
            TokenKind::Sym(s) if s == "-" => match self.next()?.kind.clone() {
                TokenKind::Number(n) => match number(&n) {
                    Some(Expr::Literal(Value::Int(v))) => Ok(Expr::Literal(Value::Int(-v))),
                    Some(Expr::Literal(Value::BigInt(v))) => Ok(Expr::Literal(Value::BigInt(-v))),
                    Some(Expr::Literal(Value::Float(v))) => Ok(Expr::Literal(Value::Float(-v))),
                    _ => Err(syntax(&n)),
                },
                _ => Err(syntax("-")),
            },
            TokenKind::Var(v) => Ok(Expr::Var(v.to_ascii_lowercase())),
            TokenKind::Word(w) if w.eq_ignore_ascii_case("null") => Ok(Expr::Literal(Value::Null)),
            TokenKind::Word(w)
                if ["getutcdate", "sysutcdatetime", "getdate", "sysdatetime"]
                    .contains(&w.to_ascii_lowercase().as_str()) =>
            {
                let local = ["getdate", "sysdatetime"].contains(&w.to_ascii_lowercase().as_str());
                self.expect_sym("(")?;
                self.expect_sym(")")?;
                Ok(if local { Expr::LocalNow } else { Expr::Now })
            }
            TokenKind::Word(w) => {
                // A bare word as a value (e.g. `EXEC sp_x @mode = NORECOVERY`): SQL Server
                // treats an unquoted word argument of EXEC as a string.
                Ok(Expr::Literal(Value::NVarChar(w.clone())))
            }
            _ => Err(syntax(&t.display())),
        }
    }

    fn statement(&mut self) -> Result<Stmt, SqlError> {
        let t = self.peek().ok_or_else(syntax_end)?;
        let kw = match &t.kind {
            TokenKind::Word(w) => w.to_ascii_lowercase(),
            _ => return Err(syntax(&t.display())),
        };
        match kw.as_str() {
            "select" => self.query(),
            "with" => {
                // `WITH cte AS (...) SELECT`: a query. (WITH as an option list only follows
                // other statements' clauses, never starts one.)
                self.query()
            }
            "insert" => self.insert(),
            "backup" => self.backup(),
            "restore" => self.restore(),
            "alter" => self.alter(),
            "kill" => {
                self.pos += 1;
                let n = self.next()?;
                let spid = match &n.kind {
                    TokenKind::Number(s) => s.parse::<i64>().map_err(|_| syntax(s))?,
                    _ => return Err(syntax(&n.display())),
                };
                if self.eat_kw("with") {
                    self.expect_kw("statusonly")?;
                }
                Ok(Stmt::Kill { spid })
            }
            "use" => {
                self.pos += 1;
                Ok(Stmt::Use {
                    database: self.ident()?,
                })
            }
            "create" => {
                self.pos += 1;
                self.expect_kw("database")?;
                let database = self.ident()?;
                Ok(Stmt::CreateDatabase { database })
            }
            "drop" => {
                self.pos += 1;
                self.expect_kw("database")?;
                if self.eat_kw("if") {
                    return Err(syntax("IF"));
                }
                let mut databases = vec![self.ident()?];
                while self.eat_sym(",") {
                    databases.push(self.ident()?);
                }
                Ok(Stmt::DropDatabase { databases })
            }
            "exec" | "execute" => self.exec(),
            "declare" => self.declare(),
            "set" => self.set(),
            "waitfor" => {
                self.pos += 1;
                self.expect_kw("delay")?;
                let t = self.next()?;
                let TokenKind::Str { value, .. } = &t.kind else {
                    return Err(syntax(&t.display()));
                };
                let millis = parse_delay(value).ok_or_else(|| {
                    SqlError::new(
                        148,
                        format!(
                            "Incorrect time syntax in time string '{value}' used with WAITFOR."
                        ),
                    )
                    .with_class(15)
                })?;
                Ok(Stmt::WaitFor { millis })
            }
            "if" => self.if_stmt(),
            "begin" => {
                if self.peek_at(1).is_some_and(|n| n.is_kw("distributed")) {
                    // Distributed transactions need a coordinator the simulator does not have.
                    return Err(syntax(&t.display()));
                }
                if self
                    .peek_at(1)
                    .is_some_and(|n| n.is_kw("tran") || n.is_kw("transaction"))
                {
                    self.pos += 2;
                    self.transaction_name();
                    return Ok(Stmt::BeginTransaction);
                }
                self.block()
            }
            "commit" | "rollback" => {
                self.pos += 1;
                if !self.eat_kw("work") && (self.eat_kw("tran") || self.eat_kw("transaction")) {
                    self.transaction_name();
                }
                Ok(if kw == "commit" {
                    Stmt::CommitTransaction
                } else {
                    Stmt::RollbackTransaction
                })
            }
            "print" => {
                self.pos += 1;
                Ok(Stmt::Print(self.expr()?))
            }
            _ => Err(syntax(&t.display())),
        }
    }

    /// The optional name after `BEGIN/COMMIT/ROLLBACK TRAN`: an identifier or variable that
    /// does not start the next statement. The model keeps no names: SQL Server uses them only
    /// for the log and for ROLLBACK to the outermost name.
    fn transaction_name(&mut self) {
        if let Some(t) = self.peek() {
            match &t.kind {
                TokenKind::Var(_) => self.pos += 1,
                TokenKind::Word(w)
                    if !STATEMENT_STARTS.contains(&w.to_ascii_lowercase().as_str()) =>
                {
                    self.pos += 1
                }
                _ => {}
            }
        }
    }

    /// Consume a query up to `;` or the next statement-starting keyword at depth 0.
    fn query(&mut self) -> Result<Stmt, SqlError> {
        let start_tok = self.next()?;
        let start = start_tok.start;
        let mut end = start_tok.end;
        let mut depth = 0i32;
        let mut case_depth = 0i32;
        let mut prev_word = start_tok
            .ident()
            .map(|s| s.to_ascii_lowercase())
            .unwrap_or_default();
        while let Some(t) = self.peek() {
            if t.is_sym(";") && depth == 0 {
                break;
            }
            if t.is_sym("(") {
                depth += 1;
            } else if t.is_sym(")") {
                depth -= 1;
                if depth < 0 {
                    return Err(syntax(")"));
                }
            } else if depth == 0
                && let TokenKind::Word(w) = &t.kind
            {
                let lw = w.to_ascii_lowercase();
                if lw == "case" {
                    case_depth += 1;
                } else if lw == "end" && case_depth > 0 {
                    case_depth -= 1;
                } else if (lw == "end" || lw == "else") && case_depth == 0 {
                    // The end of an enclosing BEGIN ... END block or IF branch.
                    break;
                }
                let continues = lw == "select"
                    && matches!(prev_word.as_str(), "union" | "all" | "except" | "intersect");
                // `WITH (NOLOCK)` table hints and CTE bodies never start statements here.
                let hint = lw == "with" && self.peek_at(1).is_some_and(|n| n.is_sym("("));
                if STATEMENT_STARTS.contains(&lw.as_str()) && !continues && !hint {
                    // `SET` inside UPDATE is not ours; a query never contains a bare SET.
                    break;
                }
            }
            prev_word = t
                .ident()
                .map(|s| s.to_ascii_lowercase())
                .unwrap_or_default();
            end = t.end;
            self.pos += 1;
        }
        if depth != 0 {
            return Err(syntax_end());
        }
        Ok(Stmt::Select {
            sql: self.sql[start..end].to_string(),
        })
    }

    fn insert(&mut self) -> Result<Stmt, SqlError> {
        self.pos += 1;
        self.eat_kw("into");
        let table = self.multipart()?;
        let columns = if self.eat_sym("(") {
            let mut cols = vec![self.ident()?];
            while self.eat_sym(",") {
                cols.push(self.ident()?);
            }
            self.expect_sym(")")?;
            Some(cols)
        } else {
            None
        };
        self.expect_kw("values")?;
        let mut rows = Vec::new();
        loop {
            self.expect_sym("(")?;
            let mut row = vec![self.expr()?];
            while self.eat_sym(",") {
                row.push(self.expr()?);
            }
            self.expect_sym(")")?;
            rows.push(row);
            if !self.eat_sym(",") {
                break;
            }
        }
        Ok(Stmt::Insert {
            table,
            columns,
            rows,
        })
    }

    fn with_options(&mut self) -> Result<Vec<WithOption>, SqlError> {
        let mut options = Vec::new();
        if !self.eat_kw("with") {
            return Ok(options);
        }
        loop {
            let name = self.ident()?.to_ascii_uppercase();
            let mut to = None;
            let value = if self.eat_sym("=") {
                Some(self.expr()?)
            } else if name == "MOVE" {
                let logical = self.expr()?;
                self.expect_kw("to")?;
                to = Some(self.expr()?);
                Some(logical)
            } else {
                None
            };
            options.push(WithOption { name, value, to });
            if !self.eat_sym(",") {
                break;
            }
        }
        Ok(options)
    }

    fn disk(&mut self) -> Result<Expr, SqlError> {
        self.expect_kw("disk")?;
        self.expect_sym("=")?;
        self.expr()
    }

    fn backup(&mut self) -> Result<Stmt, SqlError> {
        self.pos += 1;
        let log = if self.eat_kw("log") {
            true
        } else {
            self.expect_kw("database")?;
            false
        };
        let database = self.db_expr()?;
        self.expect_kw("to")?;
        let disk = self.disk()?;
        let options = self.with_options()?;
        Ok(Stmt::Backup {
            log,
            database,
            disk,
            options,
        })
    }

    fn restore(&mut self) -> Result<Stmt, SqlError> {
        self.pos += 1;
        let kind = if self.eat_kw("database") {
            RestoreKind::Database
        } else if self.eat_kw("log") {
            RestoreKind::Log
        } else if self.eat_kw("headeronly") {
            RestoreKind::HeaderOnly
        } else if self.eat_kw("filelistonly") {
            RestoreKind::FileListOnly
        } else if self.eat_kw("verifyonly") {
            RestoreKind::VerifyOnly
        } else {
            return Err(self.err_here());
        };
        let database = if matches!(
            kind,
            RestoreKind::HeaderOnly | RestoreKind::FileListOnly | RestoreKind::VerifyOnly
        ) {
            None
        } else {
            Some(self.db_expr()?)
        };
        let disk = if self.eat_kw("from") {
            Some(self.disk()?)
        } else {
            None
        };
        if disk.is_none() && kind != RestoreKind::Database {
            return Err(self.err_here());
        }
        let options = self.with_options()?;
        Ok(Stmt::Restore {
            kind,
            database,
            disk,
            options,
        })
    }

    fn rollback_clause(&mut self) -> Result<bool, SqlError> {
        if self.eat_kw("with") {
            if self.eat_kw("rollback") {
                if self.eat_kw("immediate") {
                    return Ok(true);
                }
                self.expect_kw("after")?;
                self.expr()?;
                self.eat_kw("seconds");
                return Ok(true);
            }
            self.expect_kw("no_wait")?;
        }
        Ok(false)
    }

    fn alter(&mut self) -> Result<Stmt, SqlError> {
        self.pos += 1;
        if self.eat_kw("login") {
            let login = self.ident()?;
            self.expect_kw("with")?;
            self.expect_kw("password")?;
            self.expect_sym("=")?;
            let password = self.expr()?;
            return Ok(Stmt::AlterLogin { login, password });
        }
        self.expect_kw("database")?;
        let database = self.ident()?;
        self.expect_kw("set")?;
        let opt = self.ident()?.to_ascii_lowercase();
        let action = match opt.as_str() {
            "partner" => {
                if self.eat_sym("=") {
                    AlterAction::Partner(PartnerAction::Address(self.expr()?))
                } else {
                    let w = self.ident()?.to_ascii_lowercase();
                    AlterAction::Partner(match w.as_str() {
                        "off" => PartnerAction::Off,
                        "suspend" => PartnerAction::Suspend,
                        "resume" => PartnerAction::Resume,
                        "failover" => PartnerAction::Failover,
                        "force_service_allow_data_loss" => PartnerAction::ForceService,
                        "safety" => {
                            let v = self.ident()?.to_ascii_lowercase();
                            match v.as_str() {
                                "full" => PartnerAction::Safety(true),
                                "off" => PartnerAction::Safety(false),
                                _ => return Err(syntax(&v)),
                            }
                        }
                        "timeout" => {
                            let t = self.next()?;
                            match &t.kind {
                                TokenKind::Number(n) => {
                                    PartnerAction::Timeout(n.parse().map_err(|_| syntax(n))?)
                                }
                                _ => return Err(syntax(&t.display())),
                            }
                        }
                        _ => return Err(syntax(&w)),
                    })
                }
            }
            "witness" => {
                if self.eat_sym("=") {
                    AlterAction::Witness(Some(self.expr()?))
                } else {
                    self.expect_kw("off")?;
                    AlterAction::Witness(None)
                }
            }
            "single_user" | "restricted_user" | "multi_user" => {
                let access = match opt.as_str() {
                    "single_user" => UserAccess::Single,
                    "restricted_user" => UserAccess::Restricted,
                    _ => UserAccess::Multi,
                };
                AlterAction::UserAccess {
                    access,
                    rollback_immediate: self.rollback_clause()?,
                }
            }
            "offline" => AlterAction::Offline {
                rollback_immediate: self.rollback_clause()?,
            },
            "online" => {
                self.rollback_clause()?;
                AlterAction::Online
            }
            "read_only" | "read_write" => AlterAction::ReadOnly {
                read_only: opt == "read_only",
                rollback_immediate: self.rollback_clause()?,
            },
            "recovery" => {
                let m = self.ident()?.to_ascii_uppercase();
                if !["FULL", "SIMPLE", "BULK_LOGGED"].contains(&m.as_str()) {
                    return Err(syntax(&m));
                }
                AlterAction::Recovery(m)
            }
            _ => return Err(syntax(&opt)),
        };
        if self.peek_sym(",") {
            // SQL Server: one mirroring option per statement; other lists are not modelled.
            return Err(self.err_here());
        }
        Ok(Stmt::AlterDatabase { database, action })
    }

    fn exec(&mut self) -> Result<Stmt, SqlError> {
        self.pos += 1;
        let mut return_var = None;
        if let (Some(TokenKind::Var(v)), Some(eq)) = (self.peek().map(|t| &t.kind), self.peek_at(1))
            && eq.is_sym("=")
        {
            return_var = Some(v.to_ascii_lowercase());
            self.pos += 2;
        }
        if self.peek_sym("(") {
            return Err(syntax("("));
        }
        let procedure = self.multipart()?;
        let mut args = Vec::new();
        let at_end = |p: &Self| {
            p.peek().is_none()
                || p.peek_sym(";")
                || p.peek().is_some_and(|t| {
                    matches!(&t.kind, TokenKind::Word(w) if STATEMENT_STARTS.contains(&w.to_ascii_lowercase().as_str()))
                })
        };
        if !at_end(self) {
            loop {
                let mut name = None;
                if let (Some(TokenKind::Var(v)), Some(eq)) =
                    (self.peek().map(|t| &t.kind), self.peek_at(1))
                    && eq.is_sym("=")
                {
                    name = Some(v.to_ascii_lowercase());
                    self.pos += 2;
                }
                let value = self.expr()?;
                let output = self.eat_kw("output") || self.eat_kw("out");
                args.push(ExecArg {
                    name,
                    value,
                    output,
                });
                if !self.eat_sym(",") {
                    break;
                }
            }
        }
        Ok(Stmt::Exec {
            procedure,
            args,
            return_var,
        })
    }

    fn declare(&mut self) -> Result<Stmt, SqlError> {
        self.pos += 1;
        let mut vars = Vec::new();
        loop {
            let t = self.next()?;
            let TokenKind::Var(v) = &t.kind else {
                return Err(syntax(&t.display()));
            };
            self.eat_kw("as");
            // The type: a word with an optional (n[, m]) or (max).
            self.ident()?;
            if self.eat_sym("(") {
                while !self.eat_sym(")") {
                    self.next()?;
                }
            }
            let init = if self.eat_sym("=") {
                Some(self.expr()?)
            } else {
                None
            };
            vars.push((v.to_ascii_lowercase(), init));
            if !self.eat_sym(",") {
                break;
            }
        }
        Ok(Stmt::Declare { vars })
    }

    fn set(&mut self) -> Result<Stmt, SqlError> {
        self.pos += 1;
        if let Some(TokenKind::Var(v)) = self.peek().map(|t| &t.kind) {
            let var = v.to_ascii_lowercase();
            self.pos += 1;
            self.expect_sym("=")?;
            return Ok(Stmt::SetVar {
                var,
                value: self.expr()?,
            });
        }
        let opt = self.ident()?.to_ascii_lowercase();
        const ON_OFF: &[&str] = &[
            "nocount",
            "xact_abort",
            "ansi_nulls",
            "ansi_warnings",
            "ansi_padding",
            "quoted_identifier",
            "arithabort",
            "concat_null_yields_null",
            "ansi_null_dflt_on",
            "implicit_transactions",
            "cursor_close_on_commit",
            "numeric_roundabort",
        ];
        if ON_OFF.contains(&opt.as_str()) {
            let on = if self.eat_kw("on") {
                true
            } else if self.eat_kw("off") {
                false
            } else {
                return Err(self.err_here());
            };
            if opt == "implicit_transactions" {
                return Ok(Stmt::SetImplicitTransactions(on));
            }
            return Ok(Stmt::SetOption);
        }
        match opt.as_str() {
            "lock_timeout" | "textsize" | "datefirst" | "deadlock_priority" => {
                self.expr()?;
                Ok(Stmt::SetOption)
            }
            "dateformat" | "language" => {
                self.next()?;
                Ok(Stmt::SetOption)
            }
            "transaction" => {
                self.expect_kw("isolation")?;
                self.expect_kw("level")?;
                while let Some(t) = self.peek() {
                    if !(t.is_kw("read")
                        || t.is_kw("committed")
                        || t.is_kw("uncommitted")
                        || t.is_kw("repeatable")
                        || t.is_kw("serializable")
                        || t.is_kw("snapshot"))
                    {
                        break;
                    }
                    self.pos += 1;
                }
                Ok(Stmt::SetOption)
            }
            _ => Err(syntax(&opt)),
        }
    }
}

fn number(n: &str) -> Option<Expr> {
    if n.contains('.') {
        return n
            .parse::<f64>()
            .ok()
            .map(|v| Expr::Literal(Value::Float(v)));
    }
    let v = n.parse::<i128>().ok()?;
    Some(Expr::Literal(if let Ok(i) = i32::try_from(v) {
        Value::Int(i)
    } else if let Ok(i) = i64::try_from(v) {
        Value::BigInt(i)
    } else {
        Value::Numeric(v)
    }))
}

/// `hh:mm[:ss[.mmm]]` of WAITFOR DELAY, in milliseconds.
fn parse_delay(s: &str) -> Option<u64> {
    let parts: Vec<&str> = s.trim().split(':').collect();
    if parts.len() < 2 || parts.len() > 3 {
        return None;
    }
    let h: u64 = parts[0].parse().ok()?;
    let m: u64 = parts[1].parse().ok()?;
    let secs: f64 = parts.get(2).map_or(Some(0.0), |s| s.parse().ok())?;
    Some(h * 3_600_000 + m * 60_000 + (secs * 1000.0).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(sql: &str) -> Stmt {
        let v = parse_batch(sql).unwrap();
        assert_eq!(v.len(), 1, "{v:?}");
        v.into_iter().next().unwrap().stmt
    }

    #[test]
    fn statements_juxtaposed_without_semicolons_are_split() {
        let v = parse_batch(
            "SELECT name FROM sys.databases WHERE name = N'mgc' BACKUP LOG [mgc] TO DISK = N'x' KILL 57",
        )
        .unwrap();
        assert_eq!(v.len(), 3);
        assert!(matches!(v[0].stmt, Stmt::Select { .. }));
        assert!(matches!(v[1].stmt, Stmt::Backup { log: true, .. }));
        assert_eq!(v[2].stmt, Stmt::Kill { spid: 57 });
    }

    #[test]
    fn union_select_stays_one_query() {
        assert!(matches!(
            one("select 1 union all select 2"),
            Stmt::Select { .. }
        ));
    }

    #[test]
    fn restore_with_options_parses_recovery_and_replace() {
        match one(
            "restore database mgc from disk = N'\\\\h\\s\\f.bak' with norecovery, replace, stats = 10",
        ) {
            Stmt::Restore { kind, options, .. } => {
                assert_eq!(kind, RestoreKind::Database);
                let names: Vec<_> = options.iter().map(|o| o.name.as_str()).collect();
                assert_eq!(names, ["NORECOVERY", "REPLACE", "STATS"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn alter_partner_address_and_rollback_immediate_parse() {
        assert_eq!(
            one("ALTER LOGIN [pchat] WITH PASSWORD = N'Rotated-2'"),
            Stmt::AlterLogin {
                login: "pchat".into(),
                password: Expr::Literal(Value::NVarChar("Rotated-2".into())),
            }
        );
        assert_eq!(
            one("ALTER DATABASE [mgc] SET PARTNER = N'TCP://a:5022'"),
            Stmt::AlterDatabase {
                database: "mgc".into(),
                action: AlterAction::Partner(PartnerAction::Address(Expr::Literal(
                    Value::NVarChar("TCP://a:5022".into())
                )))
            }
        );
        assert_eq!(
            one("alter database mgc set single_user with rollback immediate"),
            Stmt::AlterDatabase {
                database: "mgc".into(),
                action: AlterAction::UserAccess {
                    access: UserAccess::Single,
                    rollback_immediate: true
                }
            }
        );
    }

    #[test]
    fn exec_with_named_and_output_arguments_parses() {
        match one(
            "EXEC master.dbo.sp_add_log_shipping_primary_database @database = N'mgc', @primary_id = @id OUTPUT",
        ) {
            Stmt::Exec {
                procedure, args, ..
            } => {
                assert_eq!(
                    procedure,
                    ["master", "dbo", "sp_add_log_shipping_primary_database"]
                );
                assert_eq!(args[1].name.as_deref(), Some("@primary_id"));
                assert!(args[1].output);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn if_else_with_blocks_and_case_inside_queries_parses() {
        match one(
            "IF DB_ID(N'mgc') IS NULL BEGIN CREATE DATABASE mgc; SELECT CASE WHEN 1 = 1 THEN 1 ELSE 0 END END ELSE SELECT 2",
        ) {
            Stmt::If {
                condition,
                then_branch,
                else_branch,
            } => {
                assert_eq!(condition, "DB_ID(N'mgc') IS NULL");
                assert_eq!(then_branch.len(), 2);
                assert_eq!(else_branch.len(), 1);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn begin_commit_and_rollback_parse_with_optional_names_between_other_statements() {
        let stmts: Vec<Stmt> = parse_batch(
            "BEGIN TRAN t1 INSERT INTO Messages VALUES (1, NULL, NULL, NULL) COMMIT TRANSACTION t1 \
             BEGIN TRANSACTION SELECT 1 ROLLBACK; COMMIT WORK; ROLLBACK TRAN",
        )
        .unwrap()
        .into_iter()
        .map(|l| l.stmt)
        .collect();
        assert_eq!(stmts[0], Stmt::BeginTransaction);
        assert!(matches!(stmts[1], Stmt::Insert { .. }));
        assert_eq!(stmts[2], Stmt::CommitTransaction);
        assert_eq!(stmts[3], Stmt::BeginTransaction);
        assert!(matches!(stmts[4], Stmt::Select { .. }));
        assert_eq!(stmts[5], Stmt::RollbackTransaction);
        assert_eq!(stmts[6], Stmt::CommitTransaction);
        assert_eq!(stmts[7], Stmt::RollbackTransaction);
        assert_eq!(stmts.len(), 8);
    }

    #[test]
    fn begin_distributed_transaction_is_refused() {
        assert_eq!(
            parse_batch("BEGIN DISTRIBUTED TRANSACTION")
                .unwrap_err()
                .number,
            102
        );
    }

    #[test]
    fn set_implicit_transactions_parses_its_setting() {
        assert_eq!(
            one("SET IMPLICIT_TRANSACTIONS ON"),
            Stmt::SetImplicitTransactions(true)
        );
        assert_eq!(
            one("SET IMPLICIT_TRANSACTIONS OFF"),
            Stmt::SetImplicitTransactions(false)
        );
    }

    #[test]
    fn garbage_is_error_102_naming_the_token() {
        let e = parse_batch("FROB the database").unwrap_err();
        assert_eq!(e.number, 102);
        assert!(e.text.contains("'FROB'"), "{}", e.text);
    }
}
