//! SELECTs: the few T-SQL spellings that SQLite does not share are rewritten on the token stream
//! (catalog and msdb names to quoted table names, `TOP n`, `N'..'`, `ISNULL`, `LEN`, `CONVERT`,
//! `DATEDIFF`, `@@SERVERNAME`, `SERVERPROPERTY`, `DB_ID`, `DB_NAME`, the clock functions,
//! variables to positional parameters); SQLite then evaluates the query. Nothing is evaluated by
//! hand here.

use std::collections::HashMap;

use rusqlite::types::{Value as Sql, ValueRef};

use super::catalog::{self, MESSAGES_COLUMNS, fmt_dt, quote_ident};
use super::errors::{self as e, SqlError};
use super::lexer::{Token, TokenKind, tokenize_cached};
use super::model::{Instance, SessionInfo, SqliteTables, State, now};
use crate::backend::{Column, ColumnType, ResultSet, Value};

/// What a query runs in: the instance, the session's database and id, and the variables.
pub struct QueryContext<'a> {
    pub state: &'a State,
    pub inst: &'a Instance,
    pub database: &'a str,
    pub spid: i16,
    pub vars: &'a HashMap<String, Value>,
}

#[derive(Clone)]
enum Source {
    Catalog(&'static str),
    Messages(String),
    Files { dir: String, pattern: String },
}

#[derive(Clone)]
struct Rewrite {
    sql: String,
    sources: Vec<(String, Source)>,
    params: Vec<Value>,
    /// What each of `params` stands for: a variable's name, or one of the `@@` names the
    /// rewriter binds ([`CLOCK`], [`LOCAL_CLOCK`], [`SESSION_ID`], [`SESSION_HOST`],
    /// [`SESSION_PROGRAM`], [`SERVER_NAME`], [`DATA_PATH`], [`LOG_PATH`]). A remembered
    /// rewrite binds them afresh on each run (see [`param_value`]), so it serves every value
    /// of them.
    param_names: Vec<String>,
}

/// The statement's clock (GETUTCDATE): not a name a T-SQL variable can have, since those
/// start with a single `@`.
const CLOCK: &str = "@@getutcdate";
/// The statement's clock in the instance's local time (GETDATE).
const LOCAL_CLOCK: &str = "@@getdate";
/// The session's id (@@SPID).
const SESSION_ID: &str = "@@spid";
/// The workstation name the session's login gave (HOST_NAME()).
const SESSION_HOST: &str = "@@host_name";
/// The program name the session's login gave (APP_NAME()).
const SESSION_PROGRAM: &str = "@@app_name";
/// The instance's name (@@SERVERNAME, SERVERPROPERTY('ServerName') and the like).
const SERVER_NAME: &str = "@@servername";
/// The instance's default data folder (SERVERPROPERTY('InstanceDefaultDataPath')).
const DATA_PATH: &str = "@@instancedefaultdatapath";
/// The instance's default log folder (SERVERPROPERTY('InstanceDefaultLogPath')).
const LOG_PATH: &str = "@@instancedefaultlogpath";

/// The value a parameter named `name` has for a run of a query at `now` (see
/// [`Rewrite::param_names`]).
fn param_value(ctx: &QueryContext<'_>, name: &str, now: chrono::NaiveDateTime) -> Option<Value> {
    let session_text = |field: fn(&SessionInfo) -> &String| {
        let session = ctx.inst.sessions.get(&ctx.spid);
        Value::NVarChar(session.map(|s| field(s).clone()).unwrap_or_default())
    };
    match name {
        CLOCK => Some(Value::NVarChar(fmt_dt(now))),
        LOCAL_CLOCK => Some(Value::NVarChar(fmt_dt(super::model::local(
            now,
            ctx.inst.utc_offset_minutes,
        )))),
        SESSION_ID => Some(Value::Int(i32::from(ctx.spid))),
        SERVER_NAME => Some(Value::NVarChar(ctx.inst.name.clone())),
        DATA_PATH => Some(Value::NVarChar(ctx.inst.data_path.clone())),
        LOG_PATH => Some(Value::NVarChar(ctx.inst.log_path.clone())),
        SESSION_HOST => Some(session_text(|s| &s.host_name)),
        SESSION_PROGRAM => Some(session_text(|s| &s.program_name)),
        variable => ctx.vars.get(variable).cloned(),
    }
}

fn sql_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn find_close(toks: &[Token], open: usize) -> Option<usize> {
    let mut depth = 0;
    for (k, t) in toks.iter().enumerate().skip(open) {
        if t.is_sym("(") {
            depth += 1;
        } else if t.is_sym(")") {
            depth -= 1;
            if depth == 0 {
                return Some(k);
            }
        }
    }
    None
}

/// Argument token ranges of a call whose parens are at `open`..`close`.
fn split_args(toks: &[Token], open: usize, close: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut start = open + 1;
    for (k, t) in toks.iter().enumerate().take(close).skip(open + 1) {
        if t.is_sym("(") {
            depth += 1;
        } else if t.is_sym(")") {
            depth -= 1;
        } else if t.is_sym(",") && depth == 0 {
            out.push((start, k));
            start = k + 1;
        }
    }
    if start < close {
        out.push((start, close));
    }
    out
}

struct Rewriter<'a, 'b> {
    ctx: &'a QueryContext<'b>,
    toks: std::sync::Arc<[Token]>,
    sources: Vec<(String, Source)>,
    params: Vec<Value>,
    param_names: Vec<String>,
    /// Set by `object_name` when a table-valued function call consumed its argument list.
    skip_to: Option<usize>,
    /// The statement's clock: every GETUTCDATE() of one query sees the same instant.
    now: chrono::NaiveDateTime,
    /// Set when the text depends on the instance's state (its databases, a session's host),
    /// not only on what [`memo_key`] holds: such a rewrite is not remembered.
    depends_on_state: bool,
}

impl<'a, 'b> Rewriter<'a, 'b> {
    fn add_source(&mut self, table: String, src: Source) -> String {
        if !self.sources.iter().any(|(n, _)| *n == table) {
            self.sources.push((table.clone(), src));
        }
        quote_ident(&table)
    }

