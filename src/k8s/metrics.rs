//! The operator's Prometheus metrics (prometheus-client), under the names agreed for the
//! dashboards: what each pass did, why passes failed, how long steps took, and the pool's state
//! as gauges. Rendered in OpenMetrics text for `/metrics`.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use pchat_core::api::{PersistentChatPoolStatus, Phase, PoolState};

/// The content type of [`Metrics::render`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub use crate::engine::PassOutcome as Outcome;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    namespace: String,
    pool: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    namespace: String,
    pool: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    namespace: String,
    pool: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabels {
    step: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    namespace: String,
    pool: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    namespace: String,
    pool: String,
    phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SiteLabels {
    namespace: String,
    pool: String,
    site: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    queue: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConditionLabels {
    namespace: String,
    pool: String,
    r#type: String,
    status: String,
}

const PHASES: [Phase; 9] = [
    Phase::Bootstrapping,
    Phase::Protected,
    Phase::Switching,
    Phase::FailingOver,
    Phase::Reprotecting,
    Phase::Waiting,
    Phase::Blocked,
    Phase::Suspended,
    Phase::Invalid,
];

const CONDITION_STATUSES: [&str; 3] = ["True", "False", "Unknown"];

/// Every metric of `pchat-operator run`, registered once.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<OutcomeLabels, Counter>,
    errors: Family<ReasonLabels, Counter>,
    step_duration: Family<StepLabels, Histogram, fn() -> Histogram>,
    pool_state: Family<StateLabels, Gauge>,
    pool_phase: Family<PhaseLabels, Gauge>,
    serving_site: Family<SiteLabels, Gauge>,
    condition: Family<ConditionLabels, Gauge>,
    restore_latency: Family<PoolLabels, Gauge>,
    data_loss_window: Family<PoolLabels, Gauge>,
    sql_round_trips: Family<PoolLabels, Counter>,
    leader: Gauge,
    turn_wait: Family<QueueLabels, Histogram, fn() -> Histogram>,
    waiting_for_turn: Family<QueueLabels, Gauge>,
    in_turn: Gauge,
    max_concurrent_pools: Gauge,
    /// Per pool, the sites and condition types given a series, so that a deleted pool's gauges
    /// can be removed (a gauge left behind would keep reporting a pool nobody manages).
    seen: Mutex<HashMap<(String, String), Seen>>,
}

#[derive(Default)]
struct Seen {
    sites: HashSet<String>,
    condition_types: HashSet<String>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let reconciles = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "pchat_reconciles",
            "Reconcile passes by outcome",
            reconciles.clone(),
        );
        let errors = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "pchat_reconcile_errors",
            "Passes that failed or stalled, by condition reason or error kind",
            errors.clone(),
        );
        // Steps take from milliseconds (a publish) to many minutes (a restore).
        let step_duration: Family<StepLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.01, 4.0, 10)));
        registry.register(
            "pchat_step_duration_seconds",
            "Wall time of each step run",
            step_duration.clone(),
        );
        let pool_state = Family::<StateLabels, Gauge>::default();
        registry.register(
            "pchat_pool_state",
            "1 for the pool's current state (Normal or FailedOver), 0 for the other",
            pool_state.clone(),
        );
        let pool_phase = Family::<PhaseLabels, Gauge>::default();
        registry.register(
            "pchat_pool_phase",
            "1 for the pool's current status.phase, 0 for the others",
            pool_phase.clone(),
        );
        let serving_site = Family::<SiteLabels, Gauge>::default();
        registry.register(
            "pchat_serving_site",
            "1 for the site whose chat database serves, 0 for the other",
            serving_site.clone(),
        );
        let condition = Family::<ConditionLabels, Gauge>::default();
        registry.register(
            "pchat_condition",
            "1 for each condition's current status, 0 for its other statuses",
            condition.clone(),
        );
        let restore_latency = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "pchat_restore_latency_seconds",
            "Log-shipping restore latency on the secondary (status.protection.restoreLatencySeconds)",
            restore_latency.clone(),
        );
        let data_loss_window = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "pchat_data_loss_window_seconds",
            "Estimated data-loss window of the last or current forced failover, 0 if none",
            data_loss_window.clone(),
        );
        let sql_round_trips = Family::<PoolLabels, Counter>::default();
        registry.register(
            "pchat_sql_round_trips",
            "Batches sent to SQL instances (observations and step statements)",
            sql_round_trips.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "pchat_leader",
            "1 while this replica holds the leader Lease",
            leader.clone(),
        );
        // From a millisecond (a free turn) to four minutes (a queue of whole switches).
        let turn_wait: Family<QueueLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.001, 4.0, 10)));
        registry.register(
            "pchat_turn_wait_seconds",
            "How long a pool waited for a turn at running passes, by queue: finishing_transition (a transition under way goes first) or ordinary",
            turn_wait.clone(),
        );
        let waiting_for_turn = Family::<QueueLabels, Gauge>::default();
        registry.register(
            "pchat_pools_waiting_for_turn",
            "Pools waiting for a turn at running passes now, by queue",
            waiting_for_turn.clone(),
        );
        let in_turn = Gauge::default();
        registry.register(
            "pchat_pools_in_turn",
            "Pools holding a turn at running passes now",
            in_turn.clone(),
        );
        let max_concurrent_pools = Gauge::default();
        registry.register(
            "pchat_max_concurrent_pools",
            "Turns at running passes there are (--max-concurrent-pools)",
            max_concurrent_pools.clone(),
        );
        Metrics {
            registry,
            reconciles,
            errors,
            step_duration,
            pool_state,
            pool_phase,
            serving_site,
            condition,
            restore_latency,
            data_loss_window,
            sql_round_trips,
            leader,
            turn_wait,
            waiting_for_turn,
            in_turn,
            max_concurrent_pools,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Count one pass.
    pub fn pass(&self, namespace: &str, pool: &str, outcome: Outcome) {
        self.reconciles
            .get_or_create(&OutcomeLabels {
                namespace: namespace.into(),
                pool: pool.into(),
                outcome: outcome.as_str().into(),
            })
            .inc();
    }

    /// Count one failed or stalled pass, by reason.
    pub fn error(&self, namespace: &str, pool: &str, reason: &str) {
        self.errors
            .get_or_create(&ReasonLabels {
                namespace: namespace.into(),
                pool: pool.into(),
                reason: reason.into(),
            })
            .inc();
    }

    /// Record how long a step took.
    pub fn step(&self, step: &str, elapsed: Duration) {
        self.step_duration
            .get_or_create(&StepLabels { step: step.into() })
            .observe(elapsed.as_secs_f64());
    }

    /// Add SQL round trips made for a pool.
    pub fn round_trips(&self, namespace: &str, pool: &str, n: u64) {
        self.sql_round_trips
            .get_or_create(&pool_labels(namespace, pool))
            .inc_by(n);
    }

    /// How many turns at running passes there are.
    pub fn set_max_concurrent_pools(&self, turns: usize) {
        self.max_concurrent_pools.set(saturating_i64(turns as u64));
    }

    /// A pool starts waiting for a turn in `queue`; it counts as waiting until the guard is
    /// dropped (its turn came, or its reconcile was cancelled).
    pub fn waiting_for_turn(&self, queue: &str) -> Held {
        Held::one_of(
            self.waiting_for_turn
                .get_or_create(&queue_labels(queue))
                .clone(),
        )
    }

    /// A pool got its turn after waiting `waited` in `queue`; it counts as in turn until the
    /// guard is dropped with the turn.
    pub fn got_turn(&self, queue: &str, waited: Duration) -> Held {
        self.turn_wait
            .get_or_create(&queue_labels(queue))
            .observe(waited.as_secs_f64());
        Held::one_of(self.in_turn.clone())
    }

    /// Whether this replica leads.
    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// The pool's gauges from the status just written. `sites` are the spec's site names (so the
    /// serving-site gauge shows 0 for the site that does not serve).
    pub fn status(
        &self,
        namespace: &str,
        pool: &str,
        sites: &[String],
        status: &PersistentChatPoolStatus,
    ) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let seen = seen
            .entry((namespace.to_string(), pool.to_string()))
            .or_default();
        if let Some(state) = status.pool_state {
            for s in [PoolState::Normal, PoolState::FailedOver] {
                self.pool_state
                    .get_or_create(&StateLabels {
                        namespace: namespace.into(),
                        pool: pool.into(),
                        state: format!("{s:?}"),
                    })
                    .set(i64::from(s == state));
            }
        }
        if let Some(phase) = status.phase {
            for p in PHASES {
                self.pool_phase
                    .get_or_create(&PhaseLabels {
                        namespace: namespace.into(),
                        pool: pool.into(),
                        phase: format!("{p:?}"),
                    })
                    .set(i64::from(p == phase));
            }
        }
        for site in sites {
            seen.sites.insert(site.clone());
        }
        for site in &seen.sites {
            self.serving_site
                .get_or_create(&SiteLabels {
                    namespace: namespace.into(),
                    pool: pool.into(),
                    site: site.clone(),
                })
                .set(i64::from(status.serving_site.as_deref() == Some(site)));
        }
        for c in &status.conditions {
            seen.condition_types.insert(c.type_.clone());
            for s in CONDITION_STATUSES {
                self.condition
                    .get_or_create(&ConditionLabels {
                        namespace: namespace.into(),
                        pool: pool.into(),
                        r#type: c.type_.clone(),
                        status: s.into(),
                    })
                    .set(i64::from(c.status == s));
            }
        }
        let labels = pool_labels(namespace, pool);
        // An unknown latency (nothing restored yet, or no secondary) is no series at all: a 0
        // would read as "perfectly protected" on a dashboard.
        match status
            .protection
            .as_ref()
            .and_then(|p| p.restore_latency_seconds)
        {
            Some(latency) => {
                self.restore_latency
                    .get_or_create(&labels)
                    .set(saturating_i64(latency));
            }
            None => {
                self.restore_latency.remove(&labels);
            }
        }
        let loss = status
            .transition
            .as_ref()
            .and_then(|t| t.data_loss.as_ref())
            .map_or(0, |d| d.estimated_seconds);
        self.data_loss_window
            .get_or_create(&labels)
            .set(saturating_i64(loss));
    }

    /// Remove a pool's gauges (it was deleted, or another replica manages it now). Counters
    /// stay: they only ever go up.
    pub fn forget_pool(&self, namespace: &str, pool: &str) {
        let seen = self
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(namespace.to_string(), pool.to_string()))
            .unwrap_or_default();
        let (ns, p) = (namespace.to_string(), pool.to_string());
        for s in [PoolState::Normal, PoolState::FailedOver] {
            self.pool_state.remove(&StateLabels {
                namespace: ns.clone(),
                pool: p.clone(),
                state: format!("{s:?}"),
            });
        }
        for phase in PHASES {
            self.pool_phase.remove(&PhaseLabels {
                namespace: ns.clone(),
                pool: p.clone(),
                phase: format!("{phase:?}"),
            });
        }
        for site in seen.sites {
            self.serving_site.remove(&SiteLabels {
                namespace: ns.clone(),
                pool: p.clone(),
                site,
            });
        }
        for t in seen.condition_types {
            for s in CONDITION_STATUSES {
                self.condition.remove(&ConditionLabels {
                    namespace: ns.clone(),
                    pool: p.clone(),
                    r#type: t.clone(),
                    status: s.into(),
                });
            }
        }
        self.restore_latency.remove(&pool_labels(namespace, pool));
        self.data_loss_window.remove(&pool_labels(namespace, pool));
    }

    /// Every metric in OpenMetrics text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail; an encoding error would be a bug in a label.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "cannot encode the metrics");
        }
        out
    }
}

