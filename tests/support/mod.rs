//! What the operator's test binaries share, one module per world: [`engine`] (a `SqlPort`
//! double over the planner's model executor), [`faults`] (a live simulated pool driven pass by
//! pass), [`local`] (local mode's files and binary), [`k8s`] (the Kubernetes end-to-end world on
//! a real control plane). The live simulated pool itself is `pchat_sql::testing`.

#![allow(dead_code)] // each test binary uses a different subset

pub mod engine;
pub mod faults;
pub mod k8s;
pub mod local;