    fn literal_arg(&mut self, range: (usize, usize)) -> Option<Value> {
        if range.1 != range.0 + 1 {
            return None;
        }
        match &self.toks[range.0].kind {
            TokenKind::Str { value, .. } => Some(Value::NVarChar(value.clone())),
            TokenKind::Number(n) => n.parse::<i64>().ok().map(Value::BigInt),
            TokenKind::Var(v) => {
                // The variable's value, not a parameter, shapes the rewrite: it only serves
                // this value.
                self.depends_on_state = true;
                self.ctx.vars.get(&v.to_ascii_lowercase()).cloned()
            }
            _ => None,
        }
    }

    fn messages_table(&mut self, db: &str, written: &str) -> Result<String, SqlError> {
        self.depends_on_state = true;
        let Some(d) = self.ctx.inst.db(db) else {
            return Err(e::invalid_object(written));
        };
        if d.is_system() {
            return Err(e::invalid_object(written));
        }
        if let Some(err) = e::cannot_open(d) {
            return Err(err);
        }
        let name = format!("{}.dbo.Messages", d.name.to_ascii_lowercase());
        Ok(self.add_source(name, Source::Messages(d.name.clone())))
    }

    /// Rewrite tokens `from..to` into SQLite text.
    fn range(&mut self, from: usize, to: usize) -> Result<String, SqlError> {
        let mut out: Vec<String> = Vec::new();
        let mut k = from;
        // `TOP n` of this query level, written as `LIMIT n` at its end.
        let mut limit: Option<String> = None;
        while k < to {
            // The tokens are shared (cached): hold them, not a copy of each.
            let toks = self.toks.clone();
            let tok = &toks[k];
            // Multi-part names: catalog views, msdb tables, dbo.Messages.
            if tok.ident().is_some() {
                let (parts, end) = self.name_parts(k, to);
                if let Some(text) = self.object_name(&parts, k, end)? {
                    out.push(text);
                    k = self.skip_to.take().unwrap_or(end);
                    continue;
                }
            }
            let (text, next) = match &tok.kind {
                TokenKind::Word(w) => self.word(w, k, &mut limit)?,
                TokenKind::Quoted(q) => (Some(quote_ident(q)), k + 1),
                TokenKind::Str { value, .. } => (Some(sql_str(value)), k + 1),
                TokenKind::Number(n) => (Some(n.clone()), k + 1),
                TokenKind::Var(v) => (Some(self.variable(v, k)?), k + 1),
                TokenKind::Global(g) => (Some(self.global(g)?), k + 1),
                TokenKind::Sym(s) => self.symbol(s, k)?,
            };
            out.extend(text);
            k = next;
        }
        let mut text = out.join(" ");
        if let Some(n) = limit {
            text.push_str(&format!(" LIMIT {n}"));
        }
        Ok(text)
    }

    /// The parts of a dotted name starting at token `k` (an empty part for `a..b`), and the
    /// token after it.
    fn name_parts(&self, k: usize, to: usize) -> (Vec<String>, usize) {
        let mut parts = vec![self.toks[k].ident().unwrap_or_default().to_string()];
        let mut j = k + 1;
        while j < to && self.toks.get(j).is_some_and(|t| t.is_sym(".")) {
            if self.toks.get(j + 1).is_some_and(|t| t.is_sym(".")) {
                parts.push(String::new());
                j += 1;
                continue;
            }
            match self.toks.get(j + 1).and_then(|t| t.ident()) {
                Some(p) => {
                    parts.push(p.to_string());
                    j += 2;
                }
                None => break,
            }
        }
        (parts, j)
    }

    /// A word at token `k`: TOP, COLLATE, a table hint, a function call, or a keyword or name
    /// SQLite reads as it is. Returns the text (if any) and the token after what was read.
    fn word(
        &mut self,
        w: &str,
        k: usize,
        limit: &mut Option<String>,
    ) -> Result<(Option<String>, usize), SqlError> {
        let lw = w.to_ascii_lowercase();
        let next_is_open = self.toks.get(k + 1).is_some_and(|t| t.is_sym("("));
        if lw == "top" && limit.is_none() {
            // TOP n / TOP (n) -> LIMIT n at the end of this query level.
            let (n, skip) = if next_is_open {
                (self.toks.get(k + 2).map(|t| t.display()), 4)
            } else {
                (self.toks.get(k + 1).map(|t| t.display()), 2)
            };
            *limit = n;
            return Ok((None, k + skip));
        }
        if lw == "collate" {
            // SQL Server collation names mean nothing to SQLite: keep only the case
            // sensitivity.
            let name = self
                .toks
                .get(k + 1)
                .map(|t| t.display())
                .unwrap_or_default();
            let collate = if name.to_ascii_uppercase().contains("_CS") {
                "COLLATE BINARY"
            } else {
                "COLLATE NOCASE"
            };
            return Ok((Some(collate.into()), k + 2));
        }
        if lw == "with"
            && next_is_open
            && self
                .toks
                .get(k + 2)
                .is_some_and(|t| t.is_kw("nolock") || t.is_kw("readuncommitted"))
        {
            // Table hints: SQLite has no locks to hint at.
            let close = find_close(&self.toks, k + 1).ok_or_else(e::syntax_end)?;
            return Ok((None, close + 1));
        }
        if next_is_open {
            let close = find_close(&self.toks, k + 1).ok_or_else(e::syntax_end)?;
            if let Some(text) = self.function(&lw, k + 1, close)? {
                return Ok((Some(text), close + 1));
            }
        }
        Ok((Some(w.to_string()), k + 1))
    }

