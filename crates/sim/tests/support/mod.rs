//! What the simulator's test binaries share: [`model`] runs the two-site world over TDS and
//! reads every token tiberius received ([`tap`]); [`tds`] stands a small test backend behind
//! the TDS front end; [`mssql_roundtrip`] drives it with Microsoft's `mssql-tds` client;
//! [`clients`] builds and runs the foreign clients under `tests/clients/`.

#![allow(dead_code)] // each test binary uses a different subset

pub mod clients;
pub mod model;
pub mod mssql_roundtrip;
pub mod tap;
pub mod tds;
