//! The Argo CD health check (charts/pchat-operator/argocd/health.lua) run the way Argo CD runs
//! it: Lua 5.1 (Argo CD embeds gopher-lua, a Lua 5.1), the object as the global table `obj`,
//! the script's returned table `hs` read for `status` and `message`.
//!
//! The sample statuses come from the real engine (`engine::reconcile_once` over the model
//! executor double of tests/engine_support), so a change in the conditions or reasons the
//! engine sets breaks these tests; only the "no status yet" and "stale generation" objects
//! are edited by hand from an engine status.

mod support;

use jiff::Timestamp;
use mlua::{Lua, Value as LuaValue};
use pchat_core::api::{ConditionType, PersistentChatPoolSpec, PersistentChatPoolStatus, Phase};
use pchat_core::plan::{self, Decision, Step};
use pchat_operator::engine::{MemoryPublisher, PassInput, PassReport, StepError, reconcile_once};
use pchat_sql::SqlError;
use serde_json::{Value, json};
use support::engine::{ModelPort, observed, spec};

const SCRIPT: &str = include_str!("../charts/pchat-operator/argocd/health.lua");
const GENERATION: i64 = 3;

/// What the script returned.
#[derive(Debug)]
struct Health {
    status: String,
    message: String,
}

/// A JSON value as a Lua value, the way Argo CD hands an unstructured object to gopher-lua:
/// maps become tables keyed by string, arrays tables indexed from 1, numbers Lua numbers.
fn to_lua(lua: &Lua, v: &Value) -> LuaValue {
    match v {
        Value::Null => LuaValue::Nil,
        Value::Bool(b) => LuaValue::Boolean(*b),
        Value::Number(n) => LuaValue::Number(n.as_f64().expect("a JSON number")),
        Value::String(s) => LuaValue::String(lua.create_string(s).unwrap()),
        Value::Array(items) => {
            let t = lua.create_table().unwrap();
            for (i, item) in items.iter().enumerate() {
                t.set(i + 1, to_lua(lua, item)).unwrap();
            }
            LuaValue::Table(t)
        }
        Value::Object(map) => {
            let t = lua.create_table().unwrap();
            for (k, item) in map {
                t.set(k.as_str(), to_lua(lua, item)).unwrap();
            }
            LuaValue::Table(t)
        }
    }
}

fn health(obj: &Value) -> Health {
    let lua = Lua::new();
    lua.globals().set("obj", to_lua(&lua, obj)).unwrap();
    let hs: mlua::Table = lua
        .load(SCRIPT)
        .set_name("health.lua")
        .eval()
        .unwrap_or_else(|e| panic!("health.lua failed on {obj:#}: {e}"));
    Health {
        status: hs.get("status").expect("hs.status"),
        message: hs.get("message").expect("hs.message"),
    }
}

/// The pool object as the API server serves it, with `status` when given.
fn object(
    spec: &PersistentChatPoolSpec,
    generation: i64,
    status: Option<&PersistentChatPoolStatus>,
) -> Value {
    let mut o = json!({
        "apiVersion": "persistentchat.io/v1alpha1",
        "kind": "PersistentChatPool",
        "metadata": {"name": "atl-cs-001", "namespace": "chat", "generation": generation},
        "spec": serde_json::to_value(spec).unwrap(),
    });
    if let Some(s) = status {
        o["status"] = serde_json::to_value(s).unwrap();
    }
    o
}

fn condition(s: &PersistentChatPoolStatus, t: ConditionType) -> (&str, &str, &str) {
    let c = pchat_core::api::conditions::find(&s.conditions, t)
        .unwrap_or_else(|| panic!("no {t} condition in {:?}", s.conditions));
    (c.status.as_str(), c.reason.as_str(), c.message.as_str())
}

/// The test pool driven by the engine over the model executor.
struct Pool {
    spec: PersistentChatPoolSpec,
    port: ModelPort,
    publisher: MemoryPublisher,
    now: Timestamp,
    status: Option<PersistentChatPoolStatus>,
}

impl Pool {
    fn from_installer() -> Self {
        let obs = observed("observed-installer.yaml");
        Pool {
            spec: spec("atlanta"),
            now: obs.taken_at,
            port: ModelPort::new(obs),
            publisher: MemoryPublisher::new(None),
            status: None,
        }
    }

