//! The desired state a person declares. Field docs become the CRD's descriptions.

use kube::core::Duration;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::patterns::{
    DATABASE_NAME, DNS1123_LABEL, DNS1123_SUBDOMAIN, DURATION, FQDN, HOST, INSTANCE_NAME,
    MAX_CHAT_SERVERS, MAX_DNS_NAME_LEN, MAX_DURATION_LEN, MAX_ENDPOINT_LEN, MAX_INSTANCE_NAME_LEN,
    MAX_INSTANCES_IN_POOL, MAX_LABEL_LEN, MAX_PATH_LEN, MIRRORING_ENDPOINT, UNC_PATH,
    WINDOWS_FOLDER,
};
use super::status::PersistentChatPoolStatus;

/// A Skype for Business Persistent Chat pool's SQL Server back end, kept in the disaster-recovery
/// state this spec declares. Change `primarySite` to move the pool between its two sites.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "persistentchat.io",
    version = "v1alpha1",
    kind = "PersistentChatPool",
    plural = "persistentchatpools",
    shortname = "pcpool",
    namespaced,
    status = "PersistentChatPoolStatus",
    printcolumn = r#"{"name":"Primary","type":"string","jsonPath":".spec.primarySite","description":"The site the spec asks to serve from"}"#,
    printcolumn = r#"{"name":"Serving","type":"string","jsonPath":".status.servingSite","description":"The site whose chat database is serving"}"#,
    printcolumn = r#"{"name":"Pool State","type":"string","jsonPath":".status.poolState"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Step","type":"string","jsonPath":".status.step.name"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
// Cross-field rules. Names and hosts compare case-insensitively, as SQL Server and DNS do.
// Each message names the field a person must change.
//
// The API server evaluates every rule on every write of the object, status writes included
// (a switch writes its status several times), so the uniqueness rules are written for the
// schema's shape rather than as general all-pairs comprehensions: exactly two sites (compared
// with one `sets.intersects`, or one nested `exists` where a pair of fields must match) and at
// most two instances a site (the two compared by index). The all-pairs forms made a status
// write cost the API server a fifth more CPU. With another number of sites or instances the
// schema's own `minItems` and `maxItems` say what is wrong, and the rules add no message of
// their own.
#[x_kube(
    validation = Rule::new("self.sites.exists(s, s.name == self.primarySite)")
        .message("spec.primarySite must be the name of one of spec.sites")
        .field_path(".primarySite"),
    validation = Rule::new("self.sites.exists(s, s.name == self.homeSite)")
        .message("spec.homeSite must be the name of one of spec.sites")
        .field_path(".homeSite"),
    validation = Rule::new(
        "self.sites.size() != 2 || (\
         !sets.intersects(self.sites[0].instances.map(i, i.name.lowerAscii()), \
                          self.sites[1].instances.map(i, i.name.lowerAscii())) && \
         self.sites.all(s, s.instances.size() != 2 || \
           s.instances[0].name.lowerAscii() != s.instances[1].name.lowerAscii()))"
    )
    .message("spec.sites[*].instances[*].name must be unique across the pool (case-insensitive)")
    .field_path(".sites"),
    validation = Rule::new(
        "self.sites.size() != 2 || (\
         !self.sites[0].instances.exists(i, self.sites[1].instances.exists(j, \
           j.port == i.port && j.host.lowerAscii() == i.host.lowerAscii())) && \
         self.sites.all(s, s.instances.size() != 2 || \
           s.instances[0].port != s.instances[1].port || \
           s.instances[0].host.lowerAscii() != s.instances[1].host.lowerAscii()))"
    )
    .message("spec.sites[*].instances[*] host:port pairs must be unique across the pool (case-insensitive)")
    .field_path(".sites"),
    validation = Rule::new(
        "self.sites.size() != 2 || (\
         !sets.intersects(self.sites[0].instances.map(i, i.mirroringEndpoint.lowerAscii()), \
                          self.sites[1].instances.map(i, i.mirroringEndpoint.lowerAscii())) && \
         self.sites.all(s, s.instances.size() != 2 || \
           s.instances[0].mirroringEndpoint.lowerAscii() != s.instances[1].mirroringEndpoint.lowerAscii()))"
    )
    .message("spec.sites[*].instances[*].mirroringEndpoint must be unique across the pool (case-insensitive)")
    .field_path(".sites"),
    validation = Rule::new(
        "self.sites.size() != 2 || \
         !sets.intersects(self.sites[0].chatServers.map(c, c.lowerAscii()), \
                          self.sites[1].chatServers.map(c, c.lowerAscii()))"
    )
    .message("spec.sites[*].chatServers: a chat server must not be listed in both sites")
    .field_path(".sites"),
    validation = Rule::new(
        "self.failover.approveOverwrite.all(n, \
         self.sites.exists(s, s.instances.exists(i, i.name.lowerAscii() == n.lowerAscii())))"
    )
    .message("spec.failover.approveOverwrite must list only names of instances in spec.sites")
    .field_path(".failover.approveOverwrite")
)]
#[serde(rename_all = "camelCase")]
pub struct PersistentChatPoolSpec {
    /// Fully qualified domain name of the Persistent Chat pool (the `service:<pool fqdn>` identity
    /// that `Set-CsPersistentChatState` takes).
    #[schemars(regex(pattern = FQDN), length(min = 1, max = MAX_DNS_NAME_LEN))]
    pub pool_fqdn: String,

