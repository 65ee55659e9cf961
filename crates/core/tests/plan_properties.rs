//! Property tests with the model executor (`plan::effects::apply`) as the world. Random
//! starting states (the installer's, converged on either site, any point of a planned switch,
//! atlanta down, a stale copy returning, both sites online, a mirror failover inside atlanta);
//! random crashes (the planner re-plans from the current observation every time: nothing is
//! remembered), lost and half-done steps; random unreachable instances and site outages, share
//! outages, writes, log-shipping jobs and changes of `primarySite`.
//!
//! Checked: once every instance and share is reachable, the planner converges within
//! `plan::CONVERGENCE_BOUND` steps; no step it takes violates the safety invariants, as observed
//! and in truth (no second writable copy except a policy-allowed forced failover); and no
//! acknowledged write is lost: a copy the planner recovers holds every chat write any other
//! copy acknowledged, except in a forced failover the policy allows (whose loss the status
//! reports), writes on a copy fenced as stale (kept there, READ_ONLY, when another history was
//! chosen) and writes on a copy that was overwritten (which the safety invariants allow only
//! after a salvage backup of it).

use jiff::{SignedDuration, Timestamp};
use pchat_core::api::{PersistentChatPool, PersistentChatPoolSpec};
use pchat_core::observe::{
    BackupFile, BackupLocation, BackupType, DatabaseState, LocationKind, MirroringRole,
    Observation, Reachability, SessionObservation, UserAccess,
};
use pchat_core::plan::{self, Decision, Step, WaitReason, effects, invariants};
use proptest::prelude::*;

const INSTANCES: [&str; 4] = ["atl-sql1", "atl-sql2", "dal-sql1", "dal-sql2"];
const SITES: [&str; 2] = ["atlanta", "dallas"];

