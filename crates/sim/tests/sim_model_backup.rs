//! BACKUP/RESTORE through T-SQL: files under the state directory, HEADERONLY, the LSN chain and
//! every error SQL Server raises on that path (a log backup without a full one, a log restore
//! too early or too late, another database's backup, an inconsistent recovery path), msdb
//! history, and a planned switch by hand.

mod support;

use pchat_sim::backend::Value;
use pchat_sim::faults::{Fault, FaultInjector};
use support::model::*;

const SHARE: &str = "\\\\atl-fs\\pchat-ls";

fn on_share(file: &str) -> String {
    format!("{SHARE}\\{file}")
}

/// Full + log backup of mgc on atl-sql1, restored WITH NORECOVERY on dal-sql1.
async fn seed_dallas(w: &World) -> (Conn, Conn) {
    let atl = w.connect("atl-sql1");
    let dal = w.connect("dal-sql1");
    atl.post("mgc", 1..4).await;
    atl.ok(&format!(
        "BACKUP DATABASE [mgc] TO DISK = N'{}' WITH INIT, CHECKSUM",
        on_share("mgc_full.bak")
    ))
    .await;
    dal.ok(&format!(
        "RESTORE DATABASE [mgc] FROM DISK = N'{}' WITH NORECOVERY",
        on_share("mgc_full.bak")
    ))
    .await;
    (atl, dal)
}

#[tokio::test]
async fn full_backup_writes_a_file_under_the_mapped_share_folder_and_a_backupset_row() {
    let w = world("bkfile");
    let c = w.connect("atl-sql1");
    c.ok(&format!(
        "BACKUP DATABASE mgc TO DISK = N'{}' WITH INIT, COPY_ONLY, STATS = 10",
        on_share("x.bak")
    ))
    .await;
    assert!(w.dir.join("shares/atl-fs/pchat-ls/x.bak").is_file());
    let row = c
        .rows("SELECT type, is_copy_only, database_name FROM msdb.dbo.backupset")
        .await
        .remove(0);
    assert_eq!(
        row,
        [
            Value::NVarChar("D".into()),
            Value::Bit(true),
            Value::NVarChar("mgc".into())
        ]
    );
    let dev = c
        .text("SELECT physical_device_name FROM msdb.dbo.backupmediafamily")
        .await;
    assert_eq!(dev, on_share("x.bak"));
}

#[tokio::test]
async fn local_drive_paths_map_to_the_instance_folder() {
    let w = world("localpath");
    let c = w.connect("atl-sql1");
    c.ok("BACKUP DATABASE mgc TO DISK = N'D:\\Backups\\mgc.bak' WITH INIT")
        .await;
    assert!(w.dir.join("instances/atl-sql1/D/Backups/mgc.bak").is_file());
}

#[tokio::test]
async fn restore_headeronly_returns_the_documented_columns_and_lsns() {
    let w = world("header");
    let c = w.connect("atl-sql1");
    c.post("mgc", [1]).await;
    c.ok(&format!(
        "BACKUP DATABASE mgc TO DISK = N'{}' WITH INIT",
        on_share("h.bak")
    ))
    .await;
    c.post("mgc", [2]).await;
    c.ok(&format!(
        "BACKUP LOG mgc TO DISK = N'{}' WITH INIT",
        on_share("h.trn")
    ))
    .await;
    let o = c
        .ok(&format!(
            "RESTORE HEADERONLY FROM DISK = N'{}'",
            on_share("h.trn")
        ))
        .await;
    let rs = result_sets(&o).remove(0);
    let col = |n: &str| rs.columns.iter().position(|c| c.name == n).unwrap();
    for n in [
        "BackupName",
        "BackupType",
        "DatabaseName",
        "ServerName",
        "FirstLSN",
        "LastLSN",
        "CheckpointLSN",
        "DatabaseBackupLSN",
        "BackupStartDate",
        "BackupFinishDate",
        "IsCopyOnly",
        "IsForceOffline",
    ] {
        col(n);
    }
    let r = &rs.rows[0];
    assert_eq!(r[col("BackupType")], Value::Int(2));
    assert_eq!(r[col("DatabaseName")], Value::NVarChar("mgc".into()));
    assert_eq!(r[col("ServerName")], Value::NVarChar("atl-sql1".into()));
    let (Value::Numeric(first), Value::Numeric(last)) = (&r[col("FirstLSN")], &r[col("LastLSN")])
    else {
        panic!("LSNs are numeric");
    };
    assert!(first < last);
    // The log's FirstLSN is the full backup's FirstLSN: the chain starts at the full backup.
    let full = c
        .ok(&format!(
            "RESTORE HEADERONLY FROM DISK = N'{}'",
            on_share("h.bak")
        ))
        .await;
    let fr = result_sets(&full).remove(0).rows.remove(0);
    assert_eq!(fr[col("BackupType")], Value::Int(1));
    assert_eq!(fr[col("FirstLSN")], Value::Numeric(*first));
}

