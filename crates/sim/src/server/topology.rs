//! The simulator's topology file: instances, shares, initial databases, job intervals and
//! statement latencies (YAML, read with serde-saphyr).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Error;

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    pub instances: Vec<InstanceDef>,
    #[serde(default)]
    pub shares: Vec<ShareDef>,
    /// Databases created ONLINE (FULL recovery) when the simulator starts.
    #[serde(default)]
    pub databases: Vec<DatabaseDef>,
    #[serde(default)]
    pub jobs: JobIntervals,
    /// Added latency per statement kind, in milliseconds.
    #[serde(default)]
    pub latency: BTreeMap<StatementKind, u64>,
    /// Transport encryption of every instance's TDS listener.
    #[serde(default)]
    pub tls: TlsDef,
}

/// How the instances encrypt TDS connections, as SQL Server's "Force Encryption" setting and
/// its certificate decide.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TlsDef {
    #[serde(default)]
    pub encryption: EncryptionSetting,
    /// PEM file with the certificate chain every instance presents (leaf first). Absent: the
    /// simulator makes its own CA at start (written to `<state dir>/tls/ca.crt`) and one
    /// certificate per instance, signed by it, for the instance's name, its aliases, the host
    /// it listens on, `localhost` and `127.0.0.1`.
    #[serde(default)]
    pub certificate: Option<std::path::PathBuf>,
    /// PEM file with the certificate's private key (required with `certificate`).
    #[serde(default)]
    pub key: Option<std::path::PathBuf>,
}

