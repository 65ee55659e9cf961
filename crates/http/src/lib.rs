//! The HTTP/1.1 accept loop shared by the simulator's control endpoint and the operator's
//! health and metrics endpoint: each connection on its own task, and on cancellation no new
//! connection, in-flight requests finished (graceful shutdown), then return.
//!
//! Generic on purpose: it knows nothing of the operator or the simulator, so both may use it
//! without one depending on the other.

use std::convert::Infallible;
use std::future::Future;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Serve `handler` on `listener` until `shutdown` fires. `what` names the endpoint in logs.
pub async fn serve<H, F>(
    listener: TcpListener,
    what: &'static str,
    shutdown: CancellationToken,
    handler: H,
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let handler = handler.clone();
                    let shutdown = shutdown.clone();
                    connections.spawn(async move {
                        let service = service_fn(move |req| {
                            let response = handler(req);
                            async move { Ok::<_, Infallible>(response.await) }
                        });
                        let conn = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service);
                        tokio::pin!(conn);
                        tokio::select! {
                            result = conn.as_mut() => {
                                if let Err(e) = result {
                                    tracing::debug!(error = %e, endpoint = what, "HTTP connection ended");
                                }
                            }
                            _ = shutdown.cancelled() => {
                                conn.as_mut().graceful_shutdown();
                                let _ = conn.await;
                            }
                        }
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %e, endpoint = what, "HTTP accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = shutdown.cancelled() => break,
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}
