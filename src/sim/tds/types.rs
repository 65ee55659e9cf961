//! Data types on the wire (MS-TDS 2.2.5.4-2.2.5.6): TYPE_INFO and values for result-set
//! columns and RETURNVALUE tokens (encode), and for RPC parameters (decode).

use chrono::{NaiveDate, NaiveDateTime, NaiveTime, Timelike};

use super::wire::{DecodeError, DecodeResult, Reader, utf16_to_string};
use crate::sim::backend::{ColumnType, Value};

/// `SQL_Latin1_General_CP1_CI_AS`: LCID 0x0409 with IgnoreCase|IgnoreKana|IgnoreWidth, sort id
/// 52. The default server collation of a US-English SQL Server install.
pub const COLLATION: [u8; 5] = [0x09, 0x04, 0xD0, 0x00, 0x34];

// Type tokens (MS-TDS 2.2.5.4).
const NULLTYPE: u8 = 0x1F;
const INT1: u8 = 0x30;
const BIT: u8 = 0x32;
const INT2: u8 = 0x34;
const INT4: u8 = 0x38;
const DATETIM4: u8 = 0x3A;
const FLT4: u8 = 0x3B;
const MONEY: u8 = 0x3C;
const DATETIME: u8 = 0x3D;
const FLT8: u8 = 0x3E;
const MONEY4: u8 = 0x7A;
const INT8: u8 = 0x7F;
const GUID: u8 = 0x24;
const INTN: u8 = 0x26;
const DECIMALN: u8 = 0x6A;
const NUMERICN: u8 = 0x6C;
const BITN: u8 = 0x68;
const FLTN: u8 = 0x6D;
const MONEYN: u8 = 0x6E;
const DATETIMN: u8 = 0x6F;
const DATEN: u8 = 0x28;
const TIMEN: u8 = 0x29;
const DATETIME2N: u8 = 0x2A;
const DATETIMEOFFSETN: u8 = 0x2B;
const BIGVARBIN: u8 = 0xA5;
const BIGVARCHR: u8 = 0xA7;
const BIGBINARY: u8 = 0xAD;
const BIGCHAR: u8 = 0xAF;
const NVARCHAR: u8 = 0xE7;
const NCHAR: u8 = 0xEF;

/// The USHORTLEN max length that marks a `(max)` type sent as PLP.
const MAX_LEN: u16 = 0xFFFF;
const PLP_NULL: u64 = u64::MAX;
const DATETIME2_SCALE: u8 = 7;

fn epoch_0001() -> NaiveDate {
    NaiveDate::from_ymd_opt(1, 1, 1).expect("0001-01-01 is a valid date")
}

fn epoch_1900() -> NaiveDate {
    NaiveDate::from_ymd_opt(1900, 1, 1).expect("1900-01-01 is a valid date")
}

/// Bytes of a NUMERIC value's magnitude plus sign for a precision (MS-TDS 2.2.5.5.1.6).
pub fn numeric_len(precision: u8) -> u8 {
    match precision {
        0..=9 => 5,
        10..=19 => 9,
        20..=28 => 13,
        _ => 17,
    }
}

/// The byte limit of `nvarchar(n)`: SQL Server caps a sized nvarchar at 4000 characters.
fn nvarchar_max_bytes(chars: u16) -> u16 {
    chars.min(4000) * 2
}

/// The byte limit of `varbinary(n)`, at most 8000.
fn varbinary_max_bytes(bytes: u16) -> u16 {
    bytes.min(8000)
}

/// Appends TYPE_INFO for a column type.
pub fn put_type_info(out: &mut Vec<u8>, ty: ColumnType) {
    match ty {
        ColumnType::Bit => out.extend_from_slice(&[BITN, 1]),
        ColumnType::TinyInt => out.extend_from_slice(&[INTN, 1]),
        ColumnType::SmallInt => out.extend_from_slice(&[INTN, 2]),
        ColumnType::Int => out.extend_from_slice(&[INTN, 4]),
        ColumnType::BigInt => out.extend_from_slice(&[INTN, 8]),
        ColumnType::Float => out.extend_from_slice(&[FLTN, 8]),
        ColumnType::Numeric { precision, scale } => {
            out.extend_from_slice(&[NUMERICN, numeric_len(precision), precision, scale])
        }
        ColumnType::NVarChar(max_chars) => {
            out.push(NVARCHAR);
            let bytes = max_chars.map_or(MAX_LEN, nvarchar_max_bytes);
            out.extend_from_slice(&bytes.to_le_bytes());
            out.extend_from_slice(&COLLATION);
        }
        ColumnType::DateTime => out.extend_from_slice(&[DATETIMN, 8]),
        ColumnType::DateTime2 => out.extend_from_slice(&[DATETIME2N, DATETIME2_SCALE]),
        ColumnType::VarBinary(max) => {
            out.push(BIGVARBIN);
            let bytes = max.map_or(MAX_LEN, varbinary_max_bytes);
            out.extend_from_slice(&bytes.to_le_bytes());
        }
        ColumnType::UniqueIdentifier => out.extend_from_slice(&[GUID, 16]),
    }
}

