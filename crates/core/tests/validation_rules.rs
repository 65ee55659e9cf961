//! `api::validate`: each rule accepts a good spec and rejects a bad one at the right path, and
//! every violation is reported at once.

mod support;

use pchat_core::Error;
use pchat_core::api::validate;
use serde_json::{Value, json};
use support::{pool, pool_with, spec_of};

fn errors_of(manifest: &Value) -> Option<Error> {
    validate(&spec_of(manifest)).err()
}

/// Asserts that `manifest` has no violation, showing them all if it has.
fn assert_valid(manifest: &Value) {
    if let Some(e) = errors_of(manifest) {
        panic!("the spec is rejected:\n{e}");
    }
}

/// Asserts that `pass` leaves the example pool valid and that `fail` makes it invalid with a
/// violation at exactly `path` (and nowhere else).
fn check(path: &str, pass: impl FnOnce(&mut Value), fail: impl FnOnce(&mut Value)) {
    let good = pool_with(pass);
    if let Some(e) = errors_of(&good) {
        panic!("the passing case is rejected:\n{e}");
    }
    let bad = pool_with(fail);
    let errors = errors_of(&bad).unwrap_or_else(|| panic!("the failing case is accepted ({path})"));
    let paths: Vec<&str> = errors
        .violations()
        .iter()
        .map(|v| v.path.as_str())
        .collect();
    assert_eq!(paths, vec![path], "unexpected violations:\n{errors}");
}

fn spec(p: &mut Value) -> &mut Value {
    &mut p["spec"]
}

fn site(p: &mut Value, i: usize) -> &mut Value {
    &mut p["spec"]["sites"][i]
}

fn inst(p: &mut Value, s: usize, i: usize) -> &mut Value {
    &mut p["spec"]["sites"][s]["instances"][i]
}

#[test]
fn example_pool_is_valid() {
    assert_valid(&pool());
}

#[test]
fn pool_fqdn_must_be_a_fully_qualified_dns_name() {
    check(
        "spec.poolFqdn",
        |p| spec(p)["poolFqdn"] = json!("PCHAT.contoso.com"),
        |p| spec(p)["poolFqdn"] = json!("atl-cs-001"),
    );
}

#[test]
fn pool_fqdn_must_not_exceed_253_characters() {
    // Labels of 63 characters: 3 of them and `.com` make 195 characters, 4 make 259.
    let name = |labels: usize| format!("{}.com", vec!["a".repeat(63); labels].join("."));
    check(
        "spec.poolFqdn",
        |p| spec(p)["poolFqdn"] = json!(name(3)),
        |p| spec(p)["poolFqdn"] = json!(name(4)),
    );
}

#[test]
fn primary_site_must_name_a_defined_site() {
    check(
        "spec.primarySite",
        |p| spec(p)["primarySite"] = json!("dallas"),
        |p| spec(p)["primarySite"] = json!("houston"),
    );
}

#[test]
fn home_site_must_name_a_defined_site() {
    check(
        "spec.homeSite",
        |p| spec(p)["homeSite"] = json!("dallas"),
        |p| spec(p)["homeSite"] = json!("houston"),
    );
}

#[test]
fn site_references_must_be_dns_labels() {
    check(
        "spec.primarySite",
        |p| spec(p)["primarySite"] = json!("atlanta"),
        |p| spec(p)["primarySite"] = json!("Atlanta"),
    );
}

#[test]
fn chat_database_name_must_be_a_sql_identifier() {
    check(
        "spec.databases.chat",
        |p| spec(p)["databases"]["chat"] = json!("_mgc2"),
        |p| spec(p)["databases"]["chat"] = json!("2mgc"),
    );
}

#[test]
fn compliance_database_name_must_be_a_sql_identifier() {
    check(
        "spec.databases.compliance",
        |p| spec(p)["databases"]["compliance"] = json!(null),
        |p| spec(p)["databases"]["compliance"] = json!("mgc-comp"),
    );
}

#[test]
fn database_names_must_not_exceed_128_characters() {
    check(
        "spec.databases.chat",
        |p| spec(p)["databases"]["chat"] = json!("m".repeat(128)),
        |p| spec(p)["databases"]["chat"] = json!("m".repeat(129)),
    );
}

