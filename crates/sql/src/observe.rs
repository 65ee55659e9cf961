//! Observing the pool: every instance concurrently, each in one batch, plus the backup shares
//! and copy folders with what RESTORE HEADERONLY says of each backup file.
//!
//! Round trips per pass: one per instance (its batch also lists its copy folder and, for one
//! instance per site, the site's share), plus one per instance that has backup files not seen
//! before (their headers, one batch), plus one when a share's usual lister did not answer and
//! another instance lists it. A converged pool whose log-shipping jobs wrote nothing new since
//! the last pass therefore costs one round trip per reachable instance.

mod batch;
mod parse;
mod tables;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::future::join_all;
use jiff::Timestamp;
use tracing::Instrument;

use super::SqlError;
use super::connect::{ConnectSettings, Connections, SqlClient, Target, connect};
use super::target::target;
use batch::FolderLister;
use parse::{InstanceData, Listed};
use pchat_core::api::{Databases, PersistentChatPoolSpec};
use pchat_core::observe::{
    BackupFile, BackupLocation, InstanceObservation, LocationKind, Observation, Published,
    Reachability,
};
pub use tables::{Answer, Cell, ServerError, Table, run as run_query};

/// The longest an observation batch may take, whatever the spec's command timeout (which is
/// sized for restores): an instance that does not answer within it is unreachable this pass.
const OBSERVE_TIMEOUT_CAP: Duration = Duration::from_secs(60);

/// Files per RESTORE HEADERONLY batch (two parameters each, far below SQL Server's 2100).
const HEADERS_PER_BATCH: usize = 100;

/// What the last pass sent, by phase (each batch resent on a fresh connection counts again).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PassStats {
    /// The per-instance observation batches.
    pub instance_batches: u64,
    /// Share listings through an instance other than the usual lister.
    pub share_batches: u64,
    /// RESTORE HEADERONLY batches for files not seen before.
    pub header_batches: u64,
    /// Headers read in those batches.
    pub headers_read: u64,
}

impl PassStats {
    /// Every round trip of the pass.
    pub fn round_trips(&self) -> u64 {
        self.instance_batches + self.share_batches + self.header_batches
    }
}

/// Observes the pool pass after pass, keeping what outlives a pass: the connections, the
/// headers of backup files already read, and since when each instance has been unreachable.
#[derive(Default)]
pub struct Observer {
    connections: Connections,
    /// RESTORE HEADERONLY results by file (path, write time and size, and for a local folder
    /// the instance): a backup file does not change unless rewritten, which changes the key.
    headers: HashMap<String, BackupFile>,
    unreachable_since: HashMap<String, Timestamp>,
    /// How each instance lists folders, learned from the version it reported (an instance
    /// not seen yet is asked the 2017 way; a 2016 one is asked again at once its own way).
    listers: HashMap<String, FolderLister>,
    /// Each server's offset from UTC in minutes as it last answered, by lower-case
    /// `@@SERVERNAME`: the headers of its backups are converted with it even while it is down
    /// (another site's reader has another offset).
    offsets: HashMap<String, i64>,
    round_trips: u64,
    last_pass: PassStats,
}

/// One instance's connection, taken out of the map for the duration of a concurrent phase.
struct Session {
    target: Target,
    client: Option<SqlClient>,
    round_trips: u64,
}

/// One instance's observation batch, with what it needs owned, to run as a task of its own.
struct InstanceJob {
    session: Session,
    settings: ConnectSettings,
    databases: Databases,
    copy_folder: String,
    /// The site's backup share, when this instance lists it.
    share: Option<String>,
    /// How this instance lists folders, as far as the observer knows its version.
    lister: FolderLister,
}

impl InstanceJob {
    /// Run the batch; once more with the other folder lister when the answer shows the server's
    /// version wants it. The session comes back with the data and the lister that fits.
    async fn run(mut self) -> (Session, Result<InstanceData, String>, FolderLister) {
        let dbs: Vec<&str> = self.databases.names().collect();
        let instance = self.session.target.instance.clone();
        let mut used = self.lister;
        loop {
            let (sql, params) = batch::instance_batch(
                &self.databases.chat,
                self.databases.compliance.as_deref(),
                &self.copy_folder,
                self.share.as_deref(),
                used,
            );
            let answer = self
                .session
                .run(&self.settings, &sql, &params, "the observation batch")
                .await;
            // The version says which lister fits; an older server that compiles the whole
            // batch before running any of it answers only "invalid object" (208) for the
            // function it lacks.
            let invalid_object = matches!(&answer, Ok(a) if a.error.as_ref()
                .is_some_and(|e| e.number == 208));
            let data = answer
                .map_err(|e| e.to_string())
                .and_then(|a| parse::instance(&a, &instance, &dbs, self.share.is_some()));
            let fits = match &data {
                Ok(d) => d.server.folder_lister().unwrap_or(used),
                Err(_) if invalid_object => FolderLister::Xp,
                Err(_) => used,
            };
            if fits == used || used != self.lister {
                return (self.session, data, used);
            }
            used = fits;
        }
    }
}

