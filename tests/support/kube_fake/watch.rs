//! WATCH: newline-delimited JSON events over a chunked response.
//!
//! From resourceVersion N: every change after N, then live changes. Without a resourceVersion
//! (or "0"), or with `sendInitialEvents=true`: synthetic ADDED events for the current objects
//! first (the latter followed by the `k8s.io/initial-events-end` BOOKMARK). A resourceVersion
//! older than the kept history gets an ERROR event carrying a 410 Expired Status. Bookmarks
//! (when asked for) come right after start and then every second.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::{Bytes, Frame};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::Shared;
use super::errors::ApiError;
use super::resources::ResourceInfo;
use super::selectors::Selector;
use super::store::Store;

pub type Body = UnsyncBoxBody<Bytes, Infallible>;

const BOOKMARK_EVERY: Duration = Duration::from_secs(1);

/// What a watch request asked for.
pub struct WatchRequest {
    pub res: ResourceInfo,
    pub version: String,
    pub namespace: Option<String>,
    pub selector: Selector,
    /// None (or Some(0)): start from the current state with synthetic ADDED events.
    pub from: Option<u64>,
    pub bookmarks: bool,
    pub send_initial_events: bool,
    pub timeout: Option<Duration>,
}

fn line(event_type: &str, object: &Value) -> Bytes {
    let mut text =
        serde_json::to_vec(&json!({"type": event_type, "object": object})).expect("JSON");
    text.push(b'\n');
    Bytes::from(text)
}

impl WatchRequest {
    fn wants(&self, obj: &Value) -> bool {
        let ns_ok = match &self.namespace {
            Some(ns) if self.res.namespaced => {
                obj.pointer("/metadata/namespace").and_then(Value::as_str) == Some(ns)
            }
            _ => true,
        };
        ns_ok && self.selector.matches(obj)
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let object = json!({
            "kind": self.res.kind,
            "apiVersion": self.res.api_version(&self.version),
            "metadata": metadata,
        });
        line("BOOKMARK", &object)
    }

    /// Events after `last` that this watch wants, and the resourceVersion it has now seen up to.
    fn changes(&self, store: &Store, last: u64) -> Result<(Vec<Bytes>, u64), ApiError> {
        let events = store.events_since(&self.res, last)?;
        let lines = events
            .iter()
            .filter(|e| self.wants(&e.object))
            .map(|e| {
                line(
                    e.event_type.as_str(),
                    &Store::present(&self.res, &self.version, &e.object),
                )
            })
            .collect();
        Ok((lines, store.resource_version()))
    }
}

/// Starts a watch; the returned body streams until the timeout, a 410, or the client leaves.
pub fn start(shared: Arc<Shared>, req: WatchRequest) -> Body {
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let mut changed = shared.changed.subscribe();
    tokio::spawn(async move {
        // The first batch: initial ADDED events, or the history after the given version.
        let first = {
            let store = shared.store.lock().expect("store lock");
            match req.from {
                Some(rv) if rv > 0 && !req.send_initial_events => req.changes(&store, rv),
                _ => {
                    let lines = store
                        .list(&req.res, &req.version, req.namespace.as_deref())
                        .iter()
                        .filter(|o| req.wants(o))
                        .map(|o| line("ADDED", o))
                        .collect();
                    Ok((lines, store.resource_version()))
                }
            }
        };
        let mut last = match first {
            Ok((lines, last)) => {
                for l in lines {
                    if tx.send(l).await.is_err() {
                        return;
                    }
                }
                last
            }
            Err(e) => {
                let _ = tx.send(line("ERROR", &e.to_status())).await;
                return;
            }
        };
        if req.send_initial_events && tx.send(req.bookmark(last, true)).await.is_err() {
            return;
        }
        if req.bookmarks && tx.send(req.bookmark(last, false)).await.is_err() {
            return;
        }
        let deadline = req.timeout.map(|t| tokio::time::Instant::now() + t);
        let mut ticker = tokio::time::interval(BOOKMARK_EVERY);
        ticker.tick().await;
        loop {
            let until_deadline = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = until_deadline => return,
                _ = tx.closed() => return,
                _ = ticker.tick() => {
                    if req.bookmarks && tx.send(req.bookmark(last, false)).await.is_err() {
                        return;
                    }
                }
                result = changed.changed() => {
                    if result.is_err() {
                        return;
                    }
                    let batch = {
                        let store = shared.store.lock().expect("store lock");
                        req.changes(&store, last)
                    };
                    match batch {
                        Ok((lines, seen)) => {
                            for l in lines {
                                if tx.send(l).await.is_err() {
                                    return;
                                }
                            }
                            last = seen;
                        }
                        Err(e) => {
                            let _ = tx.send(line("ERROR", &e.to_status())).await;
                            return;
                        }
                    }
                }
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    StreamBody::new(stream).boxed_unsync()
}
