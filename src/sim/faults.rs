//! Faults that tests and the control endpoint inject into the simulated topology.
//!
//! PLACEHOLDER SHAPE for the `simtds` branch: the model engineer owns this file and its real
//! variants; the lead reconciles the two at merge. `sim::control` depends only on `Fault`
//! being deserializable and on the `FaultInjector` trait below, never on the variants.

use serde::{Deserialize, Serialize};

/// One fault or repair, as JSON `{"kind": "...", ...}`.
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
#[serde(tag = "kind")]
pub enum Fault {
    /// The instance stops: connections refused, sessions dropped.
    InstanceDown {
        instance: String,
    },
    InstanceUp {
        instance: String,
    },
    /// No traffic between two sites or instances.
    Partition {
        a: String,
        b: String,
    },
    Heal {
        a: String,
        b: String,
    },
    /// The file share host is unreachable (backup/restore fail with 3201 and 3013).
    ShareDown {
        host: String,
    },
    ShareUp {
        host: String,
    },
    /// The next statement matching `pattern` fails with error `number`.
    FailNext {
        pattern: String,
        number: i32,
    },
    /// Added latency for a statement kind.
    Latency {
        statement_kind: String,
        millis: u64,
    },
}

/// Something that applies faults to a running topology.
pub trait FaultInjector: Send + Sync {
    fn inject(&self, fault: Fault) -> Result<(), String>;
    fn describe(&self) -> serde_json::Value;
}
