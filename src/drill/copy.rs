//! The simulated copy of a pool a drill runs on: a simulator topology with the pool's instance
//! names, sites, shares and databases (as the Persistent Chat installer leaves them: ONLINE on
//! the home site's first instance), and the pool's spec with its intervals divided by a time
//! scale, so that log shipping, the drain and the wait for an unreachable site take seconds.

use std::time::Duration;

use pchat_core::api::PersistentChatPoolSpec;
use pchat_sim::server::{
    DatabaseDef, InstanceDef, JobIntervals, LoginDef, ShareDef, TlsDef, Topology,
};

use crate::demo::world::{LATENCY_MS, PASSWORD, USER, split_unc};

/// SQL Server Agent's shortest job schedule: a compressed `backupInterval` stays at least this.
const SHORTEST_AGENT_SCHEDULE: Duration = pchat_core::api::MIN_AGENT_INTERVAL;

/// The largest default time scale: a pool's 5-minute backups run every 10 s.
const DEFAULT_SCALE_LIMIT: u32 = 30;

/// The time scale when none is given: as fast as SQL Server Agent allows the pool's
/// `backupInterval` to run, at most [`DEFAULT_SCALE_LIMIT`] times faster.
pub fn default_scale(spec: &PersistentChatPoolSpec) -> u32 {
    let interval = Duration::from(spec.log_shipping.backup_interval);
    let fastest = interval.as_secs() / SHORTEST_AGENT_SCHEDULE.as_secs();
    u32::try_from(fastest)
        .unwrap_or(u32::MAX)
        .clamp(1, DEFAULT_SCALE_LIMIT)
}

/// A pool's intervals and the drill's, side by side, for the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compressed {
    pub scale: u32,
    /// (field, the pool's value, the drill's value).
    pub fields: Vec<(&'static str, String, String)>,
    /// The pool is suspended (the operator would do nothing); the copy is not, so that there is
    /// a switch to rehearse.
    pub resumed: bool,
}

/// `spec` with every interval the planner waits on divided by `scale` ([`default_scale`] when
/// none is given; whole seconds, at least one; `backupInterval` at least SQL Server Agent's
/// 10 s, `rpoTarget` at least the compressed `backupInterval`), and not suspended. `Err` names
/// `--time-scale` when the scale would take `backupInterval` under 10 s.
pub fn compress(
    spec: &PersistentChatPoolSpec,
    scale: Option<u32>,
) -> Result<(PersistentChatPoolSpec, Compressed), String> {
    let interval = Duration::from(spec.log_shipping.backup_interval);
    let scale = scale.unwrap_or_else(|| default_scale(spec)).max(1);
    if interval / scale < SHORTEST_AGENT_SCHEDULE {
        return Err(format!(
            "--time-scale {scale}: spec.logShipping.backupInterval {} divided by {scale} is \
             shorter than 10s, SQL Server Agent's shortest schedule (largest scale for this \
             pool: {})",
            super::report::friendly(interval),
            (interval.as_secs() / SHORTEST_AGENT_SCHEDULE.as_secs()).max(1)
        ));
    }
    let divide = |d: kube::core::Duration, floor: Duration| -> kube::core::Duration {
        let secs = Duration::from(d).as_secs().div_ceil(u64::from(scale));
        Duration::from_secs(secs).max(floor).into()
    };
    let mut out = spec.clone();
    out.suspend = false;
    let one = Duration::from_secs(1);
    let ls = &mut out.log_shipping;
    ls.backup_interval = divide(ls.backup_interval, SHORTEST_AGENT_SCHEDULE);
    ls.rpo_target = divide(ls.rpo_target, Duration::from(ls.backup_interval));
    ls.backup_retention = divide(ls.backup_retention, one);
    let fo = &mut out.failover;
    fo.max_data_loss = divide(fo.max_data_loss, one);
    fo.drain_timeout = divide(fo.drain_timeout, one);
    fo.unreachable_after = divide(fo.unreachable_after, one);
    let pairs = [
        (
            "logShipping.backupInterval",
            spec.log_shipping.backup_interval,
            out.log_shipping.backup_interval,
        ),
        (
            "logShipping.rpoTarget",
            spec.log_shipping.rpo_target,
            out.log_shipping.rpo_target,
        ),
        (
            "failover.maxDataLoss",
            spec.failover.max_data_loss,
            out.failover.max_data_loss,
        ),
        (
            "failover.drainTimeout",
            spec.failover.drain_timeout,
            out.failover.drain_timeout,
        ),
        (
            "failover.unreachableAfter",
            spec.failover.unreachable_after,
            out.failover.unreachable_after,
        ),
    ];
    let fields = pairs
        .into_iter()
        .map(|(name, pool, drill)| {
            (
                name,
                super::report::friendly(pool.into()),
                super::report::friendly(drill.into()),
            )
        })
        .collect();
    Ok((
        out,
        Compressed {
            scale,
            fields,
            resumed: spec.suspend,
        },
    ))
}

