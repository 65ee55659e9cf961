//! The operator's own check of a spec, run before any SQL is sent.
//!
//! It repeats every constraint of the CRD schema and of its CEL rules (the operator never trusts
//! that an API server validated the object: in file mode there is none), and adds what the schema
//! cannot say. Every violation is reported, not just the first, each with its JSON path.

use std::collections::HashMap;
use std::fmt;

use kube::core::Duration;
use regex::Regex;

use super::patterns::{self, COMPILED};
use super::spec::{
    FailoverPolicy, LogShippingSpec, PersistentChatPoolSpec, Site, SqlTimeouts, TlsSpec,
};

/// One broken rule: the field, in JSON-path style (`spec.sites[1].instances[0].port`), and what
/// is wrong with it in words a person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub path: String,
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every violation found in a spec; never empty. Displays one violation per line. It travels
/// as [`crate::Error::Invalid`], the crate's one error type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationErrors {
    violations: Vec<Violation>,
}

impl ValidationErrors {
    /// The violations, in the order of the fields in the spec.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in self.violations.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{v}")?;
        }
        Ok(())
    }
}

/// Checks a spec against every rule of the CRD and the operator's own. `Ok` means it is safe to
/// plan from; `Err` is [`crate::Error::Invalid`], listing every violation.
pub fn validate(spec: &PersistentChatPoolSpec) -> Result<(), crate::Error> {
    let mut c = Checker::default();
    c.spec(spec);
    if c.violations.is_empty() {
        Ok(())
    } else {
        Err(crate::Error::Invalid(ValidationErrors {
            violations: c.violations,
        }))
    }
}

/// The shortest interval SQL Server Agent accepts for a job schedule (sp_add_schedule with
/// `@freq_subday_type = 0x2`, seconds, and `@freq_subday_interval` of 10 or more).
pub const MIN_AGENT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// What each pattern accepts, in words, for the messages.
const FQDN_HINT: &str = "a fully qualified DNS name such as atl-cs-001.litwareinc.com";
const HOST_HINT: &str =
    "a DNS host name (RFC 1123) such as atl-sql1.litwareinc.com, or an IPv4 address";
const LABEL_HINT: &str = "lower-case letters, digits and inner hyphens (a DNS-1123 label)";
const SUBDOMAIN_HINT: &str =
    "a Kubernetes object name: lower-case letters, digits, inner hyphens and dots";
const DATABASE_HINT: &str =
    "a database name: a letter or `_`, then letters, digits or `_`, at most 128 characters";
const INSTANCE_HINT: &str =
    "an instance name as @@SERVERNAME reports it, such as atl-sql1 or ATL-SQL1\\PCHAT";
const ENDPOINT_HINT: &str = "TCP://<host>:<port>, such as TCP://atl-sql1.litwareinc.com:5022";
const UNC_HINT: &str = "a UNC share path such as \\\\atl-fs\\pchat-ls";
const FOLDER_HINT: &str = "a local Windows folder such as D:\\pchat-ls-copy";

#[derive(Default)]
struct Checker {
    violations: Vec<Violation>,
}

impl Checker {
    fn report(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.violations.push(Violation {
            path: path.into(),
            message: message.into(),
        });
    }

    /// A string field must be non-empty, at most `max_len` characters and match `re`.
    fn text(&mut self, path: &str, value: &str, re: &Regex, max_len: u32, hint: &str) {
        let len = value.chars().count();
        if len == 0 {
            self.report(path, format!("must not be empty; expected {hint}"));
        } else if len > max_len as usize {
            self.report(
                path,
                format!("is {len} characters long; at most {max_len} are allowed"),
            );
        } else if !re.is_match(value) {
            self.report(path, format!("{value:?} is not valid; expected {hint}"));
        }
    }

    fn spec(&mut self, spec: &PersistentChatPoolSpec) {
        let p = &*COMPILED;
        self.text(
            "spec.poolFqdn",
            &spec.pool_fqdn,
            &p.fqdn,
            patterns::MAX_DNS_NAME_LEN,
            FQDN_HINT,
        );
        self.site_ref("spec.homeSite", &spec.home_site, spec);
        self.site_ref("spec.primarySite", &spec.primary_site, spec);
        self.databases(spec);
        self.sites(spec);
        self.log_shipping(&spec.log_shipping);
        self.failover(&spec.failover, spec);
        self.text(
            "spec.sqlCredentialsSecret",
            &spec.sql_credentials_secret,
            &p.dns1123_subdomain,
            patterns::MAX_DNS_NAME_LEN,
            SUBDOMAIN_HINT,
        );
        self.tls(&spec.tls);
        self.timeouts(&spec.timeouts);
    }

