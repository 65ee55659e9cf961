//! A chat workload: simulated Persistent Chat servers that connect to the serving chat
//! database the way real ones do (host name = the server's FQDN, program name "Persistent
//! Chat Server"), follow the published active-server list and pool state, write messages, and
//! record every acknowledged message id, so "nothing lost" is a measured fact.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tiberius::{AuthMethod, Client, Config, EncryptionLevel, Query};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};
use tokio_util::sync::CancellationToken;

/// The program name a Persistent Chat server sends at login.
pub const PROGRAM_NAME: &str = "Persistent Chat Server";

/// The statement each chat server writes, as a parameterized query (`sp_executesql`).
pub const INSERT_MESSAGE: &str =
    "INSERT INTO dbo.Messages (MessageId, ChatServer, Body, PostedAt) VALUES (@P1, @P2, @P3, @P4)";

/// Which site serves the pool, as the topology publishes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PoolState {
    /// The home site's instances serve the chat databases.
    Normal,
    /// The other (DR) site's instances serve them.
    FailedOver,
}

/// The currently published pool configuration (what `Set-CsPersistentChatState` and the
/// active-server list amount to).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Published {
    /// FQDNs of the chat servers that may serve.
    pub active_servers: Vec<String>,
    pub pool_state: PoolState,
}

impl Published {
    fn is_active(&self, fqdn: &str) -> bool {
        self.active_servers
            .iter()
            .any(|s| s.eq_ignore_ascii_case(fqdn))
    }
}

/// Where a chat server reads the published state from.
pub trait PublishedSource: Send + Sync {
    fn current(&self) -> Result<Published, String>;
}

/// The published state in a JSON (`.json`) or YAML file, re-read on every look.
#[derive(Debug)]
pub struct FileSource {
    path: PathBuf,
    /// The text last read and what it parsed to. Every chat server looks at the file every
    /// write, and parsing YAML each time cost the demo a few percent of its two cores, which
    /// the engine's passes then waited for.
    last: Mutex<Option<(String, Published)>>,
}

impl FileSource {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileSource {
            path: path.into(),
            last: Mutex::new(None),
        }
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    fn parse(&self, text: &str) -> Result<Published, String> {
        let is_json = self
            .path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        if is_json {
            serde_json::from_str(text).map_err(|e| format!("{}: {e}", self.path.display()))
        } else {
            serde_saphyr::from_str(text).map_err(|e| format!("{}: {e}", self.path.display()))
        }
    }
}

impl PublishedSource for FileSource {
    fn current(&self) -> Result<Published, String> {
        let text = std::fs::read_to_string(&self.path)
            .map_err(|e| format!("reading {}: {e}", self.path.display()))?;
        let mut last = self.last.lock().expect("published-state cache poisoned");
        if let Some((seen, published)) = last.as_ref()
            && *seen == text
        {
            return Ok(published.clone());
        }
        let published = self.parse(&text)?;
        *last = Some((text, published.clone()));
        Ok(published)
    }
}

impl PublishedSource for tokio::sync::watch::Receiver<Published> {
    fn current(&self) -> Result<Published, String> {
        Ok(self.borrow().clone())
    }
}

/// A simulated chat server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatServer {
    /// The server's FQDN, sent as the LOGIN7 host name as Persistent Chat does.
    pub fqdn: String,
}

/// One acknowledged message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ack {
    pub id: i64,
    pub server: String,
    pub at: jiff::Timestamp,
}

/// How the workload runs.
#[derive(Clone)]
pub struct WorkloadConfig {
    pub servers: Vec<ChatServer>,
    /// The home site's instances, in failover-partner order.
    pub home_site: Vec<SocketAddr>,
    /// The other site's instances, in order.
    pub other_site: Vec<SocketAddr>,
    /// The chat database (`mgc`).
    pub database: String,
    pub user: String,
    pub password: String,
    /// Messages per second per chat server.
    pub rate_per_server: f64,
    /// Wait after an error before reconnecting.
    pub backoff: Duration,
    /// How often a server that is not published (drained, or on the standby site) looks at
    /// the published list again; `None`: at its write interval. A server published again
    /// writes no sooner than it looks, so this bounds how long a switch's outage outlasts
    /// the publication.
    pub published_poll: Option<Duration>,
    /// Bound on one connect or one write.
    pub request_timeout: Duration,
    /// The first message id; ids increase from it across all servers.
    pub first_id: i64,
    pub source: Arc<dyn PublishedSource>,
}

/// A running workload.
pub struct ChatWorkload {
    stop: CancellationToken,
    tasks: JoinSet<()>,
    acked: Arc<Mutex<Vec<Ack>>>,
}

