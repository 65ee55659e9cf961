//! One scenario per situation, each starting from a hand-written YAML observation under
//! tests/fixtures/. Intermediate states come from applying the model executor
//! (`plan::effects::apply`) to those start states; every step taken is checked against the
//! safety invariants.

use jiff::Timestamp;
use pchat_core::api::{PersistentChatPool, PersistentChatPoolSpec, PoolState};
use pchat_core::observe::{DatabaseObservation, InstanceObservation, Lsn, Observation};
use pchat_core::plan::{
    self, BlockReason, Decision, LogShippingSide, NewerBasis, Step, WaitReason, effects, invariants,
};

fn read(name: &str) -> String {
    let path = format!("{}/../../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn spec(primary: &str) -> PersistentChatPoolSpec {
    let pool: PersistentChatPool = serde_saphyr::from_str(&read("pool.yaml")).expect("pool.yaml");
    let mut spec = pool.spec;
    spec.primary_site = primary.to_string();
    spec
}

fn observed(name: &str) -> Observation {
    serde_saphyr::from_str(&read(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// Take the next step, which must be a step, checking the invariants; returns it.
fn take(spec: &PersistentChatPoolSpec, obs: &mut Observation, now: Timestamp) -> Step {
    let d = plan::next(spec, obs, now);
    let Decision::Step(step) = d else {
        panic!("expected a step, got {d}");
    };
    let before = obs.clone();
    effects::apply(spec, &step, obs, now);
    let v = invariants::step_violations(spec, &before, &step, obs);
    assert!(v.is_empty(), "{step:?} violates {v:?}");
    step
}

/// Run steps until the planner stops stepping; returns the steps and the final decision.
fn run(
    spec: &PersistentChatPoolSpec,
    obs: &mut Observation,
    now: Timestamp,
) -> (Vec<Step>, Decision) {
    let mut steps = Vec::new();
    for _ in 0..plan::PROJECTION_LIMIT {
        match plan::next(spec, obs, now) {
            Decision::Step(_) => steps.push(take(spec, obs, now)),
            d => {
                if d == Decision::Converged {
                    let v = invariants::converged_violations(spec, obs);
                    assert!(v.is_empty(), "converged with {v:?}");
                }
                return (steps, d);
            }
        }
    }
    panic!("no end after {} steps: {steps:?}", plan::PROJECTION_LIMIT);
}

fn names(steps: &[Step]) -> Vec<&str> {
    steps.iter().map(Step::name).collect()
}

fn position(steps: &[Step], pred: impl Fn(&Step) -> bool) -> usize {
    steps.iter().position(pred).expect("step present")
}

/// The converged atlanta fixture with mirroring and log shipping as a switch leaves them:
/// started from, a switch to dallas and back must end in the same shape.
/// One instance of an observation, to change it.
fn instance_mut<'a>(obs: &'a mut Observation, name: &str) -> &'a mut InstanceObservation {
    obs.instances.iter_mut().find(|i| i.name == name).unwrap()
}

/// One copy of a database in an observation, to change it.
fn copy_mut<'a>(
    obs: &'a mut Observation,
    instance: &str,
    database: &str,
) -> &'a mut DatabaseObservation {
    instance_mut(obs, instance)
        .databases
        .iter_mut()
        .find(|d| d.name == database)
        .unwrap()
}

fn converged_atlanta() -> Observation {
    observed("observed-steady-atlanta.yaml")
}