    /// `homeSite` and `primarySite`: a well-formed site name that one of `spec.sites` carries.
    fn site_ref(&mut self, path: &str, name: &str, spec: &PersistentChatPoolSpec) {
        let before = self.violations.len();
        self.text(
            path,
            name,
            &COMPILED.dns1123_label,
            patterns::MAX_LABEL_LEN,
            LABEL_HINT,
        );
        if self.violations.len() == before && spec.site(name).is_none() {
            let defined: Vec<&str> = spec.sites.iter().map(|s| s.name.as_str()).collect();
            self.report(
                path,
                format!(
                    "{name:?} is not the name of one of spec.sites (defined: {})",
                    defined.join(", ")
                ),
            );
        }
    }

    fn databases(&mut self, spec: &PersistentChatPoolSpec) {
        let dbs = &spec.databases;
        self.text(
            "spec.databases.chat",
            &dbs.chat,
            &COMPILED.database_name,
            128,
            DATABASE_HINT,
        );
        if let Some(comp) = &dbs.compliance {
            self.text(
                "spec.databases.compliance",
                comp,
                &COMPILED.database_name,
                128,
                DATABASE_HINT,
            );
            // SQL Server's default collation compares database names case-insensitively.
            if comp.eq_ignore_ascii_case(&dbs.chat) {
                self.report(
                    "spec.databases.compliance",
                    format!(
                        "must differ from spec.databases.chat ({:?}): the chat and compliance \
                         databases are different databases",
                        dbs.chat
                    ),
                );
            }
        }
    }

    fn sites(&mut self, spec: &PersistentChatPoolSpec) {
        if spec.sites.len() != 2 {
            self.report(
                "spec.sites",
                format!(
                    "has {} sites; exactly 2 are required (the primary and the backup datacenter)",
                    spec.sites.len()
                ),
            );
        }
        let mut site_names: HashMap<&str, usize> = HashMap::new();
        for (i, site) in spec.sites.iter().enumerate() {
            let base = format!("spec.sites[{i}]");
            self.site(&base, site);
            if let Some(first) = site_names.get(site.name.as_str()) {
                self.report(
                    format!("{base}.name"),
                    format!(
                        "site name {:?} is already used by spec.sites[{first}]; site names must be \
                         unique",
                        site.name
                    ),
                );
            } else {
                site_names.insert(&site.name, i);
            }
        }
        self.pool_wide_uniqueness(spec);
    }

    fn site(&mut self, base: &str, site: &Site) {
        let p = &*COMPILED;
        self.text(
            &format!("{base}.name"),
            &site.name,
            &p.dns1123_label,
            patterns::MAX_LABEL_LEN,
            LABEL_HINT,
        );
        let n = site.instances.len();
        if !(1..=2).contains(&n) {
            self.report(
                format!("{base}.instances"),
                format!("has {n} instances; a site has 1 or 2 SQL Server instances"),
            );
        }
        for (j, inst) in site.instances.iter().enumerate() {
            let ib = format!("{base}.instances[{j}]");
            self.text(
                &format!("{ib}.name"),
                &inst.name,
                &p.instance_name,
                patterns::MAX_INSTANCE_NAME_LEN,
                INSTANCE_HINT,
            );
            self.text(
                &format!("{ib}.host"),
                &inst.host,
                &p.host,
                patterns::MAX_DNS_NAME_LEN,
                HOST_HINT,
            );
            if inst.port == 0 {
                self.report(format!("{ib}.port"), "must be between 1 and 65535");
            }
            self.text(
                &format!("{ib}.mirroringEndpoint"),
                &inst.mirroring_endpoint,
                &p.mirroring_endpoint,
                patterns::MAX_ENDPOINT_LEN,
                ENDPOINT_HINT,
            );
        }
        self.text(
            &format!("{base}.backupShare"),
            &site.backup_share,
            &p.unc_path,
            patterns::MAX_PATH_LEN,
            UNC_HINT,
        );
        self.text(
            &format!("{base}.copyDestination"),
            &site.copy_destination,
            &p.windows_folder,
            patterns::MAX_PATH_LEN,
            FOLDER_HINT,
        );
        if site.chat_servers.len() > patterns::MAX_CHAT_SERVERS as usize {
            self.report(
                format!("{base}.chatServers"),
                format!(
                    "lists {} chat servers; a Persistent Chat pool has at most {} active servers",
                    site.chat_servers.len(),
                    patterns::MAX_CHAT_SERVERS
                ),
            );
        }
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (k, server) in site.chat_servers.iter().enumerate() {
            let path = format!("{base}.chatServers[{k}]");
            self.text(
                &path,
                server,
                &p.fqdn,
                patterns::MAX_DNS_NAME_LEN,
                "a chat server's fully qualified name such as atl-pc1.litwareinc.com",
            );
            if let Some(first) = seen.get(&server.to_ascii_lowercase()) {
                self.report(
                    path,
                    format!("{server:?} is already listed at {base}.chatServers[{first}]"),
                );
            } else {
                seen.insert(server.to_ascii_lowercase(), k);
            }
        }
    }

