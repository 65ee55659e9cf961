//! A SQL Server simulator for the HA/DR subset the operator and chat servers use, speaking
//! TDS 7.4 on loopback. It depends on nothing of the operator's.
//!
//! `server` is the model (instances, databases, backups, mirroring, log shipping, faults),
//! `tds` the wire front end over the `backend` seam, `workload` the simulated chat servers,
//! `control` the HTTP fault endpoint.

pub mod backend;
pub mod cluster;
pub mod control;
mod error;
pub mod faults;
pub mod server;
pub mod tds;
pub mod tls;
pub mod workload;

pub use error::Error;
