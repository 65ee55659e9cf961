//! The SQL executor's building blocks. Used by the engine only.

pub mod connect;
pub mod error;
pub mod execute;
pub mod observe;
pub mod quote;
pub mod statements;
pub mod target;

pub use error::SqlError;