    fn pass(&mut self) -> PassReport {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let r = rt.block_on(reconcile_once(
            PassInput::new(
                "argocd-test",
                &self.spec,
                Some(GENERATION),
                self.status.as_ref(),
                self.now,
            ),
            &mut self.port,
            &mut self.publisher,
        ));
        self.status = Some(r.status.clone());
        self.now = self
            .now
            .checked_add(jiff::SignedDuration::from_secs(1))
            .unwrap();
        r
    }

    /// The decision the next pass will make.
    fn next_decision(&self) -> Decision {
        let mut world = self.port.world.clone();
        world.published = self.publisher.get();
        plan::next(&self.spec, &world, self.now)
    }

    /// Passes until the engine reports Converged.
    fn converge(&mut self) -> &PersistentChatPoolStatus {
        for _ in 0..80 {
            if self.pass().decision == Some(Decision::Converged) {
                return self.status.as_ref().unwrap();
            }
        }
        panic!("no convergence after 80 passes: {:?}", self.status);
    }

    fn object(&self) -> Value {
        object(&self.spec, GENERATION, self.status.as_ref())
    }
}

#[test]
fn a_converged_protected_pool_is_healthy() {
    let mut pool = Pool::from_installer();
    let status = pool.converge().clone();
    assert_eq!(condition(&status, ConditionType::Ready).0, "True");
    let h = health(&pool.object());
    assert_eq!(h.status, "Healthy", "{h:?}");
    assert!(h.message.contains("atlanta serves"), "{h:?}");
}

#[test]
fn a_bootstrap_under_way_is_progressing_with_the_step() {
    let mut pool = Pool::from_installer();
    let r = pool.pass();
    assert!(matches!(r.decision, Some(Decision::Step(_))));
    // A bootstrap reports Degraded=True (nothing is mirrored yet): it must not win.
    let status = pool.status.clone().unwrap();
    assert_eq!(condition(&status, ConditionType::Degraded).0, "True");
    let h = health(&pool.object());
    assert_eq!(h.status, "Progressing", "{h:?}");
    assert!(h.message.starts_with("SeedMirror"), "{h:?}");
}

#[test]
fn a_planned_switch_under_way_is_progressing() {
    let mut pool = Pool::from_installer();
    pool.converge();
    pool.spec.primary_site = "dallas".into();
    // The drain, then the first SQL steps of the switch: Progressing at every one of them.
    let mut sql_steps = 0;
    for _ in 0..10 {
        let r = pool.pass();
        let h = health(&pool.object());
        assert_eq!(h.status, "Progressing", "{h:?} after {:?}", r.decision);
        let status = pool.status.as_ref().unwrap();
        assert_eq!(status.phase, Some(Phase::Switching), "{status:?}");
        if matches!(&r.step_ran, Some((s, _)) if !matches!(s, Step::PublishActiveServers { .. })) {
            sql_steps += 1;
        }
        if sql_steps == 3 {
            return;
        }
    }
    panic!("the switch did not run three SQL steps in ten passes");
}

#[test]
fn a_status_older_than_the_spec_is_progressing() {
    let mut pool = Pool::from_installer();
    pool.converge();
    // The spec was edited (generation 4) and the operator has not written a status for it.
    let obj = object(&pool.spec, GENERATION + 1, pool.status.as_ref());
    let h = health(&obj);
    assert_eq!(h.status, "Progressing", "{h:?}");
    assert!(h.message.contains("generation 4"), "{h:?}");
}

#[test]
fn a_pool_without_status_is_progressing() {
    let h = health(&object(&spec("atlanta"), 1, None));
    assert_eq!(h.status, "Progressing", "{h:?}");
    let mut no_conditions = object(&spec("atlanta"), 1, None);
    no_conditions["status"] = json!({"conditions": [], "activeServers": []});
    assert_eq!(health(&no_conditions).status, "Progressing");
}

#[test]
fn an_invalid_spec_is_degraded_with_the_stalled_message_naming_the_field() {
    let mut pool = Pool::from_installer();
    pool.spec.primary_site = "houston".into();
    pool.pass();
    let status = pool.status.clone().unwrap();
    let (stalled, reason, _) = condition(&status, ConditionType::Stalled);
    assert_eq!((stalled, reason), ("True", "InvalidSpec"));
    let h = health(&pool.object());
    assert_eq!(h.status, "Degraded", "{h:?}");
    assert_eq!(h.message, condition(&status, ConditionType::Stalled).2);
    assert!(h.message.contains("spec.primarySite"), "{h:?}");
}

