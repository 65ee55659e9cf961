//! The server's token stream (MS-TDS 2.2.7): encodes an `Outcome` as SQL Server would send
//! it for a SQL batch or an RPC, and the login response.

use super::encode::{put_type_info, put_value};
use super::types::COLLATION;
use super::wire::{put_b_varchar, put_us_varchar};
use crate::backend::{
    Column, ColumnType, Outcome, Output, ResultSet, ServerMessage, TransactionChange, Value,
};

const COLMETADATA: u8 = 0x81;
const ROW: u8 = 0xD1;
const NBCROW: u8 = 0xD2;
const DONE: u8 = 0xFD;
const DONEPROC: u8 = 0xFE;
const DONEINPROC: u8 = 0xFF;
const ERROR: u8 = 0xAA;
const INFO: u8 = 0xAB;
const LOGINACK: u8 = 0xAD;
const ENVCHANGE: u8 = 0xE3;
const RETURNSTATUS: u8 = 0x79;
const RETURNVALUE: u8 = 0xAC;
const FEATUREEXTACK: u8 = 0xAE;
/// Ends the FEATUREEXTACK list.
const FEATURE_TERMINATOR: u8 = 0xFF;

/// DONE status bits (MS-TDS 2.2.7.6).
pub const DONE_MORE: u16 = 0x0001;
pub const DONE_ERROR: u16 = 0x0002;
pub const DONE_COUNT: u16 = 0x0010;
pub const DONE_ATTN: u16 = 0x0020;

/// CurCmd of a SELECT (the value SQL Server puts in the DONE after a result set).
const CMD_SELECT: u16 = 0xC1;

/// TDS 7.4 as LOGINACK carries it (big-endian on the wire).
const TDS_7_4: u32 = 0x7400_0004;

/// The server version LOGINACK reports: 15.0.2000 (SQL Server 2019 RTM).
const SERVER_VERSION: [u8; 4] = [15, 0, 0x07, 0xD0];

/// COLMETADATA flag: the column is nullable.
const COL_NULLABLE: u16 = 0x0001;
/// COLMETADATA flag: updateable "unknown" (2 << 2), what SQL Server sends for expressions.
const COL_UPDATEABLE_UNKNOWN: u16 = 0x0008;

/// Builds one response message, remembering where each DONE-family status is so the
/// DONE_MORE bits can be set once the end is known.
#[derive(Default)]
pub struct TokenWriter {
    buf: Vec<u8>,
    done_status_at: Vec<usize>,
    ends_with_done: bool,
}

impl TokenWriter {
    pub fn new() -> Self {
        Self::default()
    }

    fn token(&mut self, ty: u8) {
        self.buf.push(ty);
        self.ends_with_done = false;
    }

    pub fn done_kind(&mut self, kind: u8, status: u16, cur_cmd: u16, rows: u64) {
        self.token(kind);
        self.done_status_at.push(self.buf.len());
        self.buf.extend_from_slice(&status.to_le_bytes());
        self.buf.extend_from_slice(&cur_cmd.to_le_bytes());
        self.buf.extend_from_slice(&rows.to_le_bytes());
        self.ends_with_done = true;
    }

    pub fn done(&mut self, status: u16, rows: u64) {
        self.done_kind(DONE, status, 0, rows);
    }

    /// ERROR (class > 10) or INFO token.
    pub fn message(&mut self, m: &ServerMessage) {
        self.token(if m.class > 10 { ERROR } else { INFO });
        let mut body = Vec::new();
        body.extend_from_slice(&m.number.to_le_bytes());
        body.push(m.state);
        body.push(m.class);
        put_us_varchar(&mut body, &m.text);
        put_b_varchar(&mut body, &m.server);
        put_b_varchar(&mut body, &m.procedure);
        body.extend_from_slice(&m.line.to_le_bytes());
        self.put_len_u16(&body);
    }

    fn put_len_u16(&mut self, body: &[u8]) {
        self.buf
            .extend_from_slice(&(body.len() as u16).to_le_bytes());
        self.buf.extend_from_slice(body);
    }

