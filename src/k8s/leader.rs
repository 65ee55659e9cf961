//! Leader election on a coordination.k8s.io Lease (kube-lease-manager), so that two replicas are
//! safe: only the holder sends SQL or writes status, ConfigMaps and Events.
//!
//! Every replica watches and runs the controller; each pass asks [`Leadership::confirm`] first,
//! which reads the Lease itself (holder is this identity and the renewal has not expired by the
//! local clock). Reading the Lease, rather than trusting only the manager's last report, means a
//! replica whose renewals have been failing stops acting as soon as its lease runs out, even
//! though the manager has not noticed yet.

use std::time::{Duration, SystemTime};

use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::metrics::Metrics;
use std::sync::Arc;

/// Which Lease, and who this replica is.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub name: String,
    pub namespace: String,
    pub identity: String,
    /// Seconds a holder's claim lasts after its last renewal.
    pub duration_seconds: u64,
}

impl LeaseConfig {
    /// How long before expiry the holder renews: a third of the duration (at least 1 s), so a
    /// renewal can fail once and be retried before the lease lapses.
    pub fn grace_seconds(&self) -> u64 {
        (self.duration_seconds / 3).max(1)
    }
}

/// This replica's view of the Lease.
#[derive(Clone)]
pub struct Leadership {
    config: LeaseConfig,
    leases: Api<Lease>,
    state: watch::Receiver<bool>,
    /// Until when the Lease, as last read by [`Leadership::confirm`], is this replica's.
    confirmed_until: Arc<std::sync::Mutex<Option<SystemTime>>>,
}

impl Leadership {
    /// Whether the lease manager last reported this replica as the holder.
    pub fn is_leader(&self) -> bool {
        *self.state.borrow()
    }

    /// A receiver that changes when leadership is gained or lost.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.state.clone()
    }

    /// Whether this replica may act now: the manager says so, and the Lease as stored names this
    /// identity with a renewal that has not expired.
    pub async fn confirm(&self) -> bool {
        if !self.is_leader() {
            return false;
        }
        let until = match self.leases.get_opt(&self.config.name).await {
            Ok(Some(lease)) => held_until(&lease, &self.config.identity),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(lease = %self.config.name, error = %e, "cannot read the Lease: not acting this pass");
                None
            }
        };
        let now = SystemTime::now();
        let until = until.filter(|until| now < *until);
        *self
            .confirmed_until
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = until;
        until.is_some()
    }

    /// Whether this replica may write now, asked before every step and API write. While the
    /// Lease last read is unexpired by the local clock the answer needs no request; past it
    /// (a long step, or a process paused with SIGSTOP and resumed) the Lease is read again, so a
    /// replica that another has replaced sends nothing more.
    pub async fn may_write(&self) -> bool {
        if !self.is_leader() {
            return false;
        }
        let cached = *self
            .confirmed_until
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match cached {
            Some(until) if SystemTime::now() < until => true,
            _ => self.confirm().await,
        }
    }

    pub fn identity(&self) -> &str {
        &self.config.identity
    }
}

/// Whether `lease` is held by `identity` and unexpired at `now`.
pub fn holds(lease: &Lease, identity: &str, now: SystemTime) -> bool {
    held_until(lease, identity).is_some_and(|expiry| now < expiry)
}

/// When `identity`'s claim on `lease` expires (its last renewal plus the lease duration);
/// `None` when another identity, or nobody, holds it.
fn held_until(lease: &Lease, identity: &str) -> Option<SystemTime> {
    let spec = lease.spec.as_ref()?;
    if spec.holder_identity.as_deref() != Some(identity) {
        return None;
    }
    let renewed: SystemTime = spec.renew_time.as_ref()?.0.into();
    let secs = u64::try_from(spec.lease_duration_seconds?).ok()?;
    renewed.checked_add(Duration::from_secs(secs))
}

