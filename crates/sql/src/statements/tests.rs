use super::*;
use pchat_core::api::PoolState;
use pchat_core::observe::Lsn;
use pchat_core::plan::{LogFile, LogShippingConfiguration, LogShippingSide, ScheduleToChange};

fn run(step: Step) -> Vec<Statement> {
    statements(&step, &StatementContext::default())
}

fn p(n: usize, v: &str) -> (String, ParamValue) {
    (format!("@P{n}"), ParamValue::Text(v.to_string()))
}

fn sqls(st: &[Statement]) -> Vec<&str> {
    st.iter().map(|s| s.sql.as_str()).collect()
}

fn instances(st: &[Statement]) -> Vec<&str> {
    st.iter().map(|s| s.instance.as_str()).collect()
}

fn log_file(path: &str, first: u128, last: u128) -> LogFile {
    LogFile {
        path: path.to_string(),
        first_lsn: Lsn(first),
        last_lsn: Lsn(last),
    }
}

/// Names and paths that go into a step; `hostile()` swaps each for one that tries to escape.
#[derive(Clone)]
struct Names {
    db: String,
    path: String,
    endpoint: String,
    server: String,
}

fn benign() -> Names {
    Names {
        db: "mgc".into(),
        path: r"\\atl-fs\pchat-ls\mgc_20261126120000.trn".into(),
        endpoint: "TCP://atl-sql1.litwareinc.com:5022".into(),
        server: "dal-sql1".into(),
    }
}

fn hostile() -> Names {
    Names {
        db: "a]b'; DROP DATABASE x--".into(),
        path: r"\\fs\o'brien'; DROP DATABASE x--\f.trn".into(),
        endpoint: "TCP://h:5022'; DROP DATABASE x--".into(),
        server: "s]'; DROP DATABASE x--".into(),
    }
}

/// One step of every variant, built from `n`.
fn every_step(n: &Names) -> Vec<Step> {
    let site = "atlanta".to_string();
    let inst = "atl-sql1".to_string();
    vec![
        Step::PublishActiveServers {
            site: site.clone(),
            servers: vec!["atl-pc1".into()],
            pool_state: PoolState::Normal,
        },
        Step::KillChatSessions {
            site: site.clone(),
            instance: inst.clone(),
            session_ids: vec![57, 61],
        },
        Step::RemoveMirroring {
            site: site.clone(),
            instance: inst.clone(),
            databases: vec![n.db.clone()],
        },
        Step::DemoteOldPrimary {
            site: site.clone(),
            instance: inst.clone(),
            database: n.db.clone(),
            file: n.path.clone(),
        },
        Step::CatchUp {
            site: site.clone(),
            instance: inst.clone(),
            database: n.db.clone(),
            files: vec![log_file(&n.path, 10, 20), log_file(&n.path, 20, 30)],
        },
        Step::RemoveLogShipping {
            site: site.clone(),
            database: n.db.clone(),
            configurations: vec![
                LogShippingConfiguration::secondary(&inst, &n.server),
                LogShippingConfiguration {
                    instance: inst.clone(),
                    side: LogShippingSide::Primary,
                    partners: vec![n.server.clone()],
                },
            ],
        },
        Step::Recover {
            site: site.clone(),
            instance: inst.clone(),
            database: n.db.clone(),
            kill_session_ids: vec![70],
        },
        Step::FenceStaleCopy {
            site: site.clone(),
            instance: inst.clone(),
            database: n.db.clone(),
        },
        Step::SalvageStaleCopy {
            site: site.clone(),
            instance: inst.clone(),
            database: n.db.clone(),
            file: n.path.clone(),
        },
        Step::Reseed {
            site: site.clone(),
            instance: inst.clone(),
            database: n.db.clone(),
            source_instance: "dal-sql1".into(),
            full_backup: n.path.clone(),
            log_backup: n.path.clone(),
            replace: true,
        },
        Step::BootstrapSecondary {
            site: site.clone(),
            instance: inst.clone(),
            database: n.db.clone(),
            source_instance: "dal-sql1".into(),
            full_backup: n.path.clone(),
            log_backup: n.path.clone(),
        },
        Step::CreateComplianceDatabase {
            site: site.clone(),
            instance: inst.clone(),
            database: n.db.clone(),
        },
        Step::SeedMirror {
            site: site.clone(),
            principal: inst.clone(),
            mirror: "atl-sql2".into(),
            database: n.db.clone(),
            full_backup: n.path.clone(),
            log_backup: n.path.clone(),
        },
        Step::EstablishMirroring {
            site: site.clone(),
            principal: inst.clone(),
            mirror: "atl-sql2".into(),
            database: n.db.clone(),
            principal_endpoint: n.endpoint.clone(),
            mirror_endpoint: n.endpoint.clone(),
        },
        Step::RescheduleLogShippingJobs {
            site: site.clone(),
            database: n.db.clone(),
            schedules: vec![ScheduleToChange {
                instance: inst.clone(),
                job_name: format!("LSBackup_{}", n.db),
                schedule_id: 7,
                every_seconds: Some(300),
            }],
            interval_seconds: 60,
        },
        Step::ConfigureLogShipping {
            site,
            primary_instances: vec![inst, "atl-sql2".into()],
            secondary_site: "dallas".into(),
            secondary_instance: "dal-sql1".into(),
            database: n.db.clone(),
            backup_share: n.path.clone(),
            copy_destination: n.path.clone(),
            backup_interval_seconds: 300,
            retention_seconds: 259_200,
        },
    ]
}