#[test]
fn a_blocked_forced_failover_is_degraded_with_the_data_loss_estimate() {
    let obs = observed("observed-atlanta-down.yaml");
    let mut pool = Pool {
        spec: spec("dallas"),
        now: obs.taken_at,
        publisher: MemoryPublisher::new(obs.published.clone()),
        port: ModelPort::new(obs),
        status: None,
    };
    let r = pool.pass();
    assert!(matches!(r.decision, Some(Decision::Blocked(_))), "{r:?}");
    let status = pool.status.clone().unwrap();
    assert_eq!(
        condition(&status, ConditionType::Stalled).1,
        "DataLossNotAllowed"
    );
    let h = health(&pool.object());
    assert_eq!(h.status, "Degraded", "{h:?}");
    assert!(h.message.contains("failover.allowDataLoss"), "{h:?}");
}

#[test]
fn a_mirroring_step_retrying_on_error_1418_is_degraded_with_the_sql_error() {
    let mut pool = Pool::from_installer();
    // Run the bootstrap up to the step that starts mirroring, and make it fail as SQL Server
    // does when the partner's endpoint cannot be reached.
    for _ in 0..40 {
        if let Decision::Step(Step::EstablishMirroring { .. }) = pool.next_decision() {
            let e = SqlError::Server {
                instance: "atl-sql1".into(),
                statement: "ALTER DATABASE SET PARTNER".into(),
                number: 1418,
                state: 1,
                class: 16,
                message: "The server network address \"TCP://atl-sql2.litwareinc.com:5022\" can not be reached or does not exist.".into(),
            };
            pool.port.fail_next.push(StepError::from(e));
            let r = pool.pass();
            assert!(
                matches!(&r.step_ran, Some((_, Err(e))) if e.retryable),
                "{r:?}"
            );
            let status = pool.status.clone().unwrap();
            let (reconciling, reason, _) = condition(&status, ConditionType::Reconciling);
            assert_eq!((reconciling, reason), ("True", "StepRetrying"));
            assert_eq!(condition(&status, ConditionType::Stalled).0, "False");
            let h = health(&pool.object());
            assert_eq!(h.status, "Degraded", "{h:?}");
            assert!(h.message.contains("1418"), "{h:?}");
            // The next pass succeeds: back to Progressing.
            pool.pass();
            assert_eq!(health(&pool.object()).status, "Progressing");
            return;
        }
        pool.pass();
    }
    panic!("the bootstrap never reached EstablishMirroring");
}

#[test]
fn a_converged_pool_with_restore_latency_above_the_rpo_is_degraded() {
    let mut pool = Pool::from_installer();
    pool.converge();
    let secondary = pool
        .port
        .world
        .instances
        .iter_mut()
        .flat_map(|i| i.databases.iter_mut())
        .find_map(|d| d.log_shipping_secondary.as_mut())
        .expect("a log-shipping secondary after the bootstrap");
    secondary.last_restored_latency_minutes = Some(60);
    let r = pool.pass();
    assert_eq!(r.decision, Some(Decision::Converged));
    let status = pool.status.clone().unwrap();
    assert_eq!(condition(&status, ConditionType::Degraded).0, "True");
    assert_eq!(condition(&status, ConditionType::Reconciling).0, "False");
    let h = health(&pool.object());
    assert_eq!(h.status, "Degraded", "{h:?}");
    assert_eq!(h.message, condition(&status, ConditionType::Degraded).2);
    assert!(h.message.contains("rpoTarget"), "{h:?}");
}

#[test]
fn a_suspended_pool_is_suspended() {
    let mut pool = Pool::from_installer();
    pool.converge();
    pool.spec.suspend = true;
    pool.pass();
    let status = pool.status.clone().unwrap();
    assert_eq!(status.phase, Some(Phase::Suspended));
    let h = health(&pool.object());
    assert_eq!(h.status, "Suspended", "{h:?}");
    assert!(h.message.contains("phase Suspended"), "{h:?}");
}

#[test]
fn the_script_is_run_by_lua_5_1_as_argo_cd_embeds_it() {
    // gopher-lua is Lua 5.1: no goto, no integer division, no bitwise operators.
    let lua = Lua::new();
    let version: String = lua.globals().get("_VERSION").unwrap();
    assert_eq!(version, "Lua 5.1");
    for construct in ["goto ", "//", " & ", " | ", "<<", ">>"] {
        assert!(!SCRIPT.contains(construct), "health.lua uses {construct:?}");
    }
}
