//! The operator's way to SQL Server: connections and sessions ([`connect`]), the T-SQL of each
//! step family ([`statements`], safely quoted by [`quote`]), running a step ([`execute`]) and
//! reading each instance's answers into the observation model ([`observe`]).

pub mod connect;
pub mod error;
pub mod execute;
pub mod observe;
pub mod quote;
pub mod statements;
pub mod target;
#[cfg(feature = "testing")]
pub mod testing;

pub use error::{ConnectionLoss, SqlError};
