//! The CRD's own `x-kubernetes-validations` rules, evaluated offline with kube's CEL validator
//! (kube-cel) against the generated schema: each rule passes a good spec and fails a bad one with
//! its message, and every rule in the CRD is exercised by some failing case here.

mod support;

use std::collections::BTreeSet;

use kube::core::cel::{Validator, compile_schema, estimate_rule_cost};
use serde_json::{Value, json};
use support::{crd_schema, pool, pool_with};

/// A CEL rule's good and bad case, and the message it must fail with.
struct Case {
    name: &'static str,
    message: &'static str,
    field_path: &'static str,
    pass: fn(&mut Value),
    fail: fn(&mut Value),
}

fn spec(p: &mut Value) -> &mut Value {
    &mut p["spec"]
}

fn instance(p: &mut Value, site: usize, i: usize) -> &mut Value {
    &mut p["spec"]["sites"][site]["instances"][i]
}

const CASES: &[Case] = &[
    Case {
        name: "primary_site_must_name_a_defined_site",
        message: "spec.primarySite must be the name of one of spec.sites",
        field_path: "spec.primarySite",
        pass: |p| spec(p)["primarySite"] = json!("dallas"),
        fail: |p| spec(p)["primarySite"] = json!("houston"),
    },
    Case {
        name: "home_site_must_name_a_defined_site",
        message: "spec.homeSite must be the name of one of spec.sites",
        field_path: "spec.homeSite",
        pass: |p| spec(p)["homeSite"] = json!("dallas"),
        fail: |p| spec(p)["homeSite"] = json!("houston"),
    },
    Case {
        name: "site_names_must_be_unique",
        message: "spec.sites[*].name must be unique",
        field_path: "spec.sites",
        pass: |p| spec(p)["sites"][1]["name"] = json!("houston"),
        fail: |p| spec(p)["sites"][1]["name"] = json!("atlanta"),
    },
    Case {
        name: "instance_names_must_be_unique_across_sites",
        message: "spec.sites[*].instances[*].name must be unique across the pool (case-insensitive)",
        field_path: "spec.sites",
        pass: |p| instance(p, 1, 0)["name"] = json!("dal-sql9"),
        fail: |p| instance(p, 1, 0)["name"] = json!("ATL-SQL1"),
    },
    Case {
        name: "instance_names_must_be_unique_within_a_site",
        message: "spec.sites[*].instances[*].name must be unique across the pool (case-insensitive)",
        field_path: "spec.sites",
        pass: |p| instance(p, 0, 1)["name"] = json!("atl-sql3"),
        fail: |p| instance(p, 0, 1)["name"] = json!("atl-sql1"),
    },
    Case {
        name: "host_and_port_must_be_unique_across_the_pool",
        message: "spec.sites[*].instances[*] host:port pairs must be unique across the pool (case-insensitive)",
        field_path: "spec.sites",
        // The same host on another port is a second instance on that machine: allowed.
        pass: |p| {
            instance(p, 1, 0)["host"] = json!("atl-sql1.litwareinc.com");
            instance(p, 1, 0)["port"] = json!(1434);
        },
        fail: |p| instance(p, 1, 0)["host"] = json!("ATL-SQL1.litwareinc.com"),
    },
    Case {
        name: "host_and_port_must_be_unique_within_a_site_with_default_port",
        message: "spec.sites[*].instances[*] host:port pairs must be unique across the pool (case-insensitive)",
        field_path: "spec.sites",
        pass: |p| {
            // An omitted port is 1433 by default, as the API server fills it in.
            instance(p, 0, 1).as_object_mut().unwrap().remove("port");
        },
        fail: |p| {
            instance(p, 0, 1).as_object_mut().unwrap().remove("port");
            instance(p, 0, 1)["host"] = json!("atl-sql1.litwareinc.com");
        },
    },
    Case {
        name: "mirroring_endpoints_must_be_unique_across_the_pool",
        message: "spec.sites[*].instances[*].mirroringEndpoint must be unique across the pool (case-insensitive)",
        field_path: "spec.sites",
        pass: |p| {
            instance(p, 1, 1)["mirroringEndpoint"] = json!("TCP://dal-sql2.litwareinc.com:5023")
        },
        fail: |p| {
            instance(p, 1, 1)["mirroringEndpoint"] = json!("TCP://atl-sql1.litwareinc.com:5022")
        },
    },
    Case {
        name: "mirroring_endpoints_must_be_unique_within_a_site",
        message: "spec.sites[*].instances[*].mirroringEndpoint must be unique across the pool (case-insensitive)",
        field_path: "spec.sites",
        pass: |p| {
            instance(p, 0, 1)["mirroringEndpoint"] = json!("TCP://atl-sql1.litwareinc.com:5023")
        },
        fail: |p| {
            instance(p, 0, 1)["mirroringEndpoint"] = json!("tcp://ATL-SQL1.litwareinc.com:5022")
        },
    },
    Case {
        name: "host_and_port_must_be_unique_within_a_site_whatever_the_case",
        message: "spec.sites[*].instances[*] host:port pairs must be unique across the pool (case-insensitive)",
        field_path: "spec.sites",
        pass: |p| instance(p, 1, 1)["port"] = json!(1434),
        fail: |p| {
            instance(p, 1, 1)["host"] = json!("DAL-SQL1.litwareinc.com");
            instance(p, 1, 1)["port"] = instance(p, 1, 0)["port"].clone();
        },
    },
    Case {
        name: "chat_server_must_not_be_listed_in_two_sites",
        message: "spec.sites[*].chatServers: a chat server must not be listed in both sites",
        field_path: "spec.sites",
        pass: |p| spec(p)["sites"][1]["chatServers"] = json!(["dal-pc3.litwareinc.com"]),
        fail: |p| spec(p)["sites"][1]["chatServers"] = json!(["Atl-PC1.litwareinc.com"]),
    },
    Case {
        name: "approve_overwrite_must_name_existing_instances",
        message: "spec.failover.approveOverwrite must list only names of instances in spec.sites",
        field_path: "spec.failover.approveOverwrite",
        pass: |p| spec(p)["failover"]["approveOverwrite"] = json!(["DAL-SQL1"]),
        fail: |p| spec(p)["failover"]["approveOverwrite"] = json!(["dal-sql9"]),
    },
    Case {
        name: "chat_and_compliance_databases_must_differ",
        message: "spec.databases.compliance must differ from spec.databases.chat",
        field_path: "spec.databases.compliance",
        // Null means compliance is not deployed: nothing to compare.
        pass: |p| spec(p)["databases"]["compliance"] = json!(null),
        fail: |p| spec(p)["databases"]["compliance"] = json!("mgc"),
    },
    Case {
        name: "trust_server_certificate_excludes_a_ca_secret",
        message: "spec.tls.trustServerCertificate: true turns certificate verification off, so the CA in spec.tls.caSecret would be ignored; set one or the other",
        field_path: "spec.tls.trustServerCertificate",
        pass: |p| spec(p)["tls"] = json!({"encrypt": "Required", "trustServerCertificate": true}),
        fail: |p| {
            spec(p)["tls"] = json!({"trustServerCertificate": true, "caSecret": "pchat-sql-ca"})
        },
    },
    Case {
        name: "rpo_target_must_be_at_least_backup_interval",
        message: "spec.logShipping.rpoTarget must be at least spec.logShipping.backupInterval",
        field_path: "spec.logShipping.rpoTarget",
        pass: |p| spec(p)["logShipping"]["rpoTarget"] = json!("300s"),
        fail: |p| spec(p)["logShipping"]["rpoTarget"] = json!("4m59s"),
    },
    Case {
        name: "backup_interval_must_be_positive",
        message: "spec.logShipping.backupInterval must be at least 10s: SQL Server Agent refuses a job schedule of fewer than 10 seconds",
        field_path: "spec.logShipping.backupInterval",
        pass: |p| spec(p)["logShipping"]["backupInterval"] = json!("10s"),
        fail: |p| spec(p)["logShipping"]["backupInterval"] = json!("9s"),
    },
    Case {
        name: "backup_retention_must_be_positive",
        message: "spec.logShipping.backupRetention must be greater than zero",
        field_path: "spec.logShipping.backupRetention",
        pass: |p| spec(p)["logShipping"]["backupRetention"] = json!("1h"),
        fail: |p| spec(p)["logShipping"]["backupRetention"] = json!("0"),
    },
    Case {
        name: "max_data_loss_must_be_positive",
        message: "spec.failover.maxDataLoss must be greater than zero",
        field_path: "spec.failover.maxDataLoss",
        pass: |p| spec(p)["failover"]["maxDataLoss"] = json!("1s"),
        fail: |p| spec(p)["failover"]["maxDataLoss"] = json!("0s"),
    },
    Case {
        name: "drain_timeout_must_be_positive",
        message: "spec.failover.drainTimeout must be greater than zero",
        field_path: "spec.failover.drainTimeout",
        pass: |p| spec(p)["failover"]["drainTimeout"] = json!("500ms"),
        fail: |p| spec(p)["failover"]["drainTimeout"] = json!("0ms"),
    },
    Case {
        name: "connect_timeout_must_be_positive",
        message: "spec.timeouts.connect must be greater than zero",
        field_path: "spec.timeouts.connect",
        pass: |p| spec(p)["timeouts"] = json!({"connect": "5s", "command": "30m"}),
        fail: |p| spec(p)["timeouts"] = json!({"connect": "0s", "command": "30m"}),
    },
    Case {
        name: "command_timeout_must_be_positive",
        message: "spec.timeouts.command must be greater than zero",
        field_path: "spec.timeouts.command",
        pass: |p| spec(p)["timeouts"] = json!({"connect": "5s", "command": "1h"}),
        fail: |p| spec(p)["timeouts"] = json!({"connect": "5s", "command": "0s"}),
    },
];