    /// The site where the pool normally runs. `status.poolState` is `FailedOver` whenever
    /// `primarySite` differs from `homeSite`, and `Normal` otherwise.
    #[schemars(regex(pattern = DNS1123_LABEL), length(min = 1, max = MAX_LABEL_LEN))]
    pub home_site: String,

    /// THE declared state: the site whose chat database serves the pool. Change it to perform a
    /// planned switch (old site reachable, zero data loss) or, under the failover policy, a forced
    /// failover (old site unreachable).
    #[schemars(regex(pattern = DNS1123_LABEL), length(min = 1, max = MAX_LABEL_LEN))]
    pub primary_site: String,

    /// Names of the Persistent Chat databases.
    #[serde(default)]
    pub databases: Databases,

    /// Exactly two sites: the log-shipping pair of the Persistent Chat disaster-recovery design
    /// (a primary datacenter and a backup datacenter, each with one or two SQL instances).
    #[schemars(length(min = 2, max = 2))]
    #[x_kube(
        validation = Rule::new("self.all(s, self.exists_one(t, t.name == s.name))")
            .message("spec.sites[*].name must be unique")
    )]
    pub sites: Vec<Site>,

    /// Log shipping from the primary site's chat database to the other site.
    #[serde(default)]
    pub log_shipping: LogShippingSpec,

    /// What the operator may do when the primary site cannot be reached.
    #[serde(default)]
    pub failover: FailoverPolicy,

    /// Name of a Secret in the pool's namespace with keys `username` and `password`: the SQL
    /// login the operator uses (sysadmin on every instance).
    #[schemars(regex(pattern = DNS1123_SUBDOMAIN), length(min = 1, max = MAX_DNS_NAME_LEN))]
    pub sql_credentials_secret: String,

    /// Transport security towards the SQL instances.
    #[serde(default)]
    pub tls: TlsSpec,

    /// Connection and statement timeouts towards the SQL instances.
    #[serde(default)]
    pub timeouts: SqlTimeouts,

    /// When true the operator observes and reports but sends no statement that changes anything.
    #[serde(default)]
    pub suspend: bool,
}

/// Names of the Persistent Chat databases.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
// Compared case-sensitively here: compliance may be null, and no null-safe case folding type-checks
// both on the API server and in kube-cel (`type()` is missing there). `validate` also catches
// names that differ only in case, as SQL Server's default collation would.
#[x_kube(
    validation = Rule::new("!has(self.compliance) || self.compliance != self.chat")
    .message("spec.databases.compliance must differ from spec.databases.chat")
    .field_path(".compliance")
)]
#[serde(rename_all = "camelCase")]
pub struct Databases {
    /// The chat content database, failed over between sites (`mgc` by default).
    #[serde(default = "default_chat_database")]
    #[schemars(regex(pattern = DATABASE_NAME), length(min = 1, max = 128))]
    pub chat: String,
    /// The compliance database (`mgccomp` by default), mirrored inside the primary site but never
    /// failed over: its content is transient. Null when compliance is not deployed.
    #[serde(default = "default_compliance_database")]
    #[schemars(regex(pattern = DATABASE_NAME), length(min = 1, max = 128))]
    pub compliance: Option<String>,
}

