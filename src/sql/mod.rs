//! The SQL executor's building blocks. Used by the engine only.

pub mod connect;
pub mod error;
pub mod quote;
pub mod statements;

pub use error::SqlError;