#[test]
fn chat_and_compliance_databases_must_differ_ignoring_case() {
    check(
        "spec.databases.compliance",
        |p| spec(p)["databases"]["compliance"] = json!("mgccomp"),
        |p| spec(p)["databases"]["compliance"] = json!("MGC"),
    );
}

#[test]
fn pool_must_have_exactly_two_sites() {
    check(
        "spec.sites",
        |p| spec(p)["sites"][1]["name"] = json!("houston"),
        |p| {
            let mut third = site(p, 1).clone();
            third["name"] = json!("houston");
            for (i, inst) in third["instances"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
                .enumerate()
            {
                inst["name"] = json!(format!("hou-sql{i}"));
                inst["host"] = json!(format!("hou-sql{i}.litwareinc.com"));
                inst["mirroringEndpoint"] = json!(format!("TCP://hou-sql{i}.litwareinc.com:5022"));
            }
            third["chatServers"] = json!([]);
            spec(p)["sites"].as_array_mut().unwrap().push(third);
        },
    );
}

#[test]
fn pool_with_one_site_is_rejected() {
    let one = pool_with(|p| {
        spec(p)["sites"].as_array_mut().unwrap().pop();
    });
    let errors = errors_of(&one).expect("one site is rejected");
    assert!(errors.has_path("spec.sites"), "{errors}");
}

#[test]
fn site_names_must_be_unique() {
    check(
        "spec.sites[1].name",
        |p| site(p, 1)["name"] = json!("houston"),
        |p| site(p, 1)["name"] = json!("atlanta"),
    );
}

#[test]
fn site_name_must_be_a_dns_label() {
    let bad = pool_with(|p| site(p, 1)["name"] = json!("Dallas_DC"));
    let errors = errors_of(&bad).expect("an invalid site name is rejected");
    assert!(errors.has_path("spec.sites[1].name"), "{errors}");
    let good = pool_with(|p| {
        site(p, 1)["name"] = json!("dallas-2");
        spec(p)["primarySite"] = json!("dallas-2");
    });
    assert_valid(&good);
}

#[test]
fn site_must_have_one_or_two_instances() {
    check(
        "spec.sites[1].instances",
        |p| {
            site(p, 1)["instances"].as_array_mut().unwrap().pop();
        },
        |p| site(p, 1)["instances"] = json!([]),
    );
}

#[test]
fn site_must_not_have_three_instances() {
    check(
        "spec.sites[1].instances",
        |_| {},
        |p| {
            site(p, 1)["instances"].as_array_mut().unwrap().push(json!({
                "name": "dal-sql3",
                "host": "dal-sql3.litwareinc.com",
                "mirroringEndpoint": "TCP://dal-sql3.litwareinc.com:5022"
            }));
        },
    );
}

#[test]
fn instance_name_must_be_a_server_name() {
    check(
        "spec.sites[1].instances[0].name",
        |p| inst(p, 1, 0)["name"] = json!("DAL-SQL1\\PCHAT"),
        |p| inst(p, 1, 0)["name"] = json!("dal sql1"),
    );
}

#[test]
fn instance_names_must_be_unique_across_the_pool() {
    check(
        "spec.sites[1].instances[0].name",
        |p| inst(p, 1, 0)["name"] = json!("dal-sql9"),
        |p| inst(p, 1, 0)["name"] = json!("ATL-SQL1"),
    );
}

#[test]
fn host_must_be_a_dns_name_or_ipv4_address() {
    check(
        "spec.sites[0].instances[0].host",
        |p| inst(p, 0, 0)["host"] = json!("10.0.0.5"),
        |p| inst(p, 0, 0)["host"] = json!("999.1.1.1"),
    );
    check(
        "spec.sites[0].instances[0].host",
        |p| inst(p, 0, 0)["host"] = json!("atl-sql1"),
        |p| inst(p, 0, 0)["host"] = json!("atl_sql1.litwareinc.com"),
    );
}

#[test]
fn port_must_be_between_1_and_65535() {
    check(
        "spec.sites[0].instances[1].port",
        |p| inst(p, 0, 1)["port"] = json!(65535),
        |p| inst(p, 0, 1)["port"] = json!(0),
    );
}

#[test]
fn host_and_port_must_be_unique_across_the_pool() {
    check(
        "spec.sites[1].instances[0].host",
        |p| {
            inst(p, 1, 0)["host"] = json!("atl-sql1.litwareinc.com");
            inst(p, 1, 0)["port"] = json!(1434);
        },
        |p| inst(p, 1, 0)["host"] = json!("ATL-SQL1.litwareinc.com"),
    );
}

#[test]
fn mirroring_endpoint_must_be_a_tcp_url_with_a_port() {
    check(
        "spec.sites[1].instances[1].mirroringEndpoint",
        |p| inst(p, 1, 1)["mirroringEndpoint"] = json!("TCP://10.1.2.3:5023"),
        |p| inst(p, 1, 1)["mirroringEndpoint"] = json!("TCP://dal-sql2.litwareinc.com"),
    );
    check(
        "spec.sites[1].instances[1].mirroringEndpoint",
        |p| inst(p, 1, 1)["mirroringEndpoint"] = json!("TCP://dal-sql2:65535"),
        |p| inst(p, 1, 1)["mirroringEndpoint"] = json!("TCP://dal-sql2:65536"),
    );
}

#[test]
fn mirroring_endpoints_must_be_unique_across_the_pool() {
    check(
        "spec.sites[1].instances[1].mirroringEndpoint",
        |p| inst(p, 1, 1)["mirroringEndpoint"] = json!("TCP://dal-sql2.litwareinc.com:5023"),
        |p| inst(p, 1, 1)["mirroringEndpoint"] = json!("TCP://ATL-SQL1.litwareinc.com:5022"),
    );
}

#[test]
fn backup_share_must_be_a_unc_path() {
    check(
        "spec.sites[1].backupShare",
        |p| site(p, 1)["backupShare"] = json!("\\\\dal-fs.litwareinc.com\\pchat$\\mgc\\"),
        |p| site(p, 1)["backupShare"] = json!("dal-fs\\pchat-ls"),
    );
    check(
        "spec.sites[1].backupShare",
        |p| site(p, 1)["backupShare"] = json!("\\\\10.1.2.3\\pchat-ls"),
        |p| site(p, 1)["backupShare"] = json!("\\\\dal-fs\\pchat-ls\\..\\other"),
    );
}

#[test]
fn copy_destination_must_be_a_windows_folder() {
    check(
        "spec.sites[0].copyDestination",
        |p| site(p, 0)["copyDestination"] = json!("E:\\log shipping\\mgc\\"),
        |p| site(p, 0)["copyDestination"] = json!("/var/pchat-ls-copy"),
    );
    check(
        "spec.sites[0].copyDestination",
        |p| site(p, 0)["copyDestination"] = json!("D:\\x"),
        |p| site(p, 0)["copyDestination"] = json!("D:\\"),
    );
}

#[test]
fn windows_paths_must_not_exceed_260_characters() {
    check(
        "spec.sites[0].copyDestination",
        |p| site(p, 0)["copyDestination"] = json!(format!("D:\\{}", "a".repeat(257))),
        |p| site(p, 0)["copyDestination"] = json!(format!("D:\\{}", "a".repeat(258))),
    );
}

#[test]
fn chat_servers_must_be_fully_qualified_names() {
    check(
        "spec.sites[1].chatServers[0]",
        |p| site(p, 1)["chatServers"][0] = json!("DAL-PC1.litwareinc.com"),
        |p| site(p, 1)["chatServers"][0] = json!("dal-pc1"),
    );
}

#[test]
fn chat_servers_must_not_repeat_within_a_site() {
    check(
        "spec.sites[1].chatServers[2]",
        |p| site(p, 1)["chatServers"] = json!([]),
        |p| {
            site(p, 1)["chatServers"]
                .as_array_mut()
                .unwrap()
                .push(json!("DAL-PC1.litwareinc.com"));
        },
    );
}

#[test]
fn chat_server_must_not_be_listed_in_two_sites() {
    check(
        "spec.sites[1].chatServers[2]",
        |p| {
            site(p, 1)["chatServers"]
                .as_array_mut()
                .unwrap()
                .push(json!("dal-pc3.litwareinc.com"));
        },
        |p| {
            site(p, 1)["chatServers"]
                .as_array_mut()
                .unwrap()
                .push(json!("atl-pc1.litwareinc.com"));
        },
    );
}

#[test]
fn site_has_at_most_eight_chat_servers() {
    let servers = |n: usize| {
        json!(
            (1..=n)
                .map(|i| format!("dal-pc{i}.litwareinc.com"))
                .collect::<Vec<_>>()
        )
    };
    check(
        "spec.sites[1].chatServers",
        |p| site(p, 1)["chatServers"] = servers(8),
        |p| site(p, 1)["chatServers"] = servers(9),
    );
}

#[test]
fn durations_must_not_be_negative() {
    check(
        "spec.failover.unreachableAfter",
        |p| spec(p)["failover"]["unreachableAfter"] = json!("0s"),
        |p| spec(p)["failover"]["unreachableAfter"] = json!("-1m"),
    );
}

#[test]
fn backup_interval_must_be_positive() {
    check(
        "spec.logShipping.backupInterval",
        |p| spec(p)["logShipping"]["backupInterval"] = json!("1m"),
        |p| spec(p)["logShipping"]["backupInterval"] = json!("0s"),
    );
}

#[test]
fn backup_interval_is_at_least_the_10_seconds_sql_server_agent_schedules() {
    check(
        "spec.logShipping.backupInterval",
        |p| spec(p)["logShipping"]["backupInterval"] = json!("10s"),
        |p| spec(p)["logShipping"]["backupInterval"] = json!("9s"),
    );
    let mut short = pool();
    spec(&mut short)["logShipping"]["backupInterval"] = json!("9s");
    let message = errors_of(&short).expect("9s is refused").to_string();
    assert!(message.contains("SQL Server Agent"), "{message}");
}

#[test]
fn backup_retention_must_be_positive() {
    check(
        "spec.logShipping.backupRetention",
        |p| spec(p)["logShipping"]["backupRetention"] = json!("24h"),
        |p| spec(p)["logShipping"]["backupRetention"] = json!("0"),
    );
}

#[test]
fn rpo_target_must_be_at_least_backup_interval() {
    check(
        "spec.logShipping.rpoTarget",
        |p| spec(p)["logShipping"]["rpoTarget"] = json!("5m"),
        |p| spec(p)["logShipping"]["rpoTarget"] = json!("4m59s"),
    );
}

#[test]
fn negative_rpo_target_is_reported_once() {
    check(
        "spec.logShipping.rpoTarget",
        |_| {},
        |p| spec(p)["logShipping"]["rpoTarget"] = json!("-15m"),
    );
}

#[test]
fn max_data_loss_must_be_positive() {
    check(
        "spec.failover.maxDataLoss",
        |p| spec(p)["failover"]["maxDataLoss"] = json!("1s"),
        |p| spec(p)["failover"]["maxDataLoss"] = json!("0s"),
    );
}

#[test]
fn drain_timeout_must_be_positive() {
    check(
        "spec.failover.drainTimeout",
        |p| spec(p)["failover"]["drainTimeout"] = json!("500ms"),
        |p| spec(p)["failover"]["drainTimeout"] = json!("0ms"),
    );
}

#[test]
fn connect_and_command_timeouts_must_be_positive() {
    check(
        "spec.timeouts.connect",
        |p| spec(p)["timeouts"] = json!({"connect": "1s", "command": "1s"}),
        |p| spec(p)["timeouts"] = json!({"connect": "0s", "command": "1s"}),
    );
    check(
        "spec.timeouts.command",
        |_| {},
        |p| spec(p)["timeouts"] = json!({"connect": "1s", "command": "-1s"}),
    );
}

#[test]
fn approve_overwrite_must_name_existing_instances() {
    check(
        "spec.failover.approveOverwrite[0]",
        |p| spec(p)["failover"]["approveOverwrite"] = json!(["DAL-SQL1", "atl-sql2"]),
        |p| spec(p)["failover"]["approveOverwrite"] = json!(["dal-sql9"]),
    );
}

#[test]
fn approve_overwrite_must_not_repeat_a_name() {
    check(
        "spec.failover.approveOverwrite[1]",
        |p| spec(p)["failover"]["approveOverwrite"] = json!(["dal-sql1"]),
        |p| spec(p)["failover"]["approveOverwrite"] = json!(["dal-sql1", "DAL-SQL1"]),
    );
}

#[test]
fn approve_overwrite_lists_at_most_four_names() {
    let four = pool_with(|p| {
        spec(p)["failover"]["approveOverwrite"] =
            json!(["atl-sql1", "atl-sql2", "dal-sql1", "dal-sql2"])
    });
    assert_valid(&four);
    // A fifth name is necessarily a repeat or unknown as well: only the count is asserted here.
    let five = pool_with(|p| {
        spec(p)["failover"]["approveOverwrite"] =
            json!(["atl-sql1", "atl-sql2", "dal-sql1", "dal-sql2", "dal-sql1"])
    });
    let errors = errors_of(&five).expect("five names are rejected");
    assert!(
        errors.has_path("spec.failover.approveOverwrite"),
        "{errors}"
    );
}

#[test]
fn sql_credentials_secret_must_be_a_dns1123_subdomain() {
    check(
        "spec.sqlCredentialsSecret",
        |p| spec(p)["sqlCredentialsSecret"] = json!("pchat.sql-login"),
        |p| spec(p)["sqlCredentialsSecret"] = json!("PChat_SQL"),
    );
}

#[test]
fn ca_secret_must_be_a_dns1123_subdomain() {
    check(
        "spec.tls.caSecret",
        |p| spec(p)["tls"]["caSecret"] = json!("pchat-sql-ca"),
        |p| spec(p)["tls"]["caSecret"] = json!("pchat-sql-ca!"),
    );
}

#[test]
fn trust_server_certificate_excludes_a_ca_secret() {
    check(
        "spec.tls.trustServerCertificate",
        |p| spec(p)["tls"] = json!({"encrypt": "Strict", "trustServerCertificate": true}),
        |p| spec(p)["tls"] = json!({"trustServerCertificate": true, "caSecret": "pchat-sql-ca"}),
    );
}

#[test]
fn host_name_in_certificate_must_be_a_host_name() {
    check(
        "spec.tls.hostNameInCertificate",
        |p| spec(p)["tls"]["hostNameInCertificate"] = json!("chat-sql.contoso.com"),
        |p| spec(p)["tls"]["hostNameInCertificate"] = json!("chat sql"),
    );
}

#[test]
fn empty_required_text_is_reported_as_empty() {
    let bad = pool_with(|p| spec(p)["sqlCredentialsSecret"] = json!(""));
    let errors = errors_of(&bad).expect("an empty secret name is rejected");
    assert_eq!(
        errors.to_string(),
        "spec.sqlCredentialsSecret: must not be empty; expected a Kubernetes object name: \
         lower-case letters, digits, inner hyphens and dots"
    );
}

#[test]
fn all_violations_are_reported_at_once() {
    let bad = pool_with(|p| {
        spec(p)["primarySite"] = json!("houston");
        inst(p, 1, 0)["port"] = json!(0);
        site(p, 0)["backupShare"] = json!("C:\\share");
        spec(p)["logShipping"]["rpoTarget"] = json!("1m");
        spec(p)["failover"]["approveOverwrite"] = json!(["nobody"]);
    });
    let errors = errors_of(&bad).expect("the spec is rejected");
    let paths: Vec<&str> = errors
        .violations()
        .iter()
        .map(|v| v.path.as_str())
        .collect();
    assert_eq!(
        paths,
        vec![
            "spec.primarySite",
            "spec.sites[0].backupShare",
            "spec.sites[1].instances[0].port",
            "spec.logShipping.rpoTarget",
            "spec.failover.approveOverwrite[0]",
        ]
    );
}

#[test]
fn validation_errors_display_one_violation_per_line() {
    let bad = pool_with(|p| {
        spec(p)["primarySite"] = json!("houston");
        inst(p, 1, 0)["port"] = json!(0);
    });
    let text = errors_of(&bad).expect("the spec is rejected").to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        vec![
            "spec.primarySite: \"houston\" is not the name of one of spec.sites (defined: atlanta, dallas)",
            "spec.sites[1].instances[0].port: must be between 1 and 65535",
        ]
    );
}