    /// A variable at token `k`, as a bound parameter.
    fn variable(&mut self, v: &str, k: usize) -> Result<String, SqlError> {
        let assigns = self.toks.get(k + 1).is_some_and(|t| t.is_sym("="))
            && k > 0
            && (self.toks[k - 1].is_kw("select") || self.toks[k - 1].is_sym(","));
        if assigns {
            // `SELECT @v = expr` assigns variables: not modelled, and SQLite would silently
            // compare instead.
            return Err(SqlError::new(
                141,
                "A SELECT statement that assigns a value to a variable is not supported by the simulator.",
            )
            .with_class(15));
        }
        let name = v.to_ascii_lowercase();
        let Some(value) = self.ctx.vars.get(&name).cloned() else {
            return Err(e::must_declare(v));
        };
        let (_, placeholder) = self.bind(&name, || value);
        Ok(placeholder)
    }

    /// A symbol at token `k`: a parenthesised part is rewritten on its own (its own TOP), and
    /// `+` next to a string is concatenation. Returns the text and the token after it.
    fn symbol(&mut self, s: &str, k: usize) -> Result<(Option<String>, usize), SqlError> {
        if s == "(" {
            let close = find_close(&self.toks, k).ok_or_else(e::syntax_end)?;
            let inner = self.range(k + 1, close)?;
            return Ok((Some(format!("({inner})")), close + 1));
        }
        let is_str = |t: Option<&Token>| t.is_some_and(|t| matches!(t.kind, TokenKind::Str { .. }));
        if s == "+" && (is_str(self.toks.get(k + 1)) || (k > 0 && is_str(self.toks.get(k - 1)))) {
            // T-SQL concatenates strings with `+`; SQLite with `||`.
            return Ok((Some("||".into()), k + 1));
        }
        Ok((Some(s.to_string()), k + 1))
    }

    /// The SQLite text for a multi-part object name, or None when it is not one of ours.
    fn object_name(
        &mut self,
        parts: &[String],
        k: usize,
        j: usize,
    ) -> Result<Option<String>, SqlError> {
        let written = parts.join(".");
        let lower: Vec<String> = parts.iter().map(|p| p.to_ascii_lowercase()).collect();
        let prev_from = k > 0 && (self.toks[k - 1].is_kw("from") || self.toks[k - 1].is_kw("join"));
        let sys_view = match lower.as_slice() {
            [s, v] if s == "sys" => Some(v.clone()),
            [_, s, v] if s == "sys" => Some(v.clone()),
            _ => None,
        };
        if let Some(v) = sys_view {
            let name = format!("sys.{v}");
            if introduced_in(&v).is_some_and(|minimum| !self.ctx.inst.version.at_least(minimum)) {
                return Err(e::invalid_object(&written));
            }
            if v == "dm_os_enumerate_filesystem" {
                let open = j;
                if !self.toks.get(open).is_some_and(|t| t.is_sym("(")) {
                    return Err(e::invalid_object(&written));
                }
                let close = find_close(&self.toks, open).ok_or_else(e::syntax_end)?;
                let args = split_args(&self.toks, open, close);
                let vals: Vec<Option<Value>> = args.iter().map(|r| self.literal_arg(*r)).collect();
                let (Some(Some(Value::NVarChar(dir))), Some(Some(Value::NVarChar(pattern)))) =
                    (vals.first(), vals.get(1))
                else {
                    return Err(SqlError::new(
                        216,
                        "Parameters were not supplied for the function 'sys.dm_os_enumerate_filesystem'.",
                    ));
                };
                // One table per folder and pattern: a listing that has not changed since the
                // last query is then found loaded as it is, not refilled.
                let table = format!("fs {dir} {pattern}");
                let q = self.add_source(
                    table,
                    Source::Files {
                        dir: dir.clone(),
                        pattern: pattern.clone(),
                    },
                );
                // Skip the argument list: the call becomes the filled table.
                self.skip_to = Some(close + 1);
                return Ok(Some(q));
            }
            if v == "dm_db_log_stats" && self.toks.get(j).is_some_and(|t| t.is_sym("(")) {
                let close = find_close(&self.toks, j).ok_or_else(e::syntax_end)?;
                let arg = self.range(j + 1, close)?;
                let q = self.add_source(name.clone(), Source::Catalog("sys.dm_db_log_stats"));
                self.skip_to = Some(close + 1);
                return Ok(Some(format!(
                    "(SELECT * FROM {q} WHERE database_id = ({arg}))"
                )));
            }
            return match catalog::lookup(&name) {
                Some((n, _)) => Ok(Some(self.add_source(n.to_string(), Source::Catalog(n)))),
                None => Err(e::invalid_object(&written)),
            };
        }
        let msdb_table = match lower.as_slice() {
            [m, s, t] if m == "msdb" && (s == "dbo" || s.is_empty()) => Some(t.clone()),
            [s, t] if s == "dbo" && self.ctx.database.eq_ignore_ascii_case("msdb") => {
                Some(t.clone())
            }
            _ => None,
        };
        if let Some(t) = msdb_table {
            let name = format!("msdb.dbo.{t}");
            return match catalog::lookup(&name) {
                Some((n, _)) => Ok(Some(self.add_source(n.to_string(), Source::Catalog(n)))),
                None => Err(e::invalid_object(&written)),
            };
        }
        // Three-part names from here on resolve against the instance's databases.
        if lower.len() == 3 {
            self.depends_on_state = true;
        }
        match lower.as_slice() {
            [s, t] if s == "dbo" => {
                if t == "messages" {
                    let db = self.ctx.database.to_string();
                    return self.messages_table(&db, &written).map(Some);
                }
                Err(e::invalid_object(&written))
            }
            [_, s, t] if (s == "dbo" || s.is_empty()) && t == "messages" => {
                let db = parts[0].clone();
                self.messages_table(&db, &written).map(Some)
            }
            [db, s, _] if (s == "dbo" || s.is_empty()) && self.ctx.inst.db(db).is_some() => {
                Err(e::invalid_object(&written))
            }
            [t] if prev_from && t == "messages" => {
                let db = self.ctx.database.to_string();
                self.messages_table(&db, &written).map(Some)
            }
            _ => Ok(None),
        }
    }