#[tokio::test]
async fn noinit_appends_a_backup_set_and_file_selects_it() {
    let w = world("noinit");
    let c = w.connect("atl-sql1");
    c.ok(&format!(
        "BACKUP DATABASE mgc TO DISK = N'{}'",
        on_share("m.bak")
    ))
    .await;
    c.ok(&format!(
        "BACKUP LOG mgc TO DISK = N'{}'",
        on_share("m.bak")
    ))
    .await;
    let o = c
        .ok(&format!(
            "RESTORE HEADERONLY FROM DISK = N'{}'",
            on_share("m.bak")
        ))
        .await;
    assert_eq!(result_sets(&o)[0].rows.len(), 2);
    let d = w.connect("dal-sql1");
    d.ok(&format!(
        "RESTORE DATABASE mgc FROM DISK = N'{}' WITH FILE = 1, NORECOVERY",
        on_share("m.bak")
    ))
    .await;
    d.ok(&format!(
        "RESTORE LOG mgc FROM DISK = N'{}' WITH FILE = 2, RECOVERY",
        on_share("m.bak")
    ))
    .await;
    assert_eq!(w.sim.database_state("dal-sql1", "mgc").unwrap(), "ONLINE");
}

#[tokio::test]
async fn restore_norecovery_then_logs_then_recovery_brings_every_row_online() {
    let w = world("chain");
    let (atl, dal) = seed_dallas(&w).await;
    assert_eq!(
        dal.text("SELECT state_desc FROM sys.databases WHERE name = 'mgc'")
            .await,
        "RESTORING"
    );
    atl.post("mgc", 4..6).await;
    atl.ok(&format!(
        "BACKUP LOG mgc TO DISK = N'{}'",
        on_share("l1.trn")
    ))
    .await;
    atl.post("mgc", 6..8).await;
    atl.ok(&format!(
        "BACKUP LOG mgc TO DISK = N'{}'",
        on_share("l2.trn")
    ))
    .await;
    dal.ok(&format!(
        "RESTORE LOG mgc FROM DISK = N'{}' WITH NORECOVERY",
        on_share("l1.trn")
    ))
    .await;
    // redo_start_lsn of a RESTORING copy is its redo point: the next log's FirstLSN.
    let redo = dal
        .int("SELECT redo_start_lsn FROM sys.master_files WHERE database_id = DB_ID('mgc') AND type = 0")
        .await;
    let next_first = atl
        .int("SELECT first_lsn FROM msdb.dbo.backupset WHERE backup_set_id = (SELECT MAX(backup_set_id) FROM msdb.dbo.backupset)")
        .await;
    assert_eq!(redo, next_first);
    dal.ok(&format!(
        "RESTORE LOG mgc FROM DISK = N'{}' WITH NORECOVERY",
        on_share("l2.trn")
    ))
    .await;
    dal.ok("RESTORE DATABASE mgc WITH RECOVERY").await;
    assert_eq!(w.sim.database_state("dal-sql1", "mgc").unwrap(), "ONLINE");
    assert_eq!(w.sim.message_ids("dal-sql1", "mgc").unwrap(), ids(1..8));
    let fork = dal
        .int("SELECT fork_point_lsn FROM sys.database_recovery_status WHERE database_id = DB_ID('mgc')")
        .await;
    // The fork point is where recovery happened: l2's LastLSN.
    let l2_last = atl
        .int("SELECT MAX(last_lsn) FROM msdb.dbo.backupset")
        .await;
    assert_eq!(fork, l2_last);
    let hist = dal
        .rows("SELECT restore_type, recovery FROM msdb.dbo.restorehistory ORDER BY restore_history_id")
        .await;
    assert_eq!(hist.len(), 3);
    assert_eq!(hist[0][0], Value::NVarChar("D".into()));
    assert_eq!(hist[2][1], Value::Bit(false));
}