    /// Instance names, host:port pairs and mirroring endpoints are unique across the pool, and no
    /// chat server is listed in two sites. Compared case-insensitively, as DNS and SQL Server do.
    fn pool_wide_uniqueness(&mut self, spec: &PersistentChatPoolSpec) {
        let mut names: HashMap<String, String> = HashMap::new();
        let mut addresses: HashMap<(String, u16), String> = HashMap::new();
        let mut endpoints: HashMap<String, String> = HashMap::new();
        for (i, site) in spec.sites.iter().enumerate() {
            for (j, inst) in site.instances.iter().enumerate() {
                let here = format!("spec.sites[{i}].instances[{j}]");
                if let Some(first) = names.get(&inst.name.to_ascii_lowercase()) {
                    self.report(
                        format!("{here}.name"),
                        format!(
                            "instance name {:?} is already used by {first}; instance names must \
                             be unique across the pool",
                            inst.name
                        ),
                    );
                } else {
                    names.insert(inst.name.to_ascii_lowercase(), here.clone());
                }
                let address = (inst.host.to_ascii_lowercase(), inst.port);
                if let Some(first) = addresses.get(&address) {
                    self.report(
                        format!("{here}.host"),
                        format!(
                            "{}:{} is already the address of {first}; each instance needs its own \
                             host and port",
                            inst.host, inst.port
                        ),
                    );
                } else {
                    addresses.insert(address, here.clone());
                }
                let endpoint = inst.mirroring_endpoint.to_ascii_lowercase();
                if let Some(first) = endpoints.get(&endpoint) {
                    self.report(
                        format!("{here}.mirroringEndpoint"),
                        format!(
                            "{:?} is already the mirroring endpoint of {first}; each instance has \
                             its own endpoint",
                            inst.mirroring_endpoint
                        ),
                    );
                } else {
                    endpoints.insert(endpoint, here);
                }
            }
        }
        let mut servers: HashMap<String, usize> = HashMap::new();
        for (i, site) in spec.sites.iter().enumerate() {
            // Repeats inside one site are reported by `site`; count each server once per site.
            let mut in_this_site: Vec<String> = Vec::new();
            for (k, server) in site.chat_servers.iter().enumerate() {
                let key = server.to_ascii_lowercase();
                if in_this_site.contains(&key) {
                    continue;
                }
                in_this_site.push(key.clone());
                match servers.get(&key) {
                    Some(&other) if other != i => self.report(
                        format!("spec.sites[{i}].chatServers[{k}]"),
                        format!(
                            "{server:?} is also listed in spec.sites[{other}].chatServers; a chat \
                             server belongs to one site"
                        ),
                    ),
                    _ => {
                        servers.insert(key, i);
                    }
                }
            }
        }
    }

