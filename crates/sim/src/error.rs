//! The simulator crate's error type: why a simulator cannot be built or started. Errors a
//! client meets while the simulator runs are SQL Server's (`server::SqlError`, sent as TDS
//! ERROR tokens), not Rust errors of this crate; a malformed TDS message ends its connection
//! (`tds::wire::DecodeError`) and is logged, never returned to the caller who started the
//! simulator.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The topology file cannot be read.
    #[error("cannot read topology {path}: {source}")]
    ReadTopology {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The topology is not YAML of the expected shape.
    #[error("invalid topology YAML: {0}")]
    TopologyYaml(#[source] Box<serde_saphyr::Error>),
    /// The topology breaks one of its rules; the message names the instance or database.
    #[error("topology: {0}")]
    Topology(String),
    /// A folder of the simulator's state (backup files, file shares) cannot be created.
    #[error("cannot create {what} {path}: {source}")]
    StateDir {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The in-memory SQLite database that answers catalog queries cannot be set up.
    #[error("cannot set up the catalog engine: {0}")]
    Catalog(#[source] rusqlite::Error),
    /// An instance's TDS listener, or the control endpoint, cannot listen.
    #[error("{endpoint}: cannot listen on {addr}: {source}")]
    Listen {
        /// `instance <name>` or `control endpoint`.
        endpoint: String,
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// The TLS certificate cannot be made, read or used.
    #[error("TLS: {0}")]
    Tls(String),
}
