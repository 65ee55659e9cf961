//! Result-set column types and values on the wire: TYPE_INFO, values and NULLs for
//! COLMETADATA, ROW/NBCROW and RETURNVALUE.

use chrono::{NaiveDateTime, Timelike};

use super::types::*;
use crate::backend::{ColumnType, Value};

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
///
/// One match arm per column type, each that type's encoding in MS-TDS: the arms share nothing
/// but the NULL case, and side by side they read as the table of encodings they are.
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