/// One unit of a gauge, counted from [`Held::one_of`] until dropped.
pub struct Held(Gauge);

impl Held {
    fn one_of(gauge: Gauge) -> Self {
        gauge.inc();
        Held(gauge)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.0.dec();
    }
}

fn queue_labels(queue: &str) -> QueueLabels {
    QueueLabels {
        queue: queue.into(),
    }
}

fn pool_labels(namespace: &str, pool: &str) -> PoolLabels {
    PoolLabels {
        namespace: namespace.into(),
        pool: pool.into(),
    }
}

fn saturating_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
    use pchat_core::api::{DataLoss, Protection, Transition, TransitionKind};

    fn status() -> PersistentChatPoolStatus {
        PersistentChatPoolStatus {
            pool_state: Some(PoolState::FailedOver),
            phase: Some(Phase::FailingOver),
            serving_site: Some("dallas".into()),
            protection: Some(Protection {
                restore_latency_seconds: Some(120),
                ..Protection::default()
            }),
            transition: Some(Transition {
                from: "atlanta".into(),
                to: "dallas".into(),
                kind: TransitionKind::Forced,
                started_at: "2026-11-26T12:00:00Z".parse().unwrap(),
                completed_at: None,
                tail_lsn: None,
                data_loss: Some(DataLoss {
                    estimated_seconds: 300,
                    last_restored_file: None,
                }),
            }),
            conditions: vec![Condition {
                type_: pchat_core::api::ConditionType::Ready.to_string(),
                status: "False".into(),
                reason: "FailingOver".into(),
                message: String::new(),
                observed_generation: Some(2),
                last_transition_time: Time("2026-11-26T12:00:00Z".parse().unwrap()),
            }],
            ..PersistentChatPoolStatus::default()
        }
    }

    #[test]
    fn rendering_carries_every_agreed_metric_name_with_the_pool_state() {
        let m = Metrics::new();
        m.pass("chat", "atl-cs-001", Outcome::Step);
        m.error("chat", "atl-cs-001", "StepRetrying");
        m.step("CatchUp", Duration::from_millis(250));
        m.round_trips("chat", "atl-cs-001", 5);
        m.set_leader(true);
        m.status(
            "chat",
            "atl-cs-001",
            &["atlanta".into(), "dallas".into()],
            &status(),
        );
        let text = m.render();
        for name in [
            "pchat_reconciles_total{namespace=\"chat\",pool=\"atl-cs-001\",outcome=\"step\"} 1",
            "pchat_reconcile_errors_total{namespace=\"chat\",pool=\"atl-cs-001\",reason=\"StepRetrying\"} 1",
            "pchat_step_duration_seconds_count{step=\"CatchUp\"} 1",
            "pchat_pool_state{namespace=\"chat\",pool=\"atl-cs-001\",state=\"FailedOver\"} 1",
            "pchat_pool_state{namespace=\"chat\",pool=\"atl-cs-001\",state=\"Normal\"} 0",
            "pchat_pool_phase{namespace=\"chat\",pool=\"atl-cs-001\",phase=\"FailingOver\"} 1",
            "pchat_pool_phase{namespace=\"chat\",pool=\"atl-cs-001\",phase=\"Protected\"} 0",
            "pchat_serving_site{namespace=\"chat\",pool=\"atl-cs-001\",site=\"dallas\"} 1",
            "pchat_serving_site{namespace=\"chat\",pool=\"atl-cs-001\",site=\"atlanta\"} 0",
            "pchat_condition{namespace=\"chat\",pool=\"atl-cs-001\",type=\"Ready\",status=\"False\"} 1",
            "pchat_condition{namespace=\"chat\",pool=\"atl-cs-001\",type=\"Ready\",status=\"True\"} 0",
            "pchat_restore_latency_seconds{namespace=\"chat\",pool=\"atl-cs-001\"} 120",
            "pchat_data_loss_window_seconds{namespace=\"chat\",pool=\"atl-cs-001\"} 300",
            "pchat_sql_round_trips_total{namespace=\"chat\",pool=\"atl-cs-001\"} 5",
            "pchat_leader 1",
        ] {
            assert!(text.contains(name), "missing {name:?} in:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn turn_gauges_count_pools_while_they_wait_and_while_they_hold_a_turn() {
        let m = Metrics::new();
        m.set_max_concurrent_pools(16);
        let waiting = m.waiting_for_turn("finishing_transition");
        let other = m.waiting_for_turn("ordinary");
        let text = m.render();
        for line in [
            "pchat_pools_waiting_for_turn{queue=\"finishing_transition\"} 1",
            "pchat_pools_waiting_for_turn{queue=\"ordinary\"} 1",
            "pchat_pools_in_turn 0",
            "pchat_max_concurrent_pools 16",
        ] {
            assert!(text.contains(line), "missing {line:?} in:\n{text}");
        }
        drop(waiting);
        let held = m.got_turn("finishing_transition", Duration::from_millis(30));
        // A wait that ends without a turn (the reconcile was cancelled) is no longer counted.
        drop(other);
        let text = m.render();
        for line in [
            "pchat_pools_waiting_for_turn{queue=\"finishing_transition\"} 0",
            "pchat_pools_waiting_for_turn{queue=\"ordinary\"} 0",
            "pchat_pools_in_turn 1",
            "pchat_turn_wait_seconds_count{queue=\"finishing_transition\"} 1",
            "pchat_turn_wait_seconds_bucket{le=\"0.064\",queue=\"finishing_transition\"} 1",
            "pchat_turn_wait_seconds_bucket{le=\"0.016\",queue=\"finishing_transition\"} 0",
        ] {
            assert!(text.contains(line), "missing {line:?} in:\n{text}");
        }
        drop(held);
        assert!(m.render().contains("pchat_pools_in_turn 0"));
    }

    #[test]
    fn an_unknown_restore_latency_is_no_series_not_zero() {
        let m = Metrics::new();
        let sites = ["atlanta".to_string(), "dallas".to_string()];
        m.status("chat", "atl-cs-001", &sites, &status());
        assert!(m.render().contains("pchat_restore_latency_seconds{"));
        // Later nothing is known (no secondary restored yet, or protection unobserved): the
        // series goes rather than reading 0, which a dashboard would take for "no lag".
        let mut unknown = status();
        unknown.protection = None;
        m.status("chat", "atl-cs-001", &sites, &unknown);
        let text = m.render();
        assert!(
            !text.contains("pchat_restore_latency_seconds{"),
            "a latency series without a latency:\n{text}"
        );
    }

    #[test]
    fn a_forgotten_pool_leaves_no_gauge_behind() {
        let m = Metrics::new();
        m.status(
            "chat",
            "atl-cs-001",
            &["atlanta".into(), "dallas".into()],
            &status(),
        );
        m.forget_pool("chat", "atl-cs-001");
        let text = m.render();
        for gauge in [
            "pchat_pool_state{",
            "pchat_pool_phase{",
            "pchat_serving_site{",
            "pchat_condition{",
            "pchat_restore_latency_seconds{",
            "pchat_data_loss_window_seconds{",
        ] {
            assert!(!text.contains(gauge), "{gauge} left in:\n{text}");
        }
    }
}