impl Session {
    /// Run one batch. A kept connection that turns out broken is discarded and the batch sent
    /// once more on a fresh one; a fresh connection that fails is the answer.
    async fn run(
        &mut self,
        settings: &ConnectSettings,
        sql: &str,
        params: &[String],
        what: &str,
    ) -> Result<Answer, SqlError> {
        let limit = settings
            .command_timeout
            .map_or(OBSERVE_TIMEOUT_CAP, |t| t.min(OBSERVE_TIMEOUT_CAP));
        loop {
            let fresh = self.client.is_none();
            let client = match self.client.as_mut() {
                Some(c) => c,
                None => self.client.insert(connect(&self.target, settings).await?),
            };
            let mut query = tiberius::Query::new(sql);
            for p in params {
                query.bind(p.as_str());
            }
            self.round_trips += 1;
            let err = match tokio::time::timeout(limit, tables::run(client, query)).await {
                Ok(Ok(answer)) => return Ok(answer),
                Ok(Err(e)) => SqlError::from_tiberius(&self.target.instance, what, e),
                Err(_) => SqlError::Timeout {
                    instance: self.target.instance.clone(),
                    statement: what.to_string(),
                    seconds: limit.as_secs(),
                },
            };
            self.client = None;
            if fresh {
                return Err(err);
            }
            tracing::info!(instance = %self.target.instance, error = %err, "kept connection broken; reconnecting once");
        }
    }
}

/// A share listing and the instance that read it (RESTORE HEADERONLY runs there).
struct ShareListing {
    reader: Option<String>,
    files: Result<Vec<Listed>, String>,
}

impl Observer {
    pub fn new() -> Self {
        Observer::default()
    }

    /// Batches sent so far (observation and headers), for the engine's figures.
    pub fn round_trips(&self) -> u64 {
        self.round_trips
    }

    /// What the last pass sent.
    pub fn last_pass(&self) -> PassStats {
        self.last_pass
    }

    /// The kept connections, shared with [`super::execute::run_step`] so each instance has
    /// one connection.
    pub fn connections(&mut self) -> &mut Connections {
        &mut self.connections
    }

    fn session(&mut self, spec: &PersistentChatPoolSpec, instance: &str) -> Option<Session> {
        Some(Session {
            target: target(spec, instance)?,
            client: self.connections.take(instance),
            round_trips: 0,
        })
    }

    /// How `instance` lists folders, as far as this observer knows its version.
    fn lister(&self, instance: &str) -> FolderLister {
        self.listers
            .get(instance)
            .copied()
            .unwrap_or(FolderLister::EnumerateFilesystem)
    }

    fn give_back(&mut self, s: Session) {
        self.round_trips += s.round_trips;
        if let Some(c) = s.client {
            self.connections.put(&s.target.instance, c);
        }
    }