/// The CEL failures of a manifest against the generated CRD, as (field path, message) pairs.
fn cel_failures(manifest: &Value) -> Vec<(String, String)> {
    match Validator::new().validate(&crd_schema(), manifest, None) {
        Ok(()) => Vec::new(),
        Err(errors) => errors
            .iter()
            .map(|e| (e.field_path.clone(), e.message.clone()))
            .collect(),
    }
}

fn run(name: &str) {
    let case = CASES
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no case named {name}"));
    let good = pool_with(case.pass);
    assert_eq!(
        cel_failures(&good),
        vec![],
        "{name}: the passing case fails"
    );
    let bad = pool_with(case.fail);
    assert_eq!(
        cel_failures(&bad),
        vec![(case.field_path.to_string(), case.message.to_string())],
        "{name}: the failing case does not fail with exactly this rule"
    );
}

#[test]
fn example_pool_passes_every_cel_rule() {
    assert_eq!(cel_failures(&pool()), vec![]);
}

#[test]
fn local_example_pool_passes_every_cel_rule() {
    let local = pchat_core::api::load_pool_yaml(include_str!("../../../examples/pool-local.yaml"))
        .expect("examples/pool-local.yaml loads");
    assert_eq!(cel_failures(&serde_json::to_value(local).unwrap()), vec![]);
}

