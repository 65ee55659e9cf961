//! Kubernetes mode, `pchat-operator run`: a kube-runtime controller over PersistentChatPool
//! that runs one engine pass per reconcile, with the pool's Secrets for SQL credentials, its
//! ConfigMap as the published active-server list, status by server-side apply, Events, leader
//! election on a Lease, `/healthz` `/readyz` `/metrics`, and a graceful shutdown.
//!
//! One module per job: [`controller`] (the reconcile), [`context`] (what passes share),
//! [`credentials`] (Secret to SQL login and CA file), [`configmap`] (the publisher),
//! [`status_patch`] (server-side apply of status), [`events`], [`leader`], [`metrics`],
//! [`http`] and [`shutdown`].
//!
//! No finalizer: deleting a pool stops its management and sends no SQL (see [`controller`]).

pub mod configmap;
pub mod context;
pub mod controller;
pub mod credentials;
pub mod events;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod shutdown;
pub mod status_patch;
pub mod stored;
pub mod turns;

use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::DynamicObject;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::{Controller, watcher};
use kube::{Api, Client, ResourceExt};
use tokio_util::sync::CancellationToken;

use crate::Error;
use context::{Context, Timing};
use leader::LeaseConfig;

/// The field manager of every server-side apply, and the Event reporter.
pub const FIELD_MANAGER: &str = "pchat-operator";

/// What `pchat-operator run` was asked to do.
#[derive(Clone, Debug)]
pub struct Options {
    /// Watch only this namespace; all namespaces when `None`.
    pub namespace: Option<String>,
    /// Where `/healthz`, `/readyz` and `/metrics` are served.
    pub http_addr: SocketAddr,
    pub lease: LeaseConfig,
    /// Where CA certificates are written (under the temporary directory: the root filesystem
    /// may be read-only).
    pub ca_dir: PathBuf,
    pub timing: Timing,
    /// Pools reconciled at once; the others wait their turn. Each pass holds a pool's SQL
    /// connections busy (one per instance, two while a BACKUP or RESTORE runs), so this also
    /// bounds the operator's open SQL work.
    pub max_concurrent_pools: u16,
    /// Whether a pool with nothing to do (converged and protected, blocked, suspended: next
    /// pass in 30 s) keeps one SQL connection per instance open until then. Off by default:
    /// each idle connection costs this process about 27 KiB (TLS and TDS buffers, the trust
    /// store) and the server a session, against one TLS handshake and login per instance per
    /// idle pass when closed. Connections are always reused from step to step and while a
    /// pool waits on something.
    pub keep_idle_connections: bool,
}

/// A Kubernetes client whose requests say which replica sent them (User-Agent
/// `pchat-operator/<version> (<identity>)`), from KUBECONFIG or the in-cluster configuration.
pub async fn client(identity: &str) -> Result<Client, Error> {
    // Harmless when a provider is already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = kube::Config::infer().await.map_err(Error::KubeConfig)?;
    let agent = format!("pchat-operator/{} ({identity})", env!("CARGO_PKG_VERSION"));
    if let Ok(value) = agent.parse() {
        config.headers.push((hyper::header::USER_AGENT, value));
    }
    Client::try_from(config).map_err(Error::KubeClient)
}

/// Run the operator until `shutdown` resolves; then finish the passes under way, release the
/// Lease and return.
pub async fn run(
    opts: Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let metrics = Arc::new(metrics::Metrics::new());
    let ready = Arc::new(AtomicBool::new(false));
    let listener = tokio::net::TcpListener::bind(opts.http_addr)
        .await
        .map_err(|source| Error::Listen {
            addr: opts.http_addr,
            source,
        })?;
    let http_stop = CancellationToken::new();
    let http_task = tokio::spawn(http::serve(
        listener,
        http::Health {
            metrics: metrics.clone(),
            ready: ready.clone(),
        },
        http_stop.clone(),
    ));
    let result = run_controller(&opts, metrics, ready, shutdown).await;
    http_stop.cancel();
    let _ = http_task.await;
    result
}