    /// Observe every instance the spec names, concurrently, each in one batch; then the
    /// shares and copy folders. Never fails: what cannot be observed is reported as such.
    ///
    /// An instance is Unreachable when it cannot be connected to or logged in to, when its
    /// batch does not answer within the command timeout (at most a minute), and also when it
    /// answers but its catalog result sets are incomplete: a partial observation must not pass
    /// for the truth (a missing database would look absent). `since` is the first failure this
    /// observer saw in the current outage. A share or copy folder that cannot be listed leaves
    /// the instance reachable and the location `readable: false` with the error.
    pub async fn observe(
        &mut self,
        spec: &PersistentChatPoolSpec,
        settings: &ConnectSettings,
        published: Option<Published>,
        now: Timestamp,
    ) -> Observation {
        // One instance per site lists the site's share: the first one not known to be down.
        let listers: HashMap<&str, &str> = spec
            .sites
            .iter()
            .filter_map(|s| {
                let first = s
                    .instances
                    .iter()
                    .find(|i| !self.unreachable_since.contains_key(&i.name))
                    .or(s.instances.first())?;
                Some((s.name.as_str(), first.name.as_str()))
            })
            .collect();

        // Each instance's batch is a task of its own, so that the batches of a pass are
        // encoded, sent and decoded on every thread of the runtime at once (dropping the set
        // aborts them).
        let mut jobs = tokio::task::JoinSet::new();
        for (site, inst) in spec.instances() {
            let Some(session) = self.session(spec, &inst.name) else {
                continue;
            };
            let job = InstanceJob {
                session,
                settings: settings.clone(),
                databases: spec.databases.clone(),
                copy_folder: site.copy_destination.clone(),
                share: (listers.get(site.name.as_str()) == Some(&inst.name.as_str()))
                    .then(|| site.backup_share.clone()),
                lister: self.lister(&inst.name),
            };
            // The pass's span (the pool's name) goes with the task, for what it logs.
            jobs.spawn(job.run().instrument(tracing::Span::current()));
        }
        let start = self.round_trips;
        let mut data: HashMap<String, Result<InstanceData, String>> = HashMap::new();
        while let Some(joined) = jobs.join_next().await {
            let (session, d, lister) =
                joined.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
            let name = session.target.instance.clone();
            self.give_back(session);
            self.listers.insert(name.clone(), lister);
            data.insert(name, d);
        }
        let mut stats = PassStats {
            instance_batches: self.round_trips - start,
            ..PassStats::default()
        };

        let reachable: Vec<&str> = spec
            .instances()
            .map(|(_, i)| i.name.as_str())
            .filter(|n| data.get(*n).is_some_and(|d| d.is_ok()))
            .collect();
        let before = self.round_trips;
        let shares = self
            .list_shares(spec, settings, &listers, &data, &reachable)
            .await;
        stats.share_batches = self.round_trips - before;
        let before = self.round_trips;
        let (files, headers_read) = self.read_headers(spec, settings, &data, &shares).await;
        stats.header_batches = self.round_trips - before;
        stats.headers_read = headers_read;
        self.last_pass = stats;
        // Instances no longer in the spec are forgotten.
        self.unreachable_since
            .retain(|n, _| spec.instances().any(|(_, i)| &i.name == n));

        let copy_errors: HashMap<String, String> = data
            .iter()
            .filter_map(|(n, d)| Some((n.clone(), d.as_ref().ok()?.copy_folder.clone().err()?)))
            .collect();
        let mut instances = Vec::new();
        for (_, inst) in spec.instances() {
            let name = inst.name.clone();
            match data.remove(&name) {
                Some(Ok(d)) => {
                    self.unreachable_since.remove(&name);
                    instances.push(InstanceObservation {
                        name,
                        reachability: Reachability::Reachable,
                        server_name: Some(d.server.server_name.clone()).filter(|s| !s.is_empty()),
                        databases: d.databases,
                        sessions: d.sessions,
                        default_paths: d.server.default_paths.clone(),
                        running_operations: d.running_operations,
                    });
                }
                other => {
                    let reason = match other {
                        Some(Err(r)) => r,
                        _ => format!("{name} has no connection target in the spec"),
                    };
                    let since = *self.unreachable_since.entry(name.clone()).or_insert(now);
                    instances.push(InstanceObservation {
                        name,
                        reachability: Reachability::Unreachable { reason, since },
                        server_name: None,
                        databases: Vec::new(),
                        sessions: Vec::new(),
                        default_paths: None,
                        running_operations: Vec::new(),
                    });
                }
            }
        }

        let backup_locations = locations(spec, &shares, &files, &instances, &copy_errors);

        Observation {
            taken_at: now,
            instances,
            backup_locations,
            published,
        }
    }

