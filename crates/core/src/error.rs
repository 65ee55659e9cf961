//! The core crate's one error type: why a manifest cannot become a spec the planner may use.
//! Every variant is something a person must fix in the manifest; none goes away by trying
//! again, which [`Error::is_retryable`] says once for every caller.

use crate::api::{ValidationErrors, Violation};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The text is not YAML, or does not have the shape of a `PersistentChatPool`. The message
    /// names the line and column, and shows the offending line.
    #[error("cannot read the PersistentChatPool manifest: {source}")]
    Yaml {
        /// 1-based line of the problem, when the parser knows it.
        line: Option<u64>,
        /// 1-based column of the problem, when the parser knows it.
        column: Option<u64>,
        // Boxed: the parser's error is large, and results travel by value.
        #[source]
        source: Box<serde_saphyr::Error>,
    },
    /// The manifest is some other kind of object.
    #[error(
        "the manifest is apiVersion {found_api_version:?} kind {found_kind:?}; expected apiVersion \
         {expected_api_version:?} kind {expected_kind:?}"
    )]
    WrongKind {
        found_api_version: String,
        found_kind: String,
        expected_api_version: String,
        expected_kind: String,
    },
    /// Fields a `PersistentChatPool` does not have, most likely misspelt. The API server would
    /// drop them silently; file mode refuses them, so that a misspelt `suspend` or
    /// `approveOverwrite` cannot pass unnoticed.
    #[error(
        "the manifest has fields a PersistentChatPool does not have (misspelt?): {}",
        .paths.join(", ")
    )]
    UnknownFields {
        /// Each unknown field's path, e.g. `spec.failover.alowDataLoss`.
        paths: Vec<String>,
    },
    /// Durations the schema does not admit (not Go duration text, a negative one, or a number
    /// too large for the clock), refused before they are converted: a value such as
    /// `99999999999999999999h` does not fit a `std::time::Duration`.
    #[error(
        "{}: not a duration the operator accepts (Go duration text such as 90s, 5m or 1h30m, \
         each number at most six digits)",
        .paths.join(", ")
    )]
    BadDurations {
        /// Each field's path and value, e.g. `spec.failover.unreachableAfter = "99999999h"`.
        paths: Vec<String>,
    },
    /// The spec breaks validation rules; one violation per line, each naming its field.
    #[error("{0}")]
    Invalid(ValidationErrors),
    /// The CustomResourceDefinition cannot be written as YAML.
    #[error("cannot write the CustomResourceDefinition as YAML: {0}")]
    CrdYaml(#[source] serde_saphyr::ser::Error),
}

impl Error {
    /// Whether the same input tried again may succeed: never, since every variant is a fault
    /// of the manifest (or of the build, for the CRD) and not of something that fails for a
    /// while.
    pub fn is_retryable(&self) -> bool {
        false
    }

    /// The violations of validation rules, each with its field's path; empty for an error that
    /// stopped before validation (the manifest could not be read as a `PersistentChatPool`).
    pub fn violations(&self) -> &[Violation] {
        match self {
            Error::Invalid(errors) => errors.violations(),
            _ => &[],
        }
    }

    /// Whether some violation concerns exactly this path.
    pub fn has_path(&self, path: &str) -> bool {
        self.violations().iter().any(|v| v.path == path)
    }
}
