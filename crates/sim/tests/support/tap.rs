//! A tap on the server-to-client bytes of a tiberius connection, and a decoder of the TDS
//! token stream it saw. tiberius's API shows rows and the first error only; the tap recovers
//! what SQL Server sends that tiberius does not surface (every ERROR and INFO with number,
//! state and class, RETURNSTATUS, RETURNVALUE, ENVCHANGE, DONE counts, column types), so the
//! model tests can assert on them while tiberius remains the client that speaks the protocol.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use pchat_sim::backend::{Column, ColumnType, Output, ResultSet, ServerMessage, Value};
use pchat_sim::tds::decode::{ParamType, read_type_info, read_value};
use pchat_sim::tds::wire::Reader;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A TCP stream that copies every byte it reads into `seen`.
pub struct TapStream {
    pub inner: TcpStream,
    pub seen: Arc<Mutex<Vec<u8>>>,
}

impl AsyncRead for TapStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &r {
            let new = &buf.filled()[before..];
            self.seen.lock().unwrap().extend_from_slice(new);
        }
        r
    }
}

impl AsyncWrite for TapStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

const COLMETADATA: u8 = 0x81;
const ROW: u8 = 0xD1;
const NBCROW: u8 = 0xD2;
const DONE: u8 = 0xFD;
const DONEPROC: u8 = 0xFE;
const DONEINPROC: u8 = 0xFF;
const ERROR: u8 = 0xAA;
const INFO: u8 = 0xAB;
const ENVCHANGE: u8 = 0xE3;
const RETURNSTATUS: u8 = 0x79;
const RETURNVALUE: u8 = 0xAC;
const DONE_COUNT: u16 = 0x0010;

/// The payload of every packet in `bytes` (one or more whole TDS messages), concatenated.
fn payload(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        if bytes.len() - at < 8 {
            return Err(format!("truncated packet header at byte {at}"));
        }
        let len = u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]) as usize;
        if len < 8 || at + len > bytes.len() {
            return Err(format!(
                "packet of length {len} at byte {at} overruns the data"
            ));
        }
        out.extend_from_slice(&bytes[at + 8..at + len]);
        at += len;
    }
    Ok(out)
}

/// A column's type as the simulator sends it, and how to read its values.
fn type_info(buf: &[u8], at: &mut usize) -> Result<(ColumnType, ParamType), String> {
    let mut r = Reader::new(&buf[*at..]);
    let pt = read_type_info(&mut r, "TYPE_INFO").map_err(|e| e.0)?;
    let b = &buf[*at..];
    let ty = match b[0] {
        0x68 => ColumnType::Bit,
        0x26 => match b[1] {
            1 => ColumnType::TinyInt,
            2 => ColumnType::SmallInt,
            4 => ColumnType::Int,
            _ => ColumnType::BigInt,
        },
        0x6D => ColumnType::Float,
        0x6C | 0x6A => ColumnType::Numeric {
            precision: b[2],
            scale: b[3],
        },
        0xE7 => {
            let max = u16::from_le_bytes([b[1], b[2]]);
            ColumnType::NVarChar((max != 0xFFFF).then_some(max / 2))
        }
        0x6F => ColumnType::DateTime,
        0x2A => ColumnType::DateTime2,
        0xA5 => {
            let max = u16::from_le_bytes([b[1], b[2]]);
            ColumnType::VarBinary((max != 0xFFFF).then_some(max))
        }
        0x24 => ColumnType::UniqueIdentifier,
        other => return Err(format!("unexpected column type 0x{other:02X}")),
    };
    *at += r.position();
    Ok((ty, pt))
}

fn value(buf: &[u8], at: &mut usize, pt: ParamType) -> Result<Value, String> {
    let mut r = Reader::new(&buf[*at..]);
    let v = read_value(&mut r, pt, "value").map_err(|e| e.0)?;
    *at += r.position();
    Ok(v)
}

fn u16_at(buf: &[u8], at: &mut usize) -> Result<u16, String> {
    let b = buf.get(*at..*at + 2).ok_or("truncated u16")?;
    *at += 2;
    Ok(u16::from_le_bytes([b[0], b[1]]))
}

fn u32_at(buf: &[u8], at: &mut usize) -> Result<u32, String> {
    let b = buf.get(*at..*at + 4).ok_or("truncated u32")?;
    *at += 4;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn text_at(buf: &[u8], at: &mut usize, chars: usize) -> Result<String, String> {
    let b = buf.get(*at..*at + chars * 2).ok_or("truncated text")?;
    *at += chars * 2;
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units).map_err(|e| e.to_string())
}