fn default_chat_database() -> String {
    "mgc".to_string()
}

fn default_compliance_database() -> Option<String> {
    Some("mgccomp".to_string())
}

impl Default for Databases {
    fn default() -> Self {
        Databases {
            chat: default_chat_database(),
            compliance: default_compliance_database(),
        }
    }
}

/// One datacenter of the pool.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Site {
    /// Site name, unique in the pool; `primarySite` and `homeSite` refer to it. A DNS-1123 label
    /// (lower-case letters, digits and inner hyphens), so it can name Kubernetes objects.
    #[schemars(regex(pattern = DNS1123_LABEL), length(min = 1, max = MAX_LABEL_LEN))]
    pub name: String,
    /// One or two SQL Server instances. Which one is principal and which is mirror is observed,
    /// never assumed: the order only says which instance holds the database at bootstrap (the
    /// first).
    #[schemars(length(min = 1, max = 2))]
    pub instances: Vec<SqlInstance>,
    /// UNC path of the share that receives this site's log backups while it is primary
    /// (for example `\\atl-fs\pchat-ls`).
    #[schemars(regex(pattern = UNC_PATH), length(min = 1, max = MAX_PATH_LEN))]
    pub backup_share: String,
    /// Local Windows folder on this site's instances where the copy job puts log backups while
    /// this site is the log-shipping secondary (for example `D:\pchat-ls-copy`).
    #[schemars(regex(pattern = WINDOWS_FOLDER), length(min = 1, max = MAX_PATH_LEN))]
    pub copy_destination: String,
    /// Fully qualified names of this site's Persistent Chat servers: the active-server list while
    /// this site is primary.
    #[serde(default)]
    #[schemars(
        length(max = MAX_CHAT_SERVERS),
        inner(regex(pattern = FQDN), length(min = 1, max = MAX_DNS_NAME_LEN)),
        extend("x-kubernetes-list-type" = "set")
    )]
    pub chat_servers: Vec<String>,
}

/// A SQL Server instance.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SqlInstance {
    /// Instance name as `@@SERVERNAME` reports it; unique in the pool. Log shipping and
    /// mirroring refer to the instance by this name: a machine name, or `MACHINE\INSTANCE` for a
    /// named instance.
    #[schemars(regex(pattern = INSTANCE_NAME), length(min = 1, max = MAX_INSTANCE_NAME_LEN))]
    pub name: String,
    /// DNS host name (RFC 1123) or IPv4 address the operator connects to.
    #[schemars(regex(pattern = HOST), length(min = 1, max = MAX_DNS_NAME_LEN))]
    pub host: String,
    /// TDS port (1433 by default).
    #[serde(default = "default_port")]
    // Kubernetes knows the OpenAPI formats int32 and int64 only; schemars' `uint16` makes the
    // apiserver warn "unrecognized format" on every apply.
    #[schemars(range(min = 1, max = 65535), extend("format" = "int32"))]
    pub port: u16,
    /// Database mirroring endpoint of this instance, `TCP://<host>:<port>`.
    #[schemars(regex(pattern = MIRRORING_ENDPOINT), length(min = 1, max = MAX_ENDPOINT_LEN))]
    pub mirroring_endpoint: String,
}

fn default_port() -> u16 {
    1433
}

/// Log-shipping settings, applied when log shipping is configured from the primary site.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(
    validation = Rule::new("duration(self.backupInterval) >= duration('10s')")
        .message("spec.logShipping.backupInterval must be at least 10s: SQL Server Agent refuses a job schedule of fewer than 10 seconds")
        .field_path(".backupInterval"),
    validation = Rule::new("duration(self.rpoTarget) >= duration(self.backupInterval)")
        .message("spec.logShipping.rpoTarget must be at least spec.logShipping.backupInterval")
        .field_path(".rpoTarget"),
    validation = Rule::new("duration(self.backupRetention) > duration('0s')")
        .message("spec.logShipping.backupRetention must be greater than zero")
        .field_path(".backupRetention")
)]
#[serde(rename_all = "camelCase")]
pub struct LogShippingSpec {
    /// How often the primary takes a log backup (and the secondary copies and restores it).
    #[serde(default = "default_backup_interval")]
    #[schemars(regex(pattern = DURATION), length(min = 1, max = MAX_DURATION_LEN))]
    pub backup_interval: Duration,
    /// The recovery point objective: restore latency on the secondary above this makes the pool
    /// Degraded (not Protected).
    #[serde(default = "default_rpo_target")]
    #[schemars(regex(pattern = DURATION), length(min = 1, max = MAX_DURATION_LEN))]
    pub rpo_target: Duration,
    /// How long log backup files are kept on the share and in the copy folder.
    #[serde(default = "default_backup_retention")]
    #[schemars(regex(pattern = DURATION), length(min = 1, max = MAX_DURATION_LEN))]
    pub backup_retention: Duration,
}

