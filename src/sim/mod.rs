//! A SQL Server simulator for the HA/DR subset the operator and chat servers use, speaking
//! TDS 7.4 on loopback. It depends on nothing of the operator's.

pub mod backend;
pub mod control;
pub mod faults;
pub mod tds;
pub mod workload;
