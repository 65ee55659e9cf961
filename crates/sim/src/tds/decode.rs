//! RPC parameter types and values as a client sends them: every TYPE_INFO tiberius,
//! mssql-tds and SQL Server's own clients use for scalar parameters.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

use super::types::*;
use super::wire::{DecodeError, DecodeResult, Reader, utf16_to_string};
use crate::backend::Value;

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
///
/// One match arm per parameter type, each that type's encoding in MS-TDS; side by side they
/// read as the table of encodings they are.
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

    fn decode(bytes: &[u8]) -> DecodeResult<Value> {
        let mut r = Reader::new(bytes);
        let ty = read_type_info(&mut r, "p")?;
        let v = read_value(&mut r, ty, "p")?;
        assert_eq!(r.remaining(), 0, "the whole parameter is consumed");
        Ok(v)
    }

    #[test]
    fn varchar_parameters_decode_as_single_byte_text() {
        let mut b = vec![BIGVARCHR, 0x40, 0x1F, 0x09, 0x04, 0xD0, 0x00, 0x34, 3, 0];
        b.extend_from_slice(b"mgc");
        assert_eq!(decode(&b).unwrap(), Value::NVarChar("mgc".into()));
    }

    #[test]
    fn negative_decimal_and_legacy_datetime_and_nulltype_decode() {
        // decimal(10,2) -1234 (unscaled): length 5, sign 0, magnitude LE.
        let b = [DECIMALN, 5, 10, 2, 5, 0, 0xD2, 0x04, 0, 0];
        assert_eq!(decode(&b).unwrap(), Value::Numeric(-1234));
        // datetime 1900-01-02 00:00:01: day 1, 300 ticks.
        let b = [DATETIMN, 8, 8, 1, 0, 0, 0, 0x2C, 0x01, 0, 0];
        let expected = NaiveDate::from_ymd_opt(1900, 1, 2)
            .unwrap()
            .and_hms_opt(0, 0, 1)
            .unwrap();
        assert_eq!(decode(&b).unwrap(), Value::DateTime(expected));
        assert_eq!(decode(&[NULLTYPE]).unwrap(), Value::Null);
    }

    #[test]
    fn unsupported_parameter_types_and_bad_lengths_are_named_in_the_error() {
        let err = decode(&[0x22, 0]).unwrap_err();
        assert!(err.0.contains("0x22"), "{err}");
        let err = decode(&[INTN, 4, 3, 1, 2, 3]).unwrap_err();
        assert!(err.0.contains("invalid length 3"), "{err}");
        let err = decode(&[INTN, 4, 4, 1]).unwrap_err();
        assert!(err.0.contains("needs 4 bytes"), "{err}");
    }
}