fn minutes(n: u64) -> Duration {
    std::time::Duration::from_secs(60 * n).into()
}

fn seconds(n: u64) -> Duration {
    std::time::Duration::from_secs(n).into()
}

fn default_backup_interval() -> Duration {
    minutes(5)
}

fn default_rpo_target() -> Duration {
    minutes(15)
}

fn default_backup_retention() -> Duration {
    minutes(72 * 60)
}

impl Default for LogShippingSpec {
    fn default() -> Self {
        LogShippingSpec {
            backup_interval: default_backup_interval(),
            rpo_target: default_rpo_target(),
            backup_retention: default_backup_retention(),
        }
    }
}

/// The forced-failover policy, used only when the primary site is unreachable.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(
    validation = Rule::new("duration(self.maxDataLoss) > duration('0s')")
        .message("spec.failover.maxDataLoss must be greater than zero")
        .field_path(".maxDataLoss"),
    validation = Rule::new("duration(self.drainTimeout) > duration('0s')")
        .message("spec.failover.drainTimeout must be greater than zero")
        .field_path(".drainTimeout")
)]
#[serde(rename_all = "camelCase")]
pub struct FailoverPolicy {
    /// Whether the operator may bring the other site's copy online while the primary site is
    /// unreachable, losing what was not yet shipped. False by default: the operator reports the
    /// estimated loss window and waits.
    #[serde(default)]
    pub allow_data_loss: bool,
    /// The largest estimated data-loss window a forced failover may accept.
    #[serde(default = "default_max_data_loss")]
    #[schemars(regex(pattern = DURATION), length(min = 1, max = MAX_DURATION_LEN))]
    pub max_data_loss: Duration,
    /// How long chat servers get to leave the chat databases before their sessions are killed.
    #[serde(default = "default_drain_timeout")]
    #[schemars(regex(pattern = DURATION), length(min = 1, max = MAX_DURATION_LEN))]
    pub drain_timeout: Duration,
    /// How long an instance must be unreachable before the operator treats it as down.
    #[serde(default = "default_unreachable_after")]
    #[schemars(regex(pattern = DURATION), length(min = 1, max = MAX_DURATION_LEN))]
    pub unreachable_after: Duration,
    /// Instance names whose copy of the chat database may be overwritten although it may hold
    /// newer data than the primary's. A salvage backup is taken first all the same.
    #[serde(default)]
    #[schemars(
        length(max = MAX_INSTANCES_IN_POOL),
        inner(regex(pattern = INSTANCE_NAME), length(min = 1, max = MAX_INSTANCE_NAME_LEN)),
        extend("x-kubernetes-list-type" = "set")
    )]
    pub approve_overwrite: Vec<String>,
}

fn default_max_data_loss() -> Duration {
    minutes(15)
}

fn default_drain_timeout() -> Duration {
    seconds(60)
}

fn default_unreachable_after() -> Duration {
    seconds(60)
}

impl Default for FailoverPolicy {
    fn default() -> Self {
        FailoverPolicy {
            allow_data_loss: false,
            max_data_loss: default_max_data_loss(),
            drain_timeout: default_drain_timeout(),
            unreachable_after: default_unreachable_after(),
            approve_overwrite: Vec::new(),
        }
    }
}

