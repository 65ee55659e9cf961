//! The generated CRD's `pattern`s, compiled with the `regex` crate (whose syntax matches the API
//! server's RE2 for these patterns) and tried on good and bad values: the schema's own patterns are
//! tested here, not copies of them.

mod support;

use regex::Regex;
use serde_json::Value;
use support::crd_schema;

const SPEC: &str = "/properties/spec/properties";
const SITE: &str = "/properties/spec/properties/sites/items/properties";
const INSTANCE: &str =
    "/properties/spec/properties/sites/items/properties/instances/items/properties";

fn node(pointer: &str) -> Value {
    crd_schema()
        .pointer(pointer)
        .cloned()
        .unwrap_or_else(|| panic!("the CRD has no schema node at {pointer}"))
}

/// The pattern of the schema node at `pointer`, compiled.
fn pattern(pointer: &str) -> Regex {
    let node = node(pointer);
    let text = node["pattern"]
        .as_str()
        .unwrap_or_else(|| panic!("the schema node at {pointer} has no pattern"));
    Regex::new(text).unwrap_or_else(|e| panic!("the pattern at {pointer} does not compile: {e}"))
}

fn assert_accepts(pointer: &str, good: &[&str], bad: &[&str]) {
    let re = pattern(pointer);
    for g in good {
        assert!(re.is_match(g), "{pointer} rejects {g:?}, which is valid");
    }
    for b in bad {
        assert!(!re.is_match(b), "{pointer} accepts {b:?}, which is invalid");
    }
}

#[test]
fn database_name_pattern_accepts_sql_identifiers_only() {
    let long = "m".repeat(129);
    for db in ["chat", "compliance"] {
        assert_accepts(
            &format!("{SPEC}/databases/properties/{db}"),
            &["mgc", "mgccomp", "_x", "MGC_2", &"m".repeat(128)],
            &[
                "", "2mgc", "mgc-comp", "mgc comp", "mgc;DROP", "[mgc]", &long,
            ],
        );
    }
}

#[test]
fn host_pattern_accepts_dns_names_and_ipv4_addresses() {
    assert_accepts(
        &format!("{INSTANCE}/host"),
        &[
            "atl-sql1",
            "atl-sql1.litwareinc.com",
            "ATL-SQL1.LitwareInc.com",
            "127.0.0.1",
            "255.255.255.255",
            "10.0.0.5",
            "9sql.litwareinc.com",
        ],
        &[
            "",
            "-atl",
            "atl-.litwareinc.com",
            "atl_sql1",
            "atl..com",
            "atl.com.",
            "256.1.1.1",
            "999.1.1.1",
            "1.2.3",
            "01.2.3.4",
            "atl-sql1:1433",
            &"a".repeat(64),
        ],
    );
}

#[test]
fn fqdn_pattern_requires_at_least_two_labels() {
    for pointer in [
        format!("{SPEC}/poolFqdn"),
        format!("{SITE}/chatServers/items"),
    ] {
        assert_accepts(
            &pointer,
            &["atl-cs-001.litwareinc.com", "atl-pc1.litwareinc.com", "a.b"],
            &[
                "",
                "atl-cs-001",
                "10.0.0.1",
                "atl pc1.litwareinc.com",
                "atl.1",
            ],
        );
    }
}

#[test]
fn mirroring_endpoint_pattern_accepts_tcp_urls_with_a_port() {
    assert_accepts(
        &format!("{INSTANCE}/mirroringEndpoint"),
        &[
            "TCP://atl-sql1.litwareinc.com:5022",
            "TCP://atl-sql1:5022",
            "TCP://10.1.2.3:1",
            "TCP://h:65535",
        ],
        &[
            "",
            "TCP://atl-sql1",
            "TCP://atl-sql1:0",
            "TCP://atl-sql1:65536",
            "TCP://atl-sql1:05022",
            "http://atl-sql1:5022",
            "atl-sql1:5022",
            "TCP://atl_sql1:5022",
            "TCP://atl-sql1:5022/",
        ],
    );
}

#[test]
fn unc_path_pattern_accepts_share_paths() {
    assert_accepts(
        &format!("{SITE}/backupShare"),
        &[
            r"\\atl-fs\pchat-ls",
            r"\\atl-fs\pchat-ls\",
            r"\\atl-fs.litwareinc.com\pchat$\mgc\logs",
            r"\\10.1.2.3\share",
            r"\\atl-fs\log shipping",
        ],
        &[
            "",
            r"\\atl-fs",
            r"\\atl-fs\",
            r"atl-fs\pchat-ls",
            r"\atl-fs\pchat-ls",
            r"D:\pchat-ls",
            r"\\atl-fs\pchat-ls\..\other",
            r"\\atl-fs\pchat?",
            "//atl-fs/pchat-ls",
            r"\\atl-fs\\pchat-ls",
        ],
    );
}