fn b_varchar(buf: &[u8], at: &mut usize) -> Result<String, String> {
    let n = *buf.get(*at).ok_or("truncated B_VARCHAR")? as usize;
    *at += 1;
    text_at(buf, at, n)
}

/// Decodes one or more response messages into the outputs the model produced: result sets
/// (closed by their DONE), row counts, messages, database changes, return status and values.
pub fn decode(bytes: &[u8]) -> Result<Vec<Output>, String> {
    let buf = payload(bytes)?;
    let mut out = Vec::new();
    let mut open: Option<(ResultSet, Vec<ParamType>)> = None;
    let mut at = 0;
    while at < buf.len() {
        let token = buf[at];
        at += 1;
        match token {
            COLMETADATA => {
                let n = u16_at(&buf, &mut at)?;
                let mut columns = Vec::new();
                let mut types = Vec::new();
                for _ in 0..n {
                    u32_at(&buf, &mut at)?; // UserType
                    let flags = u16_at(&buf, &mut at)?;
                    let (ty, pt) = type_info(&buf, &mut at)?;
                    let name = b_varchar(&buf, &mut at)?;
                    columns.push(Column {
                        name,
                        ty,
                        nullable: flags & 1 != 0,
                    });
                    types.push(pt);
                }
                open = Some((
                    ResultSet {
                        columns,
                        rows: Vec::new(),
                    },
                    types,
                ));
            }
            ROW | NBCROW => {
                let (rs, types) = open.as_mut().ok_or("ROW before COLMETADATA")?;
                let n = types.len();
                let nulls: Vec<bool> = if token == NBCROW {
                    let bitmap = buf.get(at..at + n.div_ceil(8)).ok_or("truncated NBCROW")?;
                    at += n.div_ceil(8);
                    (0..n)
                        .map(|i| bitmap[i / 8] & (1 << (i % 8)) != 0)
                        .collect()
                } else {
                    vec![false; n]
                };
                let mut row = Vec::with_capacity(n);
                for (i, pt) in types.iter().enumerate() {
                    row.push(if nulls[i] {
                        Value::Null
                    } else {
                        value(&buf, &mut at, *pt)?
                    });
                }
                rs.rows.push(row);
            }
            DONE | DONEPROC | DONEINPROC => {
                let status = u16_at(&buf, &mut at)?;
                u16_at(&buf, &mut at)?; // CurCmd
                let lo = u32_at(&buf, &mut at)? as u64;
                let hi = u32_at(&buf, &mut at)? as u64;
                let count = lo | (hi << 32);
                if let Some((rs, _)) = open.take() {
                    out.push(Output::ResultSet(rs));
                } else if status & DONE_COUNT != 0 {
                    out.push(Output::RowCount(count));
                }
            }
            ERROR | INFO => {
                let len = u16_at(&buf, &mut at)? as usize;
                let end = at + len;
                let number = u32_at(&buf, &mut at)? as i32;
                let state = buf[at];
                let class = buf[at + 1];
                at += 2;
                let chars = u16_at(&buf, &mut at)? as usize;
                let text = text_at(&buf, &mut at, chars)?;
                let server = b_varchar(&buf, &mut at)?;
                let procedure = b_varchar(&buf, &mut at)?;
                let line = u32_at(&buf, &mut at)? as i32;
                if at != end {
                    return Err(format!("message {number}: length {len} disagrees"));
                }
                out.push(Output::Message(ServerMessage {
                    number,
                    state,
                    class,
                    text,
                    server,
                    procedure,
                    line,
                }));
            }
            ENVCHANGE => {
                let len = u16_at(&buf, &mut at)? as usize;
                let end = at + len;
                if buf.get(at) == Some(&1) {
                    at += 1;
                    let new = b_varchar(&buf, &mut at)?;
                    let old = b_varchar(&buf, &mut at)?;
                    out.push(Output::DatabaseChanged { old, new });
                }
                at = end;
            }
            RETURNSTATUS => {
                let s = u32_at(&buf, &mut at)? as i32;
                out.push(Output::ReturnStatus(s));
            }
            RETURNVALUE => {
                u16_at(&buf, &mut at)?; // ordinal
                let name = b_varchar(&buf, &mut at)?;
                at += 1; // status
                u32_at(&buf, &mut at)?; // UserType
                u16_at(&buf, &mut at)?; // flags
                let (ty, pt) = type_info(&buf, &mut at)?;
                let value = value(&buf, &mut at, pt)?;
                out.push(Output::ReturnValue { name, value, ty });
            }
            other => return Err(format!("unexpected token 0x{other:02X} at byte {}", at - 1)),
        }
    }
    if let Some((rs, _)) = open {
        out.push(Output::ResultSet(rs));
    }
    Ok(out)
}