/// The server side of PRELOGIN's encryption negotiation (MS-TDS 2.2.6.5).
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub enum EncryptionSetting {
    /// A certificate is configured, encryption is not forced: a client asking for none gets
    /// none, one asking for login-only gets that, one asking for encryption gets it; TDS 8
    /// strict connections are accepted.
    #[default]
    Supported,
    /// "Force Encryption": every connection is encrypted; a client that cannot encrypt is
    /// refused.
    Forced,
    /// No certificate: the server answers ENCRYPT_NOT_SUP, and a client that requires
    /// encryption must fail (SQL Server before it had a certificate).
    Disabled,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InstanceDef {
    pub name: String,
    pub site: String,
    /// `host:port` the TDS front end listens on (the model does not bind it).
    pub listen: String,
    #[serde(default)]
    pub logins: Vec<LoginDef>,
    /// Mirroring endpoint; `TCP://<name>:5022` when absent.
    #[serde(default)]
    pub mirroring_endpoint: Option<String>,
    /// Other host names (e.g. FQDNs) that resolve to this instance in `TCP://host:port`.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// The instance's default data folder (`SERVERPROPERTY('InstanceDefaultDataPath')`);
    /// absent: `D:\SQLData\<name>\`. Each instance has its own by default, so a restore that
    /// keeps another instance's file paths fails as on SQL Server (WITH MOVE is needed).
    #[serde(default)]
    pub data_path: Option<String>,
    /// The default log folder; absent: `L:\SQLLogs\<name>\`.
    #[serde(default)]
    pub log_path: Option<String>,
    /// `SERVERPROPERTY('ProductVersion')`, four dotted numbers; absent: 15.0.2000.5 (SQL
    /// Server 2019). Views newer than the version are refused as SQL Server refuses an
    /// unknown object (208).
    #[serde(default)]
    pub version: Option<String>,
    /// The offset of the instance's local time from UTC, in minutes (-300 for US Eastern
    /// standard time); absent: 0. `GETDATE()`, msdb's local dates and a backup's
    /// BackupStartDate/BackupFinishDate are in local time, as on SQL Server.
    #[serde(default)]
    pub utc_offset_minutes: Option<i32>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LoginDef {
    pub name: String,
    pub password: String,
    /// The login's default database (`ALTER LOGIN ... WITH DEFAULT_DATABASE`): where a client
    /// that names no database in LOGIN7 lands. Absent: master.
    #[serde(default, rename = "defaultDatabase")]
    pub default_database: Option<String>,
}

/// Whether `minutes` is an offset from UTC a Windows time zone can have (SQL Server's
/// `backupset.time_zone` counts it in quarter hours, -48 to +48, and 56 at most in practice).
pub fn valid_utc_offset(minutes: i32) -> bool {
    (-840..=840).contains(&minutes) && minutes % 15 == 0
}

/// A share `\\host\share`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ShareDef {
    pub host: String,
    pub share: String,
    /// The site the file server is in (a site partition cuts it off too).
    #[serde(default)]
    pub site: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DatabaseDef {
    pub name: String,
    pub instance: String,
}

/// Agent job schedules, in milliseconds.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JobIntervals {
    #[serde(default = "default_backup_ms")]
    pub backup_ms: u64,
    #[serde(default = "default_copy_ms")]
    pub copy_ms: u64,
    #[serde(default = "default_restore_ms")]
    pub restore_ms: u64,
    /// How often the mirroring pump ships log to partners that are behind.
    #[serde(default = "default_mirroring_ms")]
    pub mirroring_ms: u64,
    /// SQL Agent schedules run this many times faster than they say: SQL Agent's shortest
    /// schedule is 10 seconds, which tests and the demo cannot wait between runs. 1 (the
    /// default) is real time. Jobs without a schedule use the intervals above as they are.
    #[serde(default = "default_schedule_speedup")]
    pub schedule_speedup: u64,
}

fn default_backup_ms() -> u64 {
    300_000
}
fn default_copy_ms() -> u64 {
    300_000
}
fn default_restore_ms() -> u64 {
    300_000
}
fn default_mirroring_ms() -> u64 {
    200
}
fn default_schedule_speedup() -> u64 {
    1
}

impl Default for JobIntervals {
    fn default() -> Self {
        JobIntervals {
            backup_ms: default_backup_ms(),
            copy_ms: default_copy_ms(),
            restore_ms: default_restore_ms(),
            mirroring_ms: default_mirroring_ms(),
            schedule_speedup: default_schedule_speedup(),
        }
    }
}

/// Statement kinds for latency faults.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "camelCase")]
pub enum StatementKind {
    #[serde(alias = "Backup")]
    Backup,
    #[serde(alias = "Restore")]
    Restore,
    #[serde(alias = "AlterDatabase")]
    AlterDatabase,
    #[serde(alias = "Select")]
    Select,
    #[serde(alias = "Insert")]
    Insert,
    #[serde(alias = "Exec")]
    Exec,
    #[serde(alias = "Kill")]
    Kill,
    #[serde(alias = "Any")]
    Any,
}

impl Topology {
    /// Parse a topology from YAML and check it: names unique, databases on declared instances.
    pub fn from_yaml(text: &str) -> Result<Topology, Error> {
        let t: Topology =
            serde_saphyr::from_str(text).map_err(|e| Error::TopologyYaml(Box::new(e)))?;
        t.validate()?;
        Ok(t)
    }

    /// Check the topology's own rules: at least one instance, instance names unique, every
    /// database on a declared instance.
    pub fn validate(&self) -> Result<(), Error> {
        if self.instances.is_empty() {
            return Err(Error::Topology(
                "`instances` must name at least one instance".into(),
            ));
        }
        if self.tls.certificate.is_some() != self.tls.key.is_some() {
            return Err(Error::Topology(
                "`tls.certificate` and `tls.key` go together: give both or neither".into(),
            ));
        }
        for i in &self.instances {
            if let Some(offset) = i.utc_offset_minutes
                && !valid_utc_offset(offset)
            {
                return Err(Error::Topology(format!(
                    "instance `{}`: utc_offset_minutes {offset} is not a whole number of quarter \
                     hours between -840 and 840",
                    i.name
                )));
            }
            if let Some(v) = &i.version
                && super::model::ProductVersion::parse(v).is_none()
            {
                return Err(Error::Topology(format!(
                    "instance `{}`: version `{v}` is not four dotted numbers (e.g. 12.0.6024.0)",
                    i.name
                )));
            }
        }
        let mut seen: Vec<String> = Vec::new();
        for i in &self.instances {
            let n = i.name.to_ascii_lowercase();
            if n.is_empty() {
                return Err(Error::Topology("an instance has an empty `name`".into()));
            }
            if seen.contains(&n) {
                return Err(Error::Topology(format!(
                    "instance name `{}` is used twice",
                    i.name
                )));
            }
            seen.push(n);
        }
        for d in &self.databases {
            if !self
                .instances
                .iter()
                .any(|i| i.name.eq_ignore_ascii_case(&d.instance))
            {
                return Err(Error::Topology(format!(
                    "database `{}` is on instance `{}`, which `instances` does not declare",
                    d.name, d.instance
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_two_sites_topology_parses_and_validates() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/sim/two-sites.yaml"
        ))
        .unwrap();
        let t = Topology::from_yaml(&text).unwrap();
        assert_eq!(t.instances.len(), 4);
        assert_eq!(t.instances[0].listen, "127.0.0.1:14331");
        assert_eq!(t.databases.len(), 2);
    }

    #[test]
    fn topology_with_database_on_unknown_instance_is_rejected_naming_it() {
        let text = "instances:\n  - {name: a, site: s, listen: '127.0.0.1:1'}\ndatabases:\n  - {name: mgc, instance: b}\n";
        let e = Topology::from_yaml(text).unwrap_err().to_string();
        assert!(e.contains("`b`"), "{e}");
    }
}