/// Transport security towards the SQL instances.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema, Default)]
#[x_kube(
    validation = Rule::new("!(has(self.trustServerCertificate) && self.trustServerCertificate && has(self.caSecret))")
        .message("spec.tls.trustServerCertificate: true turns certificate verification off, so the CA in spec.tls.caSecret would be ignored; set one or the other")
        .field_path(".trustServerCertificate")
)]
#[serde(rename_all = "camelCase")]
pub struct TlsSpec {
    /// `Required` (default): every connection is encrypted (TLS inside PRELOGIN, TDS 7.x) and
    /// fails closed otherwise. `Strict`: TDS 8, TLS before any TDS byte (SQL Server 2022 and
    /// later). `Off`: only the login (and so the password) is encrypted.
    /// `NotSupported`: no encryption at all, the password in clear; never outside a lab.
    #[serde(default)]
    pub encrypt: EncryptMode,
    /// Name of a Secret with key `ca.crt`: the CA that signed the instances' certificates.
    /// Absent: the operator image's system roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DNS1123_SUBDOMAIN), length(min = 1, max = MAX_DNS_NAME_LEN))]
    pub ca_secret: Option<String>,
    /// The name every instance's certificate is verified against, when it differs from the
    /// address the operator connects to (`instances[].host`): for example a listener's DNS
    /// name while the operator connects by IP. It must be one of the certificate's DNS subject
    /// alternative names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = HOST), length(min = 1, max = MAX_DNS_NAME_LEN))]
    pub host_name_in_certificate: Option<String>,
    /// Accept any certificate without verifying it: for the self-signed certificate SQL Server
    /// makes for itself when none is configured. The connection is still encrypted, but anyone
    /// on the path can pose as the instance and read the password. Off by default; the
    /// operator logs a warning on every connection made with it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub trust_server_certificate: bool,
}

fn is_false(value: &bool) -> bool {
    !value
}

/// How much of a TDS connection is encrypted.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema, Default)]
pub enum EncryptMode {
    #[default]
    Required,
    Strict,
    Off,
    NotSupported,
}

/// Timeouts towards the SQL instances.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(
    validation = Rule::new("duration(self.connect) > duration('0s')")
        .message("spec.timeouts.connect must be greater than zero")
        .field_path(".connect"),
    validation = Rule::new("duration(self.command) > duration('0s')")
        .message("spec.timeouts.command must be greater than zero")
        .field_path(".command")
)]
#[serde(rename_all = "camelCase")]
pub struct SqlTimeouts {
    /// How long to wait for a TCP connection and login.
    #[serde(default = "default_connect_timeout")]
    #[schemars(regex(pattern = DURATION), length(min = 1, max = MAX_DURATION_LEN))]
    pub connect: Duration,
    /// How long one statement may run (a restore of a large database may take long).
    #[serde(default = "default_command_timeout")]
    #[schemars(regex(pattern = DURATION), length(min = 1, max = MAX_DURATION_LEN))]
    pub command: Duration,
}

fn default_connect_timeout() -> Duration {
    seconds(15)
}

fn default_command_timeout() -> Duration {
    minutes(30)
}

impl Default for SqlTimeouts {
    fn default() -> Self {
        SqlTimeouts {
            connect: default_connect_timeout(),
            command: default_command_timeout(),
        }
    }
}

impl Databases {
    /// The chat database, then the compliance database when there is one.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.chat.as_str()).chain(self.compliance.as_deref())
    }
}

impl PersistentChatPoolSpec {
    /// The site with this name.
    pub fn site(&self, name: &str) -> Option<&Site> {
        self.sites.iter().find(|s| s.name == name)
    }

    /// The site that is not `name` (the pool has exactly two).
    pub fn other_site(&self, name: &str) -> Option<&Site> {
        self.sites.iter().find(|s| s.name != name)
    }

    /// The site an instance belongs to.
    pub fn site_of_instance(&self, instance: &str) -> Option<&Site> {
        self.sites
            .iter()
            .find(|s| s.instances.iter().any(|i| i.name == instance))
    }

    /// Every instance of the pool with its site, in declaration order.
    pub fn instances(&self) -> impl Iterator<Item = (&Site, &SqlInstance)> {
        self.sites
            .iter()
            .flat_map(|s| s.instances.iter().map(move |i| (s, i)))
    }

    /// The chat database and, when deployed, the compliance database.
    pub fn database_names(&self) -> Vec<&str> {
        self.databases.names().collect()
    }
}