async fn run_controller(
    opts: &Options,
    metrics: Arc<metrics::Metrics>,
    ready: Arc<AtomicBool>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let client = client(&opts.lease.identity).await?;
    let leader_stop = CancellationToken::new();
    let (leadership, leader_task) = leader::start(
        client.clone(),
        opts.lease.clone(),
        metrics.clone(),
        leader_stop.clone(),
    )
    .await
    .map_err(|source| Error::Lease {
        namespace: opts.lease.namespace.clone(),
        name: opts.lease.name.clone(),
        source,
    })?;
    tracing::info!(
        namespace = opts.namespace.as_deref().unwrap_or("<all>"),
        identity = %opts.lease.identity,
        lease = %format!("{}/{}", opts.lease.namespace, opts.lease.name),
        "pchat-operator running"
    );

    // Pools are watched untyped and decoded one by one in their pass (`stored`): one stored
    // object the operator cannot read must not fail the watch of all of them.
    let resource = stored::api_resource();
    let (pools, config_maps): (Api<DynamicObject>, Api<ConfigMap>) = match &opts.namespace {
        Some(ns) => (
            Api::namespaced_with(client.clone(), ns, &resource),
            Api::namespaced(client.clone(), ns),
        ),
        None => (
            Api::all_with(client.clone(), &resource),
            Api::all(client.clone()),
        ),
    };
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: FIELD_MANAGER.into(),
            instance: Some(opts.lease.identity.clone()),
        },
    );
    // Controller::graceful_shutdown_on wants a Sync future: a oneshot receiver is one.
    let (stop_tx, stop_rx) = futures::channel::oneshot::channel::<()>();
    let stopping = CancellationToken::new();
    let stopping_signal = stopping.clone();
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down: finishing the passes under way");
        stopping_signal.cancel();
        let _ = stop_tx.send(());
    });

    let controller = Controller::new_with(pools, watcher::Config::default(), resource)
        // No limit here: the passes take turns in the context (`turns`: pools finishing a
        // transition first, then first come, first served), and a pool waiting for its turn
        // costs one parked future.
        .owns(
            config_maps,
            watcher::Config::default()
                .labels(&format!("{}={FIELD_MANAGER}", configmap::MANAGED_BY_LABEL)),
        )
        // Gaining the lead starts a pass for every pool at once, rather than at each pool's
        // next retry.
        .reconcile_all_on(leadership_becomes(leadership.subscribe(), true))
        .graceful_shutdown_on(stop_rx.map(|_| ()));
    let store = controller.store();
    let ctx = Arc::new(Context::new(
        client,
        recorder,
        metrics,
        leadership.clone(),
        store.clone(),
        stopping.clone(),
        opts,
    ));

    // Losing the lead drops every pool's slot at once: its SQL connections close and its
    // per-pool gauges go, so that Prometheus reads the new leader's values rather than this
    // replica's last ones (a standby's `/metrics` has no pool series).
    {
        let ctx = ctx.clone();
        let stopping = stopping.clone();
        let lost = leadership_becomes(leadership.subscribe(), false);
        tokio::spawn(async move {
            let mut lost = std::pin::pin!(lost.take_until(stopping.cancelled_owned()));
            while lost.next().await.is_some() {
                ctx.forget_unless(|_| false);
            }
        });
    }

    // Readiness, and dropping the slots (SQL connections) of pools that are gone.
    let housekeeping = {
        let ctx = ctx.clone();
        let stopping = stopping.clone();
        tokio::spawn(async move {
            // Polled again every 200 ms rather than awaited once: the store's readiness wakes only
            // the last task that polled it, and the controller's runner polls it too.
            loop {
                tokio::select! {
                    _ = stopping.cancelled() => return,
                    r = tokio::time::timeout(Duration::from_millis(200), store.wait_until_ready()) => match r {
                        Ok(Ok(())) => break,
                        Ok(Err(_)) => return,
                        Err(_) => {}
                    },
                }
            }
            ready.store(true, Ordering::Release);
            tracing::info!("the PersistentChatPool watch has synced: ready");
            loop {
                tokio::select! {
                    _ = stopping.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                let present: HashSet<String> =
                    store.state().iter().filter_map(|p| p.uid()).collect();
                ctx.forget_unless(|uid| present.contains(uid));
            }
        })
    };

    controller
        .run(controller::reconcile, controller::error_policy, ctx.clone())
        .for_each(|result| async move {
            use kube::runtime::controller::Error as E;
            match result {
                // Failed passes are logged by the error policy; a pass for a pool deleted
                // meanwhile is expected.
                Ok(_) | Err(E::ReconcilerFailed(..) | E::ObjectNotFound(_)) => {}
                // The watch failing (the CRD not installed, no RBAC, the API server away)
                // keeps /readyz at 503: say why.
                Err(e) => tracing::warn!(error = %e, "the PersistentChatPool or ConfigMap watch failed, retrying"),
            }
        })
        .await;
    // Every pass has finished: only now may another replica take over.
    stopping.cancel();
    let _ = housekeeping.await;
    leader_stop.cancel();
    let _ = leader_task.await;
    tracing::info!("stopped");
    Ok(())
}

/// A stream that yields each time leadership becomes `leading` (gained for true, lost for
/// false).
fn leadership_becomes(
    rx: tokio::sync::watch::Receiver<bool>,
    leading: bool,
) -> impl futures::Stream<Item = ()> + Send {
    futures::stream::unfold(rx, move |mut rx| async move {
        loop {
            rx.changed().await.ok()?;
            if *rx.borrow_and_update() == leading {
                return Some(((), rx));
            }
        }
    })
}