fn read(name: &str) -> String {
    let path = format!("{}/../../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn base_spec(allow_data_loss: bool) -> PersistentChatPoolSpec {
    let pool: PersistentChatPool = serde_saphyr::from_str(&read("pool.yaml")).unwrap();
    let mut spec = pool.spec;
    spec.failover.allow_data_loss = allow_data_loss;
    spec.failover.max_data_loss = std::time::Duration::from_secs(86_400).into();
    spec
}

fn fixture(name: &str) -> Observation {
    serde_saphyr::from_str(&read(name)).unwrap()
}

/// The true state of the pool; the planner sees it through `view`.
struct World {
    spec: PersistentChatPoolSpec,
    truth: Observation,
    now: Timestamp,
    next_session: i32,
    /// Per instance, the last chat-database LSN a chat server's write was acknowledged at.
    acked: std::collections::BTreeMap<String, u128>,
    log: Vec<String>,
}

impl World {
    /// What an observer sees: nothing of an unreachable instance, no files on an unreadable
    /// location.
    fn view(&self) -> Observation {
        let mut v = self.truth.clone();
        v.taken_at = self.now;
        for i in &mut v.instances {
            if !i.is_reachable() {
                i.databases.clear();
                i.sessions.clear();
            }
        }
        for l in &mut v.backup_locations {
            if !l.readable {
                l.files.clear();
            }
        }
        v
    }

    fn tick(&mut self, secs: i64) {
        self.now = self
            .now
            .checked_add(SignedDuration::from_secs(secs))
            .unwrap();
    }

    /// Plan once and run the step (fully, not at all, or half of a catch-up). Returns the
    /// decision. Panics on a safety violation.
    fn plan_step(&mut self, crash: u8) -> Decision {
        let view = self.view();
        let d = plan::next(&self.spec, &view, self.now);
        if let Decision::Step(step) = &d {
            self.log.push(format!("{} {}", self.spec.primary_site, d));
            let mut step = step.clone();
            match crash {
                // The operator died before the statement reached the server.
                6 => return d,
                // The operator died halfway through a catch-up.
                7 => {
                    if let Step::CatchUp { files, .. } = &mut step {
                        let half = files.len() / 2;
                        files.truncate(half.max(1));
                    }
                }
                _ => {}
            }
            let writable_before = self.writable_in_truth();
            effects::apply(&self.spec, &step, &mut self.truth, self.now);
            self.check_acknowledged_writes(&view, &step);
            let after = self.view();
            let v = invariants::step_violations(&self.spec, &view, &step, &after);
            assert!(v.is_empty(), "{v:?}\nlog: {:#?}", self.log);
            // Beyond what the observer sees: no step makes a second writable copy in truth,
            // except the forced failover the policy allows, with the whole other site down.
            let writable_after = self.writable_in_truth();
            if writable_after.len() > writable_before.len() && writable_after.len() >= 2 {
                let other = self.spec.other_site(step.site()).unwrap();
                let forced = matches!(step, Step::Recover { .. })
                    && self.spec.failover.allow_data_loss
                    && other
                        .instances
                        .iter()
                        .all(|i| !view.instance(&i.name).unwrap().is_reachable());
                assert!(
                    forced,
                    "{} made {writable_after:?} writable\nlog: {:#?}",
                    step.name(),
                    self.log
                );
            }
        }
        d
    }

    /// After `step` (planned from `view`) ran: a recovered chat copy holds every write another
    /// copy acknowledged, unless the step is a forced failover the policy allows (from then on
    /// the new primary's history is the one that counts); a copy overwritten by a seed forgets
    /// its writes (they are in its salvage backup, which the step invariants require), and so
    /// does a copy fenced as stale (they stay on it).
    fn check_acknowledged_writes(&mut self, view: &Observation, step: &Step) {
        let chat = &self.spec.databases.chat;
        if let Some((instance, database)) = step.overwrites()
            && database == chat
        {
            self.acked.remove(instance);
            return;
        }
        match step {
            Step::Recover {
                instance, database, ..
            } if database == chat => {
                let other_site_down = self.spec.other_site(step.site()).is_some_and(|other| {
                    other
                        .instances
                        .iter()
                        .all(|i| !view.instance(&i.name).is_some_and(|o| o.is_reachable()))
                });
                if self.spec.failover.allow_data_loss && other_site_down {
                    self.acked.retain(|name, _| name == instance);
                    return;
                }
                let recovered_at = self
                    .truth
                    .instance(instance)
                    .and_then(|i| i.database(chat))
                    .and_then(|d| d.lsn.end_of_log)
                    .map_or(0, |l| l.0);
                for (other, &acked) in self.acked.iter().filter(|(name, _)| *name != instance) {
                    assert!(
                        recovered_at >= acked,
                        "{chat} recovered on {instance} at LSN {recovered_at} loses writes \
                         acknowledged on {other} up to LSN {acked}\nlog: {:#?}",
                        self.log
                    );
                }
            }
            // A copy fenced as stale (another history was chosen: a split brain, or a forced
            // failover's old primary returning) keeps its writes where they are, READ_ONLY, for
            // a person to reconcile: the operator never merges two histories.
            Step::FenceStaleCopy {
                instance, database, ..
            } if database == chat => {
                self.acked.remove(instance);
            }
            _ => {}
        }
    }

    /// Instances whose chat copy is writable in truth, seen or not.
    fn writable_in_truth(&self) -> Vec<String> {
        let chat = &self.spec.databases.chat;
        self.truth
            .instances
            .iter()
            .filter(|i| {
                i.database(chat).is_some_and(|d| {
                    d.state == DatabaseState::Online
                        && d.user_access == UserAccess::MultiUser
                        && !d.read_only
                        && d.mirroring
                            .as_ref()
                            .is_none_or(|m| m.role == MirroringRole::Principal)
                })
            })
            .map(|i| i.name.clone())
            .collect()
    }

    fn published_sites(&self) -> Option<Vec<&str>> {
        let p = self.truth.published.as_ref()?;
        Some(
            self.spec
                .sites
                .iter()
                .filter(|s| {
                    s.chat_servers
                        .iter()
                        .any(|c| p.active_servers.iter().any(|a| a.eq_ignore_ascii_case(c)))
                })
                .map(|s| s.name.as_str())
                .collect(),
        )
    }

    /// Chat servers write to the writable chat copies of the published site (or, before anything
    /// was published, to any writable copy: the installer's configuration).
    fn write(&mut self, n: u64) {
        let sites: Option<Vec<String>> = self
            .published_sites()
            .map(|v| v.into_iter().map(String::from).collect());
        let chat = self.spec.databases.chat.clone();
        let mut synced: Vec<(String, u128)> = Vec::new();
        let mut acked: Vec<(String, u128)> = Vec::new();
        for (site, inst) in self.spec.instances() {
            if sites.as_ref().is_some_and(|s| !s.contains(&site.name)) {
                continue;
            }
            let Some(i) = self
                .truth
                .instances
                .iter_mut()
                .find(|i| i.name == inst.name)
            else {
                continue;
            };
            if !i.is_reachable() {
                continue;
            }
            // Chat servers write to the chat database and, on the same instance, the
            // compliance database.
            let chat_written = i.database(&chat).is_some_and(|d| {
                d.state == DatabaseState::Online
                    && d.user_access == UserAccess::MultiUser
                    && !d.read_only
                    && d.mirroring
                        .as_ref()
                        .is_none_or(|m| m.role == MirroringRole::Principal)
            });
            if !chat_written {
                continue;
            }
            for d in &mut i.databases {
                let writable = d.state == DatabaseState::Online
                    && d.user_access == UserAccess::MultiUser
                    && !d.read_only
                    && d.mirroring
                        .as_ref()
                        .is_none_or(|m| m.role == MirroringRole::Principal);
                if writable {
                    let end = d.lsn.end_of_log.map_or(1, |l| l.0) + u128::from(n);
                    d.lsn.end_of_log = Some(pchat_core::observe::Lsn(end));
                    if d.name == chat {
                        acked.push((i.name.clone(), end));
                    }
                    if let Some(m) = &d.mirroring {
                        synced.push((format!("{}/{}", m.partner_instance, d.name), end));
                    }
                }
            }
        }
        self.acked.extend(acked);
        // A synchronized mirror follows its principal while it answers.
        for (key, end) in synced {
            let (inst, dbn) = key.split_once('/').unwrap();
            if let Some(i) = self
                .truth
                .instances
                .iter_mut()
                .find(|i| i.name == inst && i.is_reachable())
                && let Some(d) = i
                    .databases
                    .iter_mut()
                    .find(|d| d.name == dbn && d.mirroring.is_some())
            {
                d.lsn.redo_start = Some(pchat_core::observe::Lsn(end));
            }
        }
    }

    /// Published chat servers connect to the writable chat copy of their site.
    fn connect(&mut self) {
        let Some(p) = self.truth.published.clone() else {
            return;
        };
        let chat = self.spec.databases.chat.clone();
        for server in &p.active_servers {
            let Some(site) = self
                .spec
                .sites
                .iter()
                .find(|s| s.chat_servers.contains(server))
            else {
                continue;
            };
            for inst in &site.instances {
                let id = self.next_session;
                let Some(i) = self
                    .truth
                    .instances
                    .iter_mut()
                    .find(|i| i.name == inst.name)
                else {
                    continue;
                };
                let writable = i.is_reachable()
                    && i.database(&chat).is_some_and(|d| {
                        d.state == DatabaseState::Online
                            && d.user_access == UserAccess::MultiUser
                            && !d.read_only
                    });
                let host = server.split('.').next().unwrap().to_ascii_uppercase();
                if writable && !i.sessions.iter().any(|s| s.host_name == host) {
                    i.sessions.push(SessionObservation {
                        session_id: id,
                        host_name: host,
                        program_name: "Persistent Chat Server".to_string(),
                        database: Some(chat.clone()),
                    });
                    self.next_session += 1;
                }
            }
        }
    }

    /// The log-shipping agent jobs: backup on the writable primary, copy and restore on the
    /// secondary.
    fn ls_jobs(&mut self) {
        let chat = self.spec.databases.chat.clone();
        let stamp = self.now.strftime("%Y%m%d%H%M%S").to_string();
        // Backup job.
        let mut new_files: Vec<(String, BackupFile)> = Vec::new();
        let readable_shares: Vec<String> = self
            .truth
            .backup_locations
            .iter()
            .filter(|l| l.readable && matches!(l.kind, LocationKind::Share { .. }))
            .map(|l| l.path.clone())
            .collect();
        for i in &mut self.truth.instances {
            if !i.is_reachable() {
                continue;
            }
            let name = i.name.clone();
            let Some(d) = i.databases.iter_mut().find(|d| d.name == chat) else {
                continue;
            };
            let writable = d.state == DatabaseState::Online
                && d.mirroring
                    .as_ref()
                    .is_none_or(|m| m.role == MirroringRole::Principal);
            let Some(lsp) = d.log_shipping_primary.clone() else {
                continue;
            };
            let start = effects::chain_start(d);
            let end = d.lsn.end_of_log.unwrap_or(start);
            // A backup to a share that is down fails and leaves no trace in msdb.
            if !writable || end <= start || !readable_shares.contains(&lsp.backup_share) {
                continue;
            }
            let f = BackupFile {
                path: format!("{}\\{}_{}.trn", lsp.backup_share, chat, stamp),
                database: chat.clone(),
                backup_type: BackupType::Log,
                first_lsn: start,
                last_lsn: end,
                database_backup_lsn: None,
                finished_at: self.now,
                copy_only: false,
                force_offline: false,
                server_name: name,
            };
            d.last_log_backup = Some(f.clone());
            new_files.push((lsp.backup_share.clone(), f));
        }
        for (share, f) in new_files {
            if let Some(l) = self
                .truth
                .backup_locations
                .iter_mut()
                .find(|l| l.path == share && l.readable)
            {
                l.files.push(f);
            }
        }
        // Copy and restore jobs.
        let names: Vec<String> = self
            .truth
            .instances
            .iter()
            .map(|i| i.name.clone())
            .collect();
        for name in names {
            let Some(i) = self.truth.instances.iter().find(|i| i.name == name) else {
                continue;
            };
            if !i.is_reachable() {
                continue;
            }
            let Some(d) = i.database(&chat) else { continue };
            let Some(lss) = d.log_shipping_secondary.clone() else {
                continue;
            };
            if d.state != DatabaseState::Restoring || d.mirroring.is_some() {
                continue;
            }
            let source: Vec<BackupFile> = self
                .truth
                .backup_locations
                .iter()
                .find(|l| l.path == lss.backup_source_directory && l.readable)
                .map(|l| l.files.clone())
                .unwrap_or_default();
            let kind = LocationKind::CopyFolder {
                instance: name.clone(),
            };
            if !self.truth.backup_locations.iter().any(|l| l.kind == kind) {
                self.truth.backup_locations.push(BackupLocation {
                    kind: kind.clone(),
                    path: lss.backup_destination_directory.clone(),
                    readable: true,
                    reason: None,
                    files: vec![],
                });
            }
            let folder = self
                .truth
                .backup_locations
                .iter_mut()
                .find(|l| l.kind == kind)
                .unwrap();
            if !folder.readable {
                continue;
            }
            for f in source
                .iter()
                .filter(|f| f.backup_type == BackupType::Log && f.database == chat)
            {
                let base = f.path.rsplit('\\').next().unwrap();
                let path = format!("{}\\{}", lss.backup_destination_directory, base);
                if !folder
                    .files
                    .iter()
                    .any(|g| g.path == path && g.last_lsn == f.last_lsn)
                {
                    let mut g = f.clone();
                    g.path = path;
                    folder.files.push(g);
                }
            }
            let files = folder.files.clone();
            let redo = d.lsn.redo_start.unwrap_or(pchat_core::observe::Lsn(0));
            let chain = plan::lsn::chain(&files, &chat, redo, None);
            if let Some(last) = chain.last() {
                let i = self
                    .truth
                    .instances
                    .iter_mut()
                    .find(|i| i.name == name)
                    .unwrap();
                let d = i.databases.iter_mut().find(|d| d.name == chat).unwrap();
                d.lsn.redo_start = Some(last.last_lsn);
                if let Some(l) = d.log_shipping_secondary.as_mut() {
                    l.last_restored_file = Some(last.path.clone());
                    l.last_restored_date = Some(self.now);
                }
            }
        }
    }

    fn set_reachable(&mut self, idx: usize, up: bool) {
        let now = self.now;
        let i = self
            .truth
            .instances
            .iter_mut()
            .find(|i| i.name == INSTANCES[idx])
            .expect("instance in the fixture");
        i.reachability = if up {
            Reachability::Reachable
        } else if i.is_reachable() {
            Reachability::Unreachable {
                reason: "connection timed out".to_string(),
                since: now,
            }
        } else {
            i.reachability.clone()
        };
    }

    fn set_share(&mut self, site: &str, readable: bool) {
        let kind = LocationKind::Share {
            site: site.to_string(),
        };
        if let Some(l) = self
            .truth
            .backup_locations
            .iter_mut()
            .find(|l| l.kind == kind)
        {
            l.readable = readable;
            l.reason = (!readable).then(|| "share down".to_string());
        }
    }

    fn heal(&mut self) {
        for idx in 0..INSTANCES.len() {
            self.set_reachable(idx, true);
        }
        for l in &mut self.truth.backup_locations {
            l.readable = true;
            l.reason = None;
        }
    }

    /// Run the planner with everything reachable until it stops stepping; returns the number
    /// of steps and the end.
    fn converge(&mut self, limit: usize) -> (usize, Decision) {
        let mut steps = 0;
        let mut waits = 0;
        loop {
            let d = self.plan_step(0);
            match d {
                Decision::Step(_) => {
                    steps += 1;
                    if steps > limit {
                        return (steps, d);
                    }
                    self.tick(5);
                    self.write(3);
                    self.ls_jobs();
                }
                Decision::Wait(WaitReason::Draining { .. }) if waits < 20 => {
                    waits += 1;
                    self.tick(30);
                }
                other => return (steps, other),
            }
        }
    }
}

#[derive(Clone, Debug)]
enum Start {
    Installer,
    SteadyAtlanta,
    SteadyDallas,
    MidSwitch(usize),
    AtlantaDown,
    StaleReturn,
    BothOnline,
    MirrorFailover,
}

#[derive(Clone, Debug)]
enum Op {
    Plan(u8),
    Write(u64),
    Connect,
    LsJobs,
    Down(usize),
    Up(usize),
    ShareDown(usize),
    ShareUp(usize),
    SiteDown(usize),
    SiteUp(usize),
    Flip,
    Tick(i64),
}

fn start_strategy() -> impl Strategy<Value = Start> {
    prop_oneof![
        Just(Start::Installer),
        Just(Start::SteadyAtlanta),
        Just(Start::SteadyDallas),
        (0usize..20).prop_map(Start::MidSwitch),
        Just(Start::AtlantaDown),
        Just(Start::StaleReturn),
        Just(Start::BothOnline),
        Just(Start::MirrorFailover),
    ]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..8).prop_map(Op::Plan),
        2 => (1u64..40).prop_map(Op::Write),
        1 => Just(Op::Connect),
        2 => Just(Op::LsJobs),
        1 => (0usize..4).prop_map(Op::Down),
        1 => (0usize..4).prop_map(Op::Up),
        1 => (0usize..2).prop_map(Op::ShareDown),
        1 => (0usize..2).prop_map(Op::ShareUp),
        1 => (0usize..2).prop_map(Op::SiteDown),
        1 => (0usize..2).prop_map(Op::SiteUp),
        1 => Just(Op::Flip),
        2 => (1i64..120).prop_map(Op::Tick),
    ]
}

