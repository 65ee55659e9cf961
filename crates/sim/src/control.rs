//! The simulator's HTTP control endpoint: `POST /faults` with a JSON fault injects it (204,
//! or 400 with the reason), `GET /state` describes the topology as JSON.

use std::sync::Arc;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::faults::{Fault, FaultInjector};

/// The largest request body accepted (a fault is a few hundred bytes).
const MAX_BODY: usize = 64 * 1024;

/// Serves the control endpoint on `listener` until `shutdown` fires; then stops accepting,
/// lets in-flight requests finish, and returns.
pub async fn serve(
    listener: TcpListener,
    injector: Arc<dyn FaultInjector + Send + Sync>,
    shutdown: CancellationToken,
) {
    pchat_http::serve(listener, "control", shutdown, move |req| {
        handle(req, injector.clone())
    })
    .await
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
) -> Response<Full<Bytes>> {
    match (req.method(), req.uri().path()) {
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
    }
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