impl ChatWorkload {
    /// Starts one task per chat server (call from inside a tokio runtime).
    pub fn start(config: WorkloadConfig) -> Self {
        let stop = CancellationToken::new();
        let acked = Arc::new(Mutex::new(Vec::new()));
        let next_id = Arc::new(AtomicI64::new(config.first_id));
        let config = Arc::new(config);
        let mut tasks = JoinSet::new();
        for (index, server) in config.servers.iter().enumerate() {
            tasks.spawn(run_server(
                server.clone(),
                Timetable::new(
                    config.rate_per_server,
                    index as u32,
                    tokio::time::Instant::now(),
                ),
                config.clone(),
                next_id.clone(),
                acked.clone(),
                stop.clone(),
            ));
        }
        Self { stop, tasks, acked }
    }

    /// The acknowledgements so far.
    pub fn acked(&self) -> Vec<Ack> {
        self.acked.lock().expect("ack log poisoned").clone()
    }

    /// Stops every chat server (closing its connection) and returns all acknowledgements.
    pub async fn stop(mut self) -> Vec<Ack> {
        self.stop.cancel();
        while self.tasks.join_next().await.is_some() {}
        self.acked()
    }
}

type Connection = Client<Compat<TcpStream>>;

/// A live connection and the pool state it was made for.
struct Live {
    client: Connection,
    state: PoolState,
}

/// When a chat server writes: every `interval`, at its own offset in it, so that the servers'
/// writes are spread over the interval instead of falling together, and a gap between two
/// writes of the workload (an outage) is measured to a fraction of the interval. The offsets
/// follow the van der Corput sequence (0, 1/2, 1/4, 3/4, 1/8, ...) by the server's place in
/// the list, so the servers of any aligned run of 2, 4, ... places (a site's pair, when the
/// list gives each site's servers together) are evenly spread on their own: only the servers
/// of the published site write at a time.
struct Timetable {
    interval: Duration,
    next: tokio::time::Instant,
}

impl Timetable {
    /// The timetable of the server at `index` in the list, starting `now`.
    fn new(rate_per_server: f64, index: u32, now: tokio::time::Instant) -> Self {
        let interval = Duration::from_secs_f64(1.0 / rate_per_server.max(0.001));
        let offset = f64::from(index.reverse_bits()) / 2f64.powi(32);
        Timetable {
            interval,
            next: now + interval.mul_f64(offset),
        }
    }

    /// The time of the next write after one made `now`: the next slot still ahead, so a server
    /// that could not write for a while (an outage) goes back to its place in the timetable
    /// instead of catching up in a burst.
    fn after_write(&mut self, now: tokio::time::Instant) -> tokio::time::Instant {
        while self.next <= now {
            self.next += self.interval;
        }
        self.next
    }
}

async fn run_server(
    server: ChatServer,
    mut timetable: Timetable,
    config: Arc<WorkloadConfig>,
    next_id: Arc<AtomicI64>,
    acked: Arc<Mutex<Vec<Ack>>>,
    stop: CancellationToken,
) {
    let interval = timetable.interval;
    tokio::select! {
        _ = stop.cancelled() => return,
        _ = tokio::time::sleep_until(timetable.next) => {}
    }
    let mut live: Option<Live> = None;
    while !stop.is_cancelled() {
        let published = match config.source.current() {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(server = %server.fqdn, error = %e, "cannot read published state");
                pause(&stop, config.backoff).await;
                continue;
            }
        };
        if !published.is_active(&server.fqdn) {
            // An inactive server holds no connection.
            live = None;
            pause(&stop, config.published_poll.unwrap_or(interval)).await;
            continue;
        }
        if live
            .as_ref()
            .is_some_and(|l| l.state != published.pool_state)
        {
            live = None;
        }
        if live.is_none() {
            match connect_serving(&server, &config, published.pool_state).await {
                Ok(client) => {
                    live = Some(Live {
                        client,
                        state: published.pool_state,
                    })
                }
                Err(e) => {
                    tracing::debug!(server = %server.fqdn, error = %e, "no serving instance");
                    pause(&stop, config.backoff).await;
                    continue;
                }
            }
        }
        let Some(l) = live.as_mut() else { continue };
        let id = next_id.fetch_add(1, Ordering::SeqCst);
        match write_message(&mut l.client, &server, id, config.request_timeout).await {
            Ok(()) => {
                let ack = Ack {
                    id,
                    server: server.fqdn.clone(),
                    at: jiff::Timestamp::now(),
                };
                acked.lock().expect("ack log poisoned").push(ack);
                let serving = l.state;
                let next = timetable.after_write(tokio::time::Instant::now());
                pause_until_unpublished(&stop, next, &config, &server, serving).await;
            }
            Err(e) => {
                tracing::debug!(server = %server.fqdn, id, error = %e, "write failed; reconnecting");
                live = None;
                pause(&stop, config.backoff).await;
            }
        }
    }
}

