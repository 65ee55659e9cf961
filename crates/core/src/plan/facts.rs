//! Read-only questions about a spec and an observation that the rules ask again and again.

use jiff::Timestamp;

use crate::api::{PersistentChatPoolSpec, PoolState, Site};
use crate::observe::{
    BackupFile, BackupType, DatabaseObservation, DatabaseState, InstanceObservation, LocationKind,
    Lsn, MirroringRole, Observation, Reachability, SessionObservation, UserAccess,
};

/// Seconds of a spec duration.
pub fn secs(d: kube::core::Duration) -> i64 {
    std::time::Duration::from(d).as_secs() as i64
}

/// Whole seconds from `from` to `to` (negative when `to` is earlier).
pub fn elapsed(from: Timestamp, to: Timestamp) -> i64 {
    // Whole seconds actually elapsed (floored), not the difference of truncated seconds, which
    // lets a timer such as unreachableAfter expire up to a second early.
    (to.as_nanosecond() - from.as_nanosecond()).div_euclid(1_000_000_000) as i64
}

/// Whole seconds from `from` to `to`, rounded up, never negative.
pub fn elapsed_ceil(from: Timestamp, to: Timestamp) -> u64 {
    let nanos = to.as_nanosecond() - from.as_nanosecond();
    if nanos <= 0 {
        0
    } else {
        (nanos as u128).div_ceil(1_000_000_000) as u64
    }
}

/// Whether the instance answered this observation.
pub fn reachable(obs: &Observation, instance: &str) -> bool {
    obs.instance(instance)
        .is_some_and(InstanceObservation::is_reachable)
}

/// Since when the instance is unreachable, if it is (an instance absent from the observation is
/// unreachable since the observation).
pub fn unreachable_since(obs: &Observation, instance: &str) -> Option<Timestamp> {
    match obs.instance(instance).map(|i| &i.reachability) {
        Some(Reachability::Reachable) => None,
        Some(Reachability::Unreachable { since, .. }) => Some(*since),
        None => Some(obs.taken_at),
    }
}

/// The unreachability reason, in words.
pub fn unreachable_reason(obs: &Observation, instance: &str) -> String {
    match obs.instance(instance).map(|i| &i.reachability) {
        Some(Reachability::Unreachable { reason, .. }) => reason.clone(),
        Some(Reachability::Reachable) => "reachable".to_string(),
        None => "not observed".to_string(),
    }
}

/// A database on a reachable instance.
pub fn db<'a>(
    obs: &'a Observation,
    instance: &str,
    database: &str,
) -> Option<&'a DatabaseObservation> {
    obs.instance(instance)
        .filter(|i| i.is_reachable())
        .and_then(|i| i.database(database))
}

/// ONLINE and open to every user: a copy chat servers can write.
pub fn is_writable(d: &DatabaseObservation) -> bool {
    d.state == DatabaseState::Online && d.user_access == UserAccess::MultiUser && !d.read_only
}

/// ONLINE and not a mirror (a principal or unmirrored).
pub fn is_online(d: &DatabaseObservation) -> bool {
    d.state == DatabaseState::Online
        && d.mirroring
            .as_ref()
            .is_none_or(|m| m.role == MirroringRole::Principal)
}

/// RESTORING (a STANDBY copy is observed as RESTORING) and not taking part in mirroring.
pub fn is_plain_restoring(d: &DatabaseObservation) -> bool {
    d.state == DatabaseState::Restoring && d.mirroring.is_none()
}

/// States the operator never repairs.
pub fn is_broken(d: &DatabaseObservation) -> bool {
    matches!(
        d.state,
        DatabaseState::Suspect
            | DatabaseState::Emergency
            | DatabaseState::RecoveryPending
            | DatabaseState::Offline
    )
}

/// The pool state a primary site implies: Normal while the home site is primary, FailedOver
/// while the other site is.
pub fn pool_state_for(spec: &PersistentChatPoolSpec, site: &str) -> PoolState {
    if site == spec.home_site {
        PoolState::Normal
    } else {
        PoolState::FailedOver
    }
}

/// The instance names of a site, in declaration order.
pub fn names(site: &Site) -> Vec<&str> {
    site.instances.iter().map(|i| i.name.as_str()).collect()
}

/// Whether `host` (a session's host_name) is one of the pool's chat servers: compared
/// case-insensitively, in full or by first DNS label (clients often send the short name).
pub fn is_chat_server(spec: &PersistentChatPoolSpec, host: &str) -> bool {
    let host = host.trim().to_ascii_lowercase();
    let host_label = host.split('.').next().unwrap_or("");
    spec.sites.iter().flat_map(|s| &s.chat_servers).any(|cs| {
        let cs = cs.trim().to_ascii_lowercase();
        let cs_label = cs.split('.').next().unwrap_or("");
        cs == host || (!host_label.is_empty() && cs_label == host_label)
    })
}

/// Whether any chat server has a session on the pool's databases on any reachable instance:
/// what a drain waits to see end.
pub fn chat_servers_connected(spec: &PersistentChatPoolSpec, obs: &Observation) -> bool {
    spec.instances()
        .any(|(_, inst)| !chat_sessions(spec, obs, &inst.name).is_empty())
}

