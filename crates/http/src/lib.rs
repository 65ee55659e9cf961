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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(addr: std::net::SocketAddr) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        answer
    }

    /// The chart's default `[::]:8080`: one listener on the IPv6 wildcard serves IPv4 clients as
    /// well (Linux's sockets are dual-stack unless `net.ipv6.bindv6only` is set), so the same
    /// address works in IPv4-only, IPv6-only and dual-stack clusters.
    #[tokio::test]
    async fn a_listener_on_the_ipv6_wildcard_answers_ipv4_and_ipv6_clients() {
        let listener = TcpListener::bind("[::]:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(serve(listener, "test", shutdown.clone(), |_req| async {
            Response::new(Full::new(Bytes::from_static(b"ok")))
        }));
        for client in [format!("127.0.0.1:{port}"), format!("[::1]:{port}")] {
            let answer = get(client.parse().unwrap()).await;
            assert!(answer.starts_with("HTTP/1.1 200"), "{client}: {answer}");
            assert!(answer.ends_with("ok"), "{client}: {answer}");
        }
        shutdown.cancel();
        server.await.unwrap();
    }
}