    /// ENVCHANGE with two B_VARCHAR values (database, language, packet size).
    pub fn env_change_text(&mut self, ty: u8, new: &str, old: &str) {
        self.token(ENVCHANGE);
        let mut body = vec![ty];
        put_b_varchar(&mut body, new);
        put_b_varchar(&mut body, old);
        self.put_len_u16(&body);
    }

    /// ENVCHANGE type 8 (begin), 9 (commit) or 10 (rollback): B_VARBYTE new and old values,
    /// the descriptor as new value of a begin and old value of a commit or rollback.
    pub fn env_change_transaction(&mut self, change: TransactionChange) {
        let (ty, new, old) = match change {
            TransactionChange::Began { descriptor } => (8, Some(descriptor), None),
            TransactionChange::Committed { descriptor } => (9, None, Some(descriptor)),
            TransactionChange::RolledBack { descriptor } => (10, None, Some(descriptor)),
        };
        self.token(ENVCHANGE);
        let mut body = vec![ty];
        for value in [new, old] {
            match value {
                Some(d) => {
                    body.push(8);
                    body.extend_from_slice(&d.to_le_bytes());
                }
                None => body.push(0),
            }
        }
        self.put_len_u16(&body);
    }

    /// ENVCHANGE type 7: the SQL collation, new value only.
    pub fn env_change_collation(&mut self) {
        self.token(ENVCHANGE);
        let mut body = vec![7, COLLATION.len() as u8];
        body.extend_from_slice(&COLLATION);
        body.push(0);
        self.put_len_u16(&body);
    }

    pub fn login_ack(&mut self) {
        self.token(LOGINACK);
        let mut body = vec![1]; // interface: SQL_TSQL
        body.extend_from_slice(&TDS_7_4.to_be_bytes());
        put_b_varchar(&mut body, "Microsoft SQL Server");
        body.extend_from_slice(&SERVER_VERSION);
        self.put_len_u16(&body);
    }

    pub fn col_metadata(&mut self, columns: &[Column]) {
        self.token(COLMETADATA);
        self.buf
            .extend_from_slice(&(columns.len() as u16).to_le_bytes());
        for c in columns {
            self.buf.extend_from_slice(&0u32.to_le_bytes()); // UserType
            let mut flags = COL_UPDATEABLE_UNKNOWN;
            if c.nullable {
                flags |= COL_NULLABLE;
            }
            self.buf.extend_from_slice(&flags.to_le_bytes());
            put_type_info(&mut self.buf, c.ty);
            put_b_varchar(&mut self.buf, &c.name);
        }
    }

    /// ROW, or NBCROW when the row has NULLs (as SQL Server does to save bytes).
    pub fn row(&mut self, columns: &[Column], values: &[Value]) -> Result<(), String> {
        if values.len() != columns.len() {
            return Err(format!(
                "a row of {} values for {} columns",
                values.len(),
                columns.len()
            ));
        }
        let mut body = Vec::new();
        let has_null = values.contains(&Value::Null);
        if has_null {
            let mut bitmap = vec![0u8; columns.len().div_ceil(8)];
            for (i, v) in values.iter().enumerate() {
                if *v == Value::Null {
                    bitmap[i / 8] |= 1 << (i % 8);
                }
            }
            body.extend_from_slice(&bitmap);
        }
        for (c, v) in columns.iter().zip(values) {
            if has_null && *v == Value::Null {
                continue;
            }
            put_value(&mut body, c.ty, v).map_err(|e| format!("column {}: {e}", c.name))?;
        }
        self.token(if has_null { NBCROW } else { ROW });
        self.buf.extend_from_slice(&body);
        Ok(())
    }

    pub fn return_status(&mut self, status: i32) {
        self.token(RETURNSTATUS);
        self.buf.extend_from_slice(&status.to_le_bytes());
    }

    pub fn return_value(
        &mut self,
        ordinal: u16,
        name: &str,
        ty: ColumnType,
        value: &Value,
    ) -> Result<(), String> {
        let mut body = Vec::new();
        body.extend_from_slice(&ordinal.to_le_bytes());
        put_b_varchar(&mut body, name);
        body.push(0x01); // status: output parameter
        body.extend_from_slice(&0u32.to_le_bytes()); // UserType
        body.extend_from_slice(&COL_NULLABLE.to_le_bytes());
        put_type_info(&mut body, ty);
        put_value(&mut body, ty, value).map_err(|e| format!("output parameter {name}: {e}"))?;
        self.token(RETURNVALUE);
        self.buf.extend_from_slice(&body);
        Ok(())
    }

