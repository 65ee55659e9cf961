//! The SQL Server model behind the simulator's TDS front end: a [`Simulator`] holds every
//! instance of a [`Topology`] and hands out one [`Backend`](crate::backend::Backend) per
//! instance. It depends on nothing of the operator's.

mod agent;
mod ast;
mod backup;
mod backupfile;
mod catalog;
mod errors;
mod exec;
mod inject;
mod lexer;
mod logship;
mod memo;
mod mirroring;
mod model;
pub use model::LoggedStatement;
mod parse;
mod paths;
mod query;
mod topology;
mod transaction;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};

use chrono::NaiveDateTime;
use tokio::sync::{Notify, watch};

pub use errors::SqlError;
pub use topology::{
    DatabaseDef, EncryptionSetting, InstanceDef, JobIntervals, LoginDef, ShareDef, StatementKind,
    TlsDef, Topology,
};

use crate::Error;
use crate::backend::SharedBackend;
use model::{Database, Instance, Msdb, Share, State};

/// The simulated world: every instance of a topology, the shares and the network between them.
/// Cheap to share (`Arc`); one lock guards the model and is never held across an `.await`.
pub struct Simulator {
    /// A statement that only reads (a SELECT, an IF's condition) holds it shared, so that
    /// reads on different instances run at once, as on separate servers; anything that
    /// changes the model holds it alone.
    state: RwLock<State>,
    /// Sessions take turns to run a statement under `state`'s lock, shared for reads and alone
    /// for the rest. A session waiting for its turn awaits here, handing its worker thread to
    /// other tasks (clients decoding results, other sessions' I/O), instead of blocking that
    /// thread on the lock.
    turn: tokio::sync::RwLock<()>,
    /// Milliseconds slept before each statement of a kind. Apart from the model, so that a
    /// session looking up its statement's latency never waits while another runs a statement.
    latency: std::sync::RwLock<BTreeMap<StatementKind, u64>>,
    up: BTreeMap<String, watch::Sender<bool>>,
    /// Wakes the scheduler early (sp_start_job).
    wake: Notify,
    /// The scheduler clock (tokio time, so paused-time tests drive the jobs).
    started: tokio::time::Instant,
    /// The simulator's own `Arc` (weak, so it does not keep itself alive), for what it hands out.
    weak_self: Weak<Simulator>,
}

