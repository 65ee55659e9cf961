//! The chat workload of `bench scale`'s storms: simulated chat servers on every flipped pool,
//! each following its pool's published active-server list as the operator writes it (the
//! pool's ConfigMap, through one watch over all namespaces), and, once the storm is over, every
//! acknowledged message looked for on the copy that serves. The same watch times each pool's
//! chat outage: from the list emptied (the drain) to the next list with servers in it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::demo::figures;
use crate::demo::world::{installer_published, workload_config};
use crate::k8s::FIELD_MANAGER;
use crate::k8s::configmap::{MANAGED_BY_LABEL, published_from};
use pchat_core::api::PersistentChatPoolSpec;
use pchat_sim::cluster::RunningSim;
use pchat_sim::workload::{ChatWorkload, PoolState, Published};

/// Messages a second per chat server: forty pools of four servers write 320 a second into
/// the one simulator process, enough to see a lost message without drowning the switches.
const RATE_PER_SERVER: f64 = 2.0;

/// One flipped pool's workload.
struct PoolLoad {
    namespace: String,
    spec: PersistentChatPoolSpec,
    workload: ChatWorkload,
}

/// The workloads of the storm's pools and the watch that feeds them.
pub struct StormLoad {
    pools: Vec<PoolLoad>,
    outages: Arc<std::sync::Mutex<Vec<Duration>>>,
    stop_watch: CancellationToken,
    watch_task: tokio::task::JoinHandle<()>,
}

/// What the workloads' acknowledgements came to.
#[derive(Debug, Default)]
pub struct LoadOutcome {
    pub acknowledged: usize,
    /// Per pool namespace, the acknowledged ids missing from the copy that serves and not
    /// allowed to be (acknowledged before the pool's loss window, if it has one).
    pub lost: BTreeMap<String, Vec<i64>>,
    /// Acknowledged ids missing inside the pools' reported loss windows (a forced failover's
    /// accepted loss).
    pub lost_in_window: usize,
    /// Pools with no ONLINE copy of the chat database on the site they were sent to.
    pub unserved: Vec<String>,
    /// Each drain's chat outage, as the watch saw the lists: from the list emptied to the
    /// next one with servers in it (no chat server may write in between).
    pub outages: Vec<Duration>,
}

impl LoadOutcome {
    /// The acknowledged messages missing that may not be, over all pools.
    pub fn lost_count(&self) -> usize {
        self.lost.values().map(Vec::len).sum()
    }
}

/// The published list a ConfigMap holds, as the workload reads it.
fn published(cm: &ConfigMap) -> Option<Published> {
    let published = published_from(cm).ok()?;
    Some(Published {
        active_servers: published.active_servers,
        pool_state: match published.pool_state {
            pchat_core::api::PoolState::Normal => PoolState::Normal,
            pchat_core::api::PoolState::FailedOver => PoolState::FailedOver,
        },
    })
}

/// Start chat servers on each of `pools` (namespace and spec).
pub fn start(
    client: &Client,
    sim: &RunningSim,
    pools: Vec<(String, PersistentChatPoolSpec)>,
) -> Result<StormLoad, String> {
    let mut senders: BTreeMap<String, watch::Sender<Published>> = BTreeMap::new();
    let mut loads = Vec::new();
    for (n, (namespace, spec)) in pools.into_iter().enumerate() {
        let (sender, receiver) = watch::channel(installer_published(&spec));
        senders.insert(namespace.clone(), sender);
        let workload = ChatWorkload::start(
            workload_config(
                &spec,
                sim,
                RATE_PER_SERVER,
                Duration::from_millis(20),
                // Ids apart per pool, so that a message found in the wrong pool's copy would
                // show.
                1 + 10_000_000 * n as i64,
                Arc::new(receiver),
            )
            .map_err(|e| format!("{namespace}: {e}"))?,
        );
        loads.push(PoolLoad {
            namespace,
            spec,
            workload,
        });
    }
    let stop_watch = CancellationToken::new();
    let config_maps: Api<ConfigMap> = Api::all(client.clone());
    let selector = format!("{MANAGED_BY_LABEL}={FIELD_MANAGER}");
    let stop = stop_watch.clone();
    let outages = Arc::new(std::sync::Mutex::new(Vec::new()));
    let timed = outages.clone();
    let watch_task = tokio::spawn(async move {
        let mut drained_at: BTreeMap<String, tokio::time::Instant> = BTreeMap::new();
        let events = watcher(config_maps, watcher::Config::default().labels(&selector))
            .default_backoff()
            .applied_objects()
            .take_until(stop.cancelled_owned());
        let mut events = std::pin::pin!(events);
        while let Some(event) = events.next().await {
            let Ok(cm) = event else { continue };
            let namespace = cm.namespace().unwrap_or_default();
            if let (Some(sender), Some(published)) = (senders.get(&namespace), published(&cm)) {
                if published.active_servers.is_empty() {
                    drained_at
                        .entry(namespace)
                        .or_insert_with(tokio::time::Instant::now);
                } else if let Some(at) = drained_at.remove(&namespace) {
                    timed
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(at.elapsed());
                }
                sender.send_replace(published);
            }
        }
    });
    Ok(StormLoad {
        pools: loads,
        outages,
        stop_watch,
        watch_task,
    })
}

impl StormLoad {
    /// Stop every chat server, then look for each acknowledged message on the chat database's
    /// ONLINE copy on site `serving_site` (where the storm sent the pools). `window_start` gives
    /// a pool's loss window, when its failover reported one: messages acknowledged from then
    /// on may be missing; none acknowledged before it may.
    pub async fn finish(
        self,
        sim: &RunningSim,
        serving_site: &str,
        window_start: impl Fn(&str) -> Option<jiff::Timestamp>,
    ) -> LoadOutcome {
        self.stop_watch.cancel();
        let _ = self.watch_task.await;
        let mut outcome = LoadOutcome {
            outages: std::mem::take(&mut *self.outages.lock().unwrap_or_else(|e| e.into_inner())),
            ..LoadOutcome::default()
        };
        for pool in self.pools {
            let acked = pool.workload.stop().await;
            outcome.acknowledged += acked.len();
            let database = &pool.spec.databases.chat;
            let serving = pool.spec.site(serving_site).and_then(|site| {
                site.instances.iter().find(|i| {
                    sim.sim.database_state(&i.name, database).as_deref() == Some("ONLINE")
                })
            });
            let Some(serving) = serving else {
                outcome.unserved.push(pool.namespace);
                continue;
            };
            let ids = sim
                .sim
                .message_ids(&serving.name, database)
                .unwrap_or_default();
            let accounting = figures::account(&acked, &ids);
            let lost = match window_start(&pool.namespace) {
                None => accounting.lost,
                Some(start) => {
                    let outside = figures::lost_outside_window(&acked, &accounting.lost, start);
                    outcome.lost_in_window += accounting.lost.len() - outside.len();
                    outside
                }
            };
            if !lost.is_empty() {
                outcome.lost.insert(pool.namespace, lost);
            }
        }
        outcome
    }
}
