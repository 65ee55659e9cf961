//! Log shipping configured by T-SQL only: the eight procedures and their order rules, the msdb
//! tables they fill, the agent jobs on their schedule (and sp_start_job / sp_update_job), job
//! failures when a share is down or the sites are cut apart, and folder listings.

mod support;

use pchat_sim::backend::{Output, RpcParam, Value};
use pchat_sim::faults::{Fault, FaultInjector};
use support::model::*;

const ATL: &str = "\\\\atl-fs\\pchat-ls";

async fn seed_secondary(w: &World) -> (Conn, Conn) {
    let p = w.connect("atl-sql1");
    let s = w.connect("dal-sql1");
    p.post("mgc", 1..3).await;
    p.ok(&format!(
        "BACKUP DATABASE mgc TO DISK = N'{ATL}\\mgc_seed.bak' WITH INIT"
    ))
    .await;
    s.ok(&format!(
        "RESTORE DATABASE mgc FROM DISK = N'{ATL}\\mgc_seed.bak' WITH NORECOVERY"
    ))
    .await;
    (p, s)
}

async fn configure(p: &Conn, s: &Conn) {
    p.ok(&format!(
        "DECLARE @id uniqueidentifier, @job uniqueidentifier;
         EXEC master.dbo.sp_add_log_shipping_primary_database @database = N'mgc',
              @backup_directory = N'{ATL}', @backup_share = N'{ATL}',
              @backup_job_name = N'LSBackup_mgc', @backup_retention_period = 4320,
              @backup_threshold = 60, @history_retention_period = 5760,
              @backup_job_id = @job OUTPUT, @primary_id = @id OUTPUT"
    ))
    .await;
    s.ok(&format!(
        "DECLARE @sid uniqueidentifier, @c uniqueidentifier, @r uniqueidentifier;
         EXEC master.dbo.sp_add_log_shipping_secondary_primary @primary_server = N'atl-sql1',
              @primary_database = N'mgc', @backup_source_directory = N'{ATL}',
              @backup_destination_directory = N'D:\\pchat-ls-copy',
              @copy_job_name = N'LSCopy_atl-sql1_mgc', @restore_job_name = N'LSRestore_atl-sql1_mgc',
              @file_retention_period = 4320, @copy_job_id = @c OUTPUT,
              @restore_job_id = @r OUTPUT, @secondary_id = @sid OUTPUT;
         EXEC master.dbo.sp_add_log_shipping_secondary_database @secondary_database = N'mgc',
              @primary_server = N'atl-sql1', @primary_database = N'mgc',
              @restore_delay = 0, @restore_mode = 0, @disconnect_users = 0"
    ))
    .await;
    p.ok("EXEC master.dbo.sp_add_log_shipping_primary_secondary @primary_database = N'mgc', @secondary_server = N'dal-sql1', @secondary_database = N'mgc'")
        .await;
}

async fn enable_jobs(p: &Conn, s: &Conn) {
    p.ok("EXEC msdb.dbo.sp_update_job @job_name = N'LSBackup_mgc', @enabled = 1")
        .await;
    s.ok("EXEC msdb.dbo.sp_update_job @job_name = N'LSCopy_atl-sql1_mgc', @enabled = 1; EXEC msdb.dbo.sp_update_job @job_name = N'LSRestore_atl-sql1_mgc', @enabled = 1")
        .await;
}

fn is_trn_name(s: &str) -> bool {
    let f = s.rsplit('\\').next().unwrap();
    f.len() == "mgc_20261126120000.trn".len()
        && f.starts_with("mgc_")
        && f.ends_with(".trn")
        && f[4..18].chars().all(|c| c.is_ascii_digit())
}

