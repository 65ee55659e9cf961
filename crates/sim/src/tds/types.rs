//! Data types on the wire (MS-TDS 2.2.5.4-2.2.5.6): the type tokens and helpers shared by
//! `encode` (result-set columns and RETURNVALUE) and `decode` (RPC parameters).

use chrono::NaiveDate;

/// `SQL_Latin1_General_CP1_CI_AS`: LCID 0x0409 with IgnoreCase|IgnoreKana|IgnoreWidth, sort id
/// 52. The default server collation of a US-English SQL Server install.
pub const COLLATION: [u8; 5] = [0x09, 0x04, 0xD0, 0x00, 0x34];

// Type tokens (MS-TDS 2.2.5.4).
pub(super) const NULLTYPE: u8 = 0x1F;
pub(super) const INT1: u8 = 0x30;
pub(super) const BIT: u8 = 0x32;
pub(super) const INT2: u8 = 0x34;
pub(super) const INT4: u8 = 0x38;
pub(super) const DATETIM4: u8 = 0x3A;
pub(super) const FLT4: u8 = 0x3B;
pub(super) const MONEY: u8 = 0x3C;
pub(super) const DATETIME: u8 = 0x3D;
pub(super) const FLT8: u8 = 0x3E;
pub(super) const MONEY4: u8 = 0x7A;
pub(super) const INT8: u8 = 0x7F;
pub(super) const GUID: u8 = 0x24;
pub(super) const INTN: u8 = 0x26;
pub(super) const DECIMALN: u8 = 0x6A;
pub(super) const NUMERICN: u8 = 0x6C;
pub(super) const BITN: u8 = 0x68;
pub(super) const FLTN: u8 = 0x6D;
pub(super) const MONEYN: u8 = 0x6E;
pub(super) const DATETIMN: u8 = 0x6F;
pub(super) const DATEN: u8 = 0x28;
pub(super) const TIMEN: u8 = 0x29;
pub(super) const DATETIME2N: u8 = 0x2A;
pub(super) const DATETIMEOFFSETN: u8 = 0x2B;
pub(super) const BIGVARBIN: u8 = 0xA5;
pub(super) const BIGVARCHR: u8 = 0xA7;
pub(super) const BIGBINARY: u8 = 0xAD;
pub(super) const BIGCHAR: u8 = 0xAF;
pub(super) const NVARCHAR: u8 = 0xE7;
pub(super) const NCHAR: u8 = 0xEF;

/// The USHORTLEN max length that marks a `(max)` type sent as PLP.
pub(super) const MAX_LEN: u16 = 0xFFFF;
pub(super) const PLP_NULL: u64 = u64::MAX;
pub(super) const DATETIME2_SCALE: u8 = 7;

pub(super) fn epoch_0001() -> NaiveDate {
    NaiveDate::from_ymd_opt(1, 1, 1).expect("0001-01-01 is a valid date")
}

pub(super) fn epoch_1900() -> NaiveDate {
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
pub(super) fn nvarchar_max_bytes(chars: u16) -> u16 {
    chars.min(4000) * 2
}

/// The byte limit of `varbinary(n)`, at most 8000.
pub(super) fn varbinary_max_bytes(bytes: u16) -> u16 {
    bytes.min(8000)
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

#[cfg(test)]
mod tests {
    //! Round trips through `encode` and `decode`: what the front end sends, a client would
    //! send back unchanged.
    use crate::backend::{ColumnType, Value};
    use crate::tds::decode::{read_type_info, read_value};
    use crate::tds::encode::{put_type_info, put_value};
    use crate::tds::wire::Reader;
    use chrono::NaiveDate;

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
