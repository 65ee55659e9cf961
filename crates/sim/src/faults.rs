//! Fault injection for the simulator: a serializable [`Fault`] (the control endpoint's JSON
//! body) and the [`FaultInjector`] trait the [`Simulator`](crate::server::Simulator)
//! implements.

use serde::{Deserialize, Serialize};

use crate::server::StatementKind;

/// One fault to inject (or to clear). JSON: `{"kind": "InstanceDown", "instance": "atl-sql1"}`,
/// `{"kind": "Partition", "between": [["atlanta"], ["dallas"]]}`, `{"kind": "Heal"}`,
/// `{"kind": "FailNext", "pattern": "RESTORE LOG", "error": 4305}`,
/// `{"kind": "Latency", "statement": "backup", "millis": 500}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", deny_unknown_fields)]
pub enum Fault {
    /// The instance stops: logins are refused, its sessions are dropped, partners see
    /// DISCONNECTED. The owner of its TCP listener watches `Simulator::watch_up`.
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
    /// A share's file server is unreachable: backups and restores through it fail with 3201.
    ShareDown {
        host: String,
    },
    ShareUp {
        host: String,
    },
    /// The next statement whose text matches `pattern` (a case-insensitive substring, or a
    /// regex when `regex` is true), on `instance` or on any instance, fails with `error`.
    FailNext {
        #[serde(default)]
        instance: Option<String>,
        pattern: String,
        #[serde(default)]
        regex: bool,
        error: i32,
    },
    /// The database's files become inaccessible: the copy is RECOVERY_PENDING until
    /// `ALTER DATABASE .. SET ONLINE`.
    DatabaseRecoveryPending {
        instance: String,
        database: String,
    },
    /// The instance's local time moves to another offset from UTC, as a daylight-saving
    /// switch moves it: GETDATE() and the local dates msdb shows from then on use it; backups
    /// taken before keep the offset they were taken with.
    ClockChange {
        instance: String,
        utc_offset_minutes: i32,
    },
    /// Sleep `millis` before running every statement of kind `statement` (0 clears it).
    Latency {
        statement: StatementKind,
        millis: u64,
    },
}

/// Something faults can be injected into.
pub trait FaultInjector: Send + Sync {
    /// Apply `fault`; an error names what was wrong with it (unknown instance, bad regex...).
    fn inject(&self, fault: Fault) -> Result<(), String>;
    /// The faults currently in force, as JSON.
    fn describe(&self) -> serde_json::Value;
}