impl Simulator {
    /// Build the model of `topology`, keeping backup files under `state_dir`. When called inside
    /// a tokio runtime, the scheduler (agent jobs, mirroring pump) starts too; it stops when the
    /// last `Arc<Simulator>` is dropped.
    pub fn new(topology: Topology, state_dir: impl AsRef<Path>) -> Result<Arc<Simulator>, Error> {
        topology.validate()?;
        let state_dir: PathBuf = state_dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&state_dir).map_err(|source| Error::StateDir {
            what: "the state directory",
            path: state_dir.clone(),
            source,
        })?;
        let now = model::now();
        let mut state = State {
            instances: Vec::new(),
            by_name: Default::default(),
            shares: topology
                .shares
                .iter()
                .map(|s| Share {
                    host: s.host.clone(),
                    share: s.share.clone(),
                    site: s.site.clone(),
                })
                .collect(),
            shares_down: Vec::new(),
            partitions: Vec::new(),
            fail_next: Vec::new(),
            intervals: topology.jobs,
            state_dir: state_dir.clone(),
            guid_counter: 0,
            clock_ms: 0,
        };
        for s in &topology.shares {
            let dir = state_dir
                .join("shares")
                .join(s.host.to_ascii_lowercase())
                .join(s.share.to_ascii_lowercase());
            std::fs::create_dir_all(&dir).map_err(|source| Error::StateDir {
                what: "the share folder",
                path: dir.clone(),
                source,
            })?;
        }
        let mut up = BTreeMap::new();
        for def in &topology.instances {
            let instance = new_instance(&mut state, def, now)?;
            state.add_instance(instance);
            up.insert(def.name.to_ascii_lowercase(), watch::channel(true).0);
        }
        for d in &topology.databases {
            let guid = state.new_guid();
            let inst = state.inst_mut(&d.instance).expect("validated");
            if inst.db(&d.name).is_some() {
                return Err(Error::Topology(format!(
                    "database `{}` is listed twice on instance `{}`",
                    d.name, d.instance
                )));
            }
            inst.next_db_id += 1;
            let id = inst.next_db_id;
            let mut database = Database::new(id, &d.name, guid, now);
            database.files = inst.default_files(&d.name);
            inst.databases.push(database);
        }
        let sim = Arc::new_cyclic(|weak_self| Simulator {
            state: RwLock::new(state),
            turn: tokio::sync::RwLock::new(()),
            latency: std::sync::RwLock::new(topology.latency.clone()),
            up,
            wake: Notify::new(),
            started: tokio::time::Instant::now(),
            weak_self: weak_self.clone(),
        });
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::spawn(scheduler(Arc::downgrade(&sim)));
        }
        Ok(sim)
    }

    /// Read and build a topology file.
    pub fn from_file(
        topology_path: impl AsRef<Path>,
        state_dir: impl AsRef<Path>,
    ) -> Result<Arc<Simulator>, Error> {
        let path = topology_path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadTopology {
            path: path.to_path_buf(),
            source,
        })?;
        Simulator::new(Topology::from_yaml(&text)?, state_dir)
    }

    pub(crate) fn lock(&self) -> RwLockWriteGuard<'_, State> {
        // A panic while holding the lock leaves the model as it was at that instant; keep
        // serving rather than poisoning every later request.
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The model, shared with other readers (see [`Simulator::lock`] on poisoning).
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn arc(&self) -> Arc<Simulator> {
        self.weak_self
            .upgrade()
            .expect("simulator alive while in use")
    }

    /// The backend for one instance, for the TDS front end.
    pub fn backend(&self, instance: &str) -> Option<SharedBackend> {
        let name = self.lock().inst(instance)?.name.clone();
        Some(Arc::new(exec::InstanceBackend {
            sim: self.arc(),
            instance: name,
        }))
    }

    /// Instance names with their site and listen address, in topology order.
    pub fn instances(&self) -> Vec<(String, String, String)> {
        self.lock()
            .instances
            .iter()
            .map(|i| (i.name.clone(), i.site.clone(), i.listen.clone()))
            .collect()
    }

    /// The statements an instance ran, oldest first (at most the last 50,000): what a test
    /// checks to prove that a client sent no write.
    pub fn statement_log(&self, instance: &str) -> Vec<model::LoggedStatement> {
        self.lock()
            .inst(instance)
            .map(|i| i.statement_log.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether an instance is up (its listener should accept connections).
    pub fn is_up(&self, instance: &str) -> bool {
        self.lock().inst(instance).is_some_and(|i| i.up)
    }

    /// A watch of an instance's up/down state, for whoever owns its TCP listener.
    pub fn watch_up(&self, instance: &str) -> Option<watch::Receiver<bool>> {
        self.up
            .get(&instance.to_ascii_lowercase())
            .map(|s| s.subscribe())
    }

    /// Every copy's message ids, whatever the copy's state (for the verifier). None when the
    /// instance or database does not exist.
    pub fn message_ids(&self, instance: &str, db: &str) -> Option<Vec<i64>> {
        let st = self.lock();
        let d = st.inst(instance)?.db(db)?;
        let mut ids: Vec<i64> = d.rows.iter().map(|r| r.id).collect();
        ids.sort_unstable();
        Some(ids)
    }

    /// A database copy's state name (`ONLINE`, `RESTORING`, ...), for tests and the verifier.
    pub fn database_state(&self, instance: &str, db: &str) -> Option<String> {
        let st = self.lock();
        Some(st.inst(instance)?.db(db)?.state.desc().to_string())
    }

    /// The state directory backups live under.
    pub fn state_dir(&self) -> PathBuf {
        self.lock().state_dir.clone()
    }

    /// Run every agent job that is due and the mirroring pump, now. The scheduler task calls
    /// this on its tick; tests may call it to avoid waiting.
    pub fn tick(&self) {
        let mut st = self.lock();
        st.clock_ms = self.started.elapsed().as_millis() as u64;
        mirroring::pump(&mut st);
        logship::run_due_jobs(&mut st);
        mirroring::pump(&mut st);
    }

    fn set_up(&self, instance: &str, up: bool) {
        if let Some(tx) = self.up.get(&instance.to_ascii_lowercase()) {
            tx.send_replace(up);
        }
    }

    fn tick_ms(&self) -> u64 {
        let st = self.lock();
        let i = st.intervals;
        let min = i
            .backup_ms
            .min(i.copy_ms)
            .min(i.restore_ms)
            .min(i.mirroring_ms)
            .min(agent::shortest_schedule_ms(&st).unwrap_or(u64::MAX));
        (min / 4).clamp(5, 1000)
    }
}

/// A new instance of the topology: up, with the four system databases (model and msdb in FULL
/// recovery, master and tempdb in SIMPLE), no sessions, and its own SQLite connection for the
/// catalog SELECTs.
fn new_instance(
    state: &mut State,
    def: &InstanceDef,
    now: NaiveDateTime,
) -> Result<Instance, Error> {
    let sqlite = rusqlite::Connection::open_in_memory().map_err(Error::Catalog)?;
    // Room for every distinct query of an observation batch and then some.
    sqlite.set_prepared_statement_cache_capacity(128);
    // The catalog tables hold tens of rows. An automatic index (SQLite's default for a join on
    // an unindexed column) is a fresh b-tree built and dropped on every run of every
    // observation query, which cost more than the scan it saves: a fifth of an observation
    // batch (perf, the demo).
    sqlite
        .execute_batch("PRAGMA automatic_index = OFF;")
        .map_err(Error::Catalog)?;
    // One plan per statement whatever its parameters: otherwise SQLite marks a statement whose
    // plan a parameter's value could change, and compiles it again after every binding of that
    // parameter. The observation queries are bound afresh on every run (the clock, the
    // session, the folder), so they were compiled again on nearly every run: a sixth of the
    // simulator's work in a storm of switches (perf).
    sqlite
        .set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )
        .map_err(Error::Catalog)?;
    let mut databases = Vec::new();
    for (id, name) in [(1, "master"), (2, "tempdb"), (3, "model"), (4, "msdb")] {
        let guid = state.new_guid();
        let mut d = Database::new(id, name, guid, now);
        d.recovery = if name == "model" || name == "msdb" {
            "FULL".into()
        } else {
            "SIMPLE".into()
        };
        databases.push(d);
    }
    Ok(Instance {
        name: def.name.clone(),
        site: def.site.clone(),
        endpoint: def
            .mirroring_endpoint
            .clone()
            .unwrap_or_else(|| format!("TCP://{}:5022", def.name)),
        aliases: def.aliases.clone(),
        listen: def.listen.clone(),
        data_path: folder(def.data_path.as_deref(), "D:\\SQLData", &def.name),
        log_path: folder(def.log_path.as_deref(), "L:\\SQLLogs", &def.name),
        version: model::ProductVersion::parse(
            def.version
                .as_deref()
                .unwrap_or(model::ProductVersion::DEFAULT),
        )
        .expect("validated with the topology"),
        utc_offset_minutes: def.utc_offset_minutes.unwrap_or(0),
        logins: def.logins.clone(),
        up: true,
        databases,
        next_db_id: 4,
        sessions: BTreeMap::new(),
        next_spid: 51,
        msdb: Msdb::default(),
        sqlite: std::sync::Mutex::new(model::SqliteTables {
            connection: sqlite,
            loaded: Default::default(),
        }),
        statement_log: Default::default(),
    })
}

/// A folder path with its trailing backslash: the topology's, or `<root>\<instance>\`.
fn folder(given: Option<&str>, root: &str, instance: &str) -> String {
    let path = given.map_or_else(|| format!("{root}\\{instance}"), str::to_string);
    if path.ends_with('\\') {
        path
    } else {
        format!("{path}\\")
    }
}

/// The background task: agent jobs at their intervals, jobs started by sp_start_job, and the
/// mirroring pump. Holds only a weak reference between ticks so dropping the simulator ends it.
async fn scheduler(sim: Weak<Simulator>) {
    loop {
        {
            let Some(s) = sim.upgrade() else { return };
            let tick = std::time::Duration::from_millis(s.tick_ms());
            tokio::select! {
                _ = s.wake.notified() => {}
                _ = tokio::time::sleep(tick) => {}
            }
        }
        match sim.upgrade() {
            Some(s) => s.tick(),
            None => return,
        }
    }
}