    fn global(&mut self, g: &str) -> Result<String, SqlError> {
        if g.eq_ignore_ascii_case("@@trancount") {
            // Changes with the session's transaction: the rewrite must not be reused.
            self.depends_on_state = true;
        }
        Ok(match g.to_ascii_lowercase().as_str() {
            "@@servername" => self.named_param(SERVER_NAME),
            "@@spid" => self.named_param(SESSION_ID),
            "@@version" => sql_str(
                "Microsoft SQL Server 2019 (RTM) - 15.0.2000.5 (X64) pchat-operator simulator",
            ),
            "@@rowcount" => "0".into(),
            "@@trancount" => self
                .ctx
                .inst
                .sessions
                .get(&self.ctx.spid)
                .map_or(0, |s| s.transaction.count)
                .to_string(),
            "@@error" => "0".into(),
            _ => return Err(e::must_declare(g)),
        })
    }

    /// The SQLite placeholder (`?n`) of parameter `name`, bound to `value` the first time the
    /// query names it, and its index in `params`.
    fn bind(&mut self, name: &str, value: impl FnOnce() -> Value) -> (usize, String) {
        let idx = match self.param_names.iter().position(|p| p == name) {
            Some(i) => i,
            None => {
                self.param_names.push(name.to_string());
                self.params.push(value());
                self.params.len() - 1
            }
        };
        (idx, format!("?{}", idx + 1))
    }

    /// Rewrite a function call; None leaves it to SQLite.
    fn function(
        &mut self,
        name: &str,
        open: usize,
        close: usize,
    ) -> Result<Option<String>, SqlError> {
        let args = split_args(&self.toks, open, close);
        let arg = |this: &mut Self, i: usize| -> Result<String, SqlError> {
            let (a, b) = args[i];
            this.range(a, b)
        };
        Ok(Some(match name {
            "getutcdate" | "sysutcdatetime" => self.named_param(CLOCK),
            "getdate" | "sysdatetime" => self.named_param(LOCAL_CLOCK),
            "isnull" if args.len() == 2 => format!("IFNULL({}, {})", arg(self, 0)?, arg(self, 1)?),
            "len" if args.len() == 1 => format!("LENGTH({})", arg(self, 0)?),
            "count_big" => format!("COUNT({})", self.range(open + 1, close)?),
            "charindex" if args.len() == 2 => {
                format!("INSTR({}, {})", arg(self, 1)?, arg(self, 0)?)
            }
            "left" if args.len() == 2 => format!("SUBSTR({}, 1, {})", arg(self, 0)?, arg(self, 1)?),
            "right" if args.len() == 2 => {
                format!("SUBSTR({}, -({}))", arg(self, 0)?, arg(self, 1)?)
            }
            "substring" if args.len() == 3 => format!(
                "SUBSTR({}, {}, {})",
                arg(self, 0)?,
                arg(self, 1)?,
                arg(self, 2)?
            ),
            "dateadd" if args.len() == 3 => {
                let (modifier, _) = self.date_unit(args[0])?;
                format!(
                    "STRFTIME('%Y-%m-%d %H:%M:%f', {}, ({}) || ' {modifier}')",
                    arg(self, 2)?,
                    arg(self, 1)?
                )
            }
            "datediff" if args.len() == 3 => {
                let (_, secs) = self.date_unit(args[0])?;
                // DATEDIFF counts unit boundaries crossed: difference of floored epoch units.
                let epoch = |x: String| format!("CAST(STRFTIME('%s', {x}) AS INTEGER)");
                let (a, b) = (arg(self, 1)?, arg(self, 2)?);
                format!(
                    "(({} - ({} % {secs})) / {secs} - ({} - ({} % {secs})) / {secs})",
                    epoch(b.clone()),
                    epoch(b),
                    epoch(a.clone()),
                    epoch(a)
                )
            }
            "serverproperty" if args.len() == 1 => self.serverproperty(args[0]),
            "db_name" if args.is_empty() => sql_str(self.ctx.database),
            "db_name" => {
                let id = arg(self, 0)?;
                let q = self.add_source("sys.databases".into(), Source::Catalog("sys.databases"));
                format!("(SELECT name FROM {q} WHERE database_id = ({id}))")
            }
            "db_id" if args.is_empty() => {
                self.depends_on_state = true;
                self.ctx
                    .inst
                    .db(self.ctx.database)
                    .map_or("NULL".into(), |d| d.id.to_string())
            }
            "db_id" => {
                let n = arg(self, 0)?;
                let q = self.add_source("sys.databases".into(), Source::Catalog("sys.databases"));
                format!("(SELECT database_id FROM {q} WHERE name = ({n}) COLLATE NOCASE)")
            }
            "convert" | "try_convert" if args.len() >= 2 => {
                let (a, b) = args[0];
                let ty: Vec<String> = self.toks[a..b].iter().map(|t| t.display()).collect();
                format!("CAST({} AS {})", arg(self, 1)?, ty.join(""))
            }
            "suser_sname" | "suser_name" if args.is_empty() => sql_str("sa"),
            "object_id" if !args.is_empty() => self.object_id(args[0]),
            "host_name" if args.is_empty() => self.named_param(SESSION_HOST),
            "app_name" if args.is_empty() => self.named_param(SESSION_PROGRAM),
            _ => return Ok(None),
        }))
    }

    /// The unit of DATEADD/DATEDIFF at `range`: SQLite's date modifier and the unit in seconds.
    fn date_unit(&self, range: (usize, usize)) -> Result<(&'static str, i64), SqlError> {
        let unit = self.toks[range.0].display().to_ascii_lowercase();
        Ok(match unit.as_str() {
            "second" | "ss" | "s" => ("seconds", 1),
            "minute" | "mi" | "n" => ("minutes", 60),
            "hour" | "hh" => ("hours", 3600),
            "day" | "dd" | "d" => ("days", 86400),
            _ => return Err(e::syntax(&unit)),
        })
    }