fn world(start: &Start, allow_data_loss: bool) -> World {
    let mut w = World {
        spec: base_spec(allow_data_loss),
        truth: fixture("observed-installer.yaml"),
        now: "2026-11-26T12:00:00Z".parse().unwrap(),
        next_session: 100,
        acked: Default::default(),
        log: vec![],
    };
    let steady = |w: &mut World| {
        w.truth = fixture("observed-steady-atlanta.yaml");
    };
    match start {
        Start::Installer => {}
        Start::SteadyAtlanta => steady(&mut w),
        Start::SteadyDallas => {
            steady(&mut w);
            w.spec.primary_site = "dallas".to_string();
            let (_, end) = w.converge(100);
            assert_eq!(end, Decision::Converged, "{:#?}", w.log);
        }
        Start::MidSwitch(k) => {
            steady(&mut w);
            w.spec.primary_site = "dallas".to_string();
            for _ in 0..*k {
                if !matches!(w.plan_step(0), Decision::Step(_)) {
                    w.tick(61);
                }
            }
        }
        Start::AtlantaDown => {
            w.truth = fixture("observed-atlanta-down.yaml");
            w.spec.primary_site = "dallas".to_string();
            // The truth behind the unreachable instances: atlanta as it went down.
            let steady_truth = fixture("observed-steady-atlanta.yaml");
            for name in ["atl-sql1", "atl-sql2"] {
                let full = steady_truth.instance(name).unwrap().clone();
                let i = w
                    .truth
                    .instances
                    .iter_mut()
                    .find(|i| i.name == name)
                    .unwrap();
                i.databases = full.databases;
            }
            let atl_share = LocationKind::Share {
                site: "atlanta".to_string(),
            };
            let files = steady_truth
                .backup_locations
                .iter()
                .find(|l| l.kind == atl_share)
                .unwrap()
                .files
                .clone();
            let l = w
                .truth
                .backup_locations
                .iter_mut()
                .find(|l| l.kind == atl_share)
                .unwrap();
            l.files = files;
        }
        Start::StaleReturn => {
            w.truth = fixture("observed-atlanta-returns.yaml");
            w.now = w.truth.taken_at;
            w.spec.primary_site = "dallas".to_string();
        }
        Start::BothOnline => {
            w.truth = fixture("observed-both-online.yaml");
        }
        Start::MirrorFailover => {
            w.truth = fixture("observed-mirror-failover-atlanta.yaml");
        }
    }
    w.log.push(format!("--- start {start:?} done"));
    w
}

