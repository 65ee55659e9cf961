//! What every reconcile shares: the Kubernetes client, the Event recorder, the metrics, the
//! leadership, and one slot per pool (keyed by uid) that keeps the pool's SQL port, and so its
//! connections, from one pass to the next.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use kube::Client;
use kube::api::DynamicObject;
use kube::runtime::events::Recorder;
use kube::runtime::reflector::{ObjectRef, Store};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::credentials::{CredentialsProblem, Material};
use super::leader::Leadership;
use super::metrics::{Held, Metrics};
use super::stored::SpecMemory;
use super::turns::{Turn, Turns, Urgency};
use crate::engine::sql_port::LivePort;
use pchat_core::api::PersistentChatPoolStatus;
use pchat_core::observe::Published;

pub use crate::engine::Timing;

/// One pool's memory between passes. It holds nothing the planner decides from: only the
/// connections and when the next pass is due.
pub struct PoolSlot {
    pub namespace: String,
    pub name: String,
    /// The SQL port and the fingerprint of the credentials it logs in with.
    pub port: Option<(u64, LivePort)>,
    /// When the engine asked to come back, and for which generation: a trigger that arrives
    /// earlier for the same generation (the watch echoing the operator's own status write)
    /// waits until then.
    pub next_due: Option<(Instant, Option<i64>)>,
    /// The status this replica last wrote (or left for a later pass of the turn to write), or
    /// read, for the pool while leading: the status the next pass builds on. The watch may not
    /// have delivered it yet, and this replica is the only writer of status while it leads
    /// (losing the lead drops the slot, so a new lead starts from a read of the stored pool).
    pub status: Option<StatusMemory>,
    /// `status` is newer than the stored one: a pass of this turn left it for a later pass
    /// to write (see [`super::status_patch::deferrable`]).
    pub status_unwritten: bool,
    /// What this turn has read from, or written to, the API server besides the pool.
    pub turn: TurnMemory,
    /// The pool's spec as last decoded.
    pub spec: SpecMemory,
}

/// What one turn (one reconcile, its passes following each other step after step) has read
/// of the pool's Secrets and published ConfigMap, and what it wrote there: the turn's later
/// passes use it instead of a GET each. A switch runs a dozen passes in one turn, and three
/// GETs a pass were two thirds of the operator's requests in a storm of switches. Forgotten
/// when the next turn starts, so every turn (the next resync, the ConfigMap or pool watch firing
/// after a person's edit) reads them afresh: a rotated password is used from the next turn.
#[derive(Default)]
pub struct TurnMemory {
    /// The credentials and CA read for these Secret names (`spec.sqlCredentialsSecret`,
    /// `spec.tls.caSecret`): a spec edited during the turn to name others is read again.
    pub material: Option<(SecretNames, Result<Material, CredentialsProblem>)>,
    /// The published active-server list as read at the turn's first pass, or as this turn
    /// last wrote it.
    pub published: Option<Option<Published>>,
}

/// The Secrets a spec names for its SQL connections.
pub type SecretNames = (String, Option<String>);

/// What a slot remembers of the stored status.
#[derive(Clone, Debug)]
pub enum StatusMemory {
    /// The stored pool had no status (or one the operator cannot read).
    None,
    /// This status.
    Written(Box<PersistentChatPoolStatus>),
}

impl StatusMemory {
    pub fn of(status: Option<&PersistentChatPoolStatus>) -> StatusMemory {
        match status {
            None => StatusMemory::None,
            Some(status) => StatusMemory::Written(Box::new(status.clone())),
        }
    }

    /// The remembered status, borrowed.
    pub fn as_status(&self) -> Option<&PersistentChatPoolStatus> {
        match self {
            StatusMemory::None => None,
            StatusMemory::Written(status) => Some(status),
        }
    }

    /// The remembered status, to build the next one on.
    pub fn status(&self) -> Option<PersistentChatPoolStatus> {
        match self {
            StatusMemory::None => None,
            StatusMemory::Written(status) => Some((**status).clone()),
        }
    }
}

/// A turn at running passes, counted in `pchat_pools_in_turn` while held.
pub struct HeldTurn {
    _turn: Turn,
    _counted: Held,
}

/// The shared state of the controller.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub leadership: Leadership,
    /// Where CA certificates from `spec.tls.caSecret` are written.
    pub ca_dir: PathBuf,
    pub timing: Timing,
    /// Whether a pool with nothing to do keeps one SQL connection per instance until its next
    /// pass (see [`super::Options::keep_idle_connections`]).
    pub keep_idle_connections: bool,
    /// The watch's cache of pools: later passes of one reconcile read the spec from it.
    pub store: Store<DynamicObject>,
    /// Turns at running passes, as many as pools reconciled at once (pools finishing a
    /// transition first, then first come, first served: see [`Turns`]).
    turns: Arc<Turns>,
    /// Cancelled when the operator shuts down: pools still waiting for a turn then give up
    /// theirs rather than hold the shutdown.
    stopping: CancellationToken,
    pools: Mutex<HashMap<String, Arc<tokio::sync::Mutex<PoolSlot>>>>,
}

