//! pchat-operator: declarative SQL Server disaster recovery for a Skype for Business
//! Persistent Chat pool. This crate owns the reconcile pass ([`engine`]) and the two modes
//! that drive it: the Kubernetes controller ([`k8s`]) and local mode ([`local`]).
//!
//! The layers are crates and their arrows point one way:
//! `pchat_core` (resource, validation, observation model, pure planner) `<- pchat_sql`
//! (connections, T-SQL, reading answers) `<- pchat_operator`. The simulator (`pchat_sim`) is
//! linked only with the `sim` feature, for [`demo`]; the image builds without it.

pub mod cli;
#[cfg(feature = "sim")]
pub mod demo;
#[cfg(feature = "sim")]
pub mod drill;
pub mod engine;
pub mod error;
pub mod k8s;
pub mod kubectl;
pub mod local;
pub mod manifest;
pub mod telemetry;

pub use error::{Error, Result};