/// The smallest manifest the CRD accepts: every optional field left for the defaults. The
/// second site's instance shares host `h` with the first and differs only by port 1434.
fn minimal_pool() -> Value {
    json!({
        "apiVersion": "persistentchat.io/v1alpha1",
        "kind": "PersistentChatPool",
        "metadata": {"name": "p"},
        "spec": {
            "poolFqdn": "p.contoso.com",
            "homeSite": "a",
            "primarySite": "b",
            "sqlCredentialsSecret": "s",
            "sites": [
                {"name": "a", "backupShare": "\\\\fs\\a", "copyDestination": "D:\\c",
                 "instances": [{"name": "a1", "host": "h", "mirroringEndpoint": "TCP://a1:5022"}]},
                {"name": "b", "backupShare": "\\\\fs\\b", "copyDestination": "D:\\c",
                 "instances": [{"name": "b1", "host": "h", "port": 1434,
                                "mirroringEndpoint": "TCP://b1:5022"}]}
            ]
        }
    })
}

#[test]
fn minimal_pool_passes_every_cel_rule_once_defaults_apply() {
    // The API server fills in defaults before it evaluates CEL; kube-cel does the same.
    assert_eq!(cel_failures(&minimal_pool()), vec![]);
}

#[test]
fn an_omitted_port_defaults_to_1433_before_the_host_and_port_rule() {
    // Both instances on host `h`: only the ports tell them apart, and 1433 is the default.
    let mut same_address = minimal_pool();
    same_address["spec"]["sites"][1]["instances"][0]
        .as_object_mut()
        .unwrap()
        .remove("port");
    let failures = cel_failures(&same_address);
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].1.contains("host:port"), "{failures:?}");
}