/// Wait until `deadline` before the next write, ending early when the server is no longer
/// published for `serving` (a drain, or a switch of the pool state): with `published_poll` set
/// the server looks at the list as soon as its write is acknowledged and then that often, so
/// it leaves within that time of a drain (or at once, when the drain came during the write),
/// as a server acting on a change notification would; without it, it waits until the
/// deadline.
async fn pause_until_unpublished(
    stop: &CancellationToken,
    deadline: tokio::time::Instant,
    config: &WorkloadConfig,
    server: &ChatServer,
    serving: PoolState,
) {
    let Some(poll) = config.published_poll else {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        return pause(stop, left).await;
    };
    loop {
        let still = config
            .source
            .current()
            .is_ok_and(|p| p.is_active(&server.fqdn) && p.pool_state == serving);
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if !still || left.is_zero() || stop.is_cancelled() {
            return;
        }
        pause(stop, poll.min(left)).await;
    }
}

async fn pause(stop: &CancellationToken, d: Duration) {
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = tokio::time::sleep(d) => {}
    }
}

/// Connects to the first instance of the serving site that accepts the login and the `USE`
/// of the chat database, as a client with a failover partner tries its partners in turn.
async fn connect_serving(
    server: &ChatServer,
    config: &WorkloadConfig,
    state: PoolState,
) -> Result<Connection, String> {
    let site = match state {
        PoolState::Normal => &config.home_site,
        PoolState::FailedOver => &config.other_site,
    };
    let mut errors = Vec::new();
    for addr in site {
        let attempt =
            tokio::time::timeout(config.request_timeout, connect_one(server, config, *addr));
        match attempt.await {
            Ok(Ok(client)) => return Ok(client),
            Ok(Err(e)) => errors.push(format!("{addr}: {e}")),
            Err(_) => errors.push(format!("{addr}: timed out")),
        }
    }
    Err(if errors.is_empty() {
        format!("the {state:?} site has no instances")
    } else {
        errors.join("; ")
    })
}

async fn connect_one(
    server: &ChatServer,
    config: &WorkloadConfig,
    addr: SocketAddr,
) -> Result<Connection, String> {
    let mut c = Config::new();
    c.host(addr.ip());
    c.port(addr.port());
    c.authentication(AuthMethod::sql_server(&config.user, &config.password));
    c.encryption(EncryptionLevel::NotSupported);
    c.application_name(PROGRAM_NAME);
    c.client_name(&server.fqdn);
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut client = Client::connect(c, tcp.compat_write())
        .await
        .map_err(|e| e.to_string())?;
    let use_db = format!("USE [{}]", config.database.replace(']', "]]"));
    client
        .simple_query(use_db)
        .await
        .map_err(|e| e.to_string())?
        .into_results()
        .await
        .map_err(|e| e.to_string())?;
    Ok(client)
}

async fn write_message(
    client: &mut Connection,
    server: &ChatServer,
    id: i64,
    timeout: Duration,
) -> Result<(), String> {
    let mut q = Query::new(INSERT_MESSAGE);
    q.bind(id);
    q.bind(server.fqdn.as_str());
    q.bind(format!("message {id} from {}", server.fqdn));
    q.bind(chrono::Utc::now().naive_utc());
    let result = tokio::time::timeout(timeout, q.execute(client))
        .await
        .map_err(|_| "write timed out".to_string())?
        .map_err(|e| e.to_string())?;
    match result.total() {
        1 => Ok(()),
        n => Err(format!("the insert reported {n} rows")),
    }
}

/// Acknowledged messages missing from each copy of the chat database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub acknowledged: usize,
    /// Copy name -> acknowledged ids it lacks, ascending.
    pub missing: BTreeMap<String, Vec<i64>>,
}

impl Report {
    /// Whether every copy holds every acknowledged message.
    pub fn nothing_lost(&self) -> bool {
        self.missing.values().all(Vec::is_empty)
    }
}

/// Checks every acknowledged message against each copy (`copy name -> ids it holds`).
pub fn verify(acked: &[Ack], copies: &BTreeMap<String, Vec<i64>>) -> Report {
    let acked_ids: BTreeSet<i64> = acked.iter().map(|a| a.id).collect();
    let missing = copies
        .iter()
        .map(|(name, ids)| {
            let held: BTreeSet<i64> = ids.iter().copied().collect();
            (name.clone(), acked_ids.difference(&held).copied().collect())
        })
        .collect();
    Report {
        acknowledged: acked_ids.len(),
        missing,
    }
}

/// The longest time between two consecutive acknowledged writes of the whole pool: the
/// outage chat users feel. `None` with fewer than two acknowledgements.
pub fn longest_gap(acked: &[Ack]) -> Option<jiff::SignedDuration> {
    longest_gap_between(acked).map(|(from, to)| to.duration_since(from))
}