fn all_statements(n: &Names) -> Vec<(Step, Vec<Statement>)> {
    every_step(n)
        .into_iter()
        .map(|s| {
            let st = run(s.clone());
            (s, st)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Golden text, one test per step variant
// ---------------------------------------------------------------------------------------------

#[test]
fn reschedule_updates_each_schedule_by_id_to_the_interval_and_its_name() {
    let st = run(Step::RescheduleLogShippingJobs {
        site: "atlanta".into(),
        database: "mgc".into(),
        schedules: vec![
            ScheduleToChange {
                instance: "atl-sql1".into(),
                job_name: "LSBackup_mgc".into(),
                schedule_id: 3,
                every_seconds: Some(300),
            },
            ScheduleToChange {
                instance: "dal-sql1".into(),
                job_name: "LSRestore_atl-sql1_mgc".into(),
                schedule_id: 9,
                every_seconds: None,
            },
        ],
        interval_seconds: 90,
    });
    let update = "DECLARE @rc int; EXEC @rc = msdb.dbo.sp_update_schedule @schedule_id = @P1, @new_name = @P2, @freq_type = 4, @freq_interval = 1, @freq_subday_type = @P3, @freq_subday_interval = @P4; SELECT @rc AS return_code";
    assert_eq!(sqls(&st), [update, update]);
    assert_eq!(instances(&st), ["atl-sql1", "dal-sql1"]);
    // 90 s is not whole minutes: seconds (0x2), 90 of them.
    assert_eq!(
        st[0].params,
        [
            (String::from("@P1"), ParamValue::Int(3)),
            p(2, "LSBackup_mgc_every_90s"),
            (String::from("@P3"), ParamValue::Int(2)),
            (String::from("@P4"), ParamValue::Int(90)),
        ]
    );
    assert_eq!(st[1].params[1], p(2, "LSRestore_atl-sql1_mgc_every_90s"));
    assert!(st.iter().all(|s| s.done_if.is_empty()));
}

#[test]
fn publish_active_servers_sends_no_sql() {
    let st = run(Step::PublishActiveServers {
        site: "atlanta".into(),
        servers: vec![],
        pool_state: PoolState::FailedOver,
    });
    assert!(st.is_empty());
}

#[test]
fn kill_chat_sessions_kills_each_session_and_accepts_one_already_gone() {
    let st = run(Step::KillChatSessions {
        site: "atlanta".into(),
        instance: "atl-sql1".into(),
        session_ids: vec![57, 61],
    });
    assert_eq!(sqls(&st), ["KILL 57", "KILL 61"]);
    assert_eq!(instances(&st), ["atl-sql1", "atl-sql1"]);
    for s in &st {
        assert!(s.params.is_empty());
        assert_eq!(s.done_if, [6106]);
    }
    assert!(st[0].purpose.contains("57") && st[0].purpose.contains("atl-sql1"));
}

#[test]
fn remove_mirroring_sets_partner_off_and_is_done_when_already_unmirrored() {
    let st = run(Step::RemoveMirroring {
        site: "atlanta".into(),
        instance: "atl-sql2".into(),
        databases: vec!["mgccomp".into()],
    });
    assert_eq!(sqls(&st), ["ALTER DATABASE [mgccomp] SET PARTNER OFF"]);
    assert_eq!(instances(&st), ["atl-sql2"]);
    assert_eq!(st[0].done_if, [1416]);
    assert_eq!(st[0].retry_if, [5061]);
}

#[test]
fn remove_mirroring_of_several_databases_sends_one_partner_off_each_in_order() {
    let st = run(Step::RemoveMirroring {
        site: "atlanta".into(),
        instance: "atl-sql1".into(),
        databases: vec!["mgc".into(), "mgccomp".into()],
    });
    assert_eq!(
        sqls(&st),
        [
            "ALTER DATABASE [mgc] SET PARTNER OFF",
            "ALTER DATABASE [mgccomp] SET PARTNER OFF"
        ]
    );
    assert_eq!(instances(&st), ["atl-sql1", "atl-sql1"]);
    assert!(st.iter().all(|s| s.done_if == [1416]));
}

#[test]
fn demote_old_primary_takes_the_tail_log_backup_with_norecovery_to_the_planned_file() {
    let file = r"\\atl-fs\pchat-ls\mgc_20261126120000.trn";
    let st = run(Step::DemoteOldPrimary {
        site: "atlanta".into(),
        instance: "atl-sql1".into(),
        database: "mgc".into(),
        file: file.into(),
    });
    assert_eq!(
        sqls(&st),
        ["BACKUP LOG [mgc] TO DISK = @P1 WITH NORECOVERY, CHECKSUM"]
    );
    assert_eq!(st[0].params, [p(1, file)]);
    assert_eq!(st[0].instance, "atl-sql1");
    assert_eq!(st[0].done_if, [927]);
    assert!(st[0].purpose.contains(file));
}

#[test]
fn catch_up_restores_each_file_with_norecovery_in_the_planned_order() {
    // Deliberately not in name order: the planner's (LSN) order is what counts.
    let files = vec![
        log_file(r"D:\pchat-ls-copy\mgc_20261126120500.trn", 100, 200),
        log_file(r"\\atl-fs\pchat-ls\mgc_20261126120000.trn", 200, 300),
        log_file(r"\\atl-fs\pchat-ls\mgc_20261126121000.trn", 300, 400),
    ];
    let st = run(Step::CatchUp {
        site: "dallas".into(),
        instance: "dal-sql1".into(),
        database: "mgc".into(),
        files: files.clone(),
    });
    assert_eq!(st.len(), 3);
    for (s, f) in st.iter().zip(&files) {
        assert_eq!(s.sql, "RESTORE LOG [mgc] FROM DISK = @P1 WITH NORECOVERY");
        assert_eq!(s.params, [p(1, &f.path)]);
        assert_eq!(s.instance, "dal-sql1");
        assert_eq!(s.done_if, [4326]);
        assert_eq!(s.retry_if, [3101, 3201]);
    }
    assert!(st[2].purpose.contains("3 of 3") && st[2].purpose.contains("400"));
}

#[test]
fn catch_up_with_no_files_sends_nothing() {
    let st = run(Step::CatchUp {
        site: "dallas".into(),
        instance: "dal-sql1".into(),
        database: "mgc".into(),
        files: vec![],
    });
    assert!(st.is_empty());
}

#[test]
fn remove_log_shipping_secondary_side_deletes_the_database_then_the_primary_entry() {
    let st = run(Step::RemoveLogShipping {
        site: "dallas".into(),
        database: "mgc".into(),
        configurations: vec![LogShippingConfiguration::secondary("dal-sql1", "atl-sql1")],
    });
    assert_eq!(
        sqls(&st),
        [
            "DECLARE @rc int; EXEC @rc = master.dbo.sp_delete_log_shipping_secondary_database @secondary_database = @P1; SELECT @rc AS return_code",
            "DECLARE @rc int; EXEC @rc = master.dbo.sp_delete_log_shipping_secondary_primary @primary_server = @P1, @primary_database = @P2; SELECT @rc AS return_code",
        ]
    );
    assert_eq!(st[0].params, [p(1, "mgc")]);
    assert_eq!(st[1].params, [p(1, "atl-sql1"), p(2, "mgc")]);
    assert_eq!(instances(&st), ["dal-sql1", "dal-sql1"]);
    assert_eq!(st[0].done_if, [32014]);
    assert_eq!(st[1].done_if, [32023]);
}

#[test]
fn remove_log_shipping_primary_side_unlinks_every_secondary_before_the_primary_row() {
    let st = run(primary_side("atl-sql2", &["dal-sql1", "dal-sql2"]));
    let unlink = "DECLARE @rc int; EXEC @rc = master.dbo.sp_delete_log_shipping_primary_secondary @primary_database = @P1, @secondary_server = @P2, @secondary_database = @P3; SELECT @rc AS return_code";
    assert_eq!(
        sqls(&st),
        [
            unlink,
            unlink,
            "DECLARE @rc int; EXEC @rc = master.dbo.sp_delete_log_shipping_primary_database @database = @P1; SELECT @rc AS return_code",
        ]
    );
    assert_eq!(st[0].params, [p(1, "mgc"), p(2, "dal-sql1"), p(3, "mgc")]);
    assert_eq!(st[1].params, [p(1, "mgc"), p(2, "dal-sql2"), p(3, "mgc")]);
    assert_eq!(st[2].params, [p(1, "mgc")]);
    assert!(st.iter().all(|s| s.instance == "atl-sql2"));
    assert!(st.iter().all(|s| s.done_if == [32010]));
}

fn primary_side(instance: &str, secondaries: &[&str]) -> Step {
    Step::RemoveLogShipping {
        site: "atlanta".into(),
        database: "mgc".into(),
        configurations: vec![LogShippingConfiguration {
            instance: instance.into(),
            side: LogShippingSide::Primary,
            partners: secondaries.iter().map(|s| s.to_string()).collect(),
        }],
    }
}

#[test]
fn remove_log_shipping_of_both_sides_removes_the_secondary_before_any_primary() {
    let step = Step::RemoveLogShipping {
        site: "dallas".into(),
        database: "mgc".into(),
        configurations: vec![
            LogShippingConfiguration::secondary("dal-sql1", "atl-sql1"),
            LogShippingConfiguration {
                instance: "atl-sql1".into(),
                side: LogShippingSide::Primary,
                partners: vec!["dal-sql1".into()],
            },
            LogShippingConfiguration {
                instance: "atl-sql2".into(),
                side: LogShippingSide::Primary,
                partners: vec!["dal-sql1".into()],
            },
        ],
    };
    assert_eq!(step.instances(), ["dal-sql1", "atl-sql1", "atl-sql2"]);
    let st = run(step);
    assert_eq!(
        instances(&st),
        [
            "dal-sql1", "dal-sql1", "atl-sql1", "atl-sql1", "atl-sql2", "atl-sql2"
        ]
    );
    assert!(sqls(&st)[0].contains("sp_delete_log_shipping_secondary_database"));
    assert!(sqls(&st)[1].contains("sp_delete_log_shipping_secondary_primary"));
    for pair in st[2..].chunks(2) {
        assert!(
            pair[0]
                .sql
                .contains("sp_delete_log_shipping_primary_secondary")
        );
        assert!(
            pair[1]
                .sql
                .contains("sp_delete_log_shipping_primary_database")
        );
    }
}

#[test]
fn remove_log_shipping_primary_side_without_secondaries_removes_only_the_primary_row() {
    let st = run(primary_side("atl-sql1", &[]));
    assert_eq!(
        sqls(&st),
        [
            "DECLARE @rc int; EXEC @rc = master.dbo.sp_delete_log_shipping_primary_database @database = @P1; SELECT @rc AS return_code"
        ]
    );
}

#[test]
fn recover_ends_sessions_before_restore_with_recovery() {
    let st = run(Step::Recover {
        site: "dallas".into(),
        instance: "dal-sql1".into(),
        database: "mgc".into(),
        kill_session_ids: vec![52, 53],
    });
    assert_eq!(
        sqls(&st),
        ["KILL 52", "KILL 53", "RESTORE DATABASE [mgc] WITH RECOVERY"]
    );
    assert_eq!(st[0].done_if, [6106]);
    assert_eq!(st[2].done_if, [3153]);
    assert_eq!(st[2].retry_if, [3101]);
    assert!(st.iter().all(|s| s.instance == "dal-sql1"));
}

#[test]
fn recover_without_sessions_only_restores_with_recovery() {
    let st = run(Step::Recover {
        site: "dallas".into(),
        instance: "dal-sql1".into(),
        database: "mgccomp".into(),
        kill_session_ids: vec![],
    });
    assert_eq!(sqls(&st), ["RESTORE DATABASE [mgccomp] WITH RECOVERY"]);
}

#[test]
fn fence_stale_copy_sets_restricted_user_rolling_back_open_sessions() {
    let st = run(Step::FenceStaleCopy {
        site: "atlanta".into(),
        instance: "atl-sql1".into(),
        database: "mgc".into(),
    });
    assert_eq!(
        sqls(&st),
        ["ALTER DATABASE [mgc] SET READ_ONLY WITH ROLLBACK IMMEDIATE"]
    );
    assert_eq!(st[0].retry_if, [5061]);
}

#[test]
fn salvage_stale_copy_takes_a_copy_only_full_backup_to_the_planned_file() {
    let file = r"\\atl-fs\pchat-ls\mgc_salvage_atl-sql1_20261126130000.bak";
    let st = run(Step::SalvageStaleCopy {
        site: "atlanta".into(),
        instance: "atl-sql1".into(),
        database: "mgc".into(),
        file: file.into(),
    });
    assert_eq!(
        sqls(&st),
        ["BACKUP DATABASE [mgc] TO DISK = @P1 WITH COPY_ONLY, INIT, CHECKSUM"]
    );
    assert_eq!(st[0].params, [p(1, file)]);
    assert_eq!(st[0].retry_if, [3201]);
}

const FULL: &str = r"\\dal-fs\pchat-ls\mgc_seed_atl-sql1_20261126130000.bak";
const LOG: &str = r"\\dal-fs\pchat-ls\mgc_20261126130000.trn";
const SEED_BACKUP: &str = "BACKUP DATABASE [mgc] TO DISK = @P1 WITH INIT, CHECKSUM; BACKUP LOG [mgc] TO DISK = @P2 WITH INIT, CHECKSUM";

#[test]
fn reseed_of_an_existing_copy_backs_up_the_source_and_restores_with_replace() {
    let st = run(reseed(true));
    assert_eq!(
        sqls(&st),
        [
            SEED_BACKUP,
            "RESTORE DATABASE [mgc] FROM DISK = @P1 WITH NORECOVERY, REPLACE",
            "RESTORE LOG [mgc] FROM DISK = @P1 WITH NORECOVERY",
        ]
    );
    assert_eq!(instances(&st), ["dal-sql1", "atl-sql1", "atl-sql1"]);
    assert_eq!(st[0].params, [p(1, FULL), p(2, LOG)]);
    assert_eq!(st[1].params, [p(1, FULL)]);
    assert_eq!(st[2].params, [p(1, LOG)]);
    assert_eq!(st[2].done_if, [4326]);
    assert_eq!(st[1].retry_if, [3101, 3201]);
}

#[test]
fn a_seed_moves_each_file_of_the_source_copy_into_the_targets_default_folders() {
    let files = vec![
        pchat_core::observe::DatabaseFile {
            logical_name: "mgc".into(),
            log: false,
            physical_name: r"E:\Data\mgc.mdf".into(),
        },
        pchat_core::observe::DatabaseFile {
            logical_name: "mgc_log".into(),
            log: true,
            physical_name: r"F:\Logs\mgc_log.ldf".into(),
        },
    ];
    let ctx = StatementContext {
        default_paths: [(
            "atl-sql1".to_string(),
            DefaultPaths {
                data: r"D:\SQLData\".into(),
                // Configured by hand without its trailing separator.
                log: r"L:\SQLLogs".into(),
            },
        )]
        .into_iter()
        .collect(),
        files: [(
            "dal-sql1".to_string(),
            [("mgc".to_string(), files)].into_iter().collect(),
        )]
        .into_iter()
        .collect(),
        ..StatementContext::default()
    };
    let st = statements(&reseed(true), &ctx);
    assert_eq!(
        st[1].sql,
        "RESTORE DATABASE [mgc] FROM DISK = @P1 WITH NORECOVERY, REPLACE, MOVE @P2 TO @P3, MOVE @P4 TO @P5"
    );
    assert_eq!(
        st[1].params,
        [
            p(1, FULL),
            p(2, "mgc"),
            p(3, r"D:\SQLData\mgc.mdf"),
            p(4, "mgc_log"),
            p(5, r"L:\SQLLogs\mgc_log.ldf"),
        ]
    );
    // Without the target's folders (a server that does not report them) nothing is moved.
    assert_eq!(
        run(reseed(true))[1].sql,
        "RESTORE DATABASE [mgc] FROM DISK = @P1 WITH NORECOVERY, REPLACE"
    );
}

/// Reseed atl-sql1's mgc from dal-sql1, with or without REPLACE.
fn reseed(replace: bool) -> Step {
    Step::Reseed {
        site: "atlanta".into(),
        instance: "atl-sql1".into(),
        database: "mgc".into(),
        source_instance: "dal-sql1".into(),
        full_backup: FULL.into(),
        log_backup: LOG.into(),
        replace,
    }
}

#[test]
fn reseed_without_replace_restores_without_replace() {
    let st = run(reseed(false));
    assert_eq!(
        st[1].sql,
        "RESTORE DATABASE [mgc] FROM DISK = @P1 WITH NORECOVERY"
    );
}

#[test]
fn bootstrap_secondary_seeds_the_copy_without_replace() {
    let st = run(Step::BootstrapSecondary {
        site: "dallas".into(),
        instance: "dal-sql1".into(),
        database: "mgc".into(),
        source_instance: "atl-sql1".into(),
        full_backup: FULL.into(),
        log_backup: LOG.into(),
    });
    assert_eq!(
        sqls(&st),
        [
            SEED_BACKUP,
            "RESTORE DATABASE [mgc] FROM DISK = @P1 WITH NORECOVERY",
            "RESTORE LOG [mgc] FROM DISK = @P1 WITH NORECOVERY",
        ]
    );
    assert_eq!(instances(&st), ["atl-sql1", "dal-sql1", "dal-sql1"]);
}

#[test]
fn seed_mirror_backs_up_on_the_principal_and_restores_on_the_mirror_with_replace() {
    let st = run(Step::SeedMirror {
        site: "atlanta".into(),
        principal: "atl-sql1".into(),
        mirror: "atl-sql2".into(),
        database: "mgccomp".into(),
        full_backup: FULL.into(),
        log_backup: LOG.into(),
    });
    assert_eq!(
        sqls(&st),
        [
            "BACKUP DATABASE [mgccomp] TO DISK = @P1 WITH INIT, CHECKSUM; BACKUP LOG [mgccomp] TO DISK = @P2 WITH INIT, CHECKSUM",
            "RESTORE DATABASE [mgccomp] FROM DISK = @P1 WITH NORECOVERY, REPLACE",
            "RESTORE LOG [mgccomp] FROM DISK = @P1 WITH NORECOVERY",
        ]
    );
    assert_eq!(instances(&st), ["atl-sql1", "atl-sql2", "atl-sql2"]);
}

#[test]
fn create_compliance_database_creates_it_then_sets_full_recovery() {
    let st = run(Step::CreateComplianceDatabase {
        site: "dallas".into(),
        instance: "dal-sql1".into(),
        database: "mgccomp".into(),
    });
    assert_eq!(
        sqls(&st),
        [
            "CREATE DATABASE [mgccomp]",
            "ALTER DATABASE [mgccomp] SET RECOVERY FULL"
        ]
    );
    assert_eq!(st[0].done_if, [1801]);
    assert!(st.iter().all(|s| s.instance == "dal-sql1"));
}

#[test]
fn establish_mirroring_sets_partner_on_mirror_before_principal_then_safety_full() {
    let st = run(Step::EstablishMirroring {
        site: "atlanta".into(),
        principal: "atl-sql1".into(),
        mirror: "atl-sql2".into(),
        database: "mgc".into(),
        principal_endpoint: "TCP://atl-sql1.litwareinc.com:5022".into(),
        mirror_endpoint: "TCP://atl-sql2.litwareinc.com:5022".into(),
    });
    assert_eq!(
        sqls(&st),
        [
            "ALTER DATABASE [mgc] SET PARTNER = N'TCP://atl-sql1.litwareinc.com:5022'",
            "ALTER DATABASE [mgc] SET PARTNER = N'TCP://atl-sql2.litwareinc.com:5022'",
            "ALTER DATABASE [mgc] SET PARTNER SAFETY FULL",
        ]
    );
    assert_eq!(instances(&st), ["atl-sql2", "atl-sql1", "atl-sql1"]);
    assert_eq!(st[0].done_if, [1468]);
    assert_eq!(st[1].done_if, [1468]);
    assert!(st[0].retry_if.contains(&1418));
}

fn configure_step(primaries: &[&str]) -> Step {
    Step::ConfigureLogShipping {
        site: "atlanta".into(),
        primary_instances: primaries.iter().map(|s| s.to_string()).collect(),
        secondary_site: "dallas".into(),
        secondary_instance: "dal-sql1".into(),
        database: "mgc".into(),
        backup_share: r"\\atl-fs\pchat-ls".into(),
        copy_destination: r"D:\pchat-ls-copy".into(),
        backup_interval_seconds: 300,
        retention_seconds: 259_200,
    }
}

#[test]
fn configure_log_shipping_adds_primaries_then_the_secondary_then_the_links() {
    let st = run(configure_step(&["atl-sql1", "atl-sql2"]));
    let add_primary = "DECLARE @rc int, @backup_job_id uniqueidentifier, @primary_id uniqueidentifier; EXEC @rc = master.dbo.sp_add_log_shipping_primary_database @database = @P1, @backup_directory = @P2, @backup_share = @P3, @backup_job_name = @P4, @backup_retention_period = @P5, @overwrite = 1, @backup_job_id = @backup_job_id OUTPUT, @primary_id = @primary_id OUTPUT; SELECT @rc AS return_code";
    let enable = "DECLARE @rc int; EXEC @rc = msdb.dbo.sp_update_job @job_name = @P1, @enabled = 1; SELECT @rc AS return_code";
    let schedule = "DECLARE @schedule_id int, @rc int; SET @rc = 0; IF NOT EXISTS (SELECT 1 FROM msdb.dbo.sysjobs j JOIN msdb.dbo.sysjobschedules js ON js.job_id = j.job_id JOIN msdb.dbo.sysschedules s ON s.schedule_id = js.schedule_id WHERE j.name = @P1 AND s.name = @P2) BEGIN EXEC @rc = msdb.dbo.sp_add_schedule @schedule_name = @P3, @enabled = 1, @freq_type = 4, @freq_interval = 1, @freq_subday_type = @P4, @freq_subday_interval = @P5, @schedule_id = @schedule_id OUTPUT; IF @rc = 0 EXEC @rc = msdb.dbo.sp_attach_schedule @job_name = @P6, @schedule_id = @schedule_id; END; SELECT @rc AS return_code";
    let link = "DECLARE @rc int; EXEC @rc = master.dbo.sp_add_log_shipping_primary_secondary @primary_database = @P1, @secondary_server = @P2, @secondary_database = @P3, @overwrite = 1; SELECT @rc AS return_code";
    assert_eq!(
        sqls(&st),
        [
            add_primary,
            schedule,
            enable,
            add_primary,
            schedule,
            enable,
            "DECLARE @rc int, @copy_job_id uniqueidentifier, @restore_job_id uniqueidentifier, @secondary_id uniqueidentifier; EXEC @rc = master.dbo.sp_add_log_shipping_secondary_primary @primary_server = @P1, @primary_database = @P2, @backup_source_directory = @P3, @backup_destination_directory = @P4, @copy_job_name = @P5, @restore_job_name = @P6, @file_retention_period = @P7, @overwrite = 1, @copy_job_id = @copy_job_id OUTPUT, @restore_job_id = @restore_job_id OUTPUT, @secondary_id = @secondary_id OUTPUT; SELECT @rc AS return_code",
            "DECLARE @rc int; EXEC @rc = master.dbo.sp_add_log_shipping_secondary_database @secondary_database = @P1, @primary_server = @P2, @primary_database = @P3, @restore_delay = 0, @restore_mode = 0, @disconnect_users = 0, @overwrite = 1; SELECT @rc AS return_code",
            schedule,
            schedule,
            enable,
            enable,
            link,
            link,
        ]
    );
    assert_eq!(
        instances(&st),
        [
            "atl-sql1", "atl-sql1", "atl-sql1", "atl-sql2", "atl-sql2", "atl-sql2", "dal-sql1",
            "dal-sql1", "dal-sql1", "dal-sql1", "dal-sql1", "dal-sql1", "atl-sql1", "atl-sql2"
        ]
    );
    let share = r"\\atl-fs\pchat-ls";
    // 259200 s = 4320 minutes, the documented default retention.
    let primary_params = vec![
        p(1, "mgc"),
        p(2, share),
        p(3, share),
        p(4, "LSBackup_mgc"),
        ("@P5".to_string(), ParamValue::Int(4320)),
    ];
    // Every job runs every backupInterval (300 s = 5 minutes: @freq_subday_type 4, minutes).
    let every = |job: &str| {
        vec![
            p(1, job),
            p(2, &format!("{job}_every_300s")),
            p(3, &format!("{job}_every_300s")),
            ("@P4".to_string(), ParamValue::Int(4)),
            ("@P5".to_string(), ParamValue::Int(5)),
            p(6, job),
        ]
    };
    assert_eq!(st[0].params, primary_params);
    assert_eq!(st[3].params, primary_params);
    assert_eq!(st[1].params, every("LSBackup_mgc"));
    assert_eq!(st[4].params, every("LSBackup_mgc"));
    assert_eq!(st[2].params, [p(1, "LSBackup_mgc")]);
    assert_eq!(
        st[6].params,
        [
            p(1, "atl-sql1"),
            p(2, "mgc"),
            p(3, share),
            p(4, r"D:\pchat-ls-copy"),
            p(5, "LSCopy_atl-sql1_mgc"),
            p(6, "LSRestore_atl-sql1_mgc"),
            ("@P7".to_string(), ParamValue::Int(4320)),
        ]
    );
    assert_eq!(st[7].params, [p(1, "mgc"), p(2, "atl-sql1"), p(3, "mgc")]);
    assert_eq!(st[8].params, every("LSCopy_atl-sql1_mgc"));
    assert_eq!(st[9].params, every("LSRestore_atl-sql1_mgc"));
    assert_eq!(st[10].params, [p(1, "LSCopy_atl-sql1_mgc")]);
    assert_eq!(st[11].params, [p(1, "LSRestore_atl-sql1_mgc")]);
    assert_eq!(st[12].params, [p(1, "mgc"), p(2, "dal-sql1"), p(3, "mgc")]);
    assert_eq!(st[13].params, st[12].params);
    assert_eq!(st[0].done_if, [32009]);
    // The schedule batch looks before it adds: a repeat is no error at all.
    assert!(st[1].done_if.is_empty());
    assert_eq!(st[6].done_if, [32024]);
    assert_eq!(st[7].done_if, [32013]);
    assert_eq!(st[12].done_if, [32012]);
}

#[test]
fn job_schedules_use_the_largest_unit_that_divides_the_backup_interval() {
    for (seconds, unit, every) in [(7200, 8, 2), (300, 4, 5), (90, 2, 90), (2, 2, 2)] {
        let mut step = configure_step(&["atl-sql1"]);
        if let Step::ConfigureLogShipping {
            backup_interval_seconds,
            ..
        } = &mut step
        {
            *backup_interval_seconds = seconds;
        }
        let st = run(step);
        let schedules: Vec<_> = st
            .iter()
            .filter(|s| s.sql.contains("sp_add_schedule"))
            .collect();
        assert_eq!(schedules.len(), 3, "backup, copy and restore jobs");
        for s in schedules {
            assert_eq!(s.params[3].1, ParamValue::Int(unit), "{seconds} s");
            assert_eq!(s.params[4].1, ParamValue::Int(every), "{seconds} s");
        }
    }
}

#[test]
fn configure_log_shipping_names_servers_and_jobs_as_sql_server_knows_them() {
    let ctx = StatementContext {
        server_names: [
            ("atl-sql1".to_string(), r"ATL-SQL1\PCHAT".to_string()),
            ("dal-sql1".to_string(), r"DAL-SQL1\PCHAT".to_string()),
        ]
        .into_iter()
        .collect(),
        ..StatementContext::default()
    };
    let st = statements(&configure_step(&["atl-sql1"]), &ctx);
    // The statements still go to the spec's instance names.
    assert_eq!(
        instances(&st),
        [
            "atl-sql1", "atl-sql1", "atl-sql1", "dal-sql1", "dal-sql1", "dal-sql1", "dal-sql1",
            "dal-sql1", "dal-sql1", "atl-sql1"
        ]
    );
    assert_eq!(st[3].params[0], p(1, r"ATL-SQL1\PCHAT"));
    assert_eq!(st[3].params[4], p(5, r"LSCopy_ATL-SQL1\PCHAT_mgc"));
    assert_eq!(st[4].params[1], p(2, r"ATL-SQL1\PCHAT"));
    assert_eq!(st[5].params[0], p(1, r"LSCopy_ATL-SQL1\PCHAT_mgc"));
    assert_eq!(st[9].params[1], p(2, r"DAL-SQL1\PCHAT"));
}

#[test]
fn context_takes_the_server_names_instances_reported() {
    let obs: pchat_core::observe::Observation = serde_json::from_value(serde_json::json!({
        "takenAt": "2026-11-26T12:00:00Z",
        "instances": [
            {"name": "atl-sql1", "reachability": {"status": "reachable"}, "serverName": "ATL-SQL1\\PCHAT"},
            {"name": "dal-sql1", "reachability": {"status": "reachable"}}
        ],
        "backupLocations": []
    }))
    .expect("observation");
    let ctx = StatementContext::from_observation(&obs);
    assert_eq!(ctx.server_name("atl-sql1"), r"ATL-SQL1\PCHAT");
    // No name reported: the spec's name stands.
    assert_eq!(ctx.server_name("dal-sql1"), "dal-sql1");
}

#[test]
fn retention_is_rounded_up_to_whole_minutes_and_never_zero() {
    let with = |secs: u64| match run(Step::ConfigureLogShipping {
        site: "atlanta".into(),
        primary_instances: vec!["atl-sql1".into()],
        secondary_site: "dallas".into(),
        secondary_instance: "dal-sql1".into(),
        database: "mgc".into(),
        backup_share: "s".into(),
        copy_destination: "d".into(),
        backup_interval_seconds: 60,
        retention_seconds: secs,
    })[0]
        .params[4]
        .1
    {
        ParamValue::Int(m) => m,
        ref other => panic!("retention sent as {other:?}"),
    };
    assert_eq!(with(0), 1);
    assert_eq!(with(61), 2);
    assert_eq!(with(3600), 60);
    assert_eq!(with(u64::MAX), i32::MAX);
}

#[test]
fn query_binds_the_parameters_in_placeholder_order() {
    let st = run(configure_step(&["atl-sql1"]));
    // tiberius's Query shows its text and bound values only through Debug.
    let shown = format!("{:?}", st[0].query());
    let at = |needle: &str| {
        shown
            .find(needle)
            .unwrap_or_else(|| panic!("{needle} not bound in {shown}"))
    };
    assert!(shown.contains("sp_add_log_shipping_primary_database"));
    assert!(at(r#""mgc""#) < at(r#""LSBackup_mgc""#));
    assert!(at(r#""LSBackup_mgc""#) < at("4320"));
    let none = run(Step::FenceStaleCopy {
        site: "atlanta".into(),
        instance: "atl-sql1".into(),
        database: "mgc".into(),
    });
    assert!(format!("{:?}", none[0].query()).contains("params: []"));
}

// ---------------------------------------------------------------------------------------------
// Properties over every step variant
// ---------------------------------------------------------------------------------------------

/// A T-SQL token stream with every `[...]` identifier and `N'...'` literal replaced by a marker,
/// plus the decoded contents of those tokens. If a name escaped its quoting, the skeleton of a
/// statement built from it would differ from the one built from a benign name.
fn skeleton(sql: &str) -> (Vec<String>, Vec<String>) {
    let chars: Vec<char> = sql.chars().collect();
    let mut tokens = Vec::new();
    let mut quoted = Vec::new();
    let mut word = String::new();
    let mut i = 0;
    let flush = |word: &mut String, tokens: &mut Vec<String>| {
        if !word.is_empty() {
            tokens.push(std::mem::take(word));
        }
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '[' {
            flush(&mut word, &mut tokens);
            i += 1;
            let inner = quoted_until(&chars, &mut i, ']', sql);
            tokens.push("<ident>".into());
            quoted.push(inner);
        } else if c == 'N' && chars.get(i + 1) == Some(&'\'') && word.is_empty() {
            i += 2;
            let inner = quoted_until(&chars, &mut i, '\'', sql);
            tokens.push("<string>".into());
            quoted.push(inner);
        } else if c == '\'' || c == ']' {
            panic!("stray quote character at {i} in {sql}");
        } else if c.is_whitespace() || ",;=".contains(c) {
            flush(&mut word, &mut tokens);
            if !c.is_whitespace() {
                tokens.push(c.to_string());
            }
            i += 1;
        } else {
            word.push(c);
            i += 1;
        }
    }
    flush(&mut word, &mut tokens);
    (tokens, quoted)
}

#[test]
fn hostile_names_and_paths_cannot_change_any_statement() {
    let good = all_statements(&benign());
    let bad = all_statements(&hostile());
    let h = hostile();
    for ((step, g), (_, b)) in good.iter().zip(&bad) {
        assert_eq!(g.len(), b.len(), "{}", step.name());
        for (gs, bs) in g.iter().zip(b) {
            let (g_tokens, _) = skeleton(&gs.sql);
            let (b_tokens, b_quoted) = skeleton(&bs.sql);
            assert_eq!(g_tokens, b_tokens, "{}: {}", step.name(), bs.sql);
            assert!(
                !b_tokens.iter().any(|t| t.eq_ignore_ascii_case("DROP")),
                "{}",
                bs.sql
            );
            // Whatever hostile text reached the statement text arrived whole, inside one token.
            for q in &b_quoted {
                assert!(
                    [&h.db, &h.endpoint].contains(&q),
                    "{}: unexpected quoted text {q:?}",
                    step.name()
                );
            }
            // Paths and server names never enter the text at all.
            assert!(!bs.sql.contains(&h.path) && !bs.sql.contains("o'brien"));
            assert!(!bs.sql.contains(&h.server));
        }
    }
}

#[test]
fn hostile_names_reach_sql_server_unchanged() {
    let h = hostile();
    let st = run(Step::DemoteOldPrimary {
        site: "atlanta".into(),
        instance: "atl-sql1".into(),
        database: h.db.clone(),
        file: h.path.clone(),
    });
    assert_eq!(
        st[0].sql,
        "BACKUP LOG [a]]b'; DROP DATABASE x--] TO DISK = @P1 WITH NORECOVERY, CHECKSUM"
    );
    assert_eq!(st[0].params, [p(1, &h.path)]);
    let st = run(Step::EstablishMirroring {
        site: "atlanta".into(),
        principal: "atl-sql1".into(),
        mirror: "atl-sql2".into(),
        database: "mgc".into(),
        principal_endpoint: h.endpoint.clone(),
        mirror_endpoint: h.endpoint.clone(),
    });
    assert_eq!(
        st[0].sql,
        "ALTER DATABASE [mgc] SET PARTNER = N'TCP://h:5022''; DROP DATABASE x--'"
    );
}

#[test]
fn placeholders_are_numbered_in_order_and_every_one_is_bound() {
    for (step, st) in all_statements(&hostile()) {
        for s in st {
            for (i, (name, _)) in s.params.iter().enumerate() {
                assert_eq!(name, &format!("@P{}", i + 1), "{}", step.name());
                assert!(s.sql.contains(name.as_str()), "{}: {}", step.name(), s.sql);
            }
            let unbound = format!("@P{}", s.params.len() + 1);
            assert!(!s.sql.contains(&unbound), "{}: {}", step.name(), s.sql);
        }
    }
}

#[test]
fn every_statement_runs_on_an_instance_the_step_names() {
    for (step, st) in all_statements(&benign()) {
        let allowed = step.instances();
        for s in st {
            assert!(
                allowed.contains(&s.instance.as_str()),
                "{} sends to {}",
                step.name(),
                s.instance
            );
            assert!(!s.purpose.is_empty());
        }
    }
}

/// Statements whose effect makes a second run fail name the error that says so; the rest
/// repeat harmlessly as they are. Every statement is one or the other.
#[test]
fn every_write_statement_is_safe_to_repeat() {
    let must_accept: &[(&str, u32)] = &[
        ("KILL ", 6106),
        ("SET PARTNER OFF", 1416),
        ("SET PARTNER = ", 1468),
        ("WITH NORECOVERY, CHECKSUM", 927),
        ("RESTORE LOG ", 4326),
        ("WITH RECOVERY", 3153),
        ("CREATE DATABASE ", 1801),
        ("sp_delete_log_shipping_secondary_database", 32014),
        ("sp_delete_log_shipping_secondary_primary", 32023),
        ("sp_delete_log_shipping_primary_secondary", 32010),
        ("sp_delete_log_shipping_primary_database", 32010),
        ("sp_add_log_shipping_primary_database", 32009),
        ("sp_add_log_shipping_secondary_primary", 32024),
        ("sp_add_log_shipping_secondary_database", 32013),
        ("sp_add_log_shipping_primary_secondary", 32012),
    ];
    // Repeating these leaves the same state: an access mode or recovery model set again, a job
    // enabled again, a schedule given the same interval again, a backup WITH INIT rewritten (a seed's full and log backups together), a
    // restore redone.
    let repeat_as_is = [
        "SET PARTNER SAFETY FULL",
        "SET READ_ONLY WITH ROLLBACK IMMEDIATE",
        "SET RECOVERY FULL",
        "sp_update_job",
        "sp_update_schedule",
        // Looks for the job's schedule of that name first, in the same batch.
        "IF NOT EXISTS (SELECT 1 FROM msdb.dbo.sysjobs j JOIN msdb.dbo.sysjobschedules",
        "WITH INIT, CHECKSUM",
        "WITH COPY_ONLY, INIT, CHECKSUM",
        "RESTORE DATABASE [mgc] FROM DISK = ",
    ];
    for (step, st) in all_statements(&benign()) {
        for s in st {
            let needs: Vec<u32> = must_accept
                .iter()
                .filter(|(pat, _)| s.sql.contains(pat))
                .map(|(_, n)| *n)
                .collect();
            if needs.is_empty() {
                assert!(
                    repeat_as_is.iter().any(|pat| s.sql.contains(pat)),
                    "{}: no rule for {}",
                    step.name(),
                    s.sql
                );
                assert!(s.done_if.is_empty(), "{}: {}", step.name(), s.sql);
            } else {
                assert_eq!(s.done_if, needs, "{}: {}", step.name(), s.sql);
            }
            // 3013 follows every BACKUP/RESTORE failure: it says nothing about what happened.
            assert!(!s.done_if.contains(&3013));
            assert!(s.done_if.iter().all(|n| !s.retry_if.contains(n)));
        }
    }
}

/// Every key of a JSON value, at any depth.
fn keys(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                out.push(k.clone());
                keys(v, out);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| keys(v, out)),
        _ => {}
    }
}

#[test]
fn neither_steps_nor_the_context_have_a_place_for_a_credential() {
    let ctx = StatementContext {
        server_names: [("atl-sql1".to_string(), "ATL-SQL1".to_string())]
            .into_iter()
            .collect(),
        ..StatementContext::default()
    };
    let mut all = Vec::new();
    keys(
        &serde_json::to_value(&ctx).expect("context serializes"),
        &mut all,
    );
    for step in every_step(&benign()) {
        keys(
            &serde_json::to_value(&step).expect("step serializes"),
            &mut all,
        );
    }
    for (_, st) in all_statements(&benign()) {
        for s in st {
            keys(
                &serde_json::to_value(&s).expect("statement serializes"),
                &mut all,
            );
        }
    }
    assert!(
        all.iter().any(|k| k == "serverNames"),
        "keys were collected"
    );
    let secret =
        regex::Regex::new(r"(?i)pass|pwd|secret|credential|login|user|token|key").expect("pattern");
    let found: Vec<&String> = all.iter().filter(|k| secret.is_match(k)).collect();
    assert!(
        found.is_empty(),
        "fields that could carry a secret: {found:?}"
    );
}

/// The text of a quoted identifier or string from `chars[*i]` up to its closing `close` (a
/// doubled `close` stands for one), leaving `*i` after the closing one.
fn quoted_until(chars: &[char], i: &mut usize, close: char, sql: &str) -> String {
    let mut inner = String::new();
    loop {
        assert!(
            *i < chars.len(),
            "unterminated {close}-quoted text in {sql}"
        );
        if chars[*i] == close {
            if chars.get(*i + 1) == Some(&close) {
                inner.push(close);
                *i += 2;
                continue;
            }
            *i += 1;
            return inner;
        }
        inner.push(chars[*i]);
        *i += 1;
    }
}

/// Every statement that calls a stored procedure selects its return code last and has the
/// executor check it: msdb's and master's procedures report some failures only that way.
#[test]
fn every_procedure_call_reports_its_return_code() {
    let mut calls = 0;
    for (step, st) in all_statements(&benign()) {
        for s in st.iter().filter(|s| s.sql.contains("EXEC ")) {
            calls += 1;
            assert!(
                s.return_code_of.is_some() && s.sql.ends_with("SELECT @rc AS return_code"),
                "{}: {}",
                step.name(),
                s.sql
            );
            assert!(
                !s.sql.contains("EXEC msdb") && !s.sql.contains("EXEC master"),
                "{}",
                s.sql
            );
        }
    }
    assert!(calls > 0);
}