    /// Sets DONE_MORE on every DONE-family token but the last and returns the message.
    pub fn finish(mut self) -> Vec<u8> {
        if let Some((_, rest)) = self.done_status_at.split_last() {
            for &at in rest {
                let status = u16::from_le_bytes([self.buf[at], self.buf[at + 1]]) | DONE_MORE;
                self.buf[at..at + 2].copy_from_slice(&status.to_le_bytes());
            }
        }
        self.buf
    }
}

/// Whether the request was a SQL batch or an RPC (which ends in RETURNSTATUS and DONEPROC).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestKind {
    Batch,
    /// The RPC's parameter names in wire order, for RETURNVALUE ordinals.
    Rpc(Vec<String>),
}

/// INFO 5701, which SQL Server sends with the database ENVCHANGE of a login.
fn changed_database(server: &str, db: &str) -> ServerMessage {
    ServerMessage {
        number: 5701,
        state: 2,
        class: 0,
        text: format!("Changed database context to '{db}'."),
        server: server.to_string(),
        procedure: String::new(),
        line: 1,
    }
}

/// An output the front end could not encode: a model bug, reported to the client as an error
/// rather than a malformed stream.
fn encoding_failure(server: &str, what: String) -> ServerMessage {
    tracing::error!(%what, "simulator produced a value it cannot encode");
    ServerMessage {
        number: 50000,
        state: 1,
        class: 16,
        text: format!("simulator front end cannot encode the result: {what}"),
        server: server.to_string(),
        procedure: String::new(),
        line: 1,
    }
}

/// Encodes a request's outcome as its response message.
pub fn encode_outcome(outcome: &Outcome, kind: &RequestKind, server: &str) -> Vec<u8> {
    let mut w = TokenWriter::new();
    let done_kind = match kind {
        RequestKind::Batch => DONE,
        RequestKind::Rpc(_) => DONEINPROC,
    };
    let mut any_error = false;
    // A failed statement's ERROR tokens (often two, e.g. 3201 then 3013) are closed by one
    // DONE with DONE_ERROR before whatever the next statement sends.
    let mut failed_statement_open = false;
    let mut return_status = None;
    let mut return_values = Vec::new();
    for output in &outcome.outputs {
        let is_message = matches!(output, Output::Message(_));
        if failed_statement_open && !is_message {
            w.done_kind(done_kind, DONE_ERROR, 0, 0);
            failed_statement_open = false;
        }
        match output {
            Output::ResultSet(rs) => {
                if let Err(e) = result_set(&mut w, rs, done_kind) {
                    // The partial result set is closed with an error DONE.
                    w.message(&encoding_failure(server, e));
                    w.done_kind(done_kind, DONE_ERROR, CMD_SELECT, 0);
                    any_error = true;
                }
            }
            Output::RowCount(n) => w.done_kind(done_kind, DONE_COUNT, 0, *n),
            Output::Message(m) => {
                w.message(m);
                if m.class > 10 {
                    any_error = true;
                    failed_statement_open = true;
                }
            }
            // The model sends INFO 5701 itself, as its own output after this one.
            Output::DatabaseChanged { old, new } => w.env_change_text(1, new, old),
            Output::TransactionChanged(change) => w.env_change_transaction(*change),
            Output::ReturnStatus(s) => match kind {
                RequestKind::Batch => w.return_status(*s),
                RequestKind::Rpc(_) => return_status = Some(*s),
            },
            Output::ReturnValue { name, value, ty } => match kind {
                // Output parameters exist only for RPC; a batch has nowhere to put them.
                RequestKind::Batch => {}
                RequestKind::Rpc(_) => return_values.push((name, value, *ty)),
            },
        }
    }
    if failed_statement_open {
        w.done_kind(done_kind, DONE_ERROR, 0, 0);
    }
    match kind {
        RequestKind::Batch => {
            if !w.ends_with_done {
                w.done(0, 0);
            }
        }
        RequestKind::Rpc(wire_names) => {
            // RETURNSTATUS "MUST be returned to the client when an RPC is executed".
            w.return_status(return_status.unwrap_or(0));
            for (name, value, ty) in return_values {
                let ordinal = wire_names
                    .iter()
                    .position(|n| n.eq_ignore_ascii_case(name))
                    .unwrap_or(wire_names.len()) as u16;
                if let Err(e) = w.return_value(ordinal, name, ty, value) {
                    w.message(&encoding_failure(server, e));
                    any_error = true;
                }
            }
            let status = if any_error { DONE_ERROR } else { 0 };
            w.done_kind(DONEPROC, status, 0, 0);
        }
    }
    w.finish()
}