#[test]
fn fresh_bootstrap_mirrors_both_databases_then_seeds_dallas_then_log_ships_then_publishes() {
    let spec = spec("atlanta");
    let mut obs = observed("observed-installer.yaml");
    let now = obs.taken_at;
    let (steps, end) = run(&spec, &mut obs, now);
    assert_eq!(end, Decision::Converged);
    assert_eq!(
        names(&steps),
        [
            "SeedMirror",
            "EstablishMirroring",
            "SeedMirror",
            "EstablishMirroring",
            "BootstrapSecondary",
            "ConfigureLogShipping",
            "PublishActiveServers"
        ]
    );
    assert!(
        matches!(&steps[0], Step::SeedMirror { principal, mirror, database, .. }
        if principal == "atl-sql1" && mirror == "atl-sql2" && database == "mgccomp")
    );
    assert!(
        matches!(&steps[4], Step::BootstrapSecondary { instance, source_instance, database, .. }
        if instance == "dal-sql1" && source_instance == "atl-sql1" && database == "mgc")
    );
    match &steps[5] {
        Step::ConfigureLogShipping {
            primary_instances,
            secondary_instance,
            backup_share,
            copy_destination,
            ..
        } => {
            // The principal only: its mirror (RESTORING) cannot be a log-shipping primary.
            assert_eq!(primary_instances, &["atl-sql1"]);
            assert_eq!(secondary_instance, "dal-sql1");
            assert_eq!(backup_share, r"\\atl-fs\pchat-ls");
            assert_eq!(copy_destination, r"D:\pchat-ls-copy");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(&steps[6], Step::PublishActiveServers { servers, pool_state: PoolState::Normal, .. }
        if *servers == ["atl-pc1.litwareinc.com", "atl-pc2.litwareinc.com"])
    );
}

#[test]
fn converged_steady_state_plans_zero_steps() {
    let spec = spec("atlanta");
    let obs = converged_atlanta();
    let p = plan::project(&spec, &obs, obs.taken_at);
    assert!(p.steps.is_empty(), "{:?}", p.steps);
    assert_eq!(p.end, Decision::Converged);
    let a = plan::assess(&spec, &obs, obs.taken_at);
    assert!(a.protected, "{:?}", a.degraded_reasons);
    assert_eq!(a.serving_site.as_deref(), Some("atlanta"));
}

/// An instance whose `@@SERVERNAME` is not the spec's name for it stops the planner before any
/// step: msdb's log-shipping and backup records are keyed by the server's own name, so
/// planning from them would redo the configuration on every pass. The reason names both.
#[test]
fn an_instance_reporting_another_server_name_blocks_before_any_step() {
    let spec = spec("atlanta");
    let mut obs = converged_atlanta();
    instance_mut(&mut obs, "dal-sql1").server_name = Some("DAL-SQL1-OLD".into());
    let decision = plan::next(&spec, &obs, obs.taken_at);
    let Decision::Blocked(reason) = &decision else {
        panic!("{decision:?}");
    };
    assert_eq!(
        *reason,
        BlockReason::ServerNameMismatch {
            instance: "dal-sql1".into(),
            server_name: "DAL-SQL1-OLD".into(),
        }
    );
    let message = reason.to_string();
    assert!(
        message.contains("dal-sql1")
            && message.contains("DAL-SQL1-OLD")
            && message.contains("@@SERVERNAME"),
        "{message}"
    );
    // The same name in another case is the same server (SQL Server compares names without case).
    let mut obs = converged_atlanta();
    for instance in &mut obs.instances {
        instance.server_name = Some(instance.name.to_ascii_uppercase());
    }
    assert_eq!(plan::next(&spec, &obs, obs.taken_at), Decision::Converged);
}

/// A log-shipping secondary kept WITH STANDBY (observed RESTORING, `standby` set) changes
/// nothing: the pool is converged, not split between two ONLINE copies. A primary database set
/// READ_ONLY is ONLINE but takes no chat: the pool is not reported protected.
#[test]
fn a_standby_secondary_is_a_secondary_and_a_read_only_primary_is_not_protected() {
    let spec = spec("atlanta");
    let mut obs = converged_atlanta();
    let copy = copy_mut(&mut obs, "dal-sql1", "mgc");
    copy.standby = true;
    copy.read_only = true;
    assert_eq!(plan::next(&spec, &obs, obs.taken_at), Decision::Converged);

    let mut obs = converged_atlanta();
    copy_mut(&mut obs, "atl-sql1", "mgc").read_only = true;
    let a = plan::assess(&spec, &obs, obs.taken_at);
    assert!(!a.protected, "{a:?}");
    // Nothing is done to it: a person set it so, and the message says what it is.
    let Decision::Blocked(reason) = &a.decision else {
        panic!("{}", a.decision);
    };
    assert!(reason.to_string().contains("READ_ONLY"), "{reason}");
}

#[test]
fn drain_waits_for_chat_sessions_then_kills_only_chat_servers_after_drain_timeout() {
    let spec = spec("dallas");
    let mut obs = converged_atlanta();
    let t0 = obs.taken_at;
    let first = take(&spec, &mut obs, t0);
    assert!(matches!(&first, Step::PublishActiveServers { servers, .. } if servers.is_empty()));
    match plan::next(&spec, &obs, at("2026-11-26T12:00:30Z")) {
        Decision::Wait(WaitReason::Draining {
            instance,
            sessions,
            seconds_left,
        }) => {
            assert_eq!(
                (instance.as_str(), sessions, seconds_left),
                ("atl-sql1", 2, 30)
            );
        }
        d => panic!("{d}"),
    }
    let late = at("2026-11-26T12:01:00Z");
    match take(&spec, &mut obs, late) {
        // Session 61 (ADMIN-WS on master) is nobody's chat server: it is left alone.
        Step::KillChatSessions {
            instance,
            session_ids,
            ..
        } => {
            assert_eq!(instance, "atl-sql1");
            assert_eq!(session_ids, [57, 58]);
        }
        s => panic!("{s:?}"),
    }
}

#[test]
fn planned_switch_gives_the_right_next_step_at_every_intermediate_state() {
    let spec = spec("dallas");
    let mut obs = converged_atlanta();
    let t0 = obs.taken_at;
    let t = at("2026-11-26T12:01:05Z");
    let a = plan::assess(&spec, &obs, t0);
    assert_eq!(
        a.transition_kind,
        Some(pchat_core::api::TransitionKind::Planned)
    );

    // Drain.
    assert!(
        matches!(take(&spec, &mut obs, t0), Step::PublishActiveServers { servers, pool_state: PoolState::Normal, .. } if servers.is_empty())
    );
    assert!(matches!(
        take(&spec, &mut obs, t),
        Step::KillChatSessions { .. }
    ));
    // After drain: remove mirroring on the old principal, chat then compliance, in one step;
    // then the tail-log backup.
    assert!(
        matches!(take(&spec, &mut obs, t), Step::RemoveMirroring { instance, databases, .. } if instance == "atl-sql1" && databases == ["mgc", "mgccomp"])
    );
    match take(&spec, &mut obs, t) {
        Step::DemoteOldPrimary {
            instance,
            database,
            file,
            site,
        } => {
            assert_eq!(
                (instance.as_str(), database.as_str(), site.as_str()),
                ("atl-sql1", "mgc", "atlanta")
            );
            assert_eq!(file, r"\\atl-fs\pchat-ls\mgc_20261126120105.trn");
        }
        s => panic!("{s:?}"),
    }
    assert_eq!(plan::assess(&spec, &obs, t).tail_lsn, Some(Lsn(5000)));

    // After the tail-log backup: catch up from the copy folder first, then atlanta's share.
    let after_tail = obs.clone();
    match plan::next(&spec, &obs, t) {
        Decision::Step(Step::CatchUp {
            instance, files, ..
        }) => {
            assert_eq!(instance, "dal-sql1");
            let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
            assert_eq!(
                paths,
                [
                    r"D:\pchat-ls-copy\mgc_20261126115000.trn",
                    r"\\atl-fs\pchat-ls\mgc_20261126115500.trn",
                    r"\\atl-fs\pchat-ls\mgc_20261126120105.trn"
                ]
            );
        }
        d => panic!("{d}"),
    }
    // Halfway through the catch-up (the executor died after the first restore): the rest.
    let mut half = after_tail.clone();
    half.instances
        .iter_mut()
        .find(|i| i.name == "dal-sql1")
        .unwrap()
        .databases[0]
        .lsn
        .redo_start = Some(Lsn(4800));
    match plan::next(&spec, &half, t) {
        Decision::Step(Step::CatchUp { files, .. }) => {
            assert_eq!(files.len(), 2);
            assert_eq!(files[0].first_lsn, Lsn(4800));
            assert_eq!(files[1].last_lsn, Lsn(5000));
        }
        d => panic!("{d}"),
    }
    assert!(matches!(take(&spec, &mut obs, t), Step::CatchUp { .. }));
    // Caught up to the tail: remove log shipping in one step, the secondary side first, then
    // both primary rows.
    match take(&spec, &mut obs, t) {
        Step::RemoveLogShipping {
            site,
            configurations,
            ..
        } => {
            assert_eq!(site, "dallas");
            let sides: Vec<(&str, LogShippingSide)> = configurations
                .iter()
                .map(|c| (c.instance.as_str(), c.side))
                .collect();
            assert_eq!(
                sides,
                [
                    ("dal-sql1", LogShippingSide::Secondary),
                    ("atl-sql1", LogShippingSide::Primary),
                    ("atl-sql2", LogShippingSide::Primary)
                ]
            );
        }
        s => panic!("{s:?}"),
    }
    assert!(
        matches!(take(&spec, &mut obs, t), Step::Recover { instance, database, .. } if instance == "dal-sql1" && database == "mgc")
    );
    // After recovery: publish dallas's servers, FailedOver (dallas is not the home site).
    assert!(
        matches!(take(&spec, &mut obs, t), Step::PublishActiveServers { servers, pool_state: PoolState::FailedOver, .. }
        if servers == ["dal-pc1.litwareinc.com", "dal-pc2.litwareinc.com"])
    );
    // After publish: dallas gets its own (empty) compliance database, mirrored, then mgc mirrored.
    assert!(
        matches!(take(&spec, &mut obs, t), Step::CreateComplianceDatabase { instance, database, .. } if instance == "dal-sql1" && database == "mgccomp")
    );
    assert!(
        matches!(take(&spec, &mut obs, t), Step::SeedMirror { database, .. } if database == "mgccomp")
    );
    assert!(
        matches!(take(&spec, &mut obs, t), Step::EstablishMirroring { database, .. } if database == "mgccomp")
    );
    assert!(
        matches!(take(&spec, &mut obs, t), Step::SeedMirror { principal, mirror, database, .. } if principal == "dal-sql1" && mirror == "dal-sql2" && database == "mgc")
    );
    assert!(
        matches!(take(&spec, &mut obs, t), Step::EstablishMirroring { database, .. } if database == "mgc")
    );
    // After mirroring: reverse log shipping to the demoted copy, no reseed.
    assert!(
        matches!(take(&spec, &mut obs, t), Step::ConfigureLogShipping { secondary_instance, primary_instances, .. }
        if secondary_instance == "atl-sql1" && primary_instances == ["dal-sql1"])
    );
    // After reverse log shipping: converged, and nothing was overwritten on the way.
    assert_eq!(plan::next(&spec, &obs, t), Decision::Converged);
    assert!(invariants::converged_violations(&spec, &obs).is_empty());
    // atlanta's compliance database is left ONLINE, unmirrored.
    let comp = obs.database("atl-sql1", "mgccomp").unwrap();
    assert!(comp.mirroring.is_none());
}

#[test]
fn failback_after_a_planned_switch_is_a_planned_switch_that_converges() {
    let mut obs = converged_atlanta();
    let t = at("2026-11-26T12:05:00Z");
    let (_, end) = run(&spec("dallas"), &mut obs, t);
    // Drain wait first: run it again past the drain timeout.
    assert!(
        matches!(end, Decision::Wait(WaitReason::Draining { .. })),
        "{end}"
    );
    let (_, end) = run(&spec("dallas"), &mut obs, at("2026-11-26T12:10:00Z"));
    assert_eq!(end, Decision::Converged);
    let (steps, end) = run(&spec("atlanta"), &mut obs, at("2026-11-26T12:20:00Z"));
    assert_eq!(end, Decision::Converged, "{steps:?}");
    assert!(
        !steps.iter().any(|s| matches!(s, Step::Reseed { .. })),
        "no reseed on failback: {steps:?}"
    );
    assert!(steps.iter().any(|s| matches!(s, Step::PublishActiveServers { pool_state: PoolState::Normal, servers, .. } if !servers.is_empty())));
}

#[test]
fn forced_failover_without_allow_data_loss_is_blocked_with_the_estimate() {
    let spec = spec("dallas");
    let obs = observed("observed-atlanta-down.yaml");
    let d = plan::next(&spec, &obs, obs.taken_at);
    match &d {
        // Down at 11:58:00, last restorable log backup finished 11:50:00: 480 s.
        Decision::Blocked(BlockReason::DataLossNotAllowed {
            estimated_seconds,
            last_file,
            to_instance,
            ..
        }) => {
            assert_eq!(*estimated_seconds, 480);
            assert_eq!(to_instance, "dal-sql1");
            assert_eq!(
                last_file.as_deref(),
                Some(r"D:\pchat-ls-copy\mgc_20261126115000.trn")
            );
        }
        d => panic!("{d}"),
    }
    let text = d.to_string();
    assert!(
        text.contains("480s") && text.contains("allowDataLoss"),
        "{text}"
    );
    let a = plan::assess(&spec, &obs, obs.taken_at);
    assert_eq!(
        a.estimated_data_loss.map(|l| l.estimated_seconds),
        Some(480)
    );
    assert_eq!(
        a.transition_kind,
        Some(pchat_core::api::TransitionKind::Forced)
    );
}

#[test]
fn forced_failover_waits_until_unreachable_after_has_passed() {
    let spec = spec("dallas");
    let obs = observed("observed-atlanta-down.yaml");
    match plan::next(&spec, &obs, at("2026-11-26T11:58:40Z")) {
        Decision::Wait(WaitReason::PrimarySiteUnreachable { site, seconds_left }) => {
            assert_eq!((site.as_str(), seconds_left), ("atlanta", 20));
        }
        d => panic!("{d}"),
    }
}

#[test]
fn forced_failover_within_max_data_loss_catches_up_recovers_publishes_and_mirrors() {
    let mut spec = spec("dallas");
    spec.failover.allow_data_loss = true;
    let mut obs = observed("observed-atlanta-down.yaml");
    let now = obs.taken_at;
    let (steps, end) = run(&spec, &mut obs, now);
    assert_eq!(
        names(&steps)[..5],
        [
            "PublishActiveServers",
            "CatchUp",
            "RemoveLogShipping",
            "Recover",
            "PublishActiveServers"
        ]
    );
    assert!(matches!(&steps[0], Step::PublishActiveServers { servers, .. } if servers.is_empty()));
    assert!(
        matches!(&steps[1], Step::CatchUp { files, .. } if files.len() == 1 && files[0].last_lsn == Lsn(4800))
    );
    assert!(matches!(
        &steps[4],
        Step::PublishActiveServers {
            pool_state: PoolState::FailedOver,
            ..
        }
    ));
    assert!(
        steps
            .iter()
            .any(|s| matches!(s, Step::EstablishMirroring { database, .. } if database == "mgc"))
    );
    // No step is ever sent to atlanta while it is down; log shipping waits for it.
    assert!(
        steps
            .iter()
            .all(|s| s.instances().iter().all(|i| i.starts_with("dal-")))
    );
    assert!(
        matches!(end, Decision::Wait(WaitReason::InstanceUnreachable { ref site, .. }) if site == "atlanta"),
        "{end}"
    );
}

#[test]
fn forced_failover_beyond_max_data_loss_is_blocked() {
    let mut spec = spec("dallas");
    spec.failover.allow_data_loss = true;
    spec.failover.max_data_loss = std::time::Duration::from_secs(300).into();
    let obs = observed("observed-atlanta-down.yaml");
    match plan::next(&spec, &obs, obs.taken_at) {
        Decision::Blocked(BlockReason::DataLossTooLarge {
            estimated_seconds,
            max_seconds,
            ..
        }) => {
            assert_eq!((estimated_seconds, max_seconds), (480, 300));
        }
        d => panic!("{d}"),
    }
}

#[test]
fn returning_old_site_stale_copy_is_fenced_then_salvaged_before_any_reseed() {
    let mut spec = spec("dallas");
    spec.failover.allow_data_loss = true;
    let mut obs = observed("observed-atlanta-returns.yaml");
    let now = obs.taken_at;
    let (steps, end) = run(&spec, &mut obs, now);
    assert_eq!(end, Decision::Converged, "{steps:?}");
    // Its mirroring session goes first: a database in one cannot be set READ_ONLY.
    assert!(
        matches!(&steps[0], Step::RemoveMirroring { instance, databases, .. }
        if instance == "atl-sql1" && databases == &["mgc"])
    );
    assert!(matches!(&steps[1], Step::FenceStaleCopy { instance, .. } if instance == "atl-sql1"));
    assert!(
        matches!(&steps[2], Step::RemoveLogShipping { configurations, .. }
        if configurations.iter().map(|c| c.instance.as_str()).collect::<Vec<_>>() == ["atl-sql1"])
    );
    let salvage = position(
        &steps,
        |s| matches!(s, Step::SalvageStaleCopy { instance, .. } if instance == "atl-sql1"),
    );
    let reseed = position(
        &steps,
        |s| matches!(s, Step::Reseed { instance, replace: true, .. } if instance == "atl-sql1"),
    );
    assert!(salvage < reseed);
    match &steps[salvage] {
        Step::SalvageStaleCopy { file, .. } => {
            assert_eq!(
                file,
                r"\\atl-fs\pchat-ls\mgc_salvage_atl-sql1_20261126130000.bak"
            )
        }
        s => panic!("{s:?}"),
    }
    // atlanta takes part in no mirroring session and its old log-shipping rows are gone.
    assert!(
        steps
            .iter()
            .any(|s| matches!(s, Step::RemoveMirroring { site, .. } if site == "atlanta"))
    );
    assert!(steps.iter().any(
        |s| matches!(s, Step::RemoveLogShipping { site, configurations, .. }
        if site == "atlanta" && configurations.iter().all(|c| c.side == LogShippingSide::Primary))
    ));
}

#[test]
fn returning_stale_copy_with_newer_writes_is_blocked_after_salvage_without_policy_or_approval() {
    let spec = spec("dallas");
    let mut obs = observed("observed-atlanta-returns.yaml");
    let now = obs.taken_at;
    let (steps, end) = run(&spec, &mut obs, now);
    // Its log-shipping backup job goes before the salvage: while the copy waits for a person,
    // a log backup would move it past its salvage and call for another full one each time.
    assert_eq!(
        names(&steps),
        [
            "RemoveMirroring",
            "FenceStaleCopy",
            "RemoveLogShipping",
            "SalvageStaleCopy"
        ]
    );
    assert!(
        matches!(&steps[2], Step::RemoveLogShipping { site, configurations, .. }
        if site == "atlanta" && configurations.len() == 1
            && configurations[0].instance == "atl-sql1"
            && configurations[0].side == LogShippingSide::Primary)
    );
    let stale = obs
        .instances
        .iter()
        .find(|i| i.name == "atl-sql1")
        .unwrap()
        .database("mgc")
        .unwrap();
    assert!(stale.log_shipping_primary.is_none());
    match end {
        Decision::Blocked(BlockReason::StaleCopyMayBeNewer {
            instance,
            end_of_log,
            basis: NewerBasis::PrimaryFork(primary_point),
            salvage_file,
            ..
        }) => {
            assert_eq!(
                (instance.as_str(), end_of_log, primary_point),
                ("atl-sql1", Lsn(4950), Lsn(4800))
            );
            assert!(salvage_file.is_some());
        }
        d => panic!("{d}"),
    }
}

#[test]
fn both_sites_online_at_first_sight_with_newer_secondary_blocks_asking_for_approval() {
    let spec = spec("atlanta");
    let mut obs = observed("observed-both-online.yaml");
    let now = obs.taken_at;
    let (steps, end) = run(&spec, &mut obs, now);
    assert_eq!(names(&steps), ["FenceStaleCopy", "SalvageStaleCopy"]);
    let text = end.to_string();
    assert!(
        matches!(
            end,
            Decision::Blocked(BlockReason::StaleCopyMayBeNewer {
                basis: NewerBasis::NoForkPoint,
                ..
            })
        ),
        "{end}"
    );
    assert!(
        text.contains("dal-sql1") && text.contains("approveOverwrite"),
        "{text}"
    );
}

#[test]
fn approve_overwrite_lets_the_newer_copy_be_reseeded_after_its_salvage() {
    let mut spec = spec("atlanta");
    spec.failover.approve_overwrite = vec!["dal-sql1".to_string()];
    let mut obs = observed("observed-both-online.yaml");
    let now = obs.taken_at;
    let (steps, end) = run(&spec, &mut obs, now);
    assert_eq!(end, Decision::Converged, "{steps:?}");
    let salvage = position(
        &steps,
        |s| matches!(s, Step::SalvageStaleCopy { instance, .. } if instance == "dal-sql1"),
    );
    let reseed = position(
        &steps,
        |s| matches!(s, Step::Reseed { instance, .. } if instance == "dal-sql1"),
    );
    assert!(salvage < reseed);
}

#[test]
fn mirror_failover_inside_the_primary_site_is_still_converged() {
    let spec = spec("atlanta");
    let obs = observed("observed-mirror-failover-atlanta.yaml");
    assert_eq!(plan::next(&spec, &obs, obs.taken_at), Decision::Converged);
    assert_eq!(plan::project(&spec, &obs, obs.taken_at).steps, []);
    let a = plan::assess(&spec, &obs, obs.taken_at);
    assert!(a.protected, "{:?}", a.degraded_reasons);
    assert!(invariants::converged_violations(&spec, &obs).is_empty());
}

#[test]
fn after_a_mirror_failover_the_new_principal_without_a_primary_row_is_configured_as_primary() {
    let spec = spec("atlanta");
    let mut obs = observed("observed-mirror-failover-atlanta.yaml");
    let principal = obs
        .instances
        .iter_mut()
        .find(|i| i.name == "atl-sql2")
        .unwrap();
    for d in &mut principal.databases {
        d.log_shipping_primary = None;
    }
    match plan::next(&spec, &obs, obs.taken_at) {
        Decision::Step(Step::ConfigureLogShipping {
            primary_instances, ..
        }) => assert_eq!(primary_instances, ["atl-sql2"]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_switch_after_a_mirror_failover_demotes_the_observed_principal() {
    let spec = spec("dallas");
    let obs = observed("observed-mirror-failover-atlanta.yaml");
    let p = plan::project(&spec, &obs, obs.taken_at);
    assert_eq!(p.end, Decision::Converged, "{:?}", p.steps);
    assert!(
        p.steps.iter().any(
            |s| matches!(s, Step::DemoteOldPrimary { instance, .. } if instance == "atl-sql2")
        )
    );
    assert!(
        p.steps.iter().any(
            |s| matches!(s, Step::KillChatSessions { instance, .. } if instance == "atl-sql2")
        )
    );
}

#[test]
fn suspend_sends_nothing_whatever_the_state() {
    let mut spec = spec("dallas");
    spec.suspend = true;
    for f in [
        "observed-installer.yaml",
        "observed-steady-atlanta.yaml",
        "observed-atlanta-returns.yaml",
    ] {
        let obs = observed(f);
        let p = plan::project(&spec, &obs, obs.taken_at);
        assert!(p.steps.is_empty(), "{f}");
        assert_eq!(p.end, Decision::Wait(WaitReason::Suspended));
        assert_eq!(
            plan::assess(&spec, &obs, obs.taken_at).phase,
            pchat_core::api::Phase::Suspended
        );
    }
}

#[test]
fn catch_up_restores_what_is_local_then_waits_naming_the_file_when_the_old_sites_share_is_unreadable()
 {
    let spec = spec("dallas");
    let mut obs = converged_atlanta();
    let t = at("2026-11-26T12:01:05Z");
    let t0 = obs.taken_at;
    take(&spec, &mut obs, t0);
    // Kill the stragglers, remove mirroring, take the tail-log backup.
    for _ in 0..3 {
        take(&spec, &mut obs, t);
    }
    let share = obs
        .backup_locations
        .iter_mut()
        .find(|l| l.path == r"\\atl-fs\pchat-ls")
        .unwrap();
    share.readable = false;
    share.reason = Some("share down".to_string());
    share.files.clear();
    // What the copy folder holds is restored first; then the share is needed.
    assert!(
        matches!(take(&spec, &mut obs, t), Step::CatchUp { files, .. } if files.len() == 1 && files[0].last_lsn == Lsn(4800))
    );
    let d = plan::next(&spec, &obs, t);
    assert!(
        matches!(d, Decision::Wait(WaitReason::LocationUnreadable { .. })),
        "{d}"
    );
    assert_eq!(
        d.to_string(),
        r"Wait: dal-sql1 cannot catch up mgc: log backup mgc_20261126120105.trn on \\atl-fs\pchat-ls is unreadable (share down)"
    );
}

#[test]
fn planned_switch_reseeds_a_candidate_that_cannot_catch_up_before_draining() {
    let spec = spec("dallas");
    let mut obs = converged_atlanta();
    // The log backup 4700-4800 is lost everywhere: dallas could never reach atlanta's tail.
    for l in &mut obs.backup_locations {
        l.files.retain(|f| f.first_lsn != Lsn(4700));
    }
    let now = obs.taken_at;
    match take(&spec, &mut obs, now) {
        Step::Reseed {
            site,
            instance,
            source_instance,
            full_backup,
            replace: true,
            ..
        } => {
            assert_eq!(
                (site.as_str(), instance.as_str(), source_instance.as_str()),
                ("dallas", "dal-sql1", "atl-sql1")
            );
            assert_eq!(
                full_backup,
                r"\\atl-fs\pchat-ls\mgc_seed_dal-sql1_20261126120000.bak"
            );
        }
        s => panic!("{s:?}"),
    }
    // Service was not interrupted for it; the switch goes on from the reseeded copy.
    assert!(
        obs.published
            .as_ref()
            .is_some_and(|p| !p.active_servers.is_empty())
    );
    let (steps, end) = run(&spec, &mut obs, at("2026-11-26T12:05:00Z"));
    assert!(
        matches!(end, Decision::Wait(WaitReason::Draining { .. })),
        "{end}"
    );
    assert!(matches!(&steps[0], Step::PublishActiveServers { servers, .. } if servers.is_empty()));
    let (_, end) = run(&spec, &mut obs, at("2026-11-26T12:07:00Z"));
    assert_eq!(end, Decision::Converged);
}

#[test]
fn single_instance_sites_bootstrap_and_switch_without_mirroring() {
    let single = |primary: &str| {
        let mut s = spec(primary);
        for site in &mut s.sites {
            site.instances.truncate(1);
        }
        s
    };
    let mut obs = observed("observed-installer.yaml");
    obs.instances.retain(|i| i.name.ends_with('1'));
    let (steps, end) = run(&single("atlanta"), &mut obs, at("2026-11-26T12:00:00Z"));
    assert_eq!(end, Decision::Converged);
    assert_eq!(
        names(&steps),
        [
            "BootstrapSecondary",
            "ConfigureLogShipping",
            "PublishActiveServers"
        ]
    );
    let (steps, end) = run(&single("dallas"), &mut obs, at("2026-11-26T12:10:00Z"));
    assert_eq!(end, Decision::Converged, "{steps:?}");
    assert!(
        !steps
            .iter()
            .any(|s| matches!(s, Step::SeedMirror { .. } | Step::EstablishMirroring { .. }))
    );
    assert!(
        matches!(steps.last(), Some(Step::ConfigureLogShipping { secondary_instance, primary_instances, .. })
        if secondary_instance == "atl-sql1" && *primary_instances == ["dal-sql1"])
    );
}

#[test]
fn assessment_reports_degraded_protection_in_words() {
    let spec = spec("atlanta");
    let mut obs = converged_atlanta();
    dallas_secondary(&mut obs).last_restored_latency_minutes = Some(20);
    let mirror = obs
        .instances
        .iter_mut()
        .find(|i| i.name == "atl-sql1")
        .unwrap();
    mirror.databases[0].mirroring.as_mut().unwrap().state =
        pchat_core::observe::MirroringState::Disconnected;
    let a = plan::assess(&spec, &obs, obs.taken_at);
    assert_eq!(a.decision, Decision::Converged);
    assert!(!a.protected);
    assert!(
        a.degraded_reasons
            .iter()
            .any(|r| r.contains("20 min") && r.contains("rpoTarget")),
        "{:?}",
        a.degraded_reasons
    );
    assert!(
        a.degraded_reasons
            .iter()
            .any(|r| r.contains("Disconnected")),
        "{:?}",
        a.degraded_reasons
    );
}

#[test]
fn secondary_site_unreachable_in_steady_state_waits_and_is_degraded() {
    let spec = spec("atlanta");
    let mut obs = converged_atlanta();
    for i in obs
        .instances
        .iter_mut()
        .filter(|i| i.name.starts_with("dal-"))
    {
        i.reachability = pchat_core::observe::Reachability::Unreachable {
            reason: "no route to host".to_string(),
            since: at("2026-11-26T11:00:00Z"),
        };
        i.databases.clear();
    }
    let a = plan::assess(&spec, &obs, obs.taken_at);
    assert!(
        matches!(a.decision, Decision::Wait(WaitReason::InstanceUnreachable { ref instance, .. }) if instance == "dal-sql1"),
        "{}",
        a.decision
    );
    assert_eq!(a.phase, pchat_core::api::Phase::Waiting);
    assert!(
        a.degraded_reasons
            .iter()
            .any(|r| r.contains("dal-sql1 (dallas) is unreachable: no route to host"))
    );
    assert_eq!(plan::project(&spec, &obs, obs.taken_at).steps, []);
}

#[test]
fn a_secondary_recovered_by_hand_with_writes_of_its_own_needs_approval_before_reseed() {
    let spec = spec("atlanta");
    let mut obs = converged_atlanta();
    // Someone ran RESTORE DATABASE mgc WITH RECOVERY on dal-sql1 and wrote to it.
    let d = &mut obs
        .instances
        .iter_mut()
        .find(|i| i.name == "dal-sql1")
        .unwrap()
        .databases[0];
    d.state = pchat_core::observe::DatabaseState::Online;
    d.lsn.redo_start = None;
    d.lsn.fork_point = Some(Lsn(4700));
    d.lsn.end_of_log = Some(Lsn(4750));
    let now = obs.taken_at;
    let (steps, end) = run(&spec, &mut obs, now);
    assert_eq!(names(&steps), ["FenceStaleCopy", "SalvageStaleCopy"]);
    assert!(
        matches!(
            end,
            Decision::Blocked(BlockReason::StaleCopyMayBeNewer {
                basis: NewerBasis::OwnFork(Lsn(4700)),
                ..
            })
        ),
        "{end}"
    );
    assert!(end.to_string().contains("its own fork point 4700"), "{end}");
}

#[test]
fn projection_of_a_planned_switch_runs_through_the_drain_to_convergence() {
    let spec = spec("dallas");
    let obs = converged_atlanta();
    let p = plan::project(&spec, &obs, obs.taken_at);
    assert_eq!(p.end, Decision::Converged);
    assert_eq!(p.steps.len(), 14);
    assert_eq!(p.steps[1].name(), "KillChatSessions");
    // The projection's clock moved to the drain deadline: the tail-log backup is named after it.
    assert!(
        matches!(&p.steps[3], Step::DemoteOldPrimary { file, .. } if file.ends_with("mgc_20261126120100.trn"))
    );
}

#[test]
fn server_names_reported_in_upper_case_by_sql_server_still_match_the_spec() {
    let spec = spec("atlanta");
    let mut obs = converged_atlanta();
    for i in &mut obs.instances {
        for d in &mut i.databases {
            if let Some(m) = d.mirroring.as_mut() {
                m.partner_instance = m.partner_instance.to_uppercase();
            }
            if let Some(l) = d.log_shipping_primary.as_mut() {
                for s in &mut l.secondaries {
                    s.secondary_server = s.secondary_server.to_uppercase();
                }
            }
            if let Some(l) = d.log_shipping_secondary.as_mut() {
                l.primary_server = l.primary_server.to_uppercase();
            }
        }
    }
    for l in &mut obs.backup_locations {
        for f in &mut l.files {
            f.server_name = f.server_name.to_uppercase();
        }
    }
    assert_eq!(plan::next(&spec, &obs, obs.taken_at), Decision::Converged);
    assert!(invariants::converged_violations(&spec, &obs).is_empty());
    // And a switch from there plans the same steps as from the lower-case names.
    let upper = plan::project(&crate::spec("dallas"), &obs, obs.taken_at);
    let lower = plan::project(&crate::spec("dallas"), &converged_atlanta(), obs.taken_at);
    assert_eq!(names(&upper.steps), names(&lower.steps));
    assert_eq!(upper.end, Decision::Converged);
}

#[test]
fn a_chat_database_in_simple_recovery_blocks_mirroring_and_log_shipping_with_the_fix() {
    let spec = spec("atlanta");
    let mut obs = observed("observed-installer.yaml");
    obs.instances[0].databases[0].recovery_model = pchat_core::observe::RecoveryModel::Simple;
    let p = plan::project(&spec, &obs, obs.taken_at);
    assert!(
        p.steps.iter().all(|s| !s.databases().contains(&"mgc")),
        "{:?}",
        p.steps
    );
    assert!(
        matches!(
            p.end,
            Decision::Blocked(BlockReason::RecoveryModelNotFull { .. })
        ),
        "{}",
        p.end
    );
    assert!(
        p.end
            .to_string()
            .contains("ALTER DATABASE [mgc] SET RECOVERY FULL"),
        "{}",
        p.end
    );
}

/// dal-sql1's log-shipping secondary configuration of mgc.
fn dallas_secondary(obs: &mut Observation) -> &mut pchat_core::observe::LogShippingSecondary {
    obs.instances
        .iter_mut()
        .find(|i| i.name == "dal-sql1")
        .unwrap()
        .databases[0]
        .log_shipping_secondary
        .as_mut()
        .unwrap()
}

/// A schedule observed on a log-shipping job.
fn schedule(job: &str, id: i32, every_seconds: Option<u64>) -> pchat_core::observe::JobSchedule {
    pchat_core::observe::JobSchedule {
        job_name: job.to_string(),
        schedule_id: id,
        schedule_name: format!("{job}_every_300s"),
        enabled: true,
        every_seconds,
    }
}

/// The steady atlanta pool with its log-shipping jobs' schedules observed, every 300 s.
fn converged_atlanta_with_job_schedules() -> Observation {
    let mut obs = converged_atlanta();
    for i in &mut obs.instances {
        let name = i.name.clone();
        for d in &mut i.databases {
            if let Some(p) = d.log_shipping_primary.as_mut() {
                p.job_schedules = vec![schedule("LSBackup_mgc", 1, Some(300))];
            }
            if let Some(s) = d.log_shipping_secondary.as_mut() {
                assert_eq!(name, "dal-sql1");
                s.job_schedules = vec![
                    schedule("LSCopy_atl-sql1_mgc", 1, Some(300)),
                    schedule("LSRestore_atl-sql1_mgc", 2, Some(300)),
                ];
            }
        }
    }
    obs
}

#[test]
fn a_changed_backup_interval_reschedules_every_log_shipping_job_then_converges() {
    let mut spec = spec("atlanta");
    let mut obs = converged_atlanta_with_job_schedules();
    let now = obs.taken_at;
    assert_eq!(plan::next(&spec, &obs, now), Decision::Converged);

    spec.log_shipping.backup_interval = std::time::Duration::from_secs(60).into();
    spec.log_shipping.rpo_target = std::time::Duration::from_secs(180).into();
    let (steps, end) = run(&spec, &mut obs, now);
    assert_eq!(end, Decision::Converged);
    assert_eq!(names(&steps), ["RescheduleLogShippingJobs"]);
    match &steps[0] {
        Step::RescheduleLogShippingJobs {
            site,
            schedules,
            interval_seconds,
            ..
        } => {
            assert_eq!((site.as_str(), *interval_seconds), ("atlanta", 60));
            let changed: Vec<(&str, &str, i32)> = schedules
                .iter()
                .map(|s| (s.instance.as_str(), s.job_name.as_str(), s.schedule_id))
                .collect();
            assert_eq!(
                changed,
                [
                    ("atl-sql1", "LSBackup_mgc", 1),
                    ("atl-sql2", "LSBackup_mgc", 1),
                    ("dal-sql1", "LSCopy_atl-sql1_mgc", 1),
                    ("dal-sql1", "LSRestore_atl-sql1_mgc", 2)
                ]
            );
            assert!(schedules.iter().all(|s| s.every_seconds == Some(300)));
        }
        s => panic!("{s:?}"),
    }
}

#[test]
fn only_a_schedule_at_another_interval_or_not_repeating_is_rescheduled() {
    let spec = spec("atlanta");
    let mut obs = converged_atlanta_with_job_schedules();
    // A person made the restore job run once a day.
    dallas_secondary(&mut obs).job_schedules[1].every_seconds = None;
    let now = obs.taken_at;
    match plan::next(&spec, &obs, now) {
        Decision::Step(Step::RescheduleLogShippingJobs { schedules, .. }) => {
            assert_eq!(schedules.len(), 1);
            assert_eq!(schedules[0].job_name, "LSRestore_atl-sql1_mgc");
            assert_eq!(schedules[0].every_seconds, None);
        }
        d => panic!("{d}"),
    }
    // Observations that list no schedule (older fixtures, a job without one) ask for nothing.
    assert_eq!(
        plan::next(&spec, &converged_atlanta(), now),
        Decision::Converged
    );
}

#[test]
fn a_step_waits_while_a_backup_or_restore_runs_on_its_instance_and_keeps_its_phase() {
    let spec = spec("dallas");
    let mut obs = observed("observed-steady-atlanta.yaml");
    let Decision::Step(step) = plan::next(&spec, &obs, obs.taken_at) else {
        panic!("a planned switch starts with a step");
    };
    // The drain sends nothing: move on to the first step that sends SQL.
    let first_sql = plan::project(&spec, &obs, obs.taken_at)
        .steps
        .into_iter()
        .find(|s| !s.instances().is_empty())
        .unwrap_or(step);
    let target = first_sql.instances()[0].to_string();
    let running = pchat_core::observe::RunningOperation {
        session_id: 61,
        command: "RESTORE LOG".into(),
        percent_complete: 42,
        program_name: "pchat-operator".into(),
    };
    instance_mut(&mut obs, &target)
        .running_operations
        .push(running);
    // Every step that sends to that instance now waits; the message names the statement.
    let p = plan::project(&spec, &obs, obs.taken_at);
    match &p.end {
        Decision::Wait(w @ WaitReason::OperationRunning { instance, .. }) => {
            assert_eq!(instance, &target);
            let text = w.to_string();
            assert!(
                text.contains("RESTORE LOG running") && text.contains("42%"),
                "{text}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        p.steps
            .iter()
            .all(|s| !s.instances().contains(&target.as_str()))
    );

    // The wait keeps the phase of the work it holds up: a bootstrap stays Bootstrapping.
    let bootstrap = self::spec("atlanta");
    let mut obs = observed("observed-installer.yaml");
    let Decision::Step(step) = plan::next(&bootstrap, &obs, obs.taken_at) else {
        panic!("the installer state bootstraps");
    };
    let target = step.instances()[0].to_string();
    instance_mut(&mut obs, &target).running_operations.push(
        pchat_core::observe::RunningOperation {
            session_id: 62,
            command: "BACKUP DATABASE".into(),
            percent_complete: 7,
            program_name: String::new(),
        },
    );
    let a = plan::assess(&bootstrap, &obs, obs.taken_at);
    assert!(
        matches!(
            a.decision,
            Decision::Wait(WaitReason::OperationRunning { .. })
        ),
        "{:?}",
        a.decision
    );
    assert_eq!(a.phase, pchat_core::api::Phase::Bootstrapping);
}

/// The converged atlanta fixture with an ONLINE chat copy on dal-sql2, the secondary site's
/// instance that neither mirrors nor receives log shipping.
fn converged_atlanta_with_copy_on_dal_sql2(copy: &str) -> Observation {
    let mut obs = converged_atlanta();
    let copy: DatabaseObservation = serde_saphyr::from_str(copy).unwrap();
    instance_mut(&mut obs, "dal-sql2").databases.push(copy);
    obs
}

#[test]
fn a_stale_copy_on_an_instance_without_a_role_is_reseeded_after_its_salvage_not_left_fenced() {
    let spec = spec("atlanta");
    let mut obs = converged_atlanta_with_copy_on_dal_sql2(
        "name: mgc\nstate: ONLINE\nlsn: {endOfLog: 4000, forkPoint: 4000}\n",
    );
    let now = obs.taken_at;
    let (steps, end) = run(&spec, &mut obs, now);
    assert_eq!(end, Decision::Converged, "{steps:?}");
    assert_eq!(
        names(&steps),
        ["FenceStaleCopy", "SalvageStaleCopy", "Reseed"]
    );
    assert!(
        steps.iter().all(|s| s.instances().contains(&"dal-sql2")),
        "{steps:?}"
    );
    assert_eq!(
        copy_mut(&mut obs, "dal-sql2", "mgc").state,
        pchat_core::observe::DatabaseState::Restoring
    );
}

#[test]
fn a_stale_copy_without_a_role_that_may_be_newer_waits_for_approval_before_its_reseed() {
    let mut spec = spec("atlanta");
    let mut obs = converged_atlanta_with_copy_on_dal_sql2(
        "name: mgc\nstate: ONLINE\nlsn: {endOfLog: 6000, forkPoint: 4000}\n",
    );
    let now = obs.taken_at;
    let (steps, end) = run(&spec, &mut obs.clone(), now);
    assert_eq!(names(&steps), ["FenceStaleCopy", "SalvageStaleCopy"]);
    assert!(
        matches!(&end, Decision::Blocked(BlockReason::StaleCopyMayBeNewer { instance, .. })
        if instance == "dal-sql2"),
        "{end}"
    );
    spec.failover.approve_overwrite = vec!["dal-sql2".to_string()];
    let (steps, end) = run(&spec, &mut obs, now);
    assert_eq!(end, Decision::Converged, "{steps:?}");
    assert_eq!(names(&steps).last(), Some(&"Reseed"));
}

#[test]
fn a_restricted_user_or_single_user_stale_copy_is_fenced_read_only() {
    // RESTRICTED_USER still admits db_owner and sysadmin, which chat service logins often are;
    // SINGLE_USER admits whoever connects first.
    let spec = spec("atlanta");
    for access in ["RESTRICTED_USER", "SINGLE_USER"] {
        let mut obs = converged_atlanta_with_copy_on_dal_sql2(&format!(
            "name: mgc\nstate: ONLINE\nuserAccess: {access}\nlsn: {{endOfLog: 4000}}\n"
        ));
        let now = obs.taken_at;
        let step = take(&spec, &mut obs, now);
        assert!(
            matches!(&step, Step::FenceStaleCopy { instance, .. } if instance == "dal-sql2"),
            "{access}: {step:?}"
        );
        assert!(copy_mut(&mut obs, "dal-sql2", "mgc").read_only, "{access}");
    }
}
