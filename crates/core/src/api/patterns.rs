//! The regular expressions the CRD schema carries (`pattern:`) and that `validate` applies again.
//!
//! One definition serves both, so the schema and the operator cannot drift apart. They use only
//! syntax that Go's RE2 (the API server) and Rust's `regex` read the same way: no look-around, no
//! back-references.

use std::sync::LazyLock;

use regex::Regex;

/// One DNS label (RFC 1123): letters, digits and inner hyphens, 1 to 63 characters.
macro_rules! dns_label {
    () => {
        "[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    };
}

/// The last label of a DNS name. It starts with a letter (RFC 3696 section 2: a top-level domain
/// is never all-numeric), so a dotted number is read as an IPv4 address, never as a name.
macro_rules! dns_last_label {
    () => {
        "[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    };
}

/// A DNS name of one or more labels.
macro_rules! dns_name {
    () => {
        concat!("(", dns_label!(), "\\.)*", dns_last_label!())
    };
}

/// A dotted-quad IPv4 address, each octet 0..=255 without leading zeros.
macro_rules! ipv4 {
    () => {
        concat!(
            "((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}",
            "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
        )
    };
}

/// A host: an IPv4 address or a DNS name.
macro_rules! host {
    () => {
        concat!("(", ipv4!(), "|", dns_name!(), ")")
    };
}

/// A TCP port, 1..=65535, without leading zeros.
macro_rules! port {
    () => {
        "([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
    };
}

/// One Windows path segment: none of `\ / : * ? " < > |`, and not ending in a dot or a space
/// (Windows strips those, so `.`, `..` and `name.` never name what they seem to).
macro_rules! path_segment {
    () => {
        r#"[^\\/:*?"<>|]*[^\\/:*?"<>|. ]"#
    };
}

/// SQL Server database name: a regular identifier of at most 128 characters.
pub const DATABASE_NAME: &str = "^[A-Za-z_][A-Za-z0-9_]{0,127}$";

/// A host the operator connects to: a DNS name (RFC 1123) or an IPv4 address.
pub const HOST: &str = concat!("^", host!(), "$");

/// A fully qualified DNS name: at least two labels.
pub const FQDN: &str = concat!("^(", dns_label!(), "\\.)+", dns_last_label!(), "$");

/// A database mirroring endpoint URL, `TCP://<host>:<port>`.
pub const MIRRORING_ENDPOINT: &str = concat!("^TCP://", host!(), ":", port!(), "$");

/// A UNC share path, `\\host\share` with optional sub-folders and an optional trailing `\`.
pub const UNC_PATH: &str = concat!(
    r"^\\\\",
    host!(),
    r"\\",
    path_segment!(),
    r"(\\",
    path_segment!(),
    r")*\\?$"
);

/// A local Windows folder, `D:\folder` with optional sub-folders and an optional trailing `\`.
pub const WINDOWS_FOLDER: &str = concat!(
    r"^[A-Za-z]:\\",
    path_segment!(),
    r"(\\",
    path_segment!(),
    r")*\\?$"
);

/// A non-negative Go duration as `time.ParseDuration` reads it, e.g. `90s`, `1h30m`, `250ms`.
/// Each number has at most six digits before and nine after the point: far beyond any
/// sensible setting (999999h is over a century), and so every duration the schema admits fits
/// the clock's types in the operator and in the apiserver's CEL (`99999999999999999999h`
/// would overflow both).
pub const DURATION: &str = "^(0|([0-9]{1,6}(\\.[0-9]{1,9})?(ns|us|µs|μs|ms|s|m|h))+)$";

/// A Kubernetes object name that is a DNS-1123 subdomain (Secrets, ConfigMaps).
pub const DNS1123_SUBDOMAIN: &str =
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/// A DNS-1123 label: lower-case letters, digits and inner hyphens (site names).
pub const DNS1123_LABEL: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

/// An instance name as `@@SERVERNAME` reports it: a machine name, optionally followed by
/// `\<instance>` for a named instance (1 to 16 characters, starting with a letter, `_` or `&`).
pub const INSTANCE_NAME: &str = concat!("^", dns_name!(), r"(\\[A-Za-z_&][A-Za-z0-9_$&]{0,15})?$");

/// Longest DNS name (RFC 1035 section 2.3.4) and Kubernetes subdomain name.
pub const MAX_DNS_NAME_LEN: u32 = 253;
/// Longest DNS label, and so the longest site name.
pub const MAX_LABEL_LEN: u32 = 63;
/// Longest instance name: a DNS name, a backslash and a 16-character instance name.
pub const MAX_INSTANCE_NAME_LEN: u32 = MAX_DNS_NAME_LEN + 17;
/// Longest mirroring endpoint: `TCP://`, a DNS name, `:` and five digits.
pub const MAX_ENDPOINT_LEN: u32 = MAX_DNS_NAME_LEN + 12;
/// Windows' classic MAX_PATH, which SQL Server Agent's log-shipping jobs are bound by.
pub const MAX_PATH_LEN: u32 = 260;
/// Longest duration text accepted; far beyond any sensible value, it bounds CEL cost.
pub const MAX_DURATION_LEN: u32 = 64;
/// At most eight active Persistent Chat servers serve a pool.
pub const MAX_CHAT_SERVERS: u32 = 8;
/// Two sites of at most two instances each.
pub const MAX_INSTANCES_IN_POOL: u32 = 4;

fn compile(pattern: &str) -> Regex {
    // The patterns are constants checked by this module's tests, so a failure here is a bug in
    // this file, not something a user can cause.
    Regex::new(pattern).unwrap_or_else(|e| panic!("built-in pattern {pattern:?} is invalid: {e}"))
}

/// The compiled form of each pattern, built once.
pub(crate) struct Compiled {
    pub database_name: Regex,
    pub host: Regex,
    pub fqdn: Regex,
    pub mirroring_endpoint: Regex,
    pub unc_path: Regex,
    pub windows_folder: Regex,
    pub dns1123_subdomain: Regex,
    pub dns1123_label: Regex,
    pub instance_name: Regex,
    pub duration: Regex,
}

pub(crate) static COMPILED: LazyLock<Compiled> = LazyLock::new(|| Compiled {
    database_name: compile(DATABASE_NAME),
    host: compile(HOST),
    fqdn: compile(FQDN),
    mirroring_endpoint: compile(MIRRORING_ENDPOINT),
    unc_path: compile(UNC_PATH),
    windows_folder: compile(WINDOWS_FOLDER),
    dns1123_subdomain: compile(DNS1123_SUBDOMAIN),
    dns1123_label: compile(DNS1123_LABEL),
    instance_name: compile(INSTANCE_NAME),
    duration: compile(DURATION),
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_compiles() {
        for p in [
            DATABASE_NAME,
            HOST,
            FQDN,
            MIRRORING_ENDPOINT,
            UNC_PATH,
            WINDOWS_FOLDER,
            DURATION,
            DNS1123_SUBDOMAIN,
            DNS1123_LABEL,
            INSTANCE_NAME,
        ] {
            assert!(Regex::new(p).is_ok(), "pattern {p:?} does not compile");
        }
    }
}
