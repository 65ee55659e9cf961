//! Planner steps run through `run_step` against a live simulator.

mod sql_support;

use std::time::Duration;

use pchat_operator::observe::{DatabaseState, MirroringRole, MirroringState};
use pchat_operator::plan::{self, Decision};
use sql_support::*;

#[tokio::test]
async fn bootstrap_from_the_installer_state_converges_with_mirrors_and_log_shipping() {
    let mut live = start("bootstrap").await;
    let (steps, obs) = live.converge(Duration::from_secs(60)).await;
    let names: Vec<&str> = steps.iter().map(|s| s.name()).collect();
    println!("steps: {names:?}");
    println!("{}", serde_json::to_string_pretty(&obs).unwrap());
    for db in ["mgc", "mgccomp"] {
        let p = obs.database("atl-sql1", db).unwrap();
        let m = p.mirroring.as_ref().expect("principal mirrored");
        assert_eq!((m.role, m.state), (MirroringRole::Principal, MirroringState::Synchronized));
        let mirror = obs.database("atl-sql2", db).unwrap();
        assert_eq!(mirror.state, DatabaseState::Restoring);
        assert_eq!(mirror.mirroring.as_ref().unwrap().role, MirroringRole::Mirror);
    }
    let dal = obs.database("dal-sql1", "mgc").expect("dallas has mgc");
    assert_eq!(dal.state, DatabaseState::Restoring);
    let lss = dal.log_shipping_secondary.as_ref().expect("log-shipping secondary");
    assert!(lss.primary_server.eq_ignore_ascii_case("atl-sql1"));
    let lsp = obs
        .database("atl-sql1", "mgc")
        .unwrap()
        .log_shipping_primary
        .as_ref()
        .expect("log-shipping primary");
    assert!(lsp.secondaries.iter().any(|s| s.secondary_server.eq_ignore_ascii_case("dal-sql1")));
    assert_eq!(plan::next(&live.spec, &obs, jiff::Timestamp::now()), Decision::Converged);
}