/// The two consecutive acknowledgements with the longest time between them (the first of
/// them when several gaps are equally long), in time order.
pub fn longest_gap_between(acked: &[Ack]) -> Option<(jiff::Timestamp, jiff::Timestamp)> {
    let mut times: Vec<jiff::Timestamp> = acked.iter().map(|a| a.at).collect();
    times.sort();
    times
        .windows(2)
        .map(|w| (w[0], w[1]))
        .reduce(|widest, gap| {
            if gap.1.duration_since(gap.0) > widest.1.duration_since(widest.0) {
                gap
            } else {
                widest
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_servers_write_at_their_own_offsets_and_go_back_to_their_slots_after_an_outage() {
        let start = tokio::time::Instant::now();
        let ms = |n: u64| Duration::from_millis(n);
        let offset = |index: u32| Timetable::new(100.0, index, start).next - start;
        assert_eq!(offset(0), ms(0));
        assert_eq!(offset(1), ms(5), "half an interval after the first");
        assert_eq!(
            (offset(2), offset(3)),
            (Duration::from_micros(2500), Duration::from_micros(7500)),
            "the next pair half an interval apart too, between the first two"
        );
        let mut second = Timetable::new(100.0, 1, start);
        // A write acknowledged 1 ms after its slot: the next slot, not 10 ms after the ack.
        assert_eq!(second.after_write(start + ms(6)) - start, ms(15));
        // After an outage: the first slot still ahead, no burst of missed ones.
        assert_eq!(second.after_write(start + ms(107)) - start, ms(115));
        assert_eq!(second.after_write(start + ms(116)) - start, ms(125));
    }

    fn ack(id: i64, secs: i64) -> Ack {
        Ack {
            id,
            server: "pchat1.contoso.com".into(),
            at: jiff::Timestamp::from_second(1_764_000_000 + secs).unwrap(),
        }
    }

    #[test]
    fn verify_lists_acknowledged_ids_missing_from_each_copy() {
        let acked = vec![ack(1, 0), ack(2, 1), ack(3, 2)];
        let copies = BTreeMap::from([
            ("primary".to_string(), vec![1, 2, 3, 99]),
            ("mirror".to_string(), vec![1]),
        ]);
        let report = verify(&acked, &copies);
        assert_eq!(report.acknowledged, 3);
        assert_eq!(report.missing["primary"], Vec::<i64>::new());
        assert_eq!(report.missing["mirror"], vec![2, 3]);
        assert!(!report.nothing_lost());
    }

    #[test]
    fn longest_gap_is_the_widest_space_between_acknowledgements_in_time_order() {
        let acked = vec![ack(3, 10), ack(1, 0), ack(2, 1)];
        assert_eq!(
            longest_gap(&acked),
            Some(jiff::SignedDuration::from_secs(9))
        );
        assert_eq!(longest_gap(&acked[..1]), None);
        let at = |secs: i64| jiff::Timestamp::from_second(1_764_000_000 + secs).unwrap();
        assert_eq!(longest_gap_between(&acked), Some((at(1), at(10))));
    }

    #[test]
    fn published_state_parses_from_yaml_and_json() {
        let dir = std::env::temp_dir().join(format!("pchat-published-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let yaml = dir.join("published.yaml");
        std::fs::write(
            &yaml,
            "activeServers: [pchat1.contoso.com]\npoolState: FailedOver\n",
        )
        .unwrap();
        let json = dir.join("published.json");
        std::fs::write(&json, r#"{"activeServers": [], "poolState": "Normal"}"#).unwrap();
        let yaml_source = FileSource::new(&yaml);
        let from_yaml = yaml_source.current().unwrap();
        assert_eq!(from_yaml.pool_state, PoolState::FailedOver);
        assert!(from_yaml.is_active("PCHAT1.contoso.com"));
        // A change to the file is seen on the next look (the parsed text is remembered).
        std::fs::write(&yaml, "activeServers: []\npoolState: Normal\n").unwrap();
        let changed = yaml_source.current().unwrap();
        assert_eq!(changed.pool_state, PoolState::Normal);
        assert!(changed.active_servers.is_empty());
        std::fs::write(&yaml, "activeServers: [\n").unwrap();
        let broken = yaml_source.current().unwrap_err();
        assert!(broken.contains("published.yaml"), "{broken}");
        let from_json = FileSource::new(json).current().unwrap();
        assert_eq!(from_json.pool_state, PoolState::Normal);
        assert!(from_json.active_servers.is_empty());
        let missing = FileSource::new(dir.join("nope.yaml"))
            .current()
            .unwrap_err();
        assert!(missing.contains("nope.yaml"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