    /// Each site's share listing: from its usual lister's batch, or, when that instance did
    /// not answer, through another reachable instance (its own site's first).
    async fn list_shares(
        &mut self,
        spec: &PersistentChatPoolSpec,
        settings: &ConnectSettings,
        listers: &HashMap<&str, &str>,
        data: &HashMap<String, Result<InstanceData, String>>,
        reachable: &[&str],
    ) -> HashMap<String, ShareListing> {
        let mut out = HashMap::new();
        let mut jobs = Vec::new();
        for site in &spec.sites {
            let lister = listers.get(site.name.as_str()).copied();
            if let Some(Ok(d)) = lister.and_then(|l| data.get(l))
                && let Some(files) = &d.share
            {
                out.insert(
                    site.name.clone(),
                    ShareListing {
                        reader: files
                            .is_ok()
                            .then(|| lister.unwrap_or_default().to_string()),
                        files: files.clone(),
                    },
                );
                continue;
            }
            let other = reachable
                .iter()
                .find(|n| site.instances.iter().any(|i| i.name == **n))
                .or(reachable.first());
            let Some(mut session) = other.and_then(|n| self.session(spec, n)) else {
                out.insert(
                    site.name.clone(),
                    ShareListing {
                        reader: None,
                        files: Err("no reachable instance to list it through".to_string()),
                    },
                );
                continue;
            };
            let (sql, params) =
                batch::share_batch(&site.backup_share, self.lister(&session.target.instance));
            let site_name = site.name.clone();
            jobs.push(async move {
                let files = match session
                    .run(settings, &sql, &params, "the share listing")
                    .await
                {
                    Ok(a) => parse::listing(&a, batch::Section::Share, "the backup share"),
                    Err(e) => Err(format!("the backup share cannot be listed: {e}")),
                };
                (session, site_name, files)
            });
        }
        for (session, site, files) in join_all(jobs).await {
            let reader = files.is_ok().then(|| session.target.instance.clone());
            self.give_back(session);
            out.insert(site, ShareListing { reader, files });
        }
        out
    }

    /// The backup files of every readable location, headers from the cache or, for files not
    /// seen before, from one RESTORE HEADERONLY batch per instance that reads them.
    async fn read_headers(
        &mut self,
        spec: &PersistentChatPoolSpec,
        settings: &ConnectSettings,
        data: &HashMap<String, Result<InstanceData, String>>,
        shares: &HashMap<String, ShareListing>,
    ) -> (Vec<(LocationKind, Vec<BackupFile>)>, u64) {
        // (location, reader instance, folder, listing)
        let mut locations: Vec<(LocationKind, String, String, &[Listed])> = Vec::new();
        for site in &spec.sites {
            if let Some(ShareListing {
                reader: Some(reader),
                files: Ok(files),
            }) = shares.get(&site.name)
            {
                locations.push((
                    LocationKind::Share {
                        site: site.name.clone(),
                    },
                    reader.clone(),
                    site.backup_share.clone(),
                    files,
                ));
            }
        }
        for (site, inst) in spec.instances() {
            if let Some(Ok(d)) = data.get(&inst.name)
                && let Ok(files) = &d.copy_folder
            {
                locations.push((
                    LocationKind::CopyFolder {
                        instance: inst.name.clone(),
                    },
                    inst.name.clone(),
                    site.copy_destination.clone(),
                    files,
                ));
            }
        }

        // Cache key of each listed backup file, and the files whose header is not cached.
        let key_of = |kind: &LocationKind, reader: &str, path: &str, version: &str| match kind {
            LocationKind::Share { .. } => format!("{path}|{version}"),
            LocationKind::CopyFolder { .. } => format!("{reader}|{path}|{version}"),
        };
        let mut wanted: HashMap<String, Vec<(String, String)>> = HashMap::new();
        let mut seen = HashSet::new();
        for (kind, reader, folder, files) in &locations {
            for f in files.iter().filter(|f| is_backup_file(&f.name)) {
                let path = join(folder, &f.name);
                let key = key_of(kind, reader, &path, &f.version);
                if !self.headers.contains_key(&key) && seen.insert(key.clone()) {
                    wanted.entry(reader.clone()).or_default().push((path, key));
                }
            }
        }

        for d in data.values().filter_map(|d| d.as_ref().ok()) {
            self.offsets.insert(
                d.server.server_name.to_ascii_lowercase(),
                d.server.utc_offset_minutes,
            );
        }
        let offsets = self.offsets.clone();
        let mut jobs = Vec::new();
        for (reader, files) in wanted {
            let Some(mut session) = self.session(spec, &reader) else {
                continue;
            };
            let own_offset = data
                .get(&reader)
                .and_then(|d| d.as_ref().ok())
                .map_or(0, |d| d.server.utc_offset_minutes);
            let offsets = &offsets;
            jobs.push(async move {
                let mut found = Vec::new();
                for chunk in files.chunks(HEADERS_PER_BATCH) {
                    let paths: Vec<String> = chunk.iter().map(|(p, _)| p.clone()).collect();
                    let (sql, params) = batch::headers_batch(&paths);
                    let Ok(answer) = session
                        .run(settings, &sql, &params, "RESTORE HEADERONLY")
                        .await
                    else {
                        break;
                    };
                    let known = |server: &str| offsets.get(server).copied();
                    let offset_of = parse::HeaderOffsets {
                        known: &known,
                        reader: own_offset,
                    };
                    for h in parse::headers(&answer, &offset_of) {
                        if let Some((_, key)) = chunk.iter().find(|(p, _)| *p == h.path) {
                            found.push((key.clone(), h));
                        }
                    }
                }
                (session, found)
            });
        }
        let mut read = 0;
        for (session, found) in join_all(jobs).await {
            self.give_back(session);
            read += found.len() as u64;
            self.headers.extend(found);
        }

        let mut out = Vec::new();
        let mut live = HashSet::new();
        for (kind, reader, folder, files) in &locations {
            let mut list = Vec::new();
            for f in files.iter().filter(|f| is_backup_file(&f.name)) {
                let path = join(folder, &f.name);
                let key = key_of(kind, reader, &path, &f.version);
                if let Some(h) = self.headers.get(&key) {
                    list.push(h.clone());
                }
                live.insert(key);
            }
            list.sort_by(|a, b| a.path.cmp(&b.path));
            out.push((kind.clone(), list));
        }
        // Forget files no longer listed, so the cache does not grow without end.
        self.headers.retain(|k, _| live.contains(k));
        (out, read)
    }
}