#[test]
fn windows_folder_pattern_accepts_local_folders() {
    assert_accepts(
        &format!("{SITE}/copyDestination"),
        &[r"D:\pchat-ls-copy", r"e:\log shipping\mgc\", r"D:\a"],
        &[
            "",
            r"D:\",
            "D:",
            r"D:pchat",
            "/var/pchat",
            r"\\atl-fs\pchat-ls",
            r"D:\pchat\.",
            r"DD:\pchat",
            r"D:\pc|hat",
        ],
    );
}

#[test]
fn duration_pattern_accepts_non_negative_go_durations() {
    let pointers = [
        format!("{SPEC}/logShipping/properties/backupInterval"),
        format!("{SPEC}/logShipping/properties/rpoTarget"),
        format!("{SPEC}/logShipping/properties/backupRetention"),
        format!("{SPEC}/failover/properties/maxDataLoss"),
        format!("{SPEC}/failover/properties/drainTimeout"),
        format!("{SPEC}/failover/properties/unreachableAfter"),
        format!("{SPEC}/timeouts/properties/connect"),
        format!("{SPEC}/timeouts/properties/command"),
    ];
    for pointer in &pointers {
        assert_accepts(
            pointer,
            &[
                "5m", "1h30m", "250ms", "1.5h", "0", "100µs", "10us", "900s", "72h",
            ],
            &["", "-5m", "5", "5 m", "1d", "m", "+5m", "5m-", "1.5", ".5s"],
        );
    }
}

#[test]
fn durations_the_pattern_accepts_parse_as_kubernetes_durations() {
    let re = pattern(&format!("{SPEC}/failover/properties/drainTimeout"));
    for text in ["5m", "1h30m", "250ms", "1.5h", "0", "100µs", "10us", "900s"] {
        assert!(re.is_match(text));
        let d: kube::core::Duration = text
            .parse()
            .unwrap_or_else(|e| panic!("{text:?} matches the pattern but does not parse: {e}"));
        assert!(!d.is_negative(), "{text:?} parses as negative");
    }
}

#[test]
fn secret_name_pattern_accepts_dns1123_subdomains() {
    for pointer in [
        format!("{SPEC}/sqlCredentialsSecret"),
        format!("{SPEC}/tls/properties/caSecret"),
    ] {
        assert_accepts(
            &pointer,
            &["pchat-sql", "pchat.sql-ca", "a", "0pchat"],
            &[
                "",
                "PChat",
                "pchat_sql",
                "-pchat",
                "pchat-",
                "pchat..sql",
                "pchat sql",
            ],
        );
    }
}

#[test]
fn site_name_pattern_accepts_dns1123_labels() {
    for pointer in [
        format!("{SITE}/name"),
        format!("{SPEC}/primarySite"),
        format!("{SPEC}/homeSite"),
    ] {
        assert_accepts(
            &pointer,
            &["atlanta", "dallas-2", "dc1"],
            &["", "Atlanta", "dallas.tx", "dallas_2", "-dallas", "dallas-"],
        );
    }
}

#[test]
fn instance_name_pattern_accepts_server_names() {
    for pointer in [
        format!("{INSTANCE}/name"),
        format!("{SPEC}/failover/properties/approveOverwrite/items"),
    ] {
        assert_accepts(
            &pointer,
            &[
                "atl-sql1",
                r"ATL-SQL1\PCHAT",
                r"atl-sql1.litwareinc.com\_pc$1",
                "ATL-SQL1",
            ],
            &[
                "",
                "atl sql1",
                r"atl-sql1\",
                r"atl-sql1\1pchat",
                r"atl-sql1\PCHATINSTANCENAME17",
                r"\PCHAT",
                "atl-sql1;",
            ],
        );
    }
}

#[test]
fn port_range_is_1_to_65535() {
    let port = node(&format!("{INSTANCE}/port"));
    assert_eq!(port["minimum"].as_f64(), Some(1.0));
    assert_eq!(port["maximum"].as_f64(), Some(65535.0));
}

#[test]
fn list_sizes_are_bounded() {
    let sites = node(&format!("{SPEC}/sites"));
    assert_eq!(
        (sites["minItems"].as_u64(), sites["maxItems"].as_u64()),
        (Some(2), Some(2))
    );
    let instances = node(&format!("{SITE}/instances"));
    assert_eq!(
        (
            instances["minItems"].as_u64(),
            instances["maxItems"].as_u64()
        ),
        (Some(1), Some(2))
    );
    let servers = node(&format!("{SITE}/chatServers"));
    assert_eq!(servers["maxItems"].as_u64(), Some(8));
    assert_eq!(servers["x-kubernetes-list-type"], "set");
    let approve = node(&format!("{SPEC}/failover/properties/approveOverwrite"));
    assert_eq!(approve["maxItems"].as_u64(), Some(4));
    assert_eq!(approve["x-kubernetes-list-type"], "set");
}

/// Every string in the schema under `node`, with its path, that has no `maxLength`.
fn unbounded_strings(node: &Value, path: &str, out: &mut Vec<String>) {
    if node["type"] == "string" && node.get("enum").is_none() && node.get("maxLength").is_none() {
        out.push(path.to_string());
    }
    if let Some(props) = node["properties"].as_object() {
        for (k, v) in props {
            unbounded_strings(v, &format!("{path}.{k}"), out);
        }
    }
    if let Some(items) = node.get("items") {
        unbounded_strings(items, &format!("{path}[*]"), out);
    }
}

#[test]
fn every_spec_string_has_a_length_bound() {
    // Length bounds keep the API server's CEL cost estimate within budget.
    let mut unbounded = Vec::new();
    unbounded_strings(&node("/properties/spec"), "spec", &mut unbounded);
    assert_eq!(unbounded, Vec::<String>::new(), "strings without maxLength");
}

#[test]
fn status_is_not_constrained() {
    let status = serde_json::to_string(&node("/properties/status")).unwrap();
    assert!(!status.contains("\"pattern\""), "status carries a pattern");
    assert!(
        !status.contains("x-kubernetes-validations"),
        "status carries CEL rules"
    );
}

/// Every `default` string in the schema under `node` that has a `pattern`, with its path.
fn defaults_with_patterns(node: &Value, path: &str, out: &mut Vec<(String, String, String)>) {
    if let (Some(default), Some(pattern)) = (node["default"].as_str(), node["pattern"].as_str()) {
        out.push((path.to_string(), default.to_string(), pattern.to_string()));
    }
    if let Some(props) = node["properties"].as_object() {
        for (k, v) in props {
            defaults_with_patterns(v, &format!("{path}.{k}"), out);
        }
    }
}

#[test]
fn schema_defaults_match_their_own_patterns() {
    // The API server refuses a CRD whose defaults break its schema.
    let mut defaults = Vec::new();
    defaults_with_patterns(&node("/properties/spec"), "spec", &mut defaults);
    assert!(
        defaults.len() >= 10,
        "only {} patterned defaults found",
        defaults.len()
    );
    for (path, default, pattern) in defaults {
        let re = Regex::new(&pattern).expect("the pattern compiles");
        assert!(
            re.is_match(&default),
            "{path}: default {default:?} breaks {pattern:?}"
        );
    }
}

/// Every `format` in the schema, with its JSON pointer.
fn formats(node: &Value, pointer: &str, out: &mut Vec<(String, String)>) {
    match node {
        Value::Object(fields) => {
            for (key, child) in fields {
                let child_pointer = format!("{pointer}/{key}");
                match (key.as_str(), child) {
                    ("format", Value::String(format)) => out.push((child_pointer, format.clone())),
                    _ => formats(child, &child_pointer, out),
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                formats(item, &format!("{pointer}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_format_in_the_schema_is_one_the_api_server_knows() {
    // kube-apiserver warns "unrecognized format" for schemars' uint16/uint32/uint64 on every
    // apply of the CRD; these are the ones it knows among those a Rust type would produce.
    let known = [
        "int32",
        "int64",
        "float",
        "double",
        "byte",
        "date",
        "date-time",
    ];
    let mut found = Vec::new();
    formats(&crd_schema(), "", &mut found);
    assert!(!found.is_empty(), "the schema has formats to check");
    let unknown: Vec<_> = found
        .iter()
        .filter(|(_, format)| !known.contains(&format.as_str()))
        .collect();
    assert!(unknown.is_empty(), "{unknown:?}");
}