/// Whether the column type is sent as a PLP stream (`(max)` types).
fn is_plp(ty: ColumnType) -> bool {
    matches!(ty, ColumnType::NVarChar(None) | ColumnType::VarBinary(None))
}

/// Appends a NULL of a column type.
pub fn put_null(out: &mut Vec<u8>, ty: ColumnType) {
    if is_plp(ty) {
        out.extend_from_slice(&PLP_NULL.to_le_bytes());
    } else if matches!(ty, ColumnType::NVarChar(_) | ColumnType::VarBinary(_)) {
        out.extend_from_slice(&MAX_LEN.to_le_bytes());
    } else {
        out.push(0);
    }
}

/// Appends a value of a column type. A value the type cannot hold is a model bug: the error
/// names both so it can be found.
pub fn put_value(out: &mut Vec<u8>, ty: ColumnType, value: &Value) -> Result<(), String> {
    let mismatch = || format!("value {value:?} cannot be sent as a {ty:?} column");
    if *value == Value::Null {
        put_null(out, ty);
        return Ok(());
    }
    match ty {
        ColumnType::Bit => {
            let v = match value {
                Value::Bit(b) => *b,
                Value::Int(i) => *i != 0,
                Value::BigInt(i) => *i != 0,
                _ => return Err(mismatch()),
            };
            out.extend_from_slice(&[1, v as u8]);
        }
        ColumnType::TinyInt | ColumnType::SmallInt | ColumnType::Int | ColumnType::BigInt => {
            let v: i64 = match value {
                Value::Int(i) => i64::from(*i),
                Value::BigInt(i) => *i,
                Value::Bit(b) => i64::from(*b),
                Value::Numeric(n) => i64::try_from(*n).map_err(|_| mismatch())?,
                _ => return Err(mismatch()),
            };
            match ty {
                ColumnType::TinyInt => {
                    let v = u8::try_from(v).map_err(|_| mismatch())?;
                    out.extend_from_slice(&[1, v]);
                }
                ColumnType::SmallInt => {
                    let v = i16::try_from(v).map_err(|_| mismatch())?;
                    out.push(2);
                    out.extend_from_slice(&v.to_le_bytes());
                }
                ColumnType::Int => {
                    let v = i32::try_from(v).map_err(|_| mismatch())?;
                    out.push(4);
                    out.extend_from_slice(&v.to_le_bytes());
                }
                _ => {
                    out.push(8);
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
        }
        ColumnType::Float => {
            let v = match value {
                Value::Float(f) => *f,
                Value::Int(i) => f64::from(*i),
                Value::BigInt(i) => *i as f64,
                _ => return Err(mismatch()),
            };
            out.push(8);
            out.extend_from_slice(&v.to_le_bytes());
        }
        ColumnType::Numeric { precision, .. } => {
            let v: i128 = match value {
                Value::Numeric(n) => *n,
                Value::Int(i) => i128::from(*i),
                Value::BigInt(i) => i128::from(*i),
                _ => return Err(mismatch()),
            };
            let len = numeric_len(precision);
            out.push(len);
            out.push(if v < 0 { 0 } else { 1 });
            let magnitude = v.unsigned_abs().to_le_bytes();
            out.extend_from_slice(&magnitude[..(len - 1) as usize]);
        }
        ColumnType::NVarChar(max) => {
            let text = match value {
                Value::NVarChar(s) => s.clone(),
                Value::Int(i) => i.to_string(),
                Value::BigInt(i) => i.to_string(),
                Value::Numeric(n) => n.to_string(),
                _ => return Err(mismatch()),
            };
            let mut bytes = Vec::with_capacity(text.len() * 2);
            super::wire::put_utf16(&mut bytes, &text);
            match max {
                None => put_plp(out, &bytes),
                Some(n) => {
                    if bytes.len() > usize::from(nvarchar_max_bytes(n)) {
                        return Err(format!(
                            "text of {} characters does not fit nvarchar({n})",
                            text.chars().count()
                        ));
                    }
                    out.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
                    out.extend_from_slice(&bytes);
                }
            }
        }
        ColumnType::DateTime => {
            let Value::DateTime(dt) = value else {
                return Err(mismatch());
            };
            let days = (dt.date() - epoch_1900()).num_days();
            let days = i32::try_from(days).map_err(|_| mismatch())?;
            // 1/300 second ticks since midnight, rounded as SQL Server rounds datetime.
            let nanos = u64::from(dt.time().num_seconds_from_midnight()) * 1_000_000_000
                + u64::from(dt.time().nanosecond() % 1_000_000_000);
            let ticks = ((nanos * 3 + 5_000_000) / 10_000_000) as u32;
            out.push(8);
            out.extend_from_slice(&days.to_le_bytes());
            out.extend_from_slice(&ticks.to_le_bytes());
        }
        ColumnType::DateTime2 => {
            let Value::DateTime(dt) = value else {
                return Err(mismatch());
            };
            out.push(8);
            put_datetime2(out, dt);
        }
        ColumnType::VarBinary(max) => {
            let Value::VarBinary(bytes) = value else {
                return Err(mismatch());
            };
            match max {
                None => put_plp(out, bytes),
                Some(n) => {
                    if bytes.len() > usize::from(varbinary_max_bytes(n)) {
                        return Err(format!("{} bytes do not fit varbinary({n})", bytes.len()));
                    }
                    out.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
                    out.extend_from_slice(bytes);
                }
            }
        }
        ColumnType::UniqueIdentifier => {
            let Value::UniqueIdentifier(g) = value else {
                return Err(mismatch());
            };
            out.push(16);
            out.extend_from_slice(&guid_wire_order(*g));
        }
    }
    Ok(())
}

/// DATETIME2 at scale 7: five bytes of 100ns units since midnight, three of days since
/// 0001-01-01.
fn put_datetime2(out: &mut Vec<u8>, dt: &NaiveDateTime) {
    let t = dt.time();
    let units = u64::from(t.num_seconds_from_midnight()) * 10_000_000
        + u64::from(t.nanosecond() % 1_000_000_000) / 100;
    out.extend_from_slice(&units.to_le_bytes()[..5]);
    let days = (dt.date() - epoch_0001()).num_days() as u32;
    out.extend_from_slice(&days.to_le_bytes()[..3]);
}

/// A PLP value sent as one chunk and the terminator.
fn put_plp(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    if !bytes.is_empty() {
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(bytes);
    }
    out.extend_from_slice(&0u32.to_le_bytes());
}

/// A GUID's first three groups go little-endian on the wire; `Value::UniqueIdentifier` holds
/// the canonical (RFC 4122, big-endian) byte order. The swap is its own inverse.
pub fn guid_wire_order(g: [u8; 16]) -> [u8; 16] {
    let mut w = g;
    w[0..4].reverse();
    w[4..6].reverse();
    w[6..8].reverse();
    w
}

/// A parameter's TYPE_INFO as far as decoding its value needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamType {
    Null,
    /// Fixed-length type token with its width.
    Fixed(u8, usize),
    /// BYTELEN-prefixed value of a token (INTN, BITN, FLTN, DATETIMN, GUID, MONEYN).
    ByteLen(u8),
    Decimal {
        scale: u8,
    },
    Date,
    Time {
        scale: u8,
    },
    DateTime2 {
        scale: u8,
    },
    DateTimeOffset {
        scale: u8,
    },
    /// USHORTLEN or PLP text/binary; `unicode` for NCHAR/NVARCHAR.
    Var {
        token: u8,
        plp: bool,
    },
}

/// Reads a TYPE_INFO (MS-TDS 2.2.5.6).
pub fn read_type_info(r: &mut Reader<'_>, what: &str) -> DecodeResult<ParamType> {
    let token = r.u8(what)?;
    Ok(match token {
        NULLTYPE => ParamType::Null,
        INT1 | BIT => ParamType::Fixed(token, 1),
        INT2 => ParamType::Fixed(token, 2),
        INT4 | DATETIM4 | FLT4 | MONEY4 => ParamType::Fixed(token, 4),
        INT8 | DATETIME | FLT8 | MONEY => ParamType::Fixed(token, 8),
        INTN | BITN | FLTN | DATETIMN | GUID | MONEYN => {
            r.u8(what)?;
            ParamType::ByteLen(token)
        }
        DECIMALN | NUMERICN => {
            r.u8(what)?;
            let _precision = r.u8(what)?;
            let scale = r.u8(what)?;
            ParamType::Decimal { scale }
        }
        DATEN => ParamType::Date,
        TIMEN => ParamType::Time { scale: r.u8(what)? },
        DATETIME2N => ParamType::DateTime2 { scale: r.u8(what)? },
        DATETIMEOFFSETN => ParamType::DateTimeOffset { scale: r.u8(what)? },
        NVARCHAR | NCHAR | BIGVARCHR | BIGCHAR => {
            let max = r.u16(what)?;
            r.skip(5, what)?; // collation
            ParamType::Var {
                token,
                plp: max == MAX_LEN,
            }
        }
        BIGVARBIN | BIGBINARY => {
            let max = r.u16(what)?;
            ParamType::Var {
                token,
                plp: max == MAX_LEN,
            }
        }
        other => {
            return Err(DecodeError(format!(
                "{what}: unsupported parameter type 0x{other:02X}"
            )));
        }
    })
}

fn le_int(b: &[u8]) -> i64 {
    match b.len() {
        1 => i64::from(b[0]),
        2 => i64::from(i16::from_le_bytes([b[0], b[1]])),
        4 => i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        _ => {
            let mut a = [0u8; 8];
            a[..b.len().min(8)].copy_from_slice(&b[..b.len().min(8)]);
            i64::from_le_bytes(a)
        }
    }
}

fn time_from_units(b: &[u8], scale: u8, what: &str) -> DecodeResult<NaiveTime> {
    let mut a = [0u8; 8];
    a[..b.len()].copy_from_slice(b);
    let units = u64::from_le_bytes(a);
    let nanos_per_unit = 10u64.pow(9 - u32::from(scale.min(7)));
    let nanos = units * nanos_per_unit;
    NaiveTime::from_num_seconds_from_midnight_opt(
        (nanos / 1_000_000_000) as u32,
        (nanos % 1_000_000_000) as u32,
    )
    .ok_or_else(|| DecodeError(format!("{what}: time out of range")))
}

fn date_from_days(b: &[u8], what: &str) -> DecodeResult<NaiveDate> {
    let days = u32::from_le_bytes([b[0], b[1], b[2], 0]);
    epoch_0001()
        .checked_add_days(chrono::Days::new(u64::from(days)))
        .ok_or_else(|| DecodeError(format!("{what}: date out of range")))
}

fn time_len(scale: u8) -> usize {
    match scale {
        0..=2 => 3,
        3..=4 => 4,
        _ => 5,
    }
}

fn legacy_datetime(b: &[u8], what: &str) -> DecodeResult<NaiveDateTime> {
    let (days, ticks_nanos) = if b.len() == 4 {
        // smalldatetime: days u16, minutes u16.
        let days = i64::from(u16::from_le_bytes([b[0], b[1]]));
        let minutes = u64::from(u16::from_le_bytes([b[2], b[3]]));
        (days, minutes * 60 * 1_000_000_000)
    } else {
        let days = i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        let ticks = u64::from(u32::from_le_bytes([b[4], b[5], b[6], b[7]]));
        (days, ticks * 10_000_000 / 3)
    };
    let date = epoch_1900()
        .checked_add_signed(chrono::Duration::days(days))
        .ok_or_else(|| DecodeError(format!("{what}: datetime out of range")))?;
    let time = NaiveTime::from_num_seconds_from_midnight_opt(
        (ticks_nanos / 1_000_000_000) as u32,
        (ticks_nanos % 1_000_000_000) as u32,
    )
    .ok_or_else(|| DecodeError(format!("{what}: datetime time out of range")))?;
    Ok(NaiveDateTime::new(date, time))
}

fn money(b: &[u8]) -> f64 {
    let units = if b.len() == 4 {
        i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    } else {
        // money: high 4 bytes first, then low 4 bytes.
        let hi = i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        let lo = i64::from(u32::from_le_bytes([b[4], b[5], b[6], b[7]]));
        (hi << 32) | lo
    };
    units as f64 / 10_000.0
}

fn fixed_value(token: u8, b: &[u8], what: &str) -> DecodeResult<Value> {
    Ok(match token {
        BIT | BITN => Value::Bit(b[0] != 0),
        INT1 | INT2 | INT4 | INTN if b.len() <= 4 => Value::Int(le_int(b) as i32),
        INT8 | INTN => Value::BigInt(le_int(b)),
        FLT4 | FLTN if b.len() == 4 => {
            Value::Float(f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
        }
        FLT8 | FLTN => {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[..8]);
            Value::Float(f64::from_le_bytes(a))
        }
        DATETIM4 | DATETIME | DATETIMN => Value::DateTime(legacy_datetime(b, what)?),
        MONEY | MONEY4 | MONEYN => Value::Float(money(b)),
        GUID => {
            let mut g = [0u8; 16];
            g.copy_from_slice(&b[..16]);
            Value::UniqueIdentifier(guid_wire_order(g))
        }
        other => {
            return Err(DecodeError(format!(
                "{what}: unsupported fixed type 0x{other:02X}"
            )));
        }
    })
}

fn read_plp(r: &mut Reader<'_>, what: &str) -> DecodeResult<Option<Vec<u8>>> {
    let total = r.u64(what)?;
    if total == PLP_NULL {
        return Ok(None);
    }
    let mut out = Vec::new();
    loop {
        let chunk = r.u32(what)? as usize;
        if chunk == 0 {
            return Ok(Some(out));
        }
        out.extend_from_slice(r.bytes(chunk, what)?);
    }
}

/// Reads a value of a decoded TYPE_INFO.
pub fn read_value(r: &mut Reader<'_>, ty: ParamType, what: &str) -> DecodeResult<Value> {
    match ty {
        ParamType::Null => Ok(Value::Null),
        ParamType::Fixed(token, n) => {
            let b = r.bytes(n, what)?;
            fixed_value(token, b, what)
        }
        ParamType::ByteLen(token) => {
            let n = r.u8(what)? as usize;
            if n == 0 {
                return Ok(Value::Null);
            }
            let b = r.bytes(n, what)?;
            let expected = match token {
                BITN => [1].as_slice(),
                INTN => [1, 2, 4, 8].as_slice(),
                FLTN | DATETIMN | MONEYN => [4, 8].as_slice(),
                _ => [16].as_slice(),
            };
            if !expected.contains(&n) {
                return Err(DecodeError(format!(
                    "{what}: invalid length {n} for type 0x{token:02X}"
                )));
            }
            fixed_value(token, b, what)
        }
        ParamType::Decimal { .. } => {
            let n = r.u8(what)? as usize;
            if n == 0 {
                return Ok(Value::Null);
            }
            let b = r.bytes(n, what)?;
            if n > 17 {
                return Err(DecodeError(format!("{what}: numeric of {n} bytes")));
            }
            let mut a = [0u8; 16];
            a[..n - 1].copy_from_slice(&b[1..]);
            let magnitude = i128::from_le_bytes(a);
            Ok(Value::Numeric(if b[0] == 0 {
                -magnitude
            } else {
                magnitude
            }))
        }
        ParamType::Date => {
            let n = r.u8(what)? as usize;
            if n == 0 {
                return Ok(Value::Null);
            }
            let b = r.bytes(n, what)?;
            if n != 3 {
                return Err(DecodeError(format!("{what}: date of {n} bytes")));
            }
            Ok(Value::DateTime(
                date_from_days(b, what)?.and_time(NaiveTime::MIN),
            ))
        }
        ParamType::Time { scale } => {
            let n = r.u8(what)? as usize;
            if n == 0 {
                return Ok(Value::Null);
            }
            let b = r.bytes(n, what)?;
            if n != time_len(scale) {
                return Err(DecodeError(format!("{what}: time of {n} bytes")));
            }
            let t = time_from_units(b, scale, what)?;
            Ok(Value::DateTime(epoch_1900().and_time(t)))
        }
        ParamType::DateTime2 { scale } | ParamType::DateTimeOffset { scale } => {
            let n = r.u8(what)? as usize;
            if n == 0 {
                return Ok(Value::Null);
            }
            let b = r.bytes(n, what)?;
            let tl = time_len(scale);
            let offset_len = if matches!(ty, ParamType::DateTimeOffset { .. }) {
                2
            } else {
                0
            };
            if n != tl + 3 + offset_len {
                return Err(DecodeError(format!("{what}: datetime2 of {n} bytes")));
            }
            let t = time_from_units(&b[..tl], scale, what)?;
            let d = date_from_days(&b[tl..tl + 3], what)?;
            // DATETIMEOFFSET's date and time are already UTC; the offset is only display.
            Ok(Value::DateTime(NaiveDateTime::new(d, t)))
        }
        ParamType::Var { token, plp } => {
            let bytes = if plp {
                read_plp(r, what)?
            } else {
                let n = r.u16(what)?;
                if n == MAX_LEN {
                    None
                } else {
                    Some(r.bytes(n as usize, what)?.to_vec())
                }
            };
            let Some(bytes) = bytes else {
                return Ok(Value::Null);
            };
            Ok(match token {
                NVARCHAR | NCHAR => Value::NVarChar(utf16_to_string(&bytes, what)?),
                // Single-byte text is taken as Latin-1, which agrees with the default
                // code page 1252 for every character a chat server or the operator sends.
                BIGVARCHR | BIGCHAR => Value::NVarChar(bytes.iter().map(|&b| b as char).collect()),
                _ => Value::VarBinary(bytes),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(ty: ColumnType, v: Value) -> Value {
        let mut ti = Vec::new();
        put_type_info(&mut ti, ty);
        put_value(&mut ti, ty, &v).unwrap();
        let mut r = Reader::new(&ti);
        let pt = read_type_info(&mut r, "t").unwrap();
        let out = read_value(&mut r, pt, "t").unwrap();
        assert_eq!(r.remaining(), 0);
        out
    }

    #[test]
    fn every_column_type_round_trips_through_its_wire_encoding() {
        let dt = NaiveDate::from_ymd_opt(2026, 11, 26)
            .unwrap()
            .and_hms_nano_opt(13, 14, 15, 123_456_700)
            .unwrap();
        assert_eq!(
            round_trip(ColumnType::Bit, Value::Bit(true)),
            Value::Bit(true)
        );
        assert_eq!(
            round_trip(ColumnType::TinyInt, Value::Int(200)),
            Value::Int(200)
        );
        assert_eq!(
            round_trip(ColumnType::SmallInt, Value::Int(-3)),
            Value::Int(-3)
        );
        assert_eq!(
            round_trip(ColumnType::Int, Value::Int(-70000)),
            Value::Int(-70000)
        );
        assert_eq!(
            round_trip(ColumnType::BigInt, Value::BigInt(1 << 40)),
            Value::BigInt(1 << 40)
        );
        assert_eq!(
            round_trip(ColumnType::Float, Value::Float(2.5)),
            Value::Float(2.5)
        );
        let lsn = 31_000_000_012_300_001i128;
        assert_eq!(
            round_trip(
                ColumnType::Numeric {
                    precision: 25,
                    scale: 0
                },
                Value::Numeric(lsn)
            ),
            Value::Numeric(lsn)
        );
        assert_eq!(
            round_trip(
                ColumnType::NVarChar(Some(10)),
                Value::NVarChar("héllo".into())
            ),
            Value::NVarChar("héllo".into())
        );
        assert_eq!(
            round_trip(
                ColumnType::NVarChar(None),
                Value::NVarChar("x".repeat(9000))
            ),
            Value::NVarChar("x".repeat(9000))
        );
        assert_eq!(
            round_trip(ColumnType::DateTime2, Value::DateTime(dt)),
            Value::DateTime(dt)
        );
        let Value::DateTime(legacy) = round_trip(ColumnType::DateTime, Value::DateTime(dt)) else {
            panic!("datetime");
        };
        // datetime keeps 1/300 s: within 2ms.
        assert!((legacy - dt).num_milliseconds().abs() <= 2);
        assert_eq!(
            round_trip(ColumnType::VarBinary(None), Value::VarBinary(vec![1, 2, 3])),
            Value::VarBinary(vec![1, 2, 3])
        );
        let g = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
        assert_eq!(
            round_trip(ColumnType::UniqueIdentifier, Value::UniqueIdentifier(g)),
            Value::UniqueIdentifier(g)
        );
        assert_eq!(
            round_trip(ColumnType::NVarChar(None), Value::Null),
            Value::Null
        );
        assert_eq!(round_trip(ColumnType::Int, Value::Null), Value::Null);
    }

    #[test]
    fn a_value_that_does_not_fit_its_column_is_reported() {
        let mut out = Vec::new();
        let err = put_value(&mut out, ColumnType::TinyInt, &Value::Int(300)).unwrap_err();
        assert!(err.contains("TinyInt"), "{err}");
        let err = put_value(&mut out, ColumnType::Int, &Value::NVarChar("a".into())).unwrap_err();
        assert!(err.contains("Int"), "{err}");
    }
}