#[tokio::test]
async fn unknown_column_is_error_207_naming_it() {
    let w = world("e207");
    let c = w.connect("atl-sql1");
    let o = c.exec("SELECT nope FROM msdb.dbo.backupset").await;
    assert_eq!(errors(&o), [207]);
    assert_eq!(error_texts(&o), ["Invalid column name 'nope'."]);
}

#[tokio::test]
async fn restoring_a_log_that_skips_one_is_error_4305_then_3013() {
    let w = world("e4305");
    let (atl, dal) = seed_dallas(&w).await;
    atl.ok(&format!(
        "BACKUP LOG mgc TO DISK = N'{}'",
        on_share("l1.trn")
    ))
    .await;
    atl.post("mgc", [10]).await;
    atl.ok(&format!(
        "BACKUP LOG mgc TO DISK = N'{}'",
        on_share("l2.trn")
    ))
    .await;
    let o = dal
        .exec(&format!(
            "RESTORE LOG mgc FROM DISK = N'{}' WITH NORECOVERY",
            on_share("l2.trn")
        ))
        .await;
    assert_eq!(errors(&o), [4305, 3013]);
    let t = error_texts(&o);
    assert!(
        t[0].starts_with("The log in this backup set begins at LSN "),
        "{}",
        t[0]
    );
    assert_eq!(t[1], "RESTORE LOG is terminating abnormally.");
}

#[tokio::test]
async fn restoring_the_same_log_twice_is_error_4326_then_3013() {
    let w = world("e4326");
    let (atl, dal) = seed_dallas(&w).await;
    atl.ok(&format!(
        "BACKUP LOG mgc TO DISK = N'{}'",
        on_share("l1.trn")
    ))
    .await;
    dal.ok(&format!(
        "RESTORE LOG mgc FROM DISK = N'{}' WITH NORECOVERY",
        on_share("l1.trn")
    ))
    .await;
    assert_eq!(
        dal.err(&format!(
            "RESTORE LOG mgc FROM DISK = N'{}' WITH NORECOVERY",
            on_share("l1.trn")
        ))
        .await,
        [4326, 3013]
    );
}

#[tokio::test]
async fn restoring_a_log_onto_a_recovered_copy_is_error_3117() {
    let w = world("e3117");
    let (atl, dal) = seed_dallas(&w).await;
    atl.ok(&format!(
        "BACKUP LOG mgc TO DISK = N'{}'",
        on_share("l1.trn")
    ))
    .await;
    dal.ok("RESTORE DATABASE mgc WITH RECOVERY").await;
    assert_eq!(
        dal.err(&format!(
            "RESTORE LOG mgc FROM DISK = N'{}'",
            on_share("l1.trn")
        ))
        .await,
        [3117, 3013]
    );
}

#[tokio::test]
async fn restore_database_over_an_online_copy_without_tail_backup_is_error_3159() {
    let w = world("e3159");
    let c = w.connect("atl-sql1");
    c.ok(&format!(
        "BACKUP DATABASE mgc TO DISK = N'{}' WITH INIT",
        on_share("f.bak")
    ))
    .await;
    assert_eq!(
        c.err(&format!(
            "RESTORE DATABASE mgc FROM DISK = N'{}'",
            on_share("f.bak")
        ))
        .await,
        [3159, 3013]
    );
    // WITH REPLACE overwrites it.
    c.ok(&format!(
        "RESTORE DATABASE mgc FROM DISK = N'{}' WITH REPLACE, RECOVERY",
        on_share("f.bak")
    ))
    .await;
}