/// Chat-server sessions on the pool's databases on one reachable instance.
pub fn chat_sessions<'a>(
    spec: &PersistentChatPoolSpec,
    obs: &'a Observation,
    instance: &str,
) -> Vec<&'a SessionObservation> {
    let dbs = spec.database_names();
    obs.instance(instance)
        .filter(|i| i.is_reachable())
        .map(|i| {
            i.sessions
                .iter()
                .filter(|s| {
                    s.database
                        .as_deref()
                        .is_some_and(|d| dbs.iter().any(|n| n.eq_ignore_ascii_case(d)))
                        && is_chat_server(spec, &s.host_name)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Sessions (of anyone) using one database on one instance.
pub fn sessions_on(obs: &Observation, instance: &str, database: &str) -> Vec<i32> {
    obs.instance(instance)
        .map(|i| {
            i.sessions
                .iter()
                .filter(|s| {
                    s.database
                        .as_deref()
                        .is_some_and(|d| d.eq_ignore_ascii_case(database))
                })
                .map(|s| s.session_id)
                .collect()
        })
        .unwrap_or_default()
}

/// The files of one location, when it is observed (readable or not).
pub fn location<'a>(
    obs: &'a Observation,
    kind: &LocationKind,
) -> Option<&'a crate::observe::BackupLocation> {
    obs.backup_locations.iter().find(|l| &l.kind == kind)
}

/// The files of a site's share, when it is readable.
pub fn share_files<'a>(obs: &'a Observation, site: &str) -> &'a [BackupFile] {
    location(
        obs,
        &LocationKind::Share {
            site: site.to_string(),
        },
    )
    .filter(|l| l.readable)
    .map(|l| l.files.as_slice())
    .unwrap_or(&[])
}

/// The files of an instance's copy folder, when it is readable.
pub fn copy_files<'a>(obs: &'a Observation, instance: &str) -> &'a [BackupFile] {
    location(
        obs,
        &LocationKind::CopyFolder {
            instance: instance.to_string(),
        },
    )
    .filter(|l| l.readable)
    .map(|l| l.files.as_slice())
    .unwrap_or(&[])
}

/// Every backup file the observation knows of, on any readable location.
pub fn all_files(obs: &Observation) -> impl Iterator<Item = &BackupFile> {
    obs.backup_locations
        .iter()
        .filter(|l| l.readable)
        .flat_map(|l| l.files.iter())
}

/// The salvage backup of a copy, if one is observed on a share: a COPY_ONLY full backup of that
/// database taken on that instance that covers the copy's whole log. Only what a share lists
/// counts (not msdb, not memory): a salvage that is not there is taken again.
pub fn salvage_of<'a>(
    obs: &'a Observation,
    instance: &str,
    database: &str,
    end_of_log: Lsn,
) -> Option<&'a BackupFile> {
    obs.backup_locations
        .iter()
        .filter(|l| l.readable && matches!(l.kind, LocationKind::Share { .. }))
        .flat_map(|l| l.files.iter())
        .find(|f| {
            f.backup_type == BackupType::Full
                && f.copy_only
                && f.database.eq_ignore_ascii_case(database)
                && f.server_name.eq_ignore_ascii_case(instance)
                && f.last_lsn >= end_of_log
        })
}

/// The LSN a copy has reached: the end of log of an ONLINE copy, the redo point of a RESTORING one.
pub fn position(d: &DatabaseObservation) -> Lsn {
    d.lsn.end_of_log.or(d.lsn.redo_start).unwrap_or(Lsn(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> PersistentChatPoolSpec {
        let yaml = include_str!("../../../../tests/fixtures/pool.yaml");
        serde_saphyr::from_str::<crate::api::PersistentChatPool>(yaml)
            .unwrap()
            .spec
    }

    #[test]
    fn chat_server_matches_case_insensitively_in_full_or_by_first_label() {
        let spec = spec();
        assert!(is_chat_server(&spec, "ATL-PC1"));
        assert!(is_chat_server(&spec, "dal-pc2.LITWAREINC.com"));
        assert!(is_chat_server(&spec, " atl-pc2 "));
        assert!(!is_chat_server(&spec, "atl-pc3"));
        assert!(!is_chat_server(&spec, "ADMIN-WS"));
        assert!(!is_chat_server(&spec, ""));
    }

    #[test]
    fn pool_state_is_normal_only_on_the_home_site() {
        let spec = spec();
        assert_eq!(pool_state_for(&spec, "atlanta"), PoolState::Normal);
        assert_eq!(pool_state_for(&spec, "dallas"), PoolState::FailedOver);
    }
}

#[cfg(test)]
mod elapsed_tests {
    use super::*;

    #[test]
    fn loss_window_of_a_fraction_of_a_second_counts_as_one_second() {
        let from: Timestamp = "2026-11-26T13:43:28.100Z".parse().unwrap();
        let to: Timestamp = "2026-11-26T13:43:28.797Z".parse().unwrap();
        assert_eq!(elapsed_ceil(from, to), 1);
        assert_eq!(elapsed_ceil(to, from), 0);
        assert_eq!(elapsed_ceil(from, from), 0);
        let later: Timestamp = "2026-11-26T13:43:30.100Z".parse().unwrap();
        assert_eq!(elapsed_ceil(from, later), 2);
    }

    #[test]
    fn a_timer_does_not_expire_before_its_whole_seconds_have_passed() {
        let from: Timestamp = "2026-11-26T13:43:28.900Z".parse().unwrap();
        let to: Timestamp = "2026-11-26T13:43:30.100Z".parse().unwrap();
        assert_eq!(elapsed(from, to), 1, "1.2 s is one whole second, not two");
        assert_eq!(elapsed(to, from), -2);
    }
}