impl crate::engine::WriteGate for Leadership {
    fn may_write(&self) -> futures::future::BoxFuture<'_, bool> {
        Box::pin(Leadership::may_write(self))
    }
}

/// Start competing for the Lease. The returned task keeps the claim renewed until `stop` fires,
/// then reports "not leader" (so nothing more is done) and releases the Lease, so that another
/// replica takes over without waiting for it to expire.
pub async fn start(
    client: Client,
    config: LeaseConfig,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) -> Result<(Leadership, JoinHandle<()>), kube_lease_manager::LeaseManagerError> {
    let manager = LeaseManagerBuilder::new(client.clone(), &config.name)
        .with_namespace(&config.namespace)
        .with_identity(&config.identity)
        .with_duration(config.duration_seconds)
        .with_grace(config.grace_seconds())
        // The builder's default names the manager after a random identity, not this one.
        .with_field_manager(format!("{}-{}", super::FIELD_MANAGER, config.identity))
        .build()
        .await?;
    let (tx, rx) = watch::channel(false);
    metrics.set_leader(false);
    let leases = Api::namespaced(client, &config.namespace);
    let task_config = config.clone();
    let task = tokio::spawn(keep(manager, task_config, tx, metrics, stop));
    Ok((
        Leadership {
            config,
            leases,
            state: rx,
            confirmed_until: Arc::default(),
        },
        task,
    ))
}

async fn keep(
    manager: LeaseManager,
    config: LeaseConfig,
    tx: watch::Sender<bool>,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    let lease = format!("{}/{}", config.namespace, config.name);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            changed = manager.changed() => match changed {
                Ok(leader) => {
                    if leader {
                        tracing::info!(%lease, identity = %config.identity, "became the leader");
                    } else {
                        tracing::warn!(%lease, identity = %config.identity, "lost the leadership: no longer acting");
                    }
                    metrics.set_leader(leader);
                    let _ = tx.send(leader);
                }
                Err(e) => {
                    // The claim may still hold; `Leadership::confirm` reads the Lease before each
                    // pass, so an expired claim stops the passes without waiting for this loop.
                    tracing::warn!(%lease, error = %e, "lease renewal failed, retrying");
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            },
        }
    }
    metrics.set_leader(false);
    let _ = tx.send(false);
    match manager.release().await {
        Ok(()) => tracing::info!(%lease, identity = %config.identity, "lease released"),
        Err(e) => {
            tracing::warn!(%lease, error = %e, "cannot release the lease; it expires by itself")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

    fn lease(holder: Option<&str>, renewed: jiff::Timestamp, secs: i32) -> Lease {
        Lease {
            spec: Some(LeaseSpec {
                holder_identity: holder.map(String::from),
                renew_time: Some(MicroTime(renewed)),
                lease_duration_seconds: Some(secs),
                ..LeaseSpec::default()
            }),
            ..Lease::default()
        }
    }

    #[test]
    fn only_an_unexpired_claim_by_this_identity_holds() {
        let t: jiff::Timestamp = "2026-11-26T12:00:00Z".parse().unwrap();
        let at = |secs: i64| SystemTime::from(t + jiff::SignedDuration::from_secs(secs));
        let l = lease(Some("pod-a"), t, 15);
        assert!(holds(&l, "pod-a", at(10)));
        assert!(!holds(&l, "pod-b", at(10)));
        assert!(!holds(&l, "pod-a", at(15)));
        assert!(!holds(&lease(None, t, 15), "pod-a", at(1)));
        assert!(!holds(&Lease::default(), "pod-a", at(1)));
    }

    #[test]
    fn the_grace_is_a_third_of_the_duration_and_never_zero() {
        let c = |d| LeaseConfig {
            name: "pchat-operator".into(),
            namespace: "default".into(),
            identity: "a".into(),
            duration_seconds: d,
        };
        assert_eq!(c(15).grace_seconds(), 5);
        assert_eq!(c(2).grace_seconds(), 1);
        assert!(c(2).grace_seconds() < 2);
    }
}
