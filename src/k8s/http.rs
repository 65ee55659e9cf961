//! The operator's HTTP endpoint: `/healthz` (200 while the process serves), `/readyz` (200 once
//! the pool watch has synced, 503 before) and `/metrics` (OpenMetrics text).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::metrics::{self, Metrics};

/// What the endpoint reports from.
#[derive(Clone)]
pub struct Health {
    pub metrics: Arc<Metrics>,
    /// Set once the pool watch has listed every pool.
    pub ready: Arc<AtomicBool>,
}

/// Serve on `listener` until `shutdown` fires, then let in-flight requests finish.
pub async fn serve(listener: TcpListener, health: Health, shutdown: CancellationToken) {
    pchat_http::serve(listener, "health", shutdown, move |req| {
        let response = respond(&req, &health);
        async move { response }
    })
    .await
}

fn text(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(CONTENT_TYPE, v);
    }
    r
}

/// The response to one request.
pub fn respond<B>(req: &Request<B>, health: &Health) -> Response<Full<Bytes>> {
    const PLAIN: &str = "text/plain; charset=utf-8";
    let path = req.uri().path();
    if !matches!(path, "/healthz" | "/readyz" | "/metrics") {
        return text(
            StatusCode::NOT_FOUND,
            PLAIN,
            format!("no such endpoint {path}; use /healthz, /readyz or /metrics\n"),
        );
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = text(
            StatusCode::METHOD_NOT_ALLOWED,
            PLAIN,
            "use GET\n".to_string(),
        );
        r.headers_mut()
            .insert(ALLOW, "GET, HEAD".parse().expect("static header"));
        return r;
    }
    match path {
        "/healthz" => text(StatusCode::OK, PLAIN, "ok\n".into()),
        "/readyz" if health.ready.load(Ordering::Acquire) => {
            text(StatusCode::OK, PLAIN, "ready\n".into())
        }
        "/readyz" => text(
            StatusCode::SERVICE_UNAVAILABLE,
            PLAIN,
            "not ready: the PersistentChatPool watch has not synced yet\n".into(),
        ),
        _ => text(
            StatusCode::OK,
            metrics::CONTENT_TYPE,
            health.metrics.render(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn get(path: &str) -> Request<()> {
        Request::get(path).body(()).unwrap()
    }

    async fn body(r: Response<Full<Bytes>>) -> String {
        String::from_utf8(r.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
    }

    #[tokio::test]
    async fn readiness_follows_the_watch_and_health_does_not() {
        let h = Health {
            metrics: Arc::new(Metrics::new()),
            ready: Arc::new(AtomicBool::new(false)),
        };
        assert_eq!(respond(&get("/healthz"), &h).status(), StatusCode::OK);
        assert_eq!(
            respond(&get("/readyz"), &h).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        h.ready.store(true, Ordering::Release);
        assert_eq!(respond(&get("/readyz"), &h).status(), StatusCode::OK);
        assert_eq!(respond(&get("/nope"), &h).status(), StatusCode::NOT_FOUND);
        let post = Request::post("/metrics").body(()).unwrap();
        assert_eq!(respond(&post, &h).status(), StatusCode::METHOD_NOT_ALLOWED);
    }

    #[tokio::test]
    async fn metrics_are_served_as_openmetrics_text() {
        let h = Health {
            metrics: Arc::new(Metrics::new()),
            ready: Arc::new(AtomicBool::new(true)),
        };
        h.metrics.set_leader(true);
        let r = respond(&get("/metrics"), &h);
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            r.headers()[CONTENT_TYPE],
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        );
        let text = body(r).await;
        assert!(text.contains("pchat_leader 1"), "{text}");
    }
}