impl Context {
    pub fn new(
        client: Client,
        recorder: Recorder,
        metrics: Arc<Metrics>,
        leadership: Leadership,
        store: Store<DynamicObject>,
        stopping: CancellationToken,
        opts: &super::Options,
    ) -> Self {
        metrics.set_max_concurrent_pools(usize::from(opts.max_concurrent_pools));
        Context {
            client,
            recorder,
            metrics,
            leadership,
            ca_dir: opts.ca_dir.clone(),
            timing: opts.timing,
            keep_idle_connections: opts.keep_idle_connections,
            store,
            turns: Turns::new(usize::from(opts.max_concurrent_pools)),
            stopping,
            pools: Mutex::new(HashMap::new()),
        }
    }

    fn pools(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, Arc<tokio::sync::Mutex<PoolSlot>>>> {
        self.pools.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The slot of the pool with this uid, created empty on first use.
    pub fn slot(
        &self,
        uid: &str,
        namespace: &str,
        name: &str,
    ) -> Arc<tokio::sync::Mutex<PoolSlot>> {
        self.pools()
            .entry(uid.to_string())
            .or_insert_with(|| {
                Arc::new(tokio::sync::Mutex::new(PoolSlot {
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                    port: None,
                    next_due: None,
                    status: None,
                    status_unwritten: false,
                    turn: TurnMemory::default(),
                    spec: SpecMemory::default(),
                }))
            })
            .clone()
    }

    /// Wait for a turn at running passes, in the queue `urgency` names; `None` when the
    /// operator is shutting down. The wait and the turn show in the turn metrics.
    pub async fn turn(&self, urgency: Urgency) -> Option<HeldTurn> {
        let asked = Instant::now();
        let waiting = self.metrics.waiting_for_turn(urgency.as_str());
        let turn = tokio::select! {
            _ = self.stopping.cancelled() => None,
            turn = self.turns.take(urgency) => Some(turn),
        }?;
        drop(waiting);
        Some(HeldTurn {
            _turn: turn,
            _counted: self.metrics.got_turn(urgency.as_str(), asked.elapsed()),
        })
    }

    /// Sleep for `duration`; false when the operator began shutting down meanwhile.
    pub async fn pause(&self, duration: std::time::Duration) -> bool {
        tokio::select! {
            _ = self.stopping.cancelled() => false,
            _ = tokio::time::sleep(duration) => true,
        }
    }

    /// The pool as the watch's cache holds it now.
    pub fn cached(&self, namespace: &str, name: &str) -> Option<Arc<DynamicObject>> {
        self.store
            .get(&ObjectRef::new_with(name, super::stored::api_resource()).within(namespace))
    }

    /// Drop a pool's slot, and with it its SQL port and connections (once a pass still running
    /// on it finishes), and its gauges. True when there was one.
    pub fn forget(&self, uid: &str, namespace: &str, name: &str) -> bool {
        let removed = self.pools().remove(uid).is_some();
        if removed {
            self.metrics.forget_pool(namespace, name);
            tracing::info!(
                namespace,
                pool = name,
                "no longer managing this pool: its SQL connections are closed"
            );
        }
        removed
    }

    /// Drop every slot whose uid `keep` rejects.
    pub fn forget_unless(&self, keep: impl Fn(&str) -> bool) {
        let gone: Vec<(String, Arc<tokio::sync::Mutex<PoolSlot>>)> = {
            let mut pools = self.pools();
            let uids: Vec<String> = pools.keys().filter(|u| !keep(u)).cloned().collect();
            uids.into_iter()
                .filter_map(|u| pools.remove(&u).map(|s| (u, s)))
                .collect()
        };
        for (_, slot) in gone {
            // The names are only read for the gauges and the log; a pass holding the slot
            // finishes first.
            let metrics = self.metrics.clone();
            tokio::spawn(async move {
                let s = slot.lock().await;
                metrics.forget_pool(&s.namespace, &s.name);
                tracing::info!(namespace = %s.namespace, pool = %s.name, "no longer managing this pool: its SQL connections are closed");
            });
        }
    }

    /// The uids of the pools with a slot.
    pub fn managed(&self) -> Vec<String> {
        self.pools().keys().cloned().collect()
    }
}