#[test]
fn primary_site_must_name_a_defined_site() {
    run("primary_site_must_name_a_defined_site");
}

#[test]
fn home_site_must_name_a_defined_site() {
    run("home_site_must_name_a_defined_site");
}

#[test]
fn site_names_must_be_unique() {
    run("site_names_must_be_unique");
}

#[test]
fn instance_names_must_be_unique_across_sites() {
    run("instance_names_must_be_unique_across_sites");
}

#[test]
fn instance_names_must_be_unique_within_a_site() {
    run("instance_names_must_be_unique_within_a_site");
}

#[test]
fn host_and_port_must_be_unique_across_the_pool() {
    run("host_and_port_must_be_unique_across_the_pool");
}

#[test]
fn host_and_port_must_be_unique_within_a_site_with_default_port() {
    run("host_and_port_must_be_unique_within_a_site_with_default_port");
}

#[test]
fn mirroring_endpoints_must_be_unique_across_the_pool() {
    run("mirroring_endpoints_must_be_unique_across_the_pool");
}

#[test]
fn chat_server_must_not_be_listed_in_two_sites() {
    run("chat_server_must_not_be_listed_in_two_sites");
}

#[test]
fn mirroring_endpoints_must_be_unique_within_a_site() {
    run("mirroring_endpoints_must_be_unique_within_a_site");
}

#[test]
fn host_and_port_must_be_unique_within_a_site_whatever_the_case() {
    run("host_and_port_must_be_unique_within_a_site_whatever_the_case");
}

#[test]
fn uniqueness_rules_add_no_message_when_the_schema_refuses_the_number_of_sites_or_instances() {
    // One site, or three instances in a site: `minItems`/`maxItems` say what is wrong (the
    // API server reports them before CEL); the uniqueness rules stay silent rather than index
    // past the end or compare only two of three.
    let mut one_site = pool();
    one_site["spec"]["sites"]
        .as_array_mut()
        .unwrap()
        .truncate(1);
    assert!(
        cel_failures(&one_site)
            .iter()
            .all(|(_, message)| !message.contains("unique") && !message.contains("both sites")),
        "{:?}",
        cel_failures(&one_site)
    );
    let mut three = pool();
    let extra = json!({"name": "atl-sql3", "host": "atl-sql3.litwareinc.com",
                       "mirroringEndpoint": "TCP://atl-sql3.litwareinc.com:5022"});
    three["spec"]["sites"][0]["instances"]
        .as_array_mut()
        .unwrap()
        .push(extra);
    assert_eq!(cel_failures(&three), vec![]);
}

#[test]
fn the_uniqueness_rules_compare_the_two_instances_a_site_may_have() {
    // The rules compare a site's instances as `[0]` and `[1]`: a schema that let a site have a
    // third would need them rewritten.
    let schema = crd_schema();
    let instances =
        &schema["properties"]["spec"]["properties"]["sites"]["items"]["properties"]["instances"];
    assert_eq!(instances["maxItems"], json!(2), "{instances}");
    assert_eq!(
        schema["properties"]["spec"]["properties"]["sites"]["maxItems"],
        json!(2)
    );
}

