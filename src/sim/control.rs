//! The simulator's HTTP control endpoint: `POST /faults` with a JSON fault injects it (204,
//! or 400 with the reason), `GET /state` describes the topology as JSON.

use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{ALLOW, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::sim::faults::{Fault, FaultInjector};

/// The largest request body accepted (a fault is a few hundred bytes).
const MAX_BODY: usize = 64 * 1024;

/// Serves the control endpoint on `listener` until `shutdown` fires; then stops accepting,
/// lets in-flight requests finish, and returns.
pub async fn serve(
    listener: TcpListener,
    injector: Arc<dyn FaultInjector + Send + Sync>,
    shutdown: CancellationToken,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let injector = injector.clone();
                    let shutdown = shutdown.clone();
                    connections.spawn(async move {
                        let service = service_fn(move |req| handle(req, injector.clone()));
                        let conn = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service);
                        tokio::pin!(conn);
                        tokio::select! {
                            result = conn.as_mut() => {
                                if let Err(e) = result {
                                    tracing::debug!(error = %e, "control connection ended");
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
                    tracing::warn!(error = %e, "control endpoint accept failed");
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

fn text(status: StatusCode, body: impl Into<String>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.into())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        "text/plain; charset=utf-8".parse().expect("static header"),
    );
    r
}

fn method_not_allowed(allow: &'static str) -> Response<Full<Bytes>> {
    let mut r = text(StatusCode::METHOD_NOT_ALLOWED, format!("use {allow}\n"));
    r.headers_mut()
        .insert(ALLOW, allow.parse().expect("static header"));
    r
}

async fn handle(
    req: Request<Incoming>,
    injector: Arc<dyn FaultInjector + Send + Sync>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let response = match (req.method(), req.uri().path()) {
        (&Method::POST, "/faults") => post_fault(req, injector.as_ref()).await,
        (_, "/faults") => method_not_allowed("POST"),
        (&Method::GET, "/state") => {
            let body = injector.describe().to_string();
            let mut r = Response::new(Full::new(Bytes::from(body)));
            r.headers_mut().insert(
                CONTENT_TYPE,
                "application/json".parse().expect("static header"),
            );
            r
        }
        (_, "/state") => method_not_allowed("GET"),
        (_, path) => text(
            StatusCode::NOT_FOUND,
            format!("no such endpoint {path}; use POST /faults or GET /state\n"),
        ),
    };
    Ok(response)
}

async fn post_fault(
    req: Request<Incoming>,
    injector: &(dyn FaultInjector + Send + Sync),
) -> Response<Full<Bytes>> {
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("cannot read the request body (at most {MAX_BODY} bytes): {e}\n"),
            );
        }
    };
    let fault: Fault = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("the body is not a fault: {e}\n"),
            );
        }
    };
    tracing::info!(?fault, "injecting fault from the control endpoint");
    match injector.inject(fault) {
        Ok(()) => {
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = StatusCode::NO_CONTENT;
            r
        }
        Err(message) => text(StatusCode::BAD_REQUEST, format!("{message}\n")),
    }
}