    /// SERVERPROPERTY('name') for the properties clients ask for; NULL for the others, as SQL
    /// Server answers an unknown property.
    fn serverproperty(&mut self, range: (usize, usize)) -> String {
        let prop = match self.literal_arg(range) {
            Some(Value::NVarChar(p)) => p.to_ascii_lowercase(),
            _ => String::new(),
        };
        match prop.as_str() {
            "servername" | "machinename" | "instancename" | "computernamephysicalnetbios" => {
                self.named_param(SERVER_NAME)
            }
            "productversion" => sql_str(&self.ctx.inst.version.text),
            "productmajorversion" => sql_str(&self.ctx.inst.version.major().to_string()),
            "instancedefaultdatapath" => self.named_param(DATA_PATH),
            "instancedefaultlogpath" => self.named_param(LOG_PATH),
            "edition" => sql_str("Enterprise Edition (64-bit)"),
            "engineedition" => "3".into(),
            "ishadrenabled" => "0".into(),
            "isclustered" => "0".into(),
            _ => "NULL".into(),
        }
    }

    /// OBJECT_ID('name'): only the catalog and msdb tables exist as objects.
    fn object_id(&mut self, range: (usize, usize)) -> String {
        let name = match self.literal_arg(range) {
            Some(Value::NVarChar(n)) => n.to_ascii_lowercase().replace(['[', ']'], ""),
            _ => String::new(),
        };
        let norm = name.replace("msdb..", "msdb.dbo.");
        let known = catalog::TABLES.iter().position(|(t, _)| {
            t.eq_ignore_ascii_case(&norm) || t.eq_ignore_ascii_case(&format!("master.{norm}"))
        });
        known.map_or("NULL".into(), |i| (1000 + i).to_string())
    }