#[tokio::test]
async fn restore_of_another_database_over_an_existing_one_is_error_3154_unless_replace() {
    let w = world("e3154");
    let atl = w.connect("atl-sql1");
    let dal = w.connect("dal-sql1");
    atl.post("mgc", [1]).await;
    atl.ok(&format!(
        "BACKUP DATABASE mgc TO DISK = N'{}' WITH INIT",
        on_share("f.bak")
    ))
    .await;
    dal.ok("CREATE DATABASE mgc").await;
    assert_eq!(
        dal.err(&format!(
            "RESTORE DATABASE mgc FROM DISK = N'{}' WITH NORECOVERY",
            on_share("f.bak")
        ))
        .await,
        [3154, 3013]
    );
    dal.ok(&format!(
        "RESTORE DATABASE mgc FROM DISK = N'{}' WITH NORECOVERY, REPLACE",
        on_share("f.bak")
    ))
    .await;
    assert_eq!(w.sim.message_ids("dal-sql1", "mgc").unwrap(), [1]);
}

#[tokio::test]
async fn restore_while_sessions_use_the_database_is_error_3101_until_they_end() {
    let w = world("e3101");
    let c = w.connect("atl-sql1");
    c.ok(&format!(
        "BACKUP DATABASE mgc TO DISK = N'{}' WITH INIT",
        on_share("f.bak")
    ))
    .await;
    let chat = w.connect_as("atl-sql1", "atl-pc1", "Persistent Chat", "mgc");
    let sql = format!(
        "RESTORE DATABASE mgc FROM DISK = N'{}' WITH REPLACE, NORECOVERY",
        on_share("f.bak")
    );
    let o = c.exec(&sql).await;
    assert_eq!(errors(&o), [3101, 3013]);
    assert_eq!(
        error_texts(&o)[0],
        "Exclusive access could not be obtained because the database is in use."
    );
    c.ok(&format!("KILL {}", chat.session.session_id)).await;
    c.ok(&sql).await;
    assert_eq!(
        w.sim.database_state("atl-sql1", "mgc").unwrap(),
        "RESTORING"
    );
}

#[tokio::test]
async fn backup_to_a_share_whose_host_is_down_is_error_3201_then_3013() {
    let w = world("e3201");
    let c = w.connect("atl-sql1");
    w.sim
        .inject(Fault::ShareDown {
            host: "atl-fs".into(),
        })
        .unwrap();
    let o = c
        .exec(&format!(
            "BACKUP DATABASE mgc TO DISK = N'{}'",
            on_share("f.bak")
        ))
        .await;
    assert_eq!(errors(&o), [3201, 3013]);
    assert!(error_texts(&o)[0].contains("Operating system error 53"));
    assert_eq!(
        error_texts(&o)[1],
        "BACKUP DATABASE is terminating abnormally."
    );
    w.sim
        .inject(Fault::ShareUp {
            host: "atl-fs".into(),
        })
        .unwrap();
    c.ok(&format!(
        "BACKUP DATABASE mgc TO DISK = N'{}'",
        on_share("f.bak")
    ))
    .await;
}

#[tokio::test]
async fn restore_from_a_missing_file_is_error_3201_then_3013() {
    let w = world("e3201b");
    let c = w.connect("dal-sql1");
    let o = c
        .exec(&format!(
            "RESTORE DATABASE mgc FROM DISK = N'{}' WITH NORECOVERY",
            on_share("none.bak")
        ))
        .await;
    assert_eq!(errors(&o), [3201, 3013]);
    assert!(error_texts(&o)[0].contains("Operating system error 2"));
}

#[tokio::test]
async fn tail_log_backup_with_norecovery_leaves_the_copy_restoring() {
    let w = world("tail");
    let c = w.connect("atl-sql1");
    c.ok(&format!(
        "BACKUP DATABASE mgc TO DISK = N'{}' WITH INIT",
        on_share("f.bak")
    ))
    .await;
    c.ok(&format!(
        "BACKUP LOG mgc TO DISK = N'{}' WITH NORECOVERY",
        on_share("tail.trn")
    ))
    .await;
    assert_eq!(
        w.sim.database_state("atl-sql1", "mgc").unwrap(),
        "RESTORING"
    );
    let o = c
        .ok(&format!(
            "RESTORE HEADERONLY FROM DISK = N'{}'",
            on_share("tail.trn")
        ))
        .await;
    let rs = result_sets(&o).remove(0);
    let col = rs
        .columns
        .iter()
        .position(|c| c.name == "IsForceOffline")
        .unwrap();
    assert_eq!(rs.rows[0][col], Value::Bit(true));
}