/// The simulator topology of `spec`'s pool: each instance under its own name on its site,
/// answering to its host and mirroring endpoint names, with the drill's login; each site's
/// backup share; the chat and compliance databases ONLINE on the home site's first instance.
/// Listen ports are left to the world to choose.
pub fn topology(spec: &PersistentChatPoolSpec) -> Result<Topology, String> {
    let mut topology = Topology {
        instances: Vec::new(),
        shares: Vec::new(),
        databases: Vec::new(),
        // Log shipping's jobs run on the Agent schedules the operator creates; the mirroring
        // pump ships log every 200 ms, as a synchronous session on a fast network keeps up.
        jobs: JobIntervals {
            mirroring_ms: 200,
            ..JobIntervals::default()
        },
        latency: LATENCY_MS.into_iter().collect(),
        tls: TlsDef::default(),
    };
    for site in &spec.sites {
        for inst in &site.instances {
            // The name the pool reaches the instance by (the simulator matches its mirroring
            // endpoint's host by itself); an address names no one instance in the copy, where
            // every instance listens on 127.0.0.1.
            let aliases: Vec<String> = Some(inst.host.clone())
                .filter(|host| host.parse::<std::net::IpAddr>().is_err())
                .into_iter()
                .collect();
            topology.instances.push(InstanceDef {
                name: inst.name.clone(),
                site: site.name.clone(),
                listen: "127.0.0.1:0".into(),
                logins: vec![LoginDef {
                    name: USER.into(),
                    password: PASSWORD.into(),
                    default_database: None,
                }],
                mirroring_endpoint: Some(inst.mirroring_endpoint.clone()),
                aliases,
                data_path: None,
                log_path: None,
                version: None,
                utc_offset_minutes: None,
            });
        }
        let Some((host, share)) = split_unc(&site.backup_share) else {
            return Err(format!(
                "spec.sites[{}].backupShare {:?} is not \\\\host\\share",
                site.name, site.backup_share
            ));
        };
        topology.shares.push(ShareDef {
            host: host.to_string(),
            share: share.to_string(),
            site: Some(site.name.clone()),
        });
    }
    let home = spec
        .site(&spec.home_site)
        .and_then(|s| s.instances.first())
        .ok_or_else(|| format!("spec.homeSite {:?} has no instance", spec.home_site))?;
    for database in spec.databases.names() {
        topology.databases.push(DatabaseDef {
            name: database.to_string(),
            instance: home.name.clone(),
        });
    }
    Ok(topology)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> PersistentChatPoolSpec {
        pchat_core::api::load_pool_yaml(include_str!("../../examples/pool.yaml"))
            .expect("the example loads")
            .spec
    }

    #[test]
    fn the_default_scale_runs_backups_as_often_as_sql_server_agent_allows_up_to_thirty_times() {
        let mut spec = example();
        assert_eq!(default_scale(&spec), 30);
        spec.log_shipping.backup_interval = Duration::from_secs(60).into();
        assert_eq!(default_scale(&spec), 6);
        spec.log_shipping.backup_interval = Duration::from_secs(15).into();
        assert_eq!(default_scale(&spec), 1);
    }

    #[test]
    fn compressing_divides_every_wait_and_keeps_the_spec_valid() {
        let (drill, compressed) = compress(&example(), Some(30)).expect("compresses");
        assert_eq!(
            Duration::from(drill.log_shipping.backup_interval),
            Duration::from_secs(10)
        );
        assert_eq!(
            Duration::from(drill.log_shipping.rpo_target),
            Duration::from_secs(30)
        );
        assert_eq!(
            Duration::from(drill.failover.unreachable_after),
            Duration::from_secs(2)
        );
        assert_eq!(compressed.fields.len(), 5);
        assert!(!compressed.resumed);
        let mut suspended = example();
        suspended.suspend = true;
        let (drill, compressed) = compress(&suspended, Some(30)).expect("compresses");
        assert!(
            compressed.resumed && !drill.suspend,
            "a suspended pool is rehearsed resumed"
        );
        pchat_core::api::validate(&drill).expect("the compressed spec is valid");
    }

    #[test]
    fn a_scale_that_takes_backups_under_ten_seconds_is_refused_naming_the_flag() {
        let e = compress(&example(), Some(31)).unwrap_err();
        assert!(e.contains("--time-scale 31"), "{e}");
        assert!(e.contains("largest scale for this pool: 30"), "{e}");
    }

    #[test]
    fn the_topology_has_the_pools_names_shares_and_installer_databases() {
        let t = topology(&example()).expect("builds");
        let names: Vec<&str> = t.instances.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["atl-sql1", "atl-sql2", "dal-sql1", "dal-sql2"]);
        assert_eq!(t.instances[2].site, "dallas");
        assert!(
            t.instances[0]
                .aliases
                .contains(&"atl-sql1.litwareinc.com".to_string())
        );
        assert_eq!(
            (t.shares[1].host.as_str(), t.shares[1].share.as_str()),
            ("dal-fs", "pchat-ls")
        );
        let databases: Vec<(&str, &str)> = t
            .databases
            .iter()
            .map(|d| (d.name.as_str(), d.instance.as_str()))
            .collect();
        assert_eq!(databases, [("mgc", "atl-sql1"), ("mgccomp", "atl-sql1")]);
    }
}
