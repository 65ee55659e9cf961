//! The simulator's TDS 7.4 front end: accepts client connections, decodes PRELOGIN, LOGIN7,
//! SQL batches, RPC requests, transaction-manager requests and ATTENTION, hands them to a [`Backend`], and encodes each
//! [`Outcome`] as the token stream SQL Server would send. Encryption is SQL Server's: TLS
//! inside PRELOGIN for TDS 7.x (whole connection, or the login only), TLS first for TDS 8
//! strict, or none when the listener has no certificate.
//!
//! [`Backend`]: crate::backend::Backend
//! [`Outcome`]: crate::backend::Outcome

mod connection;
pub mod decode;
pub mod encode;
pub mod login;
pub mod packet;
mod prelogin_tls;
pub mod rpc;
pub mod tokens;
pub mod transaction;
pub mod types;
pub mod wire;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::backend::SharedBackend;
use crate::tls::ListenerTls;

/// Serves TDS without encryption (a server with no certificate) on `listener` until
/// `shutdown` fires; see [`serve_with_tls`].
pub async fn serve(listener: TcpListener, backend: SharedBackend, shutdown: CancellationToken) {
    serve_with_tls(listener, backend, ListenerTls::disabled(), shutdown).await
}

/// Serves TDS on `listener` until `shutdown` fires, one task per connection, negotiating
/// encryption as `tls` allows. On shutdown it stops accepting, closes every connection, and
/// returns once they have all ended.
pub async fn serve_with_tls(
    listener: TcpListener,
    backend: SharedBackend,
    tls: ListenerTls,
    shutdown: CancellationToken,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(connection::run(
                        stream,
                        peer,
                        backend.clone(),
                        tls.clone(),
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

/// How long `serve_while_up` keeps trying to bind an address still held by the previous
/// listener's closing sockets.
const BIND_ATTEMPTS: u32 = 40;
const BIND_RETRY: Duration = Duration::from_millis(50);

/// Serves TDS without encryption on `addr` while the instance is up, for whoever owns an instance's listener
/// (the model publishes up/down on a watch channel): binds when `up` becomes true; when it
/// becomes false, closes the listener and every connection, so clients see connections
/// refused. Returns when `shutdown` fires or the sender is dropped; fails only when the
/// address cannot be bound.
pub async fn serve_while_up(
    addr: SocketAddr,
    backend: SharedBackend,
    up: watch::Receiver<bool>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    serve_while_up_from(addr, None, backend, ListenerTls::disabled(), up, shutdown).await
}

/// Like [`serve_while_up`], starting with an already bound listener (so that a listener bound
/// on port 0 keeps the port the system chose, across later down/up cycles too).
pub async fn serve_listener_while_up(
    listener: TcpListener,
    backend: SharedBackend,
    tls: ListenerTls,
    up: watch::Receiver<bool>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    serve_while_up_from(addr, Some(listener), backend, tls, up, shutdown).await
}

async fn serve_while_up_from(
    addr: SocketAddr,
    mut first: Option<TcpListener>,
    backend: SharedBackend,
    tls: ListenerTls,
    mut up: watch::Receiver<bool>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    loop {
        while !*up.borrow_and_update() {
            tokio::select! {
                changed = up.changed() => if changed.is_err() { return Ok(()) },
                _ = shutdown.cancelled() => return Ok(()),
            }
        }
        let listener = match first.take() {
            Some(listener) => listener,
            None => bind_with_retry(addr).await?,
        };
        let stop = shutdown.child_token();
        let server = tokio::spawn(serve_with_tls(
            listener,
            backend.clone(),
            tls.clone(),
            stop.clone(),
        ));
        let sender_gone = loop {
            tokio::select! {
                changed = up.changed() => match changed {
                    Err(_) => break true,
                    Ok(()) if !*up.borrow_and_update() => break false,
                    Ok(()) => {}
                },
                _ = shutdown.cancelled() => break true,
            }
        };
        stop.cancel();
        // A panicked server task has nothing left to clean up; the loop binds anew.
        let _ = server.await;
        if sender_gone {
            return Ok(());
        }
    }
}

async fn bind_with_retry(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let mut attempt = 1;
    loop {
        match TcpListener::bind(addr).await {
            Ok(l) => return Ok(l),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && attempt < BIND_ATTEMPTS => {
                attempt += 1;
                tokio::time::sleep(BIND_RETRY).await;
            }
            Err(e) => {
                return Err(std::io::Error::new(
                    e.kind(),
                    format!("cannot listen on {addr}: {e}"),
                ));
            }
        }
    }
}