#[tokio::test]
async fn planned_switch_by_hand_loses_no_message_and_the_old_primary_follows_the_new() {
    let w = world("planned");
    let (atl, dal) = seed_dallas(&w).await;
    atl.post("mgc", 4..20).await;
    atl.ok(&format!(
        "BACKUP LOG mgc TO DISK = N'{}'",
        on_share("mgc_1.trn")
    ))
    .await;
    atl.post("mgc", 20..30).await;
    // Demote: tail-log backup; atl-sql1's copy is now RESTORING at the tail.
    atl.ok(&format!(
        "BACKUP LOG mgc TO DISK = N'{}' WITH NORECOVERY",
        on_share("mgc_tail.trn")
    ))
    .await;
    let tail = atl
        .int("SELECT MAX(last_lsn) FROM msdb.dbo.backupset WHERE type = 'L'")
        .await;
    // Catch up and recover Dallas.
    for f in ["mgc_1.trn", "mgc_tail.trn"] {
        dal.ok(&format!(
            "RESTORE LOG mgc FROM DISK = N'{}' WITH NORECOVERY",
            on_share(f)
        ))
        .await;
    }
    let redo = dal
        .int("SELECT redo_start_lsn FROM sys.master_files WHERE database_id = DB_ID('mgc') AND type = 0")
        .await;
    assert_eq!(redo, tail, "the tail LSN was reached");
    dal.ok("RESTORE DATABASE mgc WITH RECOVERY").await;
    assert_eq!(w.sim.message_ids("dal-sql1", "mgc").unwrap(), ids(1..30));
    // Dallas serves; its log backups apply to the demoted Atlanta copy.
    dal.post("mgc", 30..35).await;
    dal.ok("BACKUP LOG mgc TO DISK = N'\\\\dal-fs\\pchat-ls\\mgc_2.trn'")
        .await;
    atl.ok("RESTORE LOG mgc FROM DISK = N'\\\\dal-fs\\pchat-ls\\mgc_2.trn' WITH NORECOVERY")
        .await;
    assert_eq!(w.sim.message_ids("atl-sql1", "mgc").unwrap(), ids(1..35));
}

#[tokio::test]
async fn a_log_from_another_recovery_fork_is_error_4330_after_a_split_brain() {
    let w = world("e4330");
    let (atl, dal) = seed_dallas(&w).await;
    atl.ok(&format!(
        "BACKUP LOG mgc TO DISK = N'{}'",
        on_share("l1.trn")
    ))
    .await;
    dal.ok(&format!(
        "RESTORE LOG mgc FROM DISK = N'{}' WITH NORECOVERY",
        on_share("l1.trn")
    ))
    .await;
    // Forced failover: Dallas recovers while Atlanta keeps writing (two writable copies).
    dal.ok("RESTORE DATABASE mgc WITH RECOVERY").await;
    atl.post("mgc", 100..105).await;
    atl.ok(&format!(
        "BACKUP LOG mgc TO DISK = N'{}' WITH NORECOVERY",
        on_share("atl_tail.trn")
    ))
    .await;
    dal.post("mgc", 200..220).await;
    dal.ok("BACKUP LOG mgc TO DISK = N'\\\\dal-fs\\pchat-ls\\dal_1.trn'")
        .await;
    let o = atl
        .exec("RESTORE LOG mgc FROM DISK = N'\\\\dal-fs\\pchat-ls\\dal_1.trn' WITH NORECOVERY")
        .await;
    assert_eq!(errors(&o), [4330, 3013]);
    assert!(error_texts(&o)[0].contains("recovery path that is inconsistent"));
    // Atlanta's diverged rows are still there to salvage.
    assert!(w.sim.message_ids("atl-sql1", "mgc").unwrap().contains(&104));
    let fork = dal
        .scalar("SELECT fork_point_lsn FROM sys.database_recovery_status WHERE database_id = DB_ID('mgc')")
        .await;
    assert!(matches!(fork, Value::Numeric(_)));
}

