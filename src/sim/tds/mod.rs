//! The simulator's TDS 7.4 front end: accepts client connections, decodes PRELOGIN, LOGIN7,
//! SQL batches, RPC requests and ATTENTION, hands them to a [`Backend`], and encodes each
//! [`Outcome`] as the token stream SQL Server would send. Encryption is not supported: a
//! client that demands it is answered ENCRYPT_NOT_SUP and disconnected.
//!
//! [`Backend`]: crate::sim::backend::Backend
//! [`Outcome`]: crate::sim::backend::Outcome

mod connection;
pub mod decode;
pub mod encode;
pub mod login;
pub mod packet;
pub mod rpc;
pub mod tokens;
pub mod types;
pub mod wire;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::sim::backend::SharedBackend;

/// Serves TDS on `listener` until `shutdown` fires, one task per connection. On shutdown it
/// stops accepting, closes every connection, and returns once they have all ended.
pub async fn serve(listener: TcpListener, backend: SharedBackend, shutdown: CancellationToken) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(connection::run(
                        stream,
                        peer,
                        backend.clone(),
                        shutdown.child_token(),
                    ));
                }
                Err(e) => {
                    // Per-connection accept errors (e.g. a reset before accept) are
                    // transient; back off briefly so a persistent one (EMFILE) cannot spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            // Reap finished connections so the set does not grow without bound.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = shutdown.cancelled() => break,
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}
