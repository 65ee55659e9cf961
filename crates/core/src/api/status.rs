//! What the operator reports. Status carries what must be reported (tail LSN, data-loss window,
//! salvage files); the planner never reads it to decide anything.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The observed and reported state of a pool.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PersistentChatPoolStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Normal` while the pool serves from its home site, `FailedOver` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_state: Option<PoolState>,
    /// The site whose chat database is ONLINE and serving, as observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving_site: Option<String>,
    /// What the operator is doing, in one word.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// The step under way (or last run) and its place in the remaining plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<StepStatus>,
    /// While the operator waits before its next step: what for, in words (a drain, an
    /// unreachable instance, a share it cannot read). Absent when it is not waiting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<String>,
    /// Since when the operator has been waiting for the same kind of thing (`waitingFor`).
    /// A wait that needs a person (an instance that stays unreachable, a share that cannot be
    /// read) turns Stalled once it lasts longer than `spec.failover.unreachableAfter`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub waiting_since: Option<Timestamp>,
    /// The kind of wait `waitingSince` dates, e.g. `InstanceUnreachable`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_kind: Option<String>,
    /// The published active-server list: the chat servers allowed to connect.
    #[serde(default)]
    pub active_servers: Vec<String>,
    /// The last (or current) move of the primary between sites.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transition: Option<Transition>,
    /// Log-shipping protection figures, as observed on the secondary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protection: Option<Protection>,
    /// Every instance as last observed.
    #[serde(default)]
    pub instances: Vec<InstanceStatus>,
    /// Backups taken of copies before they were overwritten. Never removed by the operator.
    #[serde(default)]
    pub salvage_backups: Vec<SalvageBackup>,
    /// Ready, Reconciling, Stalled (kstatus), Protected and Degraded.
    // A list-map keyed by `type` (the types are `super::ConditionType`), so that a server-side
    // apply merges conditions by type, as for Kubernetes' own objects.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// `Set-CsPersistentChatState -PoolState`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum PoolState {
    Normal,
    FailedOver,
}

/// What the operator is doing, in one word.
#[derive(
    Serialize,
    Deserialize,
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    JsonSchema,
    strum::IntoStaticStr,
)]
pub enum Phase {
    /// Seeding mirrors and log shipping from the installer's state.
    Bootstrapping,
    /// Converged: the desired state holds.
    Protected,
    /// A planned switch of the primary site is under way.
    Switching,
    /// A forced failover is under way.
    FailingOver,
    /// A returning or degraded part of the pool is being fenced, salvaged, reseeded or re-mirrored.
    Reprotecting,
    /// Waiting for something outside the operator (drain, an unreachable instance, a share).
    Waiting,
    /// A decision needs a person: see the Stalled condition.
    Blocked,
    /// `spec.suspend` is true: observing only.
    Suspended,
    /// The spec is invalid: no SQL is sent.
    Invalid,
}

/// The step under way.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepStatus {
    /// Step name from the step catalogue, e.g. `CatchUp`.
    pub name: String,
    /// The site it acts on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// 1-based position of this step in the plan as projected when it started.
    // The OpenAPI formats Kubernetes knows are int32 and int64 (not schemars' uint32/uint64).
    #[schemars(extend("format" = "int64"))]
    pub index: u32,
    /// Number of steps in that projected plan.
    #[schemars(extend("format" = "int64"))]
    pub total: u32,
    /// When the step started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub started_at: Option<Timestamp>,
    /// What it does, in words.
    #[serde(default)]
    pub detail: String,
    /// While one of its BACKUP or RESTORE statements runs: how far SQL Server says it is.
    /// Written during the step (a restore of a large database takes hours); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<StepProgress>,
}

/// A running BACKUP or RESTORE of the step under way (`sys.dm_exec_requests`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepProgress {
    /// The instance it runs on.
    pub instance: String,
    /// `command`, e.g. `RESTORE DATABASE`.
    pub command: String,
    /// `percent_complete`, 0 to 100.
    #[schemars(extend("format" = "int64"))]
    pub percent_complete: u32,
    /// When SQL Server said so.
    #[schemars(with = "String")]
    pub reported_at: Timestamp,
}

/// Planned (old primary reachable, nothing lost) or Forced (old primary unreachable).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum TransitionKind {
    Planned,
    Forced,
}

/// A move of the primary between sites.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Transition {
    pub from: String,
    pub to: String,
    pub kind: TransitionKind,
    #[schemars(with = "String")]
    pub started_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub completed_at: Option<Timestamp>,
    /// LSN of the old primary's tail-log backup (planned switch): the new primary reached it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail_lsn: Option<String>,
    /// Estimated data-loss window of a forced failover, reported before and after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_loss: Option<DataLoss>,
}

/// The estimated data-loss window of a forced failover.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataLoss {
    /// Seconds of writes the new primary may not have: from the last log backup it could restore
    /// to the moment the old primary became unreachable.
    #[schemars(extend("format" = "int64"))]
    pub estimated_seconds: u64,
    /// The last log backup restored on the new primary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_restored_file: Option<String>,
}

/// Log-shipping protection figures.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Protection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_backup_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_restored_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "int64"))]
    pub restore_latency_seconds: Option<u64>,
}

/// One instance as last observed.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceStatus {
    pub name: String,
    pub site: String,
    pub reachable: bool,
    /// Why it is unreachable, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default)]
    pub databases: Vec<DatabaseStatus>,
}

/// One database on one instance as last observed.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseStatus {
    pub name: String,
    /// `sys.databases.state_desc`.
    pub state: String,
    /// `sys.database_mirroring.mirroring_role_desc`, when mirrored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirroring_role: Option<String>,
    /// `sys.database_mirroring.mirroring_state_desc`, when mirrored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirroring_state: Option<String>,
}

/// A backup taken of a copy before anything overwrote it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SalvageBackup {
    pub site: String,
    pub instance: String,
    pub database: String,
    /// Full path of the COPY_ONLY backup file.
    pub file: String,
    #[schemars(with = "String")]
    pub taken_at: Timestamp,
}