#[tokio::test]
async fn restore_filelistonly_and_verifyonly_read_the_media() {
    let w = world("filelist");
    let c = w.connect("atl-sql1");
    c.ok(&format!(
        "BACKUP DATABASE mgc TO DISK = N'{}' WITH INIT",
        on_share("f.bak")
    ))
    .await;
    let o = c
        .ok(&format!(
            "RESTORE FILELISTONLY FROM DISK = N'{}'",
            on_share("f.bak")
        ))
        .await;
    let rs = result_sets(&o).remove(0);
    assert_eq!(rs.columns[0].name, "LogicalName");
    assert_eq!(rs.rows.len(), 2);
    let o = c
        .ok(&format!(
            "RESTORE VERIFYONLY FROM DISK = N'{}'",
            on_share("f.bak")
        ))
        .await;
    assert!(o.outputs.iter().any(|x| matches!(x,
        pchat_sim::backend::Output::Message(m) if m.number == 3262)));
    assert_eq!(
        c.err(&format!(
            "RESTORE VERIFYONLY FROM DISK = N'{}'",
            on_share("none.bak")
        ))
        .await,
        [3201, 3013]
    );
}

#[tokio::test]
async fn forced_failover_by_hand_then_salvage_and_reseed_of_the_returning_copy() {
    let w = world("forced");
    let (atl, dal) = seed_dallas(&w).await;
    atl.ok(&format!(
        "BACKUP LOG mgc TO DISK = N'{}'",
        on_share("mgc_1.trn")
    ))
    .await;
    dal.ok(&format!(
        "RESTORE LOG mgc FROM DISK = N'{}' WITH NORECOVERY",
        on_share("mgc_1.trn")
    ))
    .await;
    atl.post("mgc", 50..55).await; // never backed up: the data-loss window
    w.sim
        .inject(Fault::InstanceDown {
            instance: "atl-sql1".into(),
        })
        .unwrap();
    dal.ok("RESTORE DATABASE mgc WITH RECOVERY").await;
    dal.post("mgc", 60..65).await;
    w.sim
        .inject(Fault::InstanceUp {
            instance: "atl-sql1".into(),
        })
        .unwrap();
    let atl = w.connect("atl-sql1");
    // The returning copy is ONLINE with rows Dallas never saw: salvage it before overwriting.
    assert_eq!(w.sim.database_state("atl-sql1", "mgc").unwrap(), "ONLINE");
    atl.ok(&format!(
        "BACKUP DATABASE mgc TO DISK = N'{}' WITH COPY_ONLY, INIT",
        on_share("mgc_salvage.bak")
    ))
    .await;
    dal.ok("BACKUP DATABASE mgc TO DISK = N'\\\\dal-fs\\pchat-ls\\mgc_reseed.bak' WITH INIT")
        .await;
    atl.ok("RESTORE DATABASE mgc FROM DISK = N'\\\\dal-fs\\pchat-ls\\mgc_reseed.bak' WITH REPLACE, NORECOVERY")
        .await;
    assert_eq!(
        w.sim.database_state("atl-sql1", "mgc").unwrap(),
        "RESTORING"
    );
    let reseeded = w.sim.message_ids("atl-sql1", "mgc").unwrap();
    assert!(reseeded.contains(&60) && !reseeded.contains(&50));
    // The salvage backup still holds the lost window.
    let d2 = w.connect("dal-sql2");
    d2.ok(&format!(
        "RESTORE DATABASE salvage FROM DISK = N'{}' WITH RECOVERY",
        on_share("mgc_salvage.bak")
    ))
    .await;
    assert!(
        w.sim
            .message_ids("dal-sql2", "salvage")
            .unwrap()
            .contains(&54)
    );
}

