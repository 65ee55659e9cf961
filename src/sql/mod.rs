//! The SQL executor's building blocks. Used by the engine only.

pub mod quote;