#[tokio::test]
async fn log_shipping_by_tsql_delivers_messages_to_the_secondary_on_the_job_schedule() {
    let w = world("ls");
    let (p, s) = seed_secondary(&w).await;
    configure(&p, &s).await;
    enable_jobs(&p, &s).await;
    p.post("mgc", 3..10).await;
    assert!(
        eventually(3000, || w.sim.message_ids("dal-sql1", "mgc").unwrap()
            == ids(1..10))
        .await,
        "secondary has {:?}",
        w.sim.message_ids("dal-sql1", "mgc")
    );
    assert_eq!(
        w.sim.database_state("dal-sql1", "mgc").unwrap(),
        "RESTORING"
    );
    let last_backup = p
        .text("SELECT last_backup_file FROM msdb.dbo.log_shipping_primary_databases WHERE primary_database = N'mgc'")
        .await;
    assert!(is_trn_name(&last_backup), "{last_backup}");
    let mon = s
        .rows("SELECT last_copied_file, last_restored_file, last_restored_latency FROM msdb.dbo.log_shipping_monitor_secondary WHERE secondary_database = N'mgc'")
        .await
        .remove(0);
    assert!(matches!(&mon[0], Value::NVarChar(f) if f.starts_with("D:\\pchat-ls-copy\\mgc_")));
    assert!(matches!(&mon[1], Value::NVarChar(f) if is_trn_name(f)));
    assert_eq!(mon[2], Value::Int(0));
    let mode = s
        .int("SELECT restore_mode FROM msdb.dbo.log_shipping_secondary_databases")
        .await;
    assert_eq!(mode, 0);
    assert_eq!(
        p.text("SELECT secondary_server FROM msdb.dbo.log_shipping_primary_secondaries")
            .await,
        "dal-sql1"
    );
}