#[tokio::test]
async fn a_restore_onto_an_instance_with_other_folders_needs_with_move() {
    let w = world_with("restoremove", PER_INSTANCE_FOLDERS);
    let p = w.connect("atl-sql1");
    let s = w.connect("dal-sql1");
    assert_eq!(
        s.text("SELECT CAST(SERVERPROPERTY('InstanceDefaultDataPath') AS nvarchar(260))")
            .await,
        "D:\\SQLData\\dal-sql1\\"
    );
    p.post("mgc", 1..3).await;
    p.ok("BACKUP DATABASE mgc TO DISK = N'\\\\atl-fs\\pchat-ls\\move.bak' WITH INIT")
        .await;
    // The backup keeps atl-sql1's paths, which dal-sql1 does not have: planning fails.
    assert_eq!(
        s.err("RESTORE DATABASE mgc FROM DISK = N'\\\\atl-fs\\pchat-ls\\move.bak' WITH NORECOVERY")
            .await,
        [5133, 3156, 5133, 3156, 3119, 3013]
    );
    // A MOVE naming a file the backup does not have.
    assert_eq!(
        s.err("RESTORE DATABASE mgc FROM DISK = N'\\\\atl-fs\\pchat-ls\\move.bak' WITH NORECOVERY, MOVE N'nope' TO N'D:\\SQLData\\dal-sql1\\mgc.mdf'")
            .await,
        [3234, 3013]
    );
    // A target another database's file already is.
    assert_eq!(
        s.err("RESTORE DATABASE mgc FROM DISK = N'\\\\atl-fs\\pchat-ls\\move.bak' WITH NORECOVERY, MOVE N'mgc' TO N'D:\\SQLData\\dal-sql1\\other.mdf', MOVE N'mgc_log' TO N'L:\\SQLLogs\\dal-sql1\\mgc_log.ldf'")
            .await,
        [1834, 3156, 3119, 3013]
    );
    // Both files moved into the instance's folders: the restore runs, and sys.master_files
    // shows where the files went.
    s.ok("DECLARE @data nvarchar(260) = N'D:\\SQLData\\dal-sql1\\mgc.mdf';
          RESTORE DATABASE mgc FROM DISK = N'\\\\atl-fs\\pchat-ls\\move.bak'
          WITH NORECOVERY, MOVE N'mgc' TO @data, MOVE N'mgc_log' TO N'L:\\SQLLogs\\dal-sql1\\mgc_log.ldf'")
        .await;
    assert_eq!(
        s.text("SELECT physical_name FROM sys.master_files WHERE database_id = DB_ID(N'mgc') AND type = 1")
            .await,
        "L:\\SQLLogs\\dal-sql1\\mgc_log.ldf"
    );
    // RESTORE FILELISTONLY lists the backup's own paths, which a client moves from.
    let files = s
        .rows("RESTORE FILELISTONLY FROM DISK = N'\\\\atl-fs\\pchat-ls\\move.bak'")
        .await;
    assert_eq!(files.len(), 2);
}

#[tokio::test]
async fn xp_fileexist_sees_a_reachable_share_as_a_folder_and_one_whose_host_is_down_as_nothing() {
    let w = world("fileexist");
    let c = w.connect("atl-sql1");
    let share = r"\\atl-fs\pchat-ls";
    let flags =
        |o: &pchat_sim::backend::Outcome| -> Vec<Value> { result_sets(o)[0].rows[0].clone() };
    let o = c.exec(&format!("EXEC xp_fileexist N'{share}'")).await;
    assert_eq!(flags(&o), [Value::Int(0), Value::Int(1), Value::Int(1)]);
    c.ok(&format!(
        "BACKUP DATABASE mgc TO DISK = N'{}'",
        on_share("f.bak")
    ))
    .await;
    let o = c
        .exec(&format!("EXEC xp_fileexist N'{}'", on_share("f.bak")))
        .await;
    assert_eq!(flags(&o), [Value::Int(1), Value::Int(0), Value::Int(1)]);
    w.sim
        .inject(Fault::ShareDown {
            host: "atl-fs".into(),
        })
        .unwrap();
    // xp_dirtree answers an empty set for the share now; xp_fileexist tells why.
    let o = c.exec(&format!("EXEC xp_dirtree N'{share}', 1, 1")).await;
    assert!(result_sets(&o)[0].rows.is_empty());
    let o = c.exec(&format!("EXEC xp_fileexist N'{share}'")).await;
    assert_eq!(flags(&o), [Value::Int(0), Value::Int(0), Value::Int(0)]);
}