#[test]
fn approve_overwrite_must_name_existing_instances() {
    run("approve_overwrite_must_name_existing_instances");
}

#[test]
fn trust_server_certificate_excludes_a_ca_secret() {
    run("trust_server_certificate_excludes_a_ca_secret");
}

#[test]
fn chat_and_compliance_databases_must_differ() {
    run("chat_and_compliance_databases_must_differ");
}

#[test]
fn rpo_target_must_be_at_least_backup_interval() {
    run("rpo_target_must_be_at_least_backup_interval");
}

#[test]
fn backup_interval_must_be_positive() {
    run("backup_interval_must_be_positive");
}

#[test]
fn backup_retention_must_be_positive() {
    run("backup_retention_must_be_positive");
}

#[test]
fn max_data_loss_must_be_positive() {
    run("max_data_loss_must_be_positive");
}

#[test]
fn drain_timeout_must_be_positive() {
    run("drain_timeout_must_be_positive");
}

#[test]
fn connect_timeout_must_be_positive() {
    run("connect_timeout_must_be_positive");
}

#[test]
fn command_timeout_must_be_positive() {
    run("command_timeout_must_be_positive");
}

#[test]
fn cel_rules_report_every_broken_rule_at_once() {
    let bad = pool_with(|p| {
        p["spec"]["primarySite"] = json!("houston");
        p["spec"]["databases"]["compliance"] = json!("mgc");
        p["spec"]["failover"]["maxDataLoss"] = json!("0s");
    });
    let paths: BTreeSet<String> = cel_failures(&bad).into_iter().map(|(p, _)| p).collect();
    let expected: BTreeSet<String> = [
        "spec.primarySite",
        "spec.databases.compliance",
        "spec.failover.maxDataLoss",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(paths, expected);
}

/// Every `x-kubernetes-validations` rule of the schema, with the schema node it sits on.
fn all_rules(schema: &Value, out: &mut Vec<(Value, Value)>) {
    if let Some(rules) = schema
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
    {
        for r in rules {
            out.push((r.clone(), schema.clone()));
        }
    }
    match schema {
        Value::Object(map) => {
            for (k, v) in map {
                if k != "x-kubernetes-validations" {
                    all_rules(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| all_rules(v, out)),
        _ => {}
    }
}

#[test]
fn every_cel_rule_in_the_crd_has_a_failing_case() {
    let mut rules = Vec::new();
    all_rules(&crd_schema(), &mut rules);
    let tested: BTreeSet<&str> = CASES.iter().map(|c| c.message).collect();
    let untested: Vec<String> = rules
        .iter()
        .map(|(r, _)| r["message"].as_str().unwrap_or_default().to_string())
        .filter(|m| !tested.contains(m.as_str()))
        .collect();
    assert!(rules.len() >= 16, "only {} rules found", rules.len());
    assert_eq!(
        untested,
        Vec::<String>::new(),
        "CEL rules without a test case"
    );
}

#[test]
fn every_cel_rule_has_a_message_naming_its_field() {
    let mut rules = Vec::new();
    all_rules(&crd_schema(), &mut rules);
    for (rule, _) in &rules {
        let message = rule["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with("spec."),
            "rule {} has message {message:?}, which does not name a spec field",
            rule["rule"]
        );
    }
}

#[test]
fn every_cel_rule_compiles_within_the_cost_budget() {
    let mut rules = Vec::new();
    all_rules(&crd_schema(), &mut rules);
    for (rule, node) in &rules {
        let text = rule["rule"].as_str().expect("a rule has rule text");
        let compiled = compile_schema(node);
        assert!(
            !compiled.has_errors(),
            "rule {text:?} does not compile: {:?}",
            compiled.compilation_errors()
        );
        // Only the cost estimate: kube-cel's scope check does not know comprehension variables.
        let warnings = estimate_rule_cost(text, &compiled);
        assert!(warnings.is_empty(), "rule {text:?}: {warnings:?}");
    }
}