    /// The value an `@@` name stands for (the clock, a value of the session or the instance)
    /// as a bound parameter (see [`Rewrite::param_names`]): the rewrite then serves every run,
    /// session and instance. Inlined as a literal, the clock would make the text of every
    /// query that reads it new on each run, so SQLite would compile it again every time and
    /// it would push the queries that do repeat out of the statement cache.
    fn named_param(&mut self, name: &'static str) -> String {
        let value = param_value(self.ctx, name, self.now).expect("a value for an @@ name");
        self.bind(name, || value).1
    }
}

/// Rewrites of texts seen before. Re-deriving the same observation queries every pass was a
/// third of the simulator's time per query.
static REWRITES: super::memo::Memo<Rewrite> = super::memo::Memo::new();

/// The version that brought a view or function, for those newer than SQL Server 2014:
/// `sys.dm_db_log_stats` came with 2016 SP2 (13.0.5026), `sys.dm_os_enumerate_filesystem`
/// with 2017 (14.0).
fn introduced_in(view: &str) -> Option<[u32; 4]> {
    match view {
        "dm_db_log_stats" => Some([13, 0, 5026, 0]),
        "dm_os_enumerate_filesystem" => Some([14, 0, 0, 0]),
        _ => None,
    }
}

/// What a remembered rewrite may depend on besides the instance's state (a rewrite that reads
/// that is not remembered): the text, the instance's version (which gates views and is
/// written into the text), the session's database, and the names of the batch's variables
/// (which are declared decides what is refused). The variables' values, the clock, the
/// session's id and login, and the instance's name and folders are bound parameters, set on
/// each run: the observation connections are new sessions after each idle spell, and hundreds
/// of instances send the same texts; a key holding either missed nearly every time.
fn memo_key(ctx: &QueryContext<'_>, sql: &str) -> String {
    let mut vars: Vec<&str> = ctx.vars.keys().map(String::as_str).collect();
    vars.sort_unstable();
    format!(
        "{sql}\0{}\0{}\0{}",
        ctx.inst.version.text,
        ctx.database,
        vars.join("\0")
    )
}

fn rewrite(ctx: &QueryContext<'_>, sql: &str) -> Result<Rewrite, SqlError> {
    let key = memo_key(ctx, sql);
    let now = now();
    if let Some(mut hit) = REWRITES.get(&key) {
        for (param, name) in hit.params.iter_mut().zip(&hit.param_names) {
            if let Some(value) = param_value(ctx, name, now) {
                *param = value;
            }
        }
        return Ok(hit);
    }
    let toks = tokenize_cached(sql)?;
    let mut rw = Rewriter {
        ctx,
        toks,
        sources: Vec::new(),
        params: Vec::new(),
        param_names: Vec::new(),
        skip_to: None,
        now,
        depends_on_state: false,
    };
    let n = rw.toks.len();
    let text = rw.range(0, n)?;
    let done = Rewrite {
        sql: text,
        sources: rw.sources,
        params: rw.params,
        param_names: rw.param_names,
    };
    if !rw.depends_on_state {
        REWRITES.insert(key, done.clone());
    }
    Ok(done)
}

fn to_sql(v: &Value) -> Sql {
    match v {
        Value::Null => Sql::Null,
        Value::Bit(b) => Sql::Integer(*b as i64),
        Value::Int(i) => Sql::Integer(*i as i64),
        Value::BigInt(i) => Sql::Integer(*i),
        Value::Float(f) => Sql::Real(*f),
        Value::Numeric(n) => i64::try_from(*n).map_or(Sql::Text(n.to_string()), Sql::Integer),
        Value::NVarChar(s) => Sql::Text(s.clone()),
        Value::DateTime(d) => Sql::Text(fmt_dt(*d)),
        Value::VarBinary(b) => Sql::Blob(b.clone()),
        Value::UniqueIdentifier(g) => Sql::Text(
            g.iter()
                .enumerate()
                .map(|(i, b)| {
                    let dash = matches!(i, 4 | 6 | 8 | 10);
                    format!("{}{b:02X}", if dash { "-" } else { "" })
                })
                .collect(),
        ),
    }
}

fn decl_to_type(decl: &str) -> Option<ColumnType> {
    let d = decl.to_ascii_uppercase();
    let num = |s: &str| -> Option<u16> { s.trim().parse().ok() };
    let inner = d
        .find('(')
        .and_then(|o| d.rfind(')').map(|c| d[o + 1..c].to_string()));
    let base = d.split('(').next().unwrap_or("").trim().to_string();
    Some(match base.as_str() {
        "NUMERIC" | "DECIMAL" => {
            let (p, s) = inner
                .as_deref()
                .and_then(|i| i.split_once(','))
                .map_or((18, 0), |(p, s)| {
                    (num(p).unwrap_or(18) as u8, num(s).unwrap_or(0) as u8)
                });
            ColumnType::Numeric {
                precision: p,
                scale: s,
            }
        }
        "BIGINT" => ColumnType::BigInt,
        "INT" => ColumnType::Int,
        "SMALLINT" => ColumnType::SmallInt,
        "TINYINT" => ColumnType::TinyInt,
        "BIT" => ColumnType::Bit,
        "FLOAT" | "REAL" => ColumnType::Float,
        "DATETIME" => ColumnType::DateTime,
        "DATETIME2" => ColumnType::DateTime2,
        "UNIQUEIDENTIFIER" => ColumnType::UniqueIdentifier,
        "NVARCHAR" | "NCHAR" | "VARCHAR" | "CHAR" => {
            // nvarchar(max) is declared with its 2^30-1 character limit (SQLite has no MAX).
            ColumnType::NVarChar(inner.as_deref().and_then(num).filter(|n| *n <= 4000))
        }
        _ => return None,
    })
}

/// A date and time in the text forms the model reads and writes: `yyyy-mm-dd hh:mm:ss[.f...]`,
/// or the same with `T` between date and time.
pub fn parse_datetime(s: &str) -> Option<chrono::NaiveDateTime> {
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f"))
        .ok()
}

fn sql_text(v: &Sql) -> String {
    match v {
        Sql::Null => String::new(),
        Sql::Integer(i) => i.to_string(),
        Sql::Real(f) => f.to_string(),
        Sql::Text(s) => s.clone(),
        Sql::Blob(b) => b.iter().map(|x| format!("{x:02X}")).collect(),
    }
}

/// A SQLite value as the column's SQL Server type. A value that does not fit the declared type
/// (SQLite is dynamically typed) is converted the way SQL Server would convert it, or shown as
/// text when it cannot be.
fn convert(v: &Sql, ty: ColumnType) -> Value {
    if matches!(v, Sql::Null) {
        return Value::Null;
    }
    let as_int = || match v {
        Sql::Integer(i) => Some(*i),
        Sql::Real(f) => Some(*f as i64),
        Sql::Text(s) => s.trim().parse().ok(),
        _ => None,
    };
    let text = || Value::NVarChar(sql_text(v));
    match ty {
        ColumnType::Bit => as_int().map_or_else(text, |i| Value::Bit(i != 0)),
        ColumnType::Int | ColumnType::SmallInt | ColumnType::TinyInt => {
            as_int().map_or_else(text, |i| Value::Int(i as i32))
        }
        ColumnType::BigInt => as_int().map_or_else(text, Value::BigInt),
        ColumnType::Numeric { .. } => match v {
            Sql::Text(s) => s
                .trim()
                .parse::<i128>()
                .map_or_else(|_| text(), Value::Numeric),
            _ => as_int().map_or_else(text, |i| Value::Numeric(i as i128)),
        },
        ColumnType::Float => match v {
            Sql::Real(f) => Value::Float(*f),
            Sql::Integer(i) => Value::Float(*i as f64),
            Sql::Text(s) => s.trim().parse().map_or_else(|_| text(), Value::Float),
            _ => text(),
        },
        ColumnType::DateTime | ColumnType::DateTime2 => match v {
            Sql::Text(s) => parse_datetime(s).map_or_else(text, Value::DateTime),
            _ => text(),
        },
        ColumnType::UniqueIdentifier => match v {
            Sql::Text(s) => super::backup::guid_bytes(s),
            _ => text(),
        },
        ColumnType::VarBinary(_) => match v {
            Sql::Blob(b) => Value::VarBinary(b.clone()),
            _ => text(),
        },
        ColumnType::NVarChar(_) => text(),
    }
}

/// A column's type from the values when SQLite has no declared type (an expression).
fn infer(name: &str, values: &[&Sql]) -> ColumnType {
    if name.to_ascii_lowercase().ends_with("lsn") {
        return ColumnType::Numeric {
            precision: 25,
            scale: 0,
        };
    }
    let mut ty: Option<ColumnType> = None;
    for v in values {
        let t = match v {
            Sql::Null => continue,
            Sql::Integer(i) if i32::try_from(*i).is_ok() => ColumnType::Int,
            Sql::Integer(_) => ColumnType::BigInt,
            Sql::Real(_) => ColumnType::Float,
            Sql::Text(s) if parse_datetime(s).is_some() => ColumnType::DateTime2,
            Sql::Text(_) => ColumnType::NVarChar(Some(4000)),
            Sql::Blob(_) => ColumnType::VarBinary(None),
        };
        ty = Some(match (ty, t) {
            (None, t) => t,
            (Some(ColumnType::Int), ColumnType::BigInt) => ColumnType::BigInt,
            (Some(ColumnType::BigInt), ColumnType::Int) => ColumnType::BigInt,
            (Some(a), b) if a == b => a,
            _ => ColumnType::NVarChar(Some(4000)),
        });
    }
    match ty {
        Some(ColumnType::NVarChar(_))
            if values
                .iter()
                .any(|v| matches!(v, Sql::Text(s) if s.chars().count() > 4000)) =>
        {
            ColumnType::NVarChar(None)
        }
        Some(t) => t,
        None => ColumnType::Int,
    }
}

fn map_sqlite_error(err: rusqlite::Error) -> SqlError {
    let msg = err.to_string();
    // SQLite may append " in <sql> at offset N": keep the name only.
    let first_word = |s: &str| s.split_whitespace().next().unwrap_or("").to_string();
    if let Some(t) = msg.strip_prefix("no such table: ") {
        return e::invalid_object(&first_word(t));
    }
    if let Some(c) = msg.strip_prefix("no such column: ") {
        let c = first_word(c);
        return e::invalid_column(c.rsplit('.').next().unwrap_or(&c));
    }
    if let Some(f) = msg.strip_prefix("no such function: ") {
        return SqlError::new(
            195,
            format!("'{f}' is not a recognized built-in function name."),
        )
        .with_class(15);
    }
    if let Some(rest) = msg.strip_prefix("near \"")
        && let Some((near, _)) = rest.split_once('"')
    {
        return e::syntax(near);
    }
    if msg.contains("ambiguous column name") {
        let c = msg.rsplit(": ").next().unwrap_or("");
        return SqlError::new(209, format!("Ambiguous column name '{c}'.")).with_class(16);
    }
    e::syntax(&msg)
}

fn fill(
    ctx: &QueryContext<'_>,
    tables: &mut SqliteTables,
    name: &str,
    src: &Source,
) -> Result<(), SqlError> {
    let (columns, rows) = source_rows(ctx, src)?;
    let content = super::model::LoadedTable { columns, rows };
    let SqliteTables { connection, loaded } = tables;
    let same_columns = match loaded.get(name) {
        Some(old) if *old == content => return Ok(()),
        Some(old) => old.columns == content.columns,
        None => false,
    };
    // Forget the table first: if loading fails half way, the next query must reload it.
    loaded.remove(name);
    let conn = &*connection;
    if same_columns {
        // Only the rows changed: replace them without DDL, which would make SQLite recompile
        // every cached statement of the connection.
        catalog::refill(conn, name, &content.rows).map_err(map_sqlite_error)?;
    } else {
        catalog::load(conn, name, columns, &content.rows).map_err(map_sqlite_error)?;
    }
    loaded.insert(name.to_string(), content);
    Ok(())
}

type Columns = &'static [(&'static str, &'static str)];

/// The columns and rows a query's source has now.
fn source_rows(ctx: &QueryContext<'_>, src: &Source) -> Result<(Columns, Vec<Vec<Sql>>), SqlError> {
    Ok(match src {
        Source::Catalog(t) => {
            let (_, cols) = catalog::lookup(t).expect("known table");
            (*cols, catalog::rows(ctx.inst, t))
        }
        Source::Messages(db) => {
            let rows: Vec<Vec<Sql>> = ctx
                .inst
                .db(db)
                .map(|d| {
                    d.rows
                        .iter()
                        .map(|m| {
                            vec![
                                Sql::Integer(m.id),
                                m.chat_server.clone().map_or(Sql::Null, Sql::Text),
                                m.body.clone().map_or(Sql::Null, Sql::Text),
                                m.posted_at.map_or(Sql::Null, |d| Sql::Text(fmt_dt(d))),
                            ]
                        })
                        .collect()
                })
                .unwrap_or_default();
            (MESSAGES_COLUMNS, rows)
        }
        Source::Files { dir, pattern } => {
            let listing = super::paths::resolve(ctx.state, &ctx.inst.name, dir).map_err(|_| {
                SqlError::new(
                    3,
                    format!("The system cannot find the path specified. ('{dir}')"),
                )
            })?;
            let rows: Vec<Vec<Sql>> = super::paths::list_files(&listing.local)
                .into_iter()
                .filter(|f| wildcard(pattern, f))
                .map(|f| {
                    let local = listing.local.join(&f);
                    let meta = std::fs::metadata(&local).ok();
                    let modified = meta
                        .as_ref()
                        .and_then(|m| m.modified().ok())
                        .map(|t| chrono::DateTime::<chrono::Utc>::from(t).naive_utc())
                        .unwrap_or_else(now);
                    vec![
                        Sql::Text(super::paths::join(dir, &f)),
                        Sql::Text(dir.clone()),
                        Sql::Text(f),
                        Sql::Integer(0),
                        Sql::Integer(0),
                        Sql::Integer(0),
                        Sql::Integer(0),
                        Sql::Integer(0),
                        Sql::Integer(0),
                        Sql::Integer(0),
                        Sql::Integer(0),
                        Sql::Text(fmt_dt(modified)),
                        Sql::Text(fmt_dt(modified)),
                        Sql::Text(fmt_dt(modified)),
                        Sql::Integer(meta.map_or(0, |m| m.len() as i64)),
                    ]
                })
                .collect();
            (FS_COLUMNS, rows)
        }
    })
}

const FS_COLUMNS: &[(&str, &str)] = &[
    ("full_filesystem_path", "NVARCHAR(512)"),
    ("parent_directory", "NVARCHAR(512)"),
    ("file_or_directory_name", "NVARCHAR(512)"),
    ("level", "INT"),
    ("is_directory", "BIT"),
    ("is_read_only", "BIT"),
    ("is_system", "BIT"),
    ("is_hidden", "BIT"),
    ("has_integrity_stream", "BIT"),
    ("is_temporary", "BIT"),
    ("is_sparse", "BIT"),
    ("creation_time", "DATETIME"),
    ("last_access_time", "DATETIME"),
    ("last_write_time", "DATETIME"),
    ("size_in_bytes", "BIGINT"),
];

/// `*` and `?` wildcards, case-insensitive, as Windows matches file names.
pub fn wildcard(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let n: Vec<char> = name.to_ascii_lowercase().chars().collect();
    fn m(p: &[char], n: &[char]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some('*'), _) => m(&p[1..], n) || (!n.is_empty() && m(p, &n[1..])),
            (Some('?'), Some(_)) => m(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => m(&p[1..], &n[1..]),
            _ => false,
        }
    }
    m(&p, &n)
}