/// The shares and copy folders as observed: listed with their files, or unreadable and why.
fn locations(
    spec: &PersistentChatPoolSpec,
    shares: &HashMap<String, ShareListing>,
    files: &[(LocationKind, Vec<BackupFile>)],
    instances: &[InstanceObservation],
    copy_errors: &HashMap<String, String>,
) -> Vec<BackupLocation> {
    let mut backup_locations = Vec::new();
    for site in &spec.sites {
        let listing = shares.get(site.name.as_str());
        let (readable, reason) = match listing.map(|l| &l.files) {
            Some(Ok(_)) => (true, None),
            Some(Err(r)) => (false, Some(r.clone())),
            None => (false, Some("no instance could list it".to_string())),
        };
        backup_locations.push(BackupLocation {
            kind: LocationKind::Share {
                site: site.name.clone(),
            },
            path: site.backup_share.clone(),
            readable,
            reason,
            files: files_of(
                files,
                &LocationKind::Share {
                    site: site.name.clone(),
                },
            )
            .cloned()
            .unwrap_or_default(),
        });
    }
    for (site, inst) in spec.instances() {
        let kind = LocationKind::CopyFolder {
            instance: inst.name.clone(),
        };
        let listed = files_of(files, &kind);
        let (readable, reason) = match (listed, instances.iter().find(|i| i.name == inst.name)) {
            (Some(_), _) => (true, None),
            (None, Some(i)) if !i.is_reachable() => {
                (false, Some(format!("{} is unreachable", inst.name)))
            }
            _ => (
                false,
                Some(
                    copy_errors
                        .get(&inst.name)
                        .cloned()
                        .unwrap_or_else(|| "the copy folder cannot be listed".to_string()),
                ),
            ),
        };
        backup_locations.push(BackupLocation {
            kind,
            path: site.copy_destination.clone(),
            readable,
            reason,
            files: listed.cloned().unwrap_or_default(),
        });
    }
    backup_locations
}

/// The files read from one location, when it was read.
fn files_of<'a>(
    files: &'a [(LocationKind, Vec<BackupFile>)],
    kind: &LocationKind,
) -> Option<&'a Vec<BackupFile>> {
    files.iter().find(|(k, _)| k == kind).map(|(_, f)| f)
}

/// Backup files by the names the operator and log shipping give them.
fn is_backup_file(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".trn") || lower.ends_with(".bak")
}

/// A Windows folder and a file name, one backslash between them (whether the folder ends with
/// one or not).
pub(crate) fn join(folder: &str, name: &str) -> String {
    format!("{}\\{}", folder.trim_end_matches(['\\', '/']), name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_backup_files_are_read() {
        assert!(is_backup_file("mgc_20261126120000.trn"));
        assert!(is_backup_file("MGC_FULL.BAK"));
        assert!(!is_backup_file("notes.txt"));
    }

    #[test]
    fn folder_and_name_join_with_one_backslash() {
        assert_eq!(join(r"\\fs\ls\", "a.trn"), r"\\fs\ls\a.trn");
        assert_eq!(join(r"D:\copy", "a.trn"), r"D:\copy\a.trn");
    }
}
