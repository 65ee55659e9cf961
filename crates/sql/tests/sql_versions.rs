//! Each supported SQL Server version, as the simulator refuses what that version lacks:
//! bootstrap, a planned switch to the other site, no chat message lost. SQL Server 2016 SP2
//! lists folders with xp_fileexist and xp_dirtree (it has no sys.dm_os_enumerate_filesystem);
//! 2017 and later with the function.

use std::time::Duration;

use pchat_core::observe::{DatabaseState, MirroringRole};
use pchat_sql::testing::{Live, mirrors_synchronized, sa_client, start_with};

/// 2016 SP2, 2017, 2019, 2022 (builds of a cumulative update each).
const SUPPORTED: [&str; 4] = ["13.0.5026.0", "14.0.3456.2", "15.0.4375.4", "16.0.4135.4"];

/// Bootstrap on atlanta, post chat messages there, switch to dallas; returns the live pool.
async fn switch_with_every_instance_at(name: &str, versions: [&str; 2]) -> Live {
    let mut live = start_with(name, |topology| {
        for instance in &mut topology.instances {
            let at_atlanta = instance.name.starts_with("atl");
            instance.version = Some(versions[usize::from(!at_atlanta)].to_string());
        }
    })
    .await;
    live.converge(Duration::from_secs(60)).await;
    {
        let addr = live.sim.addr("atl-sql1").unwrap();
        let mut chat = sa_client(addr, "Persistent Chat", |config| {
            config.database("mgc");
            config.client_name("atl-pc1");
        })
        .await;
        let insert = "INSERT INTO dbo.Messages (MessageId, ChatServer, Body, PostedAt) \
                      VALUES (@P1, @P2, @P3, @P4)";
        let posted = chrono::Utc::now().naive_utc();
        for id in 1..=5_i64 {
            chat.execute(insert, &[&id, &"atl-pc1", &"a chat message", &posted])
                .await
                .expect("chat writes to the principal");
        }
    }
    // Backups are named to the second: let the tail-log backup get a name of its own.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    live.spec.primary_site = "dallas".into();
    let (steps, _) = live.converge(Duration::from_secs(90)).await;
    let names: Vec<&str> = steps.iter().map(|s| s.name()).collect();
    assert!(
        names.contains(&"DemoteOldPrimary") && names.contains(&"Recover"),
        "{versions:?}: {names:?}"
    );
    let obs = live
        .observe_until(Duration::from_secs(5), mirrors_synchronized)
        .await;
    let dal = obs.database("dal-sql1", "mgc").unwrap();
    assert_eq!(dal.state, DatabaseState::Online, "{versions:?}");
    assert_eq!(
        dal.mirroring.as_ref().map(|m| m.role),
        Some(MirroringRole::Principal),
        "{versions:?}"
    );
    assert_eq!(
        live.sim.sim.message_ids("dal-sql1", "mgc"),
        Some((1..=5).collect()),
        "{versions:?}: a message acknowledged on atlanta is missing on dallas"
    );
    let unreadable: Vec<_> = obs
        .backup_locations
        .iter()
        .filter(|l| !l.readable)
        .map(|l| (&l.path, &l.reason))
        .collect();
    assert!(unreadable.is_empty(), "{versions:?}: {unreadable:?}");
    live
}

/// Whether an instance was ever asked for a folder with `needle` in the text.
fn listed_with(live: &Live, instance: &str, needle: &str) -> usize {
    live.sim
        .sim
        .statement_log(instance)
        .iter()
        .filter(|s| s.text.contains(needle))
        .count()
}

#[tokio::test]
async fn a_planned_switch_loses_nothing_on_every_supported_version() {
    for version in SUPPORTED {
        let live = switch_with_every_instance_at(&format!("v{version}"), [version, version]).await;
        let function = listed_with(&live, "dal-sql1", "dm_os_enumerate_filesystem");
        let xp = listed_with(&live, "dal-sql1", "xp_dirtree");
        if version.starts_with("13.") {
            // Asked the 2017 way once, at first contact; its own way from then on.
            assert_eq!(function, 1, "{version}");
            assert!(xp > 1, "{version}");
        } else {
            assert_eq!(xp, 0, "{version}");
        }
    }
}

#[tokio::test]
async fn a_planned_switch_between_sites_on_different_versions_loses_nothing() {
    // An upgrade done one site at a time: atlanta still on 2016 SP2, dallas on 2019.
    switch_with_every_instance_at("mixed", ["13.0.5026.0", "15.0.4375.4"]).await;
}
