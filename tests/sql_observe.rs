//! The observer against a live simulator: what it reports and what it costs.

mod sql_support;

use pchat_operator::observe::{DatabaseState, Reachability};
use sql_support::*;

#[tokio::test]
async fn installer_state_shows_both_databases_online_on_atl_sql1_in_one_round_trip_per_instance()
{
    let mut live = start("installer").await;
    let obs = live.observe().await;
    println!("{}", serde_json::to_string_pretty(&obs).unwrap());
    assert_eq!(obs.instances.len(), 4);
    for i in &obs.instances {
        assert!(i.is_reachable(), "{} unreachable: {:?}", i.name, i.reachability);
    }
    let atl1 = obs.instance("atl-sql1").unwrap();
    assert_eq!(atl1.server_name.as_deref(), Some("atl-sql1"));
    for db in ["mgc", "mgccomp"] {
        let d = atl1.database(db).unwrap_or_else(|| panic!("{db} missing"));
        assert_eq!(d.state, DatabaseState::Online);
        assert!(d.mirroring.is_none());
        assert!(d.lsn.end_of_log.is_some(), "an ONLINE copy has an end of log");
        assert!(d.lsn.redo_start.is_none());
    }
    for other in ["atl-sql2", "dal-sql1", "dal-sql2"] {
        assert!(obs.instance(other).unwrap().databases.is_empty(), "{other}");
    }
    assert_eq!(live.observer.round_trips(), 4, "one batch per instance");
    assert!(matches!(
        obs.instance("dal-sql1").unwrap().reachability,
        Reachability::Reachable
    ));
}
