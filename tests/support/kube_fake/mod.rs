//! A fake Kubernetes API server for tests: plain HTTP/1.1 on loopback, JSON only, generic over
//! resources (stored by group/plural/namespace/name), with discovery, watch, the status
//! subresource, server-side apply (simplified), and CRDs that make their kinds served.
//! What it does NOT prove is listed in docs/testing.md.

mod discovery;
mod errors;
mod events;
mod fields;
mod http;
mod kubeconfig;
mod openapi;
mod patch;
mod protobuf;
mod resources;
mod selectors;
mod store;
mod table;
mod watch;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde_json::Value;

use store::Store;

/// One request the fake served. Headers other than these (Authorization in particular) are
/// not kept.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// The raw (still percent-encoded) query string.
    pub query: String,
    pub content_type: String,
    pub user_agent: String,
    /// The `fieldManager` query parameter ("" when absent).
    pub field_manager: String,
    pub status: u16,
}

/// State shared by the server thread and the test's handle.
pub(crate) struct Shared {
    pub store: Mutex<Store>,
    /// The latest resourceVersion; watches wake on change.
    pub changed: tokio::sync::watch::Sender<u64>,
    pub requests: Mutex<Vec<RecordedRequest>>,
    /// host:port, for /api's serverAddressByClientCIDRs.
    pub address: String,
}

/// A running fake API server. It serves on its own thread with its own tokio runtime, so it
/// works from sync and async tests alike; dropping it stops it (open watches end).
pub struct FakeApiServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeApiServer {
    /// Binds 127.0.0.1:0 and starts serving.
    pub fn start() -> FakeApiServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("local address");
        let (changed, _) = tokio::sync::watch::channel(0);
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::new()),
            changed,
            requests: Mutex::new(Vec::new()),
            address: addr.to_string(),
        });
        let (shutdown, mut stop) = tokio::sync::oneshot::channel::<()>();
        let serving = shared.clone();
        let thread = std::thread::Builder::new()
            .name("kube-fake".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("tokio runtime");
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                    loop {
                        tokio::select! {
                            _ = &mut stop => break,
                            accepted = listener.accept() => {
                                let Ok((stream, _)) = accepted else { continue };
                                let shared = serving.clone();
                                tokio::spawn(async move {
                                    let service = hyper::service::service_fn(move |req| {
                                        http::handle(shared.clone(), req)
                                    });
                                    let _ = hyper::server::conn::http1::Builder::new()
                                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                                        .await;
                                });
                            }
                        }
                    }
                });
                // Open watch streams would otherwise keep the runtime alive.
                runtime.shutdown_background();
            })
            .expect("spawn the fake API server thread");
        FakeApiServer {
            shared,
            addr,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// "http://127.0.0.1:PORT"
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Writes a kubeconfig (server = url, plain HTTP, a token user, namespace default) usable
    /// by kubectl and by `kube::Client::try_default` through KUBECONFIG.
    pub fn write_kubeconfig(&self, path: &std::path::Path) {
        std::fs::write(path, kubeconfig::render(&self.url())).expect("write the kubeconfig");
    }

    /// A kube client for this server (default namespace `default`).
    pub async fn client(&self) -> kube::Client {
        install_crypto_provider();
        let mut config = kube::Config::new(self.url().parse().expect("a valid URL"));
        config.default_namespace = "default".into();
        kube::Client::try_from(config).expect("a kube client for the fake")
    }

    fn resource(
        &self,
        api_version: &str,
        plural: &str,
    ) -> Option<(resources::ResourceInfo, String)> {
        let (group, version) = Store::split_api_version(api_version);
        let store = self.shared.store.lock().expect("store lock");
        store
            .find(group, version, plural)
            .map(|r| (r, version.to_string()))
    }

    /// The stored object, as GET would return it.
    pub fn get(
        &self,
        api_version: &str,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let (res, version) = self.resource(api_version, plural)?;
        self.shared
            .store
            .lock()
            .expect("store lock")
            .get(&res, &version, namespace, name)
            .ok()
    }

    /// Objects of a type in a namespace, or in all namespaces (None).
    pub fn list(&self, api_version: &str, plural: &str, namespace: Option<&str>) -> Vec<Value> {
        match self.resource(api_version, plural) {
            Some((res, version)) => self
                .shared
                .store
                .lock()
                .expect("store lock")
                .list(&res, &version, namespace),
            None => Vec::new(),
        }
    }

    /// Creates or replaces an object (kind/apiVersion read from it), bumping resourceVersion
    /// and notifying watchers. Panics, naming the problem, when the kind is not served.
    pub fn put_object(&self, obj: Value) {
        let rv = {
            let mut store = self.shared.store.lock().expect("store lock");
            if let Err(e) = store.put_object(obj) {
                panic!("put_object: {}", e.message);
            }
            store.resource_version()
        };
        self.shared.changed.send_replace(rv);
    }

    /// Deletes an object if present (finalizers ignored), notifying watchers.
    pub fn delete_object(
        &self,
        api_version: &str,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
    ) {
        let rv = {
            let mut store = self.shared.store.lock().expect("store lock");
            store.delete_object(api_version, plural, namespace, name);
            store.resource_version()
        };
        self.shared.changed.send_replace(rv);
    }

    /// Every request served so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests.lock().expect("requests lock").clone()
    }

    /// Forgets the watch history: a watch from any resourceVersion handed out before gets 410
    /// Expired (an ERROR event), live watches included; a fresh list's version works again.
    pub fn compact(&self) {
        let rv = {
            let mut store = self.shared.store.lock().expect("store lock");
            store.compact();
            store.resource_version()
        };
        // Wakes live watches, which then find their version expired.
        self.shared.changed.send_replace(rv);
    }
}

/// Selects rustls's ring provider for this process. Test builds enable both ring and aws-lc-rs
/// (through dev-dependencies), and then rustls cannot choose by itself and panics when a kube
/// client is built. Harmless when a provider is already installed.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        if let Some(stop) = self.shutdown.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