#[tokio::test]
async fn backup_files_are_named_in_time_order_even_several_a_second() {
    let w = world("lsnames");
    let (p, s) = seed_secondary(&w).await;
    configure(&p, &s).await;
    for _ in 0..3 {
        p.ok("EXEC msdb.dbo.sp_start_job @job_name = N'LSBackup_mgc'")
            .await;
        w.sim.tick();
    }
    let mut files: Vec<String> = std::fs::read_dir(w.dir.join("shares/atl-fs/pchat-ls"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|f| f.ends_with(".trn"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(files.iter().all(|f| is_trn_name(f)));
}

#[tokio::test]
async fn log_shipping_jobs_are_created_disabled_and_do_not_run_on_schedule() {
    let w = world("lsdisabled");
    let (p, s) = seed_secondary(&w).await;
    configure(&p, &s).await;
    assert_eq!(
        p.int("SELECT enabled FROM msdb.dbo.sysjobs WHERE name = N'LSBackup_mgc'")
            .await,
        0
    );
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(
        p.scalar("SELECT last_backup_file FROM msdb.dbo.log_shipping_monitor_primary")
            .await,
        Value::Null
    );
}

#[tokio::test]
async fn secondary_database_before_secondary_primary_is_refused_with_return_code_1() {
    let w = world("lsorder");
    let (_p, s) = seed_secondary(&w).await;
    let o = s
        .exec("EXEC master.dbo.sp_add_log_shipping_secondary_database @secondary_database = N'mgc', @primary_server = N'atl-sql1', @primary_database = N'mgc'")
        .await;
    assert_eq!(errors(&o), [32023]);
    assert!(o.outputs.contains(&Output::ReturnStatus(1)));
}

#[tokio::test]
async fn deleting_the_primary_before_its_secondaries_is_refused_and_the_documented_order_works() {
    let w = world("lsdelete");
    let (p, s) = seed_secondary(&w).await;
    configure(&p, &s).await;
    assert_eq!(
        p.err("EXEC master.dbo.sp_delete_log_shipping_primary_database @database = N'mgc'")
            .await,
        [32011]
    );
    p.ok("EXEC master.dbo.sp_delete_log_shipping_primary_secondary @primary_database = N'mgc', @secondary_server = N'dal-sql1', @secondary_database = N'mgc'").await;
    p.ok("EXEC master.dbo.sp_delete_log_shipping_primary_database @database = N'mgc'")
        .await;
    s.ok("EXEC master.dbo.sp_delete_log_shipping_secondary_database @secondary_database = N'mgc'")
        .await;
    // The last secondary database also removed the secondary_primary entry and its jobs.
    assert_eq!(
        s.int("SELECT COUNT(*) FROM msdb.dbo.log_shipping_secondary")
            .await,
        0
    );
    assert_eq!(s.int("SELECT COUNT(*) FROM msdb.dbo.sysjobs").await, 0);
    s.ok("EXEC master.dbo.sp_delete_log_shipping_secondary_primary @primary_server = N'atl-sql1', @primary_database = N'mgc'").await;
    assert_eq!(p.int("SELECT COUNT(*) FROM msdb.dbo.sysjobs").await, 0);
}

#[tokio::test]
async fn missing_required_parameter_is_error_201_and_unknown_parameter_is_8145() {
    let w = world("lsparams");
    let p = w.connect("atl-sql1");
    assert_eq!(
        p.err("EXEC master.dbo.sp_add_log_shipping_primary_database @database = N'mgc'")
            .await,
        [201]
    );
    assert_eq!(
        p.err(
            "EXEC master.dbo.sp_delete_log_shipping_primary_database @database = N'mgc', @bogus = 1"
        )
        .await,
        [8145]
    );
}

#[tokio::test]
async fn sp_start_job_runs_a_job_now_and_unknown_jobs_are_error_14262() {
    let w = world("startjob");
    let (p, s) = seed_secondary(&w).await;
    configure(&p, &s).await;
    let o = p
        .ok("EXEC msdb.dbo.sp_start_job @job_name = N'LSBackup_mgc'")
        .await;
    assert!(
        o.outputs
            .iter()
            .any(|x| matches!(x, Output::Message(m) if m.number == 22022))
    );
    assert!(
        eventually(2000, || std::fs::read_dir(
            w.dir.join("shares/atl-fs/pchat-ls")
        )
        .unwrap()
        .any(|e| e.unwrap().file_name().to_string_lossy().ends_with(".trn")))
        .await
    );
    assert_eq!(
        p.err("EXEC msdb.dbo.sp_start_job @job_name = N'LSBackup_nope'")
            .await,
        [14262]
    );
    // The agent procedures live in msdb.
    assert_eq!(p.err("EXEC sp_start_job N'LSBackup_mgc'").await, [2812]);
}

#[tokio::test]
async fn copy_job_fails_and_records_it_while_the_source_share_is_down_then_recovers() {
    let w = world("lsshare");
    let (p, s) = seed_secondary(&w).await;
    configure(&p, &s).await;
    enable_jobs(&p, &s).await;
    p.post("mgc", [5]).await;
    assert!(
        eventually(3000, || w
            .sim
            .message_ids("dal-sql1", "mgc")
            .unwrap()
            .contains(&5))
        .await
    );
    w.sim
        .inject(Fault::ShareDown {
            host: "atl-fs".into(),
        })
        .unwrap();
    p.post("mgc", [6]).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let failed = s
        .int("SELECT COUNT(*) FROM msdb.dbo.sysjobhistory h JOIN msdb.dbo.sysjobs j ON j.job_id = h.job_id WHERE j.name = N'LSCopy_atl-sql1_mgc' AND h.run_status = 0")
        .await;
    assert!(failed > 0);
    assert!(!w.sim.message_ids("dal-sql1", "mgc").unwrap().contains(&6));
    w.sim
        .inject(Fault::ShareUp {
            host: "atl-fs".into(),
        })
        .unwrap();
    assert!(
        eventually(3000, || w
            .sim
            .message_ids("dal-sql1", "mgc")
            .unwrap()
            .contains(&6))
        .await
    );
}

#[tokio::test]
async fn site_partition_stops_shipping_and_heal_catches_up() {
    let w = world("lspart");
    let (p, s) = seed_secondary(&w).await;
    configure(&p, &s).await;
    enable_jobs(&p, &s).await;
    w.sim
        .inject(Fault::Partition {
            between: (vec!["atlanta".into()], vec!["dallas".into()]),
        })
        .unwrap();
    p.post("mgc", [7]).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(!w.sim.message_ids("dal-sql1", "mgc").unwrap().contains(&7));
    w.sim.inject(Fault::Heal).unwrap();
    assert!(
        eventually(3000, || w
            .sim
            .message_ids("dal-sql1", "mgc")
            .unwrap()
            .contains(&7))
        .await
    );
}

#[tokio::test]
async fn rpc_procedure_call_returns_output_parameters_and_status() {
    let w = world("lsrpc");
    let p = w.connect("atl-sql1");
    let param = |n: &str, v: &str| RpcParam {
        name: n.into(),
        value: Value::NVarChar(v.into()),
        output: false,
    };
    let o = p
        .rpc_proc(
            "master.dbo.sp_add_log_shipping_primary_database",
            vec![
                param("@database", "mgc"),
                param("@backup_directory", ATL),
                param("@backup_share", ATL),
                param("@backup_job_name", "LSBackup_mgc"),
                RpcParam {
                    name: "@primary_id".into(),
                    value: Value::Null,
                    output: true,
                },
            ],
        )
        .await;
    assert!(errors(&o).is_empty(), "{:?}", error_texts(&o));
    assert!(o.outputs.contains(&Output::ReturnStatus(0)));
    assert!(o.outputs.iter().any(|x| matches!(x,
        Output::ReturnValue { name, value: Value::UniqueIdentifier(_), .. } if name == "@primary_id")));
    let again = p
        .rpc_proc(
            "master.dbo.sp_add_log_shipping_primary_database",
            vec![
                param("@database", "mgc"),
                param("@backup_directory", ATL),
                param("@backup_share", ATL),
                param("@backup_job_name", "LSBackup_mgc"),
            ],
        )
        .await;
    assert_eq!(errors(&again), [32009]);
    assert!(again.outputs.contains(&Output::ReturnStatus(1)));
}

#[tokio::test]
async fn share_folders_are_listed_by_xp_dirtree_and_dm_os_enumerate_filesystem() {
    let w = world("lslist");
    let p = w.connect("atl-sql1");
    p.ok(&format!(
        "BACKUP DATABASE mgc TO DISK = N'{ATL}\\mgc_20261126120000.trn' WITH INIT"
    ))
    .await;
    p.ok(&format!(
        "BACKUP DATABASE mgc TO DISK = N'{ATL}\\other.bak' WITH INIT"
    ))
    .await;
    let o = p
        .ok(&format!("EXEC master.sys.xp_dirtree N'{ATL}', 1, 1"))
        .await;
    let rows = result_sets(&o).remove(0).rows;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0][0], Value::NVarChar("mgc_20261126120000.trn".into()));
    assert_eq!(rows[0][2], Value::Int(1));
    let names = p
        .rows(&format!(
            "SELECT file_or_directory_name FROM sys.dm_os_enumerate_filesystem(N'{ATL}', N'*.trn') ORDER BY last_write_time"
        ))
        .await;
    assert_eq!(
        names,
        vec![vec![Value::NVarChar("mgc_20261126120000.trn".into())]]
    );
    // The pattern as a parameter: the same text lists what each value matches, not what the
    // first run's value did (the rewrite names a listing per folder and pattern).
    let listing = "SELECT file_or_directory_name FROM sys.dm_os_enumerate_filesystem(@P1, @P2) \
                   ORDER BY file_or_directory_name";
    for (pattern, expected) in [("*.trn", "mgc_20261126120000.trn"), ("*.bak", "other.bak")] {
        let o = p
            .rpc_sql(
                listing,
                vec![
                    ("@P1", Value::NVarChar(ATL.into())),
                    ("@P2", Value::NVarChar(pattern.into())),
                ],
            )
            .await;
        assert_eq!(
            result_sets(&o)[0].rows,
            vec![vec![Value::NVarChar(expected.into())]],
            "{pattern}: {:?}",
            o.outputs
        );
    }
}

#[tokio::test]
async fn skype_layout_mirror_pair_ships_logs_to_dallas_across_a_manual_failover() {
    let w = world("lsmirror");
    let p = w.connect("atl-sql1");
    let m = w.connect("atl-sql2");
    let s = w.connect("dal-sql1");
    p.post("mgc", 1..3).await;
    p.ok(&format!(
        "BACKUP DATABASE mgc TO DISK = N'{ATL}\\seed.bak' WITH INIT"
    ))
    .await;
    p.ok(&format!(
        "BACKUP LOG mgc TO DISK = N'{ATL}\\seed.trn' WITH INIT"
    ))
    .await;
    for c in [&m, &s] {
        c.ok(&format!(
            "RESTORE DATABASE mgc FROM DISK = N'{ATL}\\seed.bak' WITH NORECOVERY"
        ))
        .await;
        c.ok(&format!(
            "RESTORE LOG mgc FROM DISK = N'{ATL}\\seed.trn' WITH NORECOVERY"
        ))
        .await;
    }
    m.ok("ALTER DATABASE mgc SET PARTNER = N'TCP://atl-sql1:5022'")
        .await;
    p.ok("ALTER DATABASE mgc SET PARTNER = N'TCP://atl-sql2:5022'")
        .await;
    configure(&p, &s).await;
    enable_jobs(&p, &s).await;
    // Microsoft's procedure for a mirrored log-shipping primary: the mirror cannot be
    // configured while it is the mirror (SQL Server cannot open it: 954) ...
    let add_primary = format!(
        "EXEC master.dbo.sp_add_log_shipping_primary_database @database = N'mgc', @backup_directory = N'{ATL}', @backup_share = N'{ATL}', @backup_job_name = N'LSBackup_mgc'"
    );
    assert_eq!(m.err(&add_primary).await, [954]);
    p.post("mgc", 3..10).await;
    assert!(
        eventually(3000, || w.sim.message_ids("dal-sql1", "mgc").unwrap()
            == ids(1..10))
        .await
    );
    // ... so it is configured once a failover has made it the principal, with the same share.
    p.ok("ALTER DATABASE mgc SET PARTNER FAILOVER").await;
    m.ok(&format!(
        "{add_primary}; EXEC msdb.dbo.sp_update_job @job_name = N'LSBackup_mgc', @enabled = 1"
    ))
    .await;
    m.post("mgc", 10..20).await;
    assert!(
        eventually(3000, || w.sim.message_ids("dal-sql1", "mgc").unwrap()
            == ids(1..20))
        .await,
        "dallas has {:?}",
        w.sim.message_ids("dal-sql1", "mgc")
    );
    // The new principal's backup job ships; the old principal's, now on a mirror, skips.
    let ok_runs = m
        .int("SELECT COUNT(*) FROM msdb.dbo.sysjobhistory WHERE run_status = 1 AND message LIKE '%Backed up%'")
        .await;
    assert!(ok_runs > 0);
    let skipped = p
        .int("SELECT COUNT(*) FROM msdb.dbo.sysjobhistory WHERE message LIKE '%because it is a mirror database%'")
        .await;
    assert!(
        skipped > 0,
        "the old principal's job did not skip its mirror copy"
    );
}

#[tokio::test]
async fn restore_delay_holds_backups_back_and_standby_mode_is_refused() {
    let w = world("lsdelay");
    let (p, s) = seed_secondary(&w).await;
    assert_eq!(
        s.err("EXEC master.dbo.sp_add_log_shipping_secondary_primary @primary_server = N'atl-sql1', @primary_database = N'mgc', @backup_source_directory = N'\\\\atl-fs\\pchat-ls', @backup_destination_directory = N'D:\\copy', @copy_job_name = N'c', @restore_job_name = N'r'; EXEC master.dbo.sp_add_log_shipping_secondary_database @secondary_database = N'mgc', @primary_server = N'atl-sql1', @primary_database = N'mgc', @restore_mode = 1")
            .await,
        [32047]
    );
    s.ok("EXEC master.dbo.sp_add_log_shipping_secondary_database @secondary_database = N'mgc', @primary_server = N'atl-sql1', @primary_database = N'mgc', @restore_delay = 60")
        .await;
    p.ok(&format!(
        "EXEC master.dbo.sp_add_log_shipping_primary_database @database = N'mgc', @backup_directory = N'{ATL}', @backup_share = N'{ATL}', @backup_job_name = N'LSBackup_mgc'"
    ))
    .await;
    p.post("mgc", [3]).await;
    for job in ["LSBackup_mgc"] {
        p.ok(&format!("EXEC msdb.dbo.sp_start_job @job_name = N'{job}'"))
            .await;
        w.sim.tick();
    }
    for job in ["c", "r"] {
        s.ok(&format!("EXEC msdb.dbo.sp_start_job @job_name = N'{job}'"))
            .await;
        w.sim.tick();
    }
    assert!(
        w.dir
            .join("instances/dal-sql1/D/copy")
            .read_dir()
            .unwrap()
            .count()
            > 0
    );
    assert!(!w.sim.message_ids("dal-sql1", "mgc").unwrap().contains(&3));
}

#[tokio::test]
async fn adding_the_secondary_primary_twice_is_error_32024() {
    let w = world("ls32024");
    let (p, s) = seed_secondary(&w).await;
    configure(&p, &s).await;
    let again = s
        .err(&format!(
            "EXEC master.dbo.sp_add_log_shipping_secondary_primary @primary_server = N'atl-sql1',
                  @primary_database = N'mgc', @backup_source_directory = N'{ATL}',
                  @backup_destination_directory = N'D:\\other', @copy_job_name = N'LSCopy_atl-sql1_mgc',
                  @restore_job_name = N'LSRestore_atl-sql1_mgc'"
        ))
        .await;
    assert_eq!(again, [32024]);
}

#[tokio::test]
async fn adding_a_secondary_database_twice_is_error_32013() {
    let w = world("ls32013");
    let (p, s) = seed_secondary(&w).await;
    configure(&p, &s).await;
    assert_eq!(
        s.err("EXEC master.dbo.sp_add_log_shipping_secondary_database @secondary_database = N'mgc', @primary_server = N'atl-sql1', @primary_database = N'mgc'")
            .await,
        [32013]
    );
}

#[tokio::test]
async fn linking_the_same_secondary_twice_on_the_primary_is_error_32012() {
    let w = world("ls32012");
    let (p, s) = seed_secondary(&w).await;
    configure(&p, &s).await;
    assert_eq!(
        p.err("EXEC master.dbo.sp_add_log_shipping_primary_secondary @primary_database = N'mgc', @secondary_server = N'dal-sql1', @secondary_database = N'mgc'")
            .await,
        [32012]
    );
}

#[tokio::test]
async fn deleting_a_secondary_database_that_is_not_configured_is_error_32014() {
    let w = world("ls32014");
    let s = w.connect("dal-sql1");
    assert_eq!(
        s.err(
            "EXEC master.dbo.sp_delete_log_shipping_secondary_database @secondary_database = N'mgc'"
        )
        .await,
        [32014]
    );
}

#[tokio::test]
async fn deleting_a_secondary_primary_with_secondary_databases_left_is_error_32025() {
    let w = world("ls32025");
    let (p, s) = seed_secondary(&w).await;
    configure(&p, &s).await;
    assert_eq!(
        s.err("EXEC master.dbo.sp_delete_log_shipping_secondary_primary @primary_server = N'atl-sql1', @primary_database = N'mgc'")
            .await,
        [32025]
    );
    s.ok("EXEC master.dbo.sp_delete_log_shipping_secondary_database @secondary_database = N'mgc'")
        .await;
    assert_eq!(
        s.int("SELECT COUNT(*) FROM msdb.dbo.log_shipping_secondary")
            .await,
        0
    );
}

#[tokio::test]
async fn a_primary_database_in_simple_recovery_is_refused_with_error_32015() {
    let w = world("ls32015");
    let p = w.connect("atl-sql1");
    p.ok("ALTER DATABASE mgc SET RECOVERY SIMPLE").await;
    assert_eq!(
        p.err(&format!(
            "EXEC master.dbo.sp_add_log_shipping_primary_database @database = N'mgc', @backup_directory = N'{ATL}', @backup_share = N'{ATL}', @backup_job_name = N'LSBackup_mgc'"
        ))
        .await,
        [32015]
    );
}

#[tokio::test]
async fn a_primary_database_that_does_not_exist_is_error_15010() {
    let w = world("ls15010");
    let p = w.connect("atl-sql1");
    assert_eq!(
        p.err(&format!(
            "EXEC master.dbo.sp_add_log_shipping_primary_database @database = N'nosuch', @backup_directory = N'{ATL}', @backup_share = N'{ATL}', @backup_job_name = N'LSBackup_nosuch'"
        ))
        .await,
        [15010]
    );
}

#[tokio::test]
async fn overwrite_replaces_the_primary_configuration_and_keeps_its_links() {
    let w = world("lsoverwritep");
    let (p, s) = seed_secondary(&w).await;
    configure(&p, &s).await;
    let id_before = p
        .scalar("SELECT primary_id FROM msdb.dbo.log_shipping_primary_databases")
        .await;
    p.ok(
        "EXEC master.dbo.sp_add_log_shipping_primary_database @database = N'mgc',
              @backup_directory = N'\\\\dal-fs\\pchat-ls', @backup_share = N'\\\\dal-fs\\pchat-ls',
              @backup_job_name = N'LSBackup_mgc', @backup_retention_period = 60, @overwrite = 1",
    )
    .await;
    let rows = p
        .rows("SELECT primary_id, backup_directory, backup_retention_period FROM msdb.dbo.log_shipping_primary_databases")
        .await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][0], id_before);
    assert_eq!(rows[0][1], Value::NVarChar("\\\\dal-fs\\pchat-ls".into()));
    assert_eq!(rows[0][2], Value::Int(60));
    assert_eq!(
        p.int("SELECT COUNT(*) FROM msdb.dbo.log_shipping_primary_secondaries")
            .await,
        1
    );
    assert_eq!(
        p.int("SELECT COUNT(*) FROM msdb.dbo.sysjobs WHERE name = 'LSBackup_mgc'")
            .await,
        1
    );
}