    /// A duration must not be negative (Go accepts `-5m`, the operator does not) and, when
    /// `positive`, must not be zero either.
    fn duration(&mut self, path: &str, d: &Duration, positive: bool) -> bool {
        if d.is_negative() {
            self.report(
                path,
                format!("{d} is negative; durations must not be negative"),
            );
            false
        } else if positive && std::time::Duration::from(*d).is_zero() {
            self.report(path, "must be greater than zero");
            false
        } else {
            true
        }
    }

    fn log_shipping(&mut self, ls: &LogShippingSpec) {
        let interval_ok =
            self.duration("spec.logShipping.backupInterval", &ls.backup_interval, true);
        // The backup job's Agent schedule runs every backupInterval; SQL Server Agent refuses a
        // schedule in seconds (@freq_subday_type = 0x2) of fewer than 10.
        if interval_ok && std::time::Duration::from(ls.backup_interval) < MIN_AGENT_INTERVAL {
            self.report(
                "spec.logShipping.backupInterval",
                format!(
                    "{} is shorter than 10s: SQL Server Agent refuses a job schedule of fewer \
                     than 10 seconds",
                    ls.backup_interval
                ),
            );
        }
        let rpo_ok = self.duration("spec.logShipping.rpoTarget", &ls.rpo_target, false);
        self.duration(
            "spec.logShipping.backupRetention",
            &ls.backup_retention,
            true,
        );
        if interval_ok && rpo_ok && ls.rpo_target < ls.backup_interval {
            self.report(
                "spec.logShipping.rpoTarget",
                format!(
                    "{} is shorter than spec.logShipping.backupInterval ({}): the secondary can \
                     never be within its recovery point objective",
                    ls.rpo_target, ls.backup_interval
                ),
            );
        }
    }

    fn tls(&mut self, tls: &TlsSpec) {
        let p = &*COMPILED;
        if let Some(ca) = &tls.ca_secret {
            self.text(
                "spec.tls.caSecret",
                ca,
                &p.dns1123_subdomain,
                patterns::MAX_DNS_NAME_LEN,
                SUBDOMAIN_HINT,
            );
            if tls.trust_server_certificate {
                self.report(
                    "spec.tls.trustServerCertificate",
                    "true turns certificate verification off, so the CA in spec.tls.caSecret would be ignored; set one or the other",
                );
            }
        }
        if let Some(host) = &tls.host_name_in_certificate {
            self.text(
                "spec.tls.hostNameInCertificate",
                host,
                &p.host,
                patterns::MAX_DNS_NAME_LEN,
                HOST_HINT,
            );
        }
    }

    fn failover(&mut self, f: &FailoverPolicy, spec: &PersistentChatPoolSpec) {
        self.duration("spec.failover.maxDataLoss", &f.max_data_loss, true);
        self.duration("spec.failover.drainTimeout", &f.drain_timeout, true);
        self.duration(
            "spec.failover.unreachableAfter",
            &f.unreachable_after,
            false,
        );
        if f.approve_overwrite.len() > patterns::MAX_INSTANCES_IN_POOL as usize {
            self.report(
                "spec.failover.approveOverwrite",
                format!(
                    "lists {} names; the pool has at most {} instances",
                    f.approve_overwrite.len(),
                    patterns::MAX_INSTANCES_IN_POOL
                ),
            );
        }
        let mut seen: Vec<String> = Vec::new();
        for (k, name) in f.approve_overwrite.iter().enumerate() {
            let path = format!("spec.failover.approveOverwrite[{k}]");
            let before = self.violations.len();
            self.text(
                &path,
                name,
                &COMPILED.instance_name,
                patterns::MAX_INSTANCE_NAME_LEN,
                INSTANCE_HINT,
            );
            let key = name.to_ascii_lowercase();
            if seen.contains(&key) {
                self.report(&path, format!("{name:?} is listed twice"));
            }
            seen.push(key);
            let known = spec
                .instances()
                .any(|(_, i)| i.name.eq_ignore_ascii_case(name));
            if self.violations.len() == before && !known {
                self.report(
                    path,
                    format!("{name:?} is not the name of an instance in spec.sites"),
                );
            }
        }
    }

    fn timeouts(&mut self, t: &SqlTimeouts) {
        self.duration("spec.timeouts.connect", &t.connect, true);
        self.duration("spec.timeouts.command", &t.command, true);
    }
}
