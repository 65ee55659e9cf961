//! A batch's answer as plain tables: every result set with its column names and the values
//! converted to a few simple kinds, so the parsers are pure functions that unit tests can feed.

use std::borrow::Cow;

use chrono::NaiveDateTime;
use futures::StreamExt;
use tiberius::{ColumnData, FromSql, QueryItem};

use crate::connect::SqlClient;

/// One value of a result set.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Bool(bool),
    Text(String),
    /// A `decimal`/`numeric` value: the unscaled integer and its scale.
    Decimal(i128, u8),
    DateTime(NaiveDateTime),
    /// A kind the observation never reads (binary, float, xml).
    Other,
}

impl Cell {
    fn from_column(data: ColumnData<'static>) -> Cell {
        match data {
            ColumnData::U8(Some(v)) => Cell::Int(v.into()),
            ColumnData::I16(Some(v)) => Cell::Int(v.into()),
            ColumnData::I32(Some(v)) => Cell::Int(v.into()),
            ColumnData::I64(Some(v)) => Cell::Int(v),
            ColumnData::Bit(Some(v)) => Cell::Bool(v),
            ColumnData::String(Some(s)) => Cell::Text(s.into_owned()),
            ColumnData::Guid(Some(g)) => Cell::Text(g.to_string()),
            ColumnData::Numeric(Some(n)) => Cell::Decimal(n.value(), n.scale()),
            d @ (ColumnData::DateTime(Some(_))
            | ColumnData::SmallDateTime(Some(_))
            | ColumnData::DateTime2(Some(_))) => NaiveDateTime::from_sql(&d)
                .ok()
                .flatten()
                .map_or(Cell::Other, Cell::DateTime),
            ColumnData::U8(None)
            | ColumnData::I16(None)
            | ColumnData::I32(None)
            | ColumnData::I64(None)
            | ColumnData::F32(None)
            | ColumnData::F64(None)
            | ColumnData::Bit(None)
            | ColumnData::String(None)
            | ColumnData::Guid(None)
            | ColumnData::Binary(None)
            | ColumnData::Numeric(None)
            | ColumnData::Xml(None)
            | ColumnData::DateTime(None)
            | ColumnData::SmallDateTime(None)
            | ColumnData::Time(None)
            | ColumnData::Date(None)
            | ColumnData::DateTime2(None)
            | ColumnData::DateTimeOffset(None) => Cell::Null,
            _ => Cell::Other,
        }
    }

    /// Text, or the text form of a number.
    pub fn text(&self) -> Option<Cow<'_, str>> {
        match self {
            Cell::Text(s) => Some(Cow::Borrowed(s.as_str())),
            Cell::Int(i) => Some(Cow::Owned(i.to_string())),
            _ => None,
        }
    }

    /// An integer (a decimal of scale 0 included).
    pub fn int(&self) -> Option<i64> {
        match self {
            Cell::Int(i) => Some(*i),
            Cell::Decimal(v, 0) => i64::try_from(*v).ok(),
            Cell::Bool(b) => Some(i64::from(*b)),
            Cell::Text(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// A bit: true for 1.
    pub fn flag(&self) -> bool {
        match self {
            Cell::Bool(b) => *b,
            other => other.int().is_some_and(|i| i != 0),
        }
    }

    pub fn datetime(&self) -> Option<NaiveDateTime> {
        match self {
            Cell::DateTime(d) => Some(*d),
            _ => None,
        }
    }
}

/// One result set.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    /// The first column's name, which identifies the result sets the operator asks for.
    pub fn key(&self) -> &str {
        self.columns.first().map(String::as_str).unwrap_or("")
    }

    /// The rows, each able to look up a column by name.
    pub fn records(&self) -> impl Iterator<Item = Record<'_>> {
        self.rows.iter().map(move |r| Record {
            table: self,
            row: r,
        })
    }
}

/// One row of a [`Table`].
#[derive(Clone, Copy)]
pub struct Record<'a> {
    table: &'a Table,
    row: &'a [Cell],
}

const NULL: Cell = Cell::Null;

impl<'a> Record<'a> {
    /// The value of a column (NULL when the column is absent).
    pub fn get(&self, column: &str) -> &'a Cell {
        self.table
            .columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(column))
            .and_then(|i| self.row.get(i))
            .unwrap_or(&NULL)
    }

    /// A non-empty text value.
    pub fn text(&self, column: &str) -> Option<String> {
        self.get(column)
            .text()
            .map(|s| s.trim_end().to_string())
            .filter(|s| !s.is_empty())
    }
}

/// An error SQL Server raised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerError {
    pub number: u32,
    pub state: u8,
    pub class: u8,
    pub message: String,
}

impl From<tiberius::error::TokenError> for ServerError {
    fn from(t: tiberius::error::TokenError) -> Self {
        ServerError {
            number: t.code(),
            state: t.state(),
            class: t.class(),
            message: t.message().to_string(),
        }
    }
}

/// What a batch answered: its result sets, and the first error it raised, if any (tiberius
/// keeps the first; BACKUP and RESTORE send the root error before the generic 3013).
#[derive(Debug, Default)]
pub struct Answer {
    pub tables: Vec<Table>,
    pub error: Option<ServerError>,
}

/// Send `query` and collect its whole answer. `Err` only when the connection failed (broken,
/// timed out, protocol error); SQL Server's own errors are in [`Answer::error`].
pub async fn run(
    client: &mut SqlClient,
    query: tiberius::Query<'_>,
) -> Result<Answer, tiberius::error::Error> {
    let mut answer = Answer::default();
    let mut stream = match query.query(client).await {
        Ok(s) => s,
        Err(tiberius::error::Error::Server(t)) => {
            answer.error = Some(t.into());
            return Ok(answer);
        }
        Err(e) => return Err(e),
    };
    while let Some(item) = stream.next().await {
        match item {
            Ok(QueryItem::Metadata(m)) => answer.tables.push(Table {
                columns: m.columns().iter().map(|c| c.name().to_string()).collect(),
                rows: Vec::new(),
            }),
            Ok(QueryItem::Row(row)) => {
                let cells = row.into_iter().map(Cell::from_column).collect();
                if let Some(t) = answer.tables.last_mut() {
                    t.rows.push(cells);
                }
            }
            Err(tiberius::error::Error::Server(t)) => {
                answer.error.get_or_insert(t.into());
            }
            Err(e) => return Err(e),
        }
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_reads_columns_by_name_case_insensitively() {
        let t = Table {
            columns: vec!["name".into(), "state_desc".into()],
            rows: vec![vec![
                Cell::Text("mgc".into()),
                Cell::Text("ONLINE  ".into()),
            ]],
        };
        let r = t.records().next().unwrap();
        assert_eq!(r.text("NAME").as_deref(), Some("mgc"));
        assert_eq!(r.text("state_desc").as_deref(), Some("ONLINE"));
        assert_eq!(r.get("missing"), &Cell::Null);
    }

    #[test]
    fn decimals_of_scale_zero_and_bits_read_as_integers() {
        assert_eq!(Cell::Decimal(42, 0).int(), Some(42));
        assert_eq!(Cell::Decimal(42, 1).int(), None);
        assert!(Cell::Int(1).flag());
        assert!(!Cell::Null.flag());
    }
}
