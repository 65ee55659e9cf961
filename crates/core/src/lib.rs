//! The domain core of pchat-operator: the `PersistentChatPool` resource and its validation
//! ([`api`]), the observed-state model ([`observe`]) and the pure planner ([`plan`]):
//! `(spec, observation, now) -> decision`. No I/O happens here; the `sql` crate fills the
//! observation and runs the steps, the operator crate owns the reconcile pass.
//!
//! Arrows point one way: `api <- observe <- plan`.

pub mod api;
mod error;
pub mod observe;
pub mod plan;

pub use error::Error;