fn result_set(w: &mut TokenWriter, rs: &ResultSet, done_kind: u8) -> Result<(), String> {
    w.col_metadata(&rs.columns);
    for row in &rs.rows {
        w.row(&rs.columns, row)?;
    }
    w.done_kind(done_kind, DONE_COUNT, CMD_SELECT, rs.rows.len() as u64);
    Ok(())
}

/// The acknowledgement of an ATTENTION: a lone DONE with DONE_ATTN.
pub fn attention_ack() -> Vec<u8> {
    let mut w = TokenWriter::new();
    w.done(DONE_ATTN, 0);
    w.finish()
}

/// The response to a successful LOGIN7, in SQL Server's order. `feature_ext`: the client
/// sent FeatureExt, which MS-TDS requires to be answered with FEATUREEXTACK; the simulator
/// acknowledges no optional feature (UTF-8, session recovery, ...), so the list is empty.
pub fn login_success(
    server: &str,
    database: &str,
    packet_size: usize,
    feature_ext: bool,
) -> Vec<u8> {
    let mut w = TokenWriter::new();
    w.env_change_text(1, database, "master");
    w.message(&changed_database(server, database));
    w.env_change_collation();
    w.env_change_text(2, "us_english", "");
    w.message(&ServerMessage {
        number: 5703,
        state: 1,
        class: 0,
        text: "Changed language setting to us_english.".into(),
        server: server.to_string(),
        procedure: String::new(),
        line: 1,
    });
    w.login_ack();
    if feature_ext {
        w.token(FEATUREEXTACK);
        w.buf.push(FEATURE_TERMINATOR);
    }
    w.env_change_text(4, &packet_size.to_string(), "4096");
    w.done(0, 0);
    w.finish()
}