#[tokio::test]
async fn overwrite_replaces_the_secondary_configuration_and_keeps_its_databases() {
    let w = world("lsoverwrites");
    let (p, s) = seed_secondary(&w).await;
    configure(&p, &s).await;
    s.ok(&format!(
        "EXEC master.dbo.sp_add_log_shipping_secondary_primary @primary_server = N'atl-sql1',
              @primary_database = N'mgc', @backup_source_directory = N'{ATL}',
              @backup_destination_directory = N'D:\\pchat-ls-copy2', @copy_job_name = N'LSCopy_atl-sql1_mgc',
              @restore_job_name = N'LSRestore_mgc_new', @overwrite = 1;
         EXEC master.dbo.sp_add_log_shipping_secondary_database @secondary_database = N'mgc',
              @primary_server = N'atl-sql1', @primary_database = N'mgc', @restore_delay = 5, @overwrite = 1"
    ))
    .await;
    assert_eq!(
        s.text("SELECT backup_destination_directory FROM msdb.dbo.log_shipping_secondary")
            .await,
        "D:\\pchat-ls-copy2"
    );
    assert_eq!(
        s.int("SELECT restore_delay FROM msdb.dbo.log_shipping_secondary_databases")
            .await,
        5
    );
    let jobs: Vec<Value> = s
        .rows("SELECT name FROM msdb.dbo.sysjobs ORDER BY name")
        .await
        .into_iter()
        .map(|mut r| r.remove(0))
        .collect();
    assert_eq!(
        jobs,
        [
            Value::NVarChar("LSCopy_atl-sql1_mgc".into()),
            Value::NVarChar("LSRestore_mgc_new".into())
        ]
    );
    p.ok("EXEC master.dbo.sp_add_log_shipping_primary_secondary @primary_database = N'mgc', @secondary_server = N'dal-sql1', @secondary_database = N'mgc', @overwrite = 1")
        .await;
    assert_eq!(
        p.int("SELECT COUNT(*) FROM msdb.dbo.log_shipping_primary_secondaries")
            .await,
        1
    );
}

#[tokio::test]
async fn a_restoring_copy_cannot_be_made_a_log_shipping_primary() {
    let w = world("lsprimaryrestoring");
    let (_, s) = seed_secondary(&w).await;
    // dal-sql1's copy is RESTORING: SQL Server cannot open it (927), so the procedure fails
    // and no job or msdb row is left behind.
    assert_eq!(
        s.err(&format!(
            "EXEC master.dbo.sp_add_log_shipping_primary_database @database = N'mgc',
                  @backup_directory = N'{ATL}', @backup_share = N'{ATL}',
                  @backup_job_name = N'LSBackup_mgc'"
        ))
        .await,
        [927]
    );
    assert_eq!(
        s.int("SELECT COUNT(*) FROM msdb.dbo.log_shipping_primary_databases")
            .await,
        0
    );
    assert_eq!(s.int("SELECT COUNT(*) FROM msdb.dbo.sysjobs").await, 0);
}