fn value_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Bit(b) => (*b as i32).to_string(),
        Value::Int(i) => i.to_string(),
        Value::BigInt(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Numeric(n) => n.to_string(),
        Value::NVarChar(s) => s.clone(),
        Value::DateTime(d) => fmt_dt(*d),
        Value::VarBinary(b) => b.iter().map(|x| format!("{x:02X}")).collect(),
        Value::UniqueIdentifier(_) => match to_sql(v) {
            Sql::Text(s) => s,
            _ => String::new(),
        },
    }
}

/// Run a query for a session and return its result set.
pub fn run_select(ctx: &QueryContext<'_>, sql: &str) -> Result<ResultSet, SqlError> {
    let rw = rewrite(ctx, sql)?;
    let mut tables = SqliteTables::of(ctx.inst);
    for (name, src) in &rw.sources {
        fill(ctx, &mut tables, name, src)?;
    }
    let conn = &tables.connection;
    // The same observation queries come back every pass: keep them compiled.
    let mut stmt = conn.prepare_cached(&rw.sql).map_err(map_sqlite_error)?;
    let names: Vec<String> = stmt.column_names().map(|s| s.to_string()).collect();
    let decls: Vec<Option<ColumnType>> = stmt
        .columns()
        .map(|c| c.decl_type().and_then(decl_to_type))
        .collect();
    let params: Vec<Sql> = rw.params.iter().map(to_sql).collect();
    let mut rows = stmt
        .query(rusqlite::params_from_iter(params.iter()))
        .map_err(map_sqlite_error)?;
    let mut raw: Vec<Vec<Sql>> = Vec::new();
    while let Some(row) = rows.next().map_err(map_sqlite_error)? {
        let mut r = Vec::with_capacity(names.len());
        for c in 0..names.len() {
            let v = row.get_ref(c).map_err(map_sqlite_error)?;
            r.push(match v {
                ValueRef::Null => Sql::Null,
                ValueRef::Integer(i) => Sql::Integer(i),
                ValueRef::Real(f) => Sql::Real(f),
                ValueRef::Text(t) => Sql::Text(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => Sql::Blob(b.to_vec()),
            });
        }
        raw.push(r);
    }
    let columns: Vec<Column> = names
        .iter()
        .enumerate()
        .map(|(c, name)| {
            let ty = decls[c].unwrap_or_else(|| {
                let vals: Vec<&Sql> = raw.iter().map(|r| &r[c]).collect();
                infer(name, &vals)
            });
            Column {
                name: name.clone(),
                ty,
                nullable: true,
            }
        })
        .collect();
    let rows: Vec<Vec<Value>> = raw
        .iter()
        .map(|r| {
            r.iter()
                .zip(&columns)
                .map(|(v, c)| convert(v, c.ty))
                .collect()
        })
        .collect();
    let mut columns = columns;
    for (c, col) in columns.iter_mut().enumerate() {
        // A value that does not match its column's type (SQLite is dynamically typed) turns
        // the column into text; text longer than the declared size widens it to nvarchar(max).
        let texts = rows.iter().filter(|r| matches!(r[c], Value::NVarChar(_)));
        let longest = texts
            .clone()
            .map(|r| match &r[c] {
                Value::NVarChar(s) => s.chars().count(),
                _ => 0,
            })
            .max();
        let Some(longest) = longest else { continue };
        col.ty = match col.ty {
            ColumnType::NVarChar(Some(n)) if longest > n as usize => ColumnType::NVarChar(None),
            ColumnType::NVarChar(n) => ColumnType::NVarChar(n),
            _ if longest > 4000 => ColumnType::NVarChar(None),
            _ => ColumnType::NVarChar(Some(4000)),
        };
    }
    let rows = rows
        .into_iter()
        .map(|r| {
            r.into_iter()
                .zip(&columns)
                .map(|(v, c)| match (c.ty, v) {
                    (ColumnType::NVarChar(_), Value::NVarChar(s)) => Value::NVarChar(s),
                    (ColumnType::NVarChar(_), Value::Null) => Value::Null,
                    (ColumnType::NVarChar(_), other) => Value::NVarChar(value_text(&other)),
                    (_, v) => v,
                })
                .collect()
        })
        .collect();
    Ok(ResultSet { columns, rows })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_matches_like_windows_file_patterns() {
        assert!(wildcard("*.trn", "mgc_20261126120000.TRN"));
        assert!(wildcard("mgc_??*.trn", "mgc_20261126120000.trn"));
        assert!(!wildcard("*.trn", "mgc.bak"));
    }

    #[test]
    fn declared_types_map_to_sql_server_column_types() {
        assert_eq!(
            decl_to_type("NUMERIC(25,0)"),
            Some(ColumnType::Numeric {
                precision: 25,
                scale: 0
            })
        );
        assert_eq!(
            decl_to_type("NVARCHAR(128)"),
            Some(ColumnType::NVarChar(Some(128)))
        );
        assert_eq!(
            decl_to_type("NVARCHAR(1073741823)"),
            Some(ColumnType::NVarChar(None))
        );
        assert_eq!(decl_to_type("whatever"), None);
    }

    #[test]
    fn a_value_that_does_not_fit_its_declared_type_is_shown_as_text() {
        assert_eq!(
            convert(&Sql::Text("abc".into()), ColumnType::Int),
            Value::NVarChar("abc".into())
        );
        assert_eq!(
            convert(&Sql::Text("12".into()), ColumnType::Int),
            Value::Int(12)
        );
        assert_eq!(
            convert(&Sql::Real(1.5), ColumnType::NVarChar(Some(10))),
            Value::NVarChar("1.5".into())
        );
    }
}
