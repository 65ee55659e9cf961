//! Faults that tests and the control endpoint inject into the simulated topology.
//!
//! PLACEHOLDER for the `simtds` branch, shaped like the model engineer's `sim::faults` (same
//! variants and serde attributes, except `Latency::statement`, a `String` here because the
//! model's `StatementKind` lives in `sim::server`). The lead keeps the model's file at merge.
//! `sim::control` depends only on `Fault: Deserialize` and the `FaultInjector` trait.

use serde::{Deserialize, Serialize};

/// One fault to inject (or to clear), as JSON `{"kind": "instanceDown", ...}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", deny_unknown_fields)]
pub enum Fault {
    /// The instance stops: logins refused, sessions dropped.
    InstanceDown {
        instance: String,
    },
    InstanceUp {
        instance: String,
    },
    /// Cut the network between two groups of instance names, site names or share hosts.
    Partition {
        between: (Vec<String>, Vec<String>),
    },
    /// Remove every partition.
    Heal,
    /// A share's file server is unreachable.
    ShareDown {
        host: String,
    },
    ShareUp {
        host: String,
    },
    /// The next statement matching `pattern` fails with `error`.
    FailNext {
        #[serde(default)]
        instance: Option<String>,
        pattern: String,
        #[serde(default)]
        regex: bool,
        error: i32,
    },
    /// The database's files become inaccessible (RECOVERY_PENDING).
    DatabaseRecoveryPending {
        instance: String,
        database: String,
    },
    /// Sleep `millis` before every statement of a kind (0 clears it).
    Latency {
        statement: String,
        millis: u64,
    },
}

/// Something faults can be injected into.
pub trait FaultInjector: Send + Sync {
    /// Apply `fault`; an error names what was wrong with it.
    fn inject(&self, fault: Fault) -> Result<(), String>;
    /// The faults currently in force, as JSON.
    fn describe(&self) -> serde_json::Value;
}
