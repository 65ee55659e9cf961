//! pchat-operator: declarative SQL Server disaster recovery for a Skype for Business
//! Persistent Chat pool.
//!
//! Module arrows point one way: `api <- observe <- plan <- engine <- {k8s, local}`; `sql` is
//! used by the engine only; `sim` depends on nothing of the operator's. `http_server` (an
//! HTTP/1.1 accept loop) and `telemetry` serve both and depend on neither.

pub mod api;
pub mod demo;
pub mod engine;
pub mod http_server;
pub mod k8s;
pub mod local;
pub mod observe;
pub mod plan;
pub mod sim;
pub mod sql;
pub mod telemetry;