/// The response to a refused LOGIN7: the ERROR and a DONE with DONE_ERROR.
pub fn login_failure(m: &ServerMessage) -> Vec<u8> {
    let mut w = TokenWriter::new();
    w.message(m);
    w.done(DONE_ERROR, 0);
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dones(bytes: &[u8]) -> usize {
        bytes.iter().filter(|b| **b == DONE).count()
    }

    #[test]
    fn batch_with_two_result_sets_sets_done_more_on_all_but_the_last() {
        let rs = ResultSet {
            columns: vec![Column {
                name: "a".into(),
                ty: ColumnType::Int,
                nullable: false,
            }],
            rows: vec![vec![Value::Int(7)]],
        };
        let outcome = Outcome {
            outputs: vec![Output::ResultSet(rs.clone()), Output::ResultSet(rs)],
        };
        let bytes = encode_outcome(&outcome, &RequestKind::Batch, "s");
        // Each result set: COLMETADATA(0x81) 1 col ... ROW ... DONE.
        let tail = &bytes[bytes.len() - 13..];
        assert_eq!(tail[0], DONE);
        assert_eq!(u16::from_le_bytes([tail[1], tail[2]]), DONE_COUNT);
        assert!(dones(&bytes) >= 2);
        let first_done = bytes.iter().position(|b| *b == DONE).unwrap();
        let status = u16::from_le_bytes([bytes[first_done + 1], bytes[first_done + 2]]);
        assert_eq!(status, DONE_COUNT | DONE_MORE);
    }

    fn error(number: i32) -> Output {
        Output::Message(ServerMessage {
            number,
            state: 1,
            class: 16,
            text: "failed".into(),
            server: "s".into(),
            procedure: String::new(),
            line: 1,
        })
    }

    /// (token, status) of every DONE-family token, in order; the test streams hold no
    /// other 0xFD bytes.
    fn done_statuses(bytes: &[u8]) -> Vec<u16> {
        bytes
            .windows(3)
            .filter(|w| w[0] == DONE)
            .map(|w| u16::from_le_bytes([w[1], w[2]]))
            .collect()
    }

    #[test]
    fn consecutive_errors_of_one_statement_share_one_error_done() {
        let outcome = Outcome {
            outputs: vec![error(3201), error(3013), Output::RowCount(2)],
        };
        let bytes = encode_outcome(&outcome, &RequestKind::Batch, "s");
        assert_eq!(bytes[0], ERROR);
        assert_eq!(
            done_statuses(&bytes),
            vec![DONE_ERROR | DONE_MORE, DONE_COUNT]
        );
    }

    #[test]
    fn a_batch_ending_in_an_error_ends_with_an_error_done() {
        let outcome = Outcome {
            outputs: vec![error(4305)],
        };
        let bytes = encode_outcome(&outcome, &RequestKind::Batch, "s");
        assert_eq!(done_statuses(&bytes), vec![DONE_ERROR]);
    }

    #[test]
    fn login_response_acknowledges_feature_ext_only_when_the_client_sent_it() {
        let with = login_success("s", "mgc", 4096, true);
        let without = login_success("s", "mgc", 4096, false);
        assert_eq!(with.len(), without.len() + 2);
        assert!(
            with.windows(2)
                .any(|w| w == [FEATUREEXTACK, FEATURE_TERMINATOR])
        );
    }

    #[test]
    fn return_values_carry_the_ordinal_of_their_parameter_in_the_request() {
        let outcome = Outcome {
            outputs: vec![Output::ReturnValue {
                name: "@out".into(),
                value: Value::Int(5),
                ty: ColumnType::Int,
            }],
        };
        let names = vec![
            "@stmt".into(),
            "@params".into(),
            "@in".into(),
            "@out".into(),
        ];
        let bytes = encode_outcome(&outcome, &RequestKind::Rpc(names), "s");
        // RETURNSTATUS (5 bytes), then RETURNVALUE: token, ordinal u16.
        assert_eq!(bytes[5], RETURNVALUE);
        assert_eq!(u16::from_le_bytes([bytes[6], bytes[7]]), 3);
    }

    #[test]
    fn transaction_envchange_carries_the_descriptor_as_new_value_on_begin_and_old_on_commit() {
        let descriptor = 0x0102_0304_0506_0708u64;
        let began = Outcome {
            outputs: vec![Output::TransactionChanged(TransactionChange::Began {
                descriptor,
            })],
        };
        let bytes = encode_outcome(&began, &RequestKind::Batch, "s");
        let mut expected = vec![ENVCHANGE, 11, 0, 8, 8];
        expected.extend_from_slice(&descriptor.to_le_bytes());
        expected.push(0);
        assert_eq!(&bytes[..expected.len()], &expected[..]);
        let committed = Outcome {
            outputs: vec![Output::TransactionChanged(TransactionChange::Committed {
                descriptor,
            })],
        };
        let bytes = encode_outcome(&committed, &RequestKind::Batch, "s");
        let mut expected = vec![ENVCHANGE, 11, 0, 9, 0, 8];
        expected.extend_from_slice(&descriptor.to_le_bytes());
        assert_eq!(&bytes[..expected.len()], &expected[..]);
    }

    #[test]
    fn rpc_outcome_always_ends_with_return_status_and_doneproc() {
        let bytes = encode_outcome(&Outcome::default(), &RequestKind::Rpc(Vec::new()), "s");
        assert_eq!(bytes[0], RETURNSTATUS);
        assert_eq!(&bytes[1..5], &0i32.to_le_bytes());
        assert_eq!(bytes[5], DONEPROC);
        assert_eq!(bytes.len(), 5 + 13);
    }
}
