//! `api::validate` is at least as strict as the CRD's CEL rules: on specs built from small name
//! pools (so that clashes are frequent), whatever the CRD's rules reject, `validate` rejects too.

mod support;

use kube::core::cel::{Validator, compile_schema};
use pchat_core::api::validate;
use proptest::prelude::*;
use serde_json::{Value, json};
use support::{crd_schema, pool, spec_of};

fn instance() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["atl-sql1", "ATL-SQL1", "dal-sql1", "x1"]),
        prop::sample::select(vec!["h1.contoso.com", "H1.contoso.com", "h2.contoso.com"]),
        prop::sample::select(vec![1433u16, 1434]),
        prop::sample::select(vec!["TCP://e1:5022", "tcp://E1:5022", "TCP://e2:5022", "TCP://e3:5022"]),
    )
        .prop_map(|(name, host, port, endpoint)| {
            json!({"name": name, "host": host, "port": port, "mirroringEndpoint": endpoint})
        })
}

fn site(name: &'static str) -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(instance(), 1..=2),
        prop::sample::subsequence(vec!["pc1.contoso.com", "pc2.contoso.com"], 0..=2),
    )
        .prop_map(move |(instances, servers)| {
            json!({
                "name": name,
                "instances": instances,
                "backupShare": format!("\\\\fs\\{name}"),
                "copyDestination": "D:\\copy",
                "chatServers": servers,
            })
        })
}

fn manifest() -> impl Strategy<Value = Value> {
    (
        site("atlanta"),
        prop::sample::select(vec!["atlanta", "dallas"]),
        site("dallas"),
        prop::sample::select(vec!["atlanta", "dallas", "houston"]),
        prop::sample::select(vec![
            json!("mgccomp"),
            json!("mgc"),
            json!("MGC"),
            json!(null),
        ]),
        prop::sample::select(vec!["5m", "15m", "0s", "9s", "10s"]),
        prop::sample::select(vec!["15m", "1m", "0s"]),
        prop::sample::subsequence(vec!["atl-sql1", "dal-sql1", "nobody"], 0..=2),
    )
        .prop_map(
            |(atlanta, second_name, dallas, primary, compliance, interval, max_loss, approve)| {
                let mut p = pool();
                let mut second = dallas;
                second["name"] = json!(second_name);
                p["spec"]["sites"] = json!([atlanta, second]);
                p["spec"]["primarySite"] = json!(primary);
                p["spec"]["databases"]["compliance"] = compliance;
                p["spec"]["logShipping"]["backupInterval"] = json!(interval);
                p["spec"]["failover"]["maxDataLoss"] = json!(max_loss);
                p["spec"]["failover"]["approveOverwrite"] = json!(approve);
                p
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn validate_rejects_whatever_the_crd_cel_rules_reject(p in manifest()) {
        let compiled = compile_schema(&crd_schema());
        let cel = Validator::new().validate_compiled(&compiled, &p, None);
        let rust = validate(&spec_of(&p));
        if let Err(cel_errors) = &cel {
            let messages: Vec<String> = cel_errors.iter().map(|e| e.to_string()).collect();
            prop_assert!(
                rust.is_err(),
                "the CRD rejects this spec but validate accepts it: {:?}\n{}",
                messages,
                serde_json::to_string_pretty(&p["spec"]).unwrap()
            );
        }
    }
}