fn apply_op(w: &mut World, op: &Op) {
    match op {
        Op::Plan(crash) => {
            w.plan_step(*crash);
        }
        Op::Write(n) => w.write(*n),
        Op::Connect => w.connect(),
        Op::LsJobs => w.ls_jobs(),
        Op::Down(i) => w.set_reachable(*i, false),
        Op::Up(i) => w.set_reachable(*i, true),
        Op::ShareDown(s) => w.set_share(SITES[*s], false),
        Op::ShareUp(s) => w.set_share(SITES[*s], true),
        Op::SiteDown(s) => {
            for i in [2 * s, 2 * s + 1] {
                w.set_reachable(i, false);
            }
        }
        Op::SiteUp(s) => {
            for i in [2 * s, 2 * s + 1] {
                w.set_reachable(i, true);
            }
        }
        Op::Flip => {
            let other = if w.spec.primary_site == "atlanta" {
                "dallas"
            } else {
                "atlanta"
            };
            w.log.push(format!("--- primarySite: {other}"));
            w.spec.primary_site = other.to_string();
        }
        Op::Tick(s) => w.tick(*s),
    }
    if !matches!(op, Op::Plan(_)) {
        w.log.push(format!("{op:?}"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// With a policy that accepts data loss (so nothing needs a person), every run converges
    /// within the bound once everything is reachable, and no step breaks a safety invariant.
    #[test]
    fn planner_converges_within_bound_once_everything_is_reachable(
        start in start_strategy(),
        ops in prop::collection::vec(op_strategy(), 0..100),
    ) {
        let mut w = world(&start, true);
        for op in &ops {
            apply_op(&mut w, op);
        }
        w.heal();
        w.log.push("--- healed".to_string());
        let (steps, end) = w.converge(plan::CONVERGENCE_BOUND);
        prop_assert_eq!(&end, &Decision::Converged, "after {} steps; log: {:#?}", steps, w.log);
        prop_assert!(steps <= plan::CONVERGENCE_BOUND);
        let v = invariants::converged_violations(&w.spec, &w.view());
        prop_assert!(v.is_empty(), "{:?}", v);
    }

    /// Under the default, strict policy the planner may stop (Blocked, asking a person), but
    /// it never takes a step that breaks a safety invariant, and when it says Converged the
    /// desired state holds.
    #[test]
    fn planner_never_breaks_safety_under_a_strict_policy(
        start in start_strategy(),
        ops in prop::collection::vec(op_strategy(), 0..100),
    ) {
        let mut w = world(&start, false);
        for op in &ops {
            apply_op(&mut w, op);
        }
        w.heal();
        let (_, end) = w.converge(plan::PROJECTION_LIMIT);
        prop_assert!(!matches!(end, Decision::Step(_)), "no end; log: {:#?}", w.log);
        if end == Decision::Converged {
            let v = invariants::converged_violations(&w.spec, &w.view());
            prop_assert!(v.is_empty(), "{:?}", v);
        }
    }
}

/// Run `ops` from `start` (policy accepting data loss), heal, and assert convergence: the
/// cases the property found, kept as they were found.
fn converges_after(start: Start, ops: &[Op]) {
    let mut w = world(&start, true);
    for op in ops {
        apply_op(&mut w, op);
    }
    w.heal();
    w.log.push("--- healed".to_string());
    let (steps, end) = w.converge(plan::CONVERGENCE_BOUND);
    if std::env::var_os("PCHAT_DUMP_WORLD").is_some() {
        for i in &w.truth.instances {
            for d in i.databases.iter().filter(|d| d.name == "mgc") {
                eprintln!(
                    "{} {:?} read_only={} {:?} last_log_backup={:?}",
                    i.name, d.state, d.read_only, d.lsn, d.last_log_backup
                );
            }
        }
        for l in &w.truth.backup_locations {
            for f in &l.files {
                eprintln!("{:?} {f:?}", l.kind);
            }
        }
    }
    assert_eq!(
        end,
        Decision::Converged,
        "after {steps} steps; log: {:#?}",
        w.log
    );
    let v = invariants::converged_violations(&w.spec, &w.view());
    assert!(v.is_empty(), "{v:?}");
}

/// A switch reversed twice, the second time right after the old primary's tail-log backup,
/// with both copies of the new primary site RESTORING at that tail.
#[test]
fn a_switch_reversed_right_after_the_old_primarys_tail_log_backup_converges() {
    use Op::{Flip, Plan, Write};
    converges_after(
        Start::SteadyDallas,
        &[
            Flip,
            Plan(0),
            Flip,
            Flip,
            Plan(0),
            Flip,
            Flip,
            Plan(0),
            Plan(0),
            Plan(0),
            Plan(0),
            Plan(0),
            Write(1),
            Plan(0),
            Plan(0),
            Flip,
            Plan(0),
            Plan(0),
            Plan(0),
            Flip,
        ],
    );
}

/// After a split brain settled on atlanta, a switch to dallas and straight back: the switch
/// to dallas must not recover dallas's mirror copy of the split-brain history (it lacks
/// atlanta's writes), and the switch back rolls atlanta's tail forward.
#[test]
fn a_switch_back_before_the_new_primary_took_a_log_backup_converges() {
    use Op::{Flip, Plan, Tick};
    converges_after(
        Start::StaleReturn,
        &[
            Flip,
            Plan(0),
            Plan(0),
            Plan(0),
            Plan(0),
            Flip,
            Plan(0),
            Tick(60),
            Plan(0),
            Plan(0),
            Plan(0),
            Plan(0),
            Plan(0),
            Flip,
        ],
    );
}

/// Both sites ONLINE at first sight, switched to dallas with atlanta down, then back and
/// forth once atlanta returns.
#[test]
fn a_split_brain_switched_back_and_forth_while_a_site_returns_converges() {
    use Op::{Down, Flip, Plan, SiteUp};
    converges_after(
        Start::BothOnline,
        &[
            Flip,
            Down(0),
            Plan(0),
            Plan(0),
            Plan(0),
            Plan(0),
            Flip,
            SiteUp(0),
            Plan(0),
            Flip,
        ],
    );
}
