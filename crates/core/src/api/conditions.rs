//! The pool's condition types and their reasons: one list shared by status assembly, Events,
//! metrics and the Argo CD health check, so that a dashboard, an alert and `kubectl wait
//! --for=condition=Ready` all read the same names.
//!
//! `Ready`, `Reconciling` and `Stalled` are the kstatus conditions (Argo CD, Flux and `kubectl
//! wait` understand them); `Protected` and `Degraded` are the pool's own.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use super::Phase;

/// A condition type of `status.conditions`.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
pub enum ConditionType {
    /// True when the declared primary site serves and the pool is protected.
    Ready,
    /// True while the operator is moving the pool towards the spec (kstatus InProgress).
    Reconciling,
    /// True when progress needs a person (kstatus Failed).
    Stalled,
    /// True when mirroring is synchronized and log shipping is within `rpoTarget`.
    Protected,
    /// True when the pool serves but some protection is missing.
    Degraded,
}

impl ConditionType {
    /// The type as it is written in status (`Ready`, `Stalled`, ...).
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Why a condition has its status. Most reasons are fixed words; the others are the phase the
/// pool is in, or the kind of wait or block the planner reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConditionReason {
    /// The desired state holds.
    Protected,
    /// Nothing degraded.
    AsDesired,
    /// Some protection is missing (the message says which).
    Degraded,
    /// Nothing was observed this pass, and no earlier status says anything.
    NotObserved,
    /// The spec breaks a rule or the manifest cannot be read.
    InvalidSpec,
    /// The published active-server list (ConfigMap or file) cannot be read.
    PublishedStateUnreadable,
    /// A step failed with an error that will not clear by itself.
    StepFailed,
    /// A step failed and will be retried.
    StepRetrying,
    /// `spec.suspend` is true.
    Suspended,
    /// The Secret named by `spec.sqlCredentialsSecret` (or `spec.tls.caSecret`) is missing.
    SecretNotFound,
    /// A key the Secret must hold is missing.
    SecretKeyMissing,
    /// A key of the Secret holds something unusable.
    SecretKeyInvalid,
    /// The Secrets could not be read (the API server failed); retried.
    SecretUnreadable,
    /// The CA certificate from `spec.tls.caSecret` could not be written for the TLS client;
    /// retried.
    CaFileUnwritable,
    /// The pool is in this phase and nothing more specific applies.
    InPhase(Phase),
    /// The planner waits for something outside the operator; the kind of wait.
    Waiting(&'static str),
    /// The planner needs a person's decision; the kind of block.
    Blocked(&'static str),
}

impl ConditionReason {
    /// The reason as it is written in status: one CamelCase word.
    pub fn as_str(&self) -> &'static str {
        match self {
            ConditionReason::Protected => "Protected",
            ConditionReason::AsDesired => "AsDesired",
            ConditionReason::Degraded => "Degraded",
            ConditionReason::NotObserved => "NotObserved",
            ConditionReason::InvalidSpec => "InvalidSpec",
            ConditionReason::PublishedStateUnreadable => "PublishedStateUnreadable",
            ConditionReason::StepFailed => "StepFailed",
            ConditionReason::StepRetrying => "StepRetrying",
            ConditionReason::Suspended => "Suspended",
            ConditionReason::SecretNotFound => "SecretNotFound",
            ConditionReason::SecretKeyMissing => "SecretKeyMissing",
            ConditionReason::SecretKeyInvalid => "SecretKeyInvalid",
            ConditionReason::SecretUnreadable => "SecretUnreadable",
            ConditionReason::CaFileUnwritable => "CaFileUnwritable",
            ConditionReason::InPhase(phase) => phase.into(),
            ConditionReason::Waiting(kind) | ConditionReason::Blocked(kind) => kind,
        }
    }
}

impl std::fmt::Display for ConditionReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The condition of `type_` in `conditions`, if there is one.
pub fn find(conditions: &[Condition], type_: ConditionType) -> Option<&Condition> {
    conditions.iter().find(|c| c.type_ == type_.as_str())
}

/// Whether the condition of `type_` is there with status `True`.
pub fn is_true(conditions: &[Condition], type_: ConditionType) -> bool {
    find(conditions, type_).is_some_and(|c| c.status == "True")
}

#[cfg(test)]
mod tests {
    use strum::VariantArray;

    use super::*;

    #[test]
    fn every_condition_type_reads_back_from_the_name_status_uses() {
        for type_ in ConditionType::VARIANTS {
            assert_eq!(type_.as_str().parse::<ConditionType>(), Ok(*type_));
            assert_eq!(type_.to_string(), type_.as_str());
        }
    }

    #[test]
    fn a_phase_reason_is_the_phase_name() {
        assert_eq!(
            ConditionReason::InPhase(Phase::Switching).as_str(),
            "Switching"
        );
        assert_eq!(
            ConditionReason::Blocked("DataLossNotAllowed").to_string(),
            "DataLossNotAllowed"
        );
    }
}
