//! SQL Agent schedules: sp_add_schedule, sp_attach_schedule and sp_add_jobschedule, the msdb
//! tables they fill, and the interval at which a job with (or without) a schedule runs.

mod support;

use pchat_sim::backend::Value;
use support::model::*;

const ATL: &str = "\\\\atl-fs\\pchat-ls";

/// A log-shipping primary on atl-sql1 with its backup job LSBackup_mgc enabled.
async fn primary_with_enabled_backup_job(w: &World) -> Conn {
    let p = w.connect("atl-sql1");
    p.ok(&format!(
        "BACKUP DATABASE mgc TO DISK = N'{ATL}\\mgc_seed.bak' WITH INIT"
    ))
    .await;
    p.ok(&format!(
        "EXEC master.dbo.sp_add_log_shipping_primary_database @database = N'mgc',
              @backup_directory = N'{ATL}', @backup_share = N'{ATL}', @backup_job_name = N'LSBackup_mgc'"
    ))
    .await;
    p
}

async fn runs_of(c: &Conn, job: &str) -> i128 {
    c.int(&format!(
        "SELECT COUNT(*) FROM msdb.dbo.sysjobhistory h JOIN msdb.dbo.sysjobs j ON j.job_id = h.job_id WHERE j.name = N'{job}'"
    ))
    .await
}

#[tokio::test]
async fn sp_add_schedule_returns_its_id_and_fills_sysschedules() {
    let w = world("agentadd");
    let p = w.connect("atl-sql1");
    let rows = p
        .rows(
            "DECLARE @id int;
             EXEC msdb.dbo.sp_add_schedule @schedule_name = N'LSBackupSchedule_mgc', @enabled = 1,
                  @freq_type = 4, @freq_interval = 1, @freq_subday_type = 4,
                  @freq_subday_interval = 5, @active_start_time = 0, @schedule_id = @id OUTPUT;
             SELECT s.schedule_id, s.name, s.freq_type, s.freq_subday_type, s.freq_subday_interval, s.enabled
             FROM msdb.dbo.sysschedules s WHERE s.schedule_id = @id",
        )
        .await;
    assert_eq!(rows.len(), 1);
    assert!(matches!(rows[0][0], Value::Int(id) if id > 0));
    assert_eq!(
        rows[0][1..],
        [
            Value::NVarChar("LSBackupSchedule_mgc".into()),
            Value::Int(4),
            Value::Int(4),
            Value::Int(5),
            Value::Int(1)
        ]
    );
}

#[tokio::test]
async fn a_job_attached_to_a_one_minute_schedule_does_not_run_at_the_default_interval() {
    let w = world("agentminute");
    let p = primary_with_enabled_backup_job(&w).await;
    p.ok("DECLARE @id int;
          EXEC msdb.dbo.sp_add_schedule @schedule_name = N'every minute', @freq_type = 4,
               @freq_interval = 1, @freq_subday_type = 4, @freq_subday_interval = 1, @schedule_id = @id OUTPUT;
          EXEC msdb.dbo.sp_attach_schedule @job_name = N'LSBackup_mgc', @schedule_id = @id;
          EXEC msdb.dbo.sp_update_job @job_name = N'LSBackup_mgc', @enabled = 1")
        .await;
    assert_eq!(
        p.int("SELECT COUNT(*) FROM msdb.dbo.sysjobschedules js JOIN msdb.dbo.sysjobs j ON j.job_id = js.job_id WHERE j.name = N'LSBackup_mgc'")
            .await,
        1
    );
    // The topology's default (150 ms) would have run the job several times by now.
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert_eq!(runs_of(&p, "LSBackup_mgc").await, 0);
}

/// The test topology with SQL Agent schedules running ten times faster than they say: a
/// 10-second schedule (SQL Agent's shortest) runs every second.
fn world_ten_times_faster(name: &str) -> World {
    let yaml = TOPOLOGY.replace(
        "mirroring_ms: 20}",
        "mirroring_ms: 20, schedule_speedup: 10}",
    );
    assert_ne!(yaml, TOPOLOGY, "the test topology changed shape");
    world_with(name, &yaml)
}

#[tokio::test]
async fn a_job_on_a_ten_second_schedule_ten_times_faster_runs_about_once_a_second() {
    let w = world_ten_times_faster("agentsecond");
    let p = primary_with_enabled_backup_job(&w).await;
    p.ok("EXEC msdb.dbo.sp_add_schedule @schedule_name = N'every 10 s', @freq_type = 4,
               @freq_interval = 1, @freq_subday_type = 2, @freq_subday_interval = 10;
          EXEC msdb.dbo.sp_attach_schedule @job_name = N'LSBackup_mgc', @schedule_name = N'every 10 s';
          EXEC msdb.dbo.sp_update_job @job_name = N'LSBackup_mgc', @enabled = 1")
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(2600)).await;
    let runs = runs_of(&p, "LSBackup_mgc").await;
    // At 150 ms (the default) it would be ~17; once a second it is 2 or 3.
    assert!((1..=4).contains(&runs), "{runs} runs in 2.6 s");
}

#[tokio::test]
async fn a_job_without_a_schedule_runs_at_the_topology_interval() {
    let w = world("agentdefault");
    let p = primary_with_enabled_backup_job(&w).await;
    p.ok("EXEC msdb.dbo.sp_update_job @job_name = N'LSBackup_mgc', @enabled = 1")
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    assert!(runs_of(&p, "LSBackup_mgc").await >= 3);
}

#[tokio::test]
async fn a_job_whose_only_schedule_is_disabled_does_not_run() {
    let w = world("agentdisabled");
    let p = primary_with_enabled_backup_job(&w).await;
    p.ok("EXEC msdb.dbo.sp_add_jobschedule @job_name = N'LSBackup_mgc', @name = N'off', @enabled = 0,
               @freq_type = 4, @freq_interval = 1, @freq_subday_type = 2, @freq_subday_interval = 10;
          EXEC msdb.dbo.sp_update_job @job_name = N'LSBackup_mgc', @enabled = 1")
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert_eq!(runs_of(&p, "LSBackup_mgc").await, 0);
}

#[tokio::test]
async fn sp_add_jobschedule_creates_and_attaches_a_schedule() {
    let w = world("agentjobschedule");
    let p = primary_with_enabled_backup_job(&w).await;
    let rows = p
        .rows("DECLARE @id int;
               EXEC msdb.dbo.sp_add_jobschedule @job_name = N'LSBackup_mgc', @name = N'LSBackupSchedule',
                    @freq_type = 4, @freq_interval = 1, @freq_subday_type = 4, @freq_subday_interval = 15,
                    @schedule_id = @id OUTPUT;
               SELECT s.name, s.freq_subday_interval FROM msdb.dbo.sysjobschedules js
               JOIN msdb.dbo.sysschedules s ON s.schedule_id = js.schedule_id
               JOIN msdb.dbo.sysjobs j ON j.job_id = js.job_id
               WHERE j.name = N'LSBackup_mgc' AND s.schedule_id = @id")
        .await;
    assert_eq!(
        rows,
        [vec![
            Value::NVarChar("LSBackupSchedule".into()),
            Value::Int(15)
        ]]
    );
}

/// msdb's `sp_add_jobschedule` (deprecated) is `sp_add_schedule` plus `sp_attach_schedule`
/// with no look at what the job has: a repeat adds a second schedule of the same name, and the
/// job would run on both. Whoever configures a job must look first.
#[tokio::test]
async fn a_second_job_schedule_of_the_same_name_adds_a_second_schedule() {
    let w = world("agent-jobschedule-twice");
    let p = primary_with_enabled_backup_job(&w).await;
    let add = "EXEC msdb.dbo.sp_add_jobschedule @job_name = N'LSBackup_mgc', @name = N'every5',
                    @freq_type = 4, @freq_interval = 1, @freq_subday_type = 4, @freq_subday_interval = 5";
    p.ok(add).await;
    p.ok(add).await;
    let attached = p
        .int("SELECT COUNT(*) FROM msdb.dbo.sysjobschedules js JOIN msdb.dbo.sysjobs j ON j.job_id = js.job_id
              JOIN msdb.dbo.sysschedules s ON s.schedule_id = js.schedule_id
              WHERE j.name = N'LSBackup_mgc' AND s.name = N'every5'")
        .await;
    assert_eq!(attached, 2);
}

#[tokio::test]
async fn attaching_an_unknown_schedule_or_to_an_unknown_job_is_error_14262() {
    let w = world("agent14262");
    let p = primary_with_enabled_backup_job(&w).await;
    assert_eq!(
        p.err("EXEC msdb.dbo.sp_attach_schedule @job_name = N'LSBackup_mgc', @schedule_name = N'nosuch'")
            .await,
        [14262]
    );
    p.ok("EXEC msdb.dbo.sp_add_schedule @schedule_name = N's', @freq_type = 4, @freq_interval = 1, @freq_subday_type = 4, @freq_subday_interval = 1")
        .await;
    assert_eq!(
        p.err("EXEC msdb.dbo.sp_attach_schedule @job_name = N'nosuch', @schedule_name = N's'")
            .await,
        [14262]
    );
}

#[tokio::test]
async fn attaching_by_a_schedule_name_two_schedules_share_is_error_14371() {
    let w = world("agent14371");
    let p = primary_with_enabled_backup_job(&w).await;
    p.ok("EXEC msdb.dbo.sp_add_schedule @schedule_name = N'twin', @freq_type = 4, @freq_interval = 1, @freq_subday_type = 4, @freq_subday_interval = 1;
          EXEC msdb.dbo.sp_add_schedule @schedule_name = N'twin', @freq_type = 4, @freq_interval = 1, @freq_subday_type = 4, @freq_subday_interval = 2")
        .await;
    assert_eq!(
        p.err(
            "EXEC msdb.dbo.sp_attach_schedule @job_name = N'LSBackup_mgc', @schedule_name = N'twin'"
        )
        .await,
        [14371]
    );
}

#[tokio::test]
async fn a_schedule_that_is_not_daily_or_has_a_bad_subday_type_is_error_14278() {
    let w = world("agent14278");
    let p = w.connect("atl-sql1");
    assert_eq!(
        p.err("EXEC msdb.dbo.sp_add_schedule @schedule_name = N'weekly', @freq_type = 8, @freq_interval = 1")
            .await,
        [14278]
    );
    assert_eq!(
        p.err("EXEC msdb.dbo.sp_add_schedule @schedule_name = N'bad', @freq_type = 4, @freq_interval = 1, @freq_subday_type = 3, @freq_subday_interval = 1")
            .await,
        [14278]
    );
}

#[tokio::test]
async fn schedule_procedures_outside_msdb_are_error_2812() {
    let w = world("agent2812");
    let p = w.connect("atl-sql1");
    assert_eq!(
        p.err("EXEC sp_add_schedule @schedule_name = N'x', @freq_type = 4, @freq_interval = 1")
            .await,
        [2812]
    );
}

#[tokio::test]
async fn deleting_a_log_shipping_job_removes_its_schedule_link_and_unused_schedule() {
    let w = world("agentdelete");
    let p = primary_with_enabled_backup_job(&w).await;
    p.ok("EXEC msdb.dbo.sp_add_jobschedule @job_name = N'LSBackup_mgc', @name = N'LSBackupSchedule',
               @freq_type = 4, @freq_interval = 1, @freq_subday_type = 4, @freq_subday_interval = 15;
          EXEC master.dbo.sp_delete_log_shipping_primary_database @database = N'mgc'")
        .await;
    assert_eq!(
        p.int("SELECT COUNT(*) FROM msdb.dbo.sysjobschedules").await,
        0
    );
    assert_eq!(p.int("SELECT COUNT(*) FROM msdb.dbo.sysschedules").await, 0);
}

#[tokio::test]
async fn sp_update_schedule_renames_and_changes_the_interval_the_job_runs_at() {
    let w = world_ten_times_faster("agentupdate");
    let p = primary_with_enabled_backup_job(&w).await;
    p.ok("EXEC msdb.dbo.sp_add_jobschedule @job_name = N'LSBackup_mgc', @name = N'LSBackup_mgc_every_3600s',
               @freq_type = 4, @freq_interval = 1, @freq_subday_type = 8, @freq_subday_interval = 1;
          EXEC msdb.dbo.sp_update_job @job_name = N'LSBackup_mgc', @enabled = 1")
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(runs_of(&p, "LSBackup_mgc").await, 0);
    let id = p
        .int("SELECT s.schedule_id FROM msdb.dbo.sysschedules s WHERE s.name = N'LSBackup_mgc_every_3600s'")
        .await;
    p.ok(&format!(
        "EXEC msdb.dbo.sp_update_schedule @schedule_id = {id}, @new_name = N'LSBackup_mgc_every_10s',
              @freq_subday_type = 2, @freq_subday_interval = 10"
    ))
    .await;
    let rows = p
        .rows(&format!(
            "SELECT s.name, s.freq_type, s.freq_subday_type, s.freq_subday_interval, s.enabled
             FROM msdb.dbo.sysschedules s WHERE s.schedule_id = {id}"
        ))
        .await;
    assert_eq!(
        rows,
        [vec![
            Value::NVarChar("LSBackup_mgc_every_10s".into()),
            Value::Int(4),
            Value::Int(2),
            Value::Int(10),
            Value::Int(1)
        ]]
    );
    tokio::time::sleep(std::time::Duration::from_millis(2600)).await;
    let runs = runs_of(&p, "LSBackup_mgc").await;
    assert!((1..=4).contains(&runs), "{runs} runs in 2.6 s");
}

#[tokio::test]
async fn updating_an_unknown_schedule_is_14262_and_a_bad_value_14278_changing_nothing() {
    let w = world("agentupdatebad");
    let p = primary_with_enabled_backup_job(&w).await;
    p.ok("EXEC msdb.dbo.sp_add_jobschedule @job_name = N'LSBackup_mgc', @name = N'five',
               @freq_type = 4, @freq_interval = 1, @freq_subday_type = 4, @freq_subday_interval = 5")
        .await;
    assert_eq!(
        p.err("EXEC msdb.dbo.sp_update_schedule @schedule_id = 9999, @freq_subday_interval = 1")
            .await,
        [14262]
    );
    assert_eq!(
        p.err("EXEC msdb.dbo.sp_update_schedule @name = N'nope', @freq_subday_interval = 1")
            .await,
        [14262]
    );
    assert_eq!(
        p.err("EXEC msdb.dbo.sp_update_schedule @name = N'five', @freq_subday_type = 3")
            .await,
        [14278]
    );
    assert_eq!(
        p.err("EXEC msdb.dbo.sp_update_schedule @freq_subday_interval = 1")
            .await,
        [14373]
    );
    assert_eq!(
        p.int("SELECT s.freq_subday_type * 100 + s.freq_subday_interval FROM msdb.dbo.sysschedules s WHERE s.name = N'five'")
            .await,
        405
    );
}

/// SQL Agent's shortest schedule is 10 seconds: msdb's sp_verify_schedule refuses fewer with
/// 14278, whose reason names @freq_subday_interval (message 14200), in sp_add_schedule,
/// sp_add_jobschedule and sp_update_schedule alike, and nothing is created or changed.
#[tokio::test]
async fn a_schedule_of_fewer_than_ten_seconds_is_error_14278_and_changes_nothing() {
    let w = world("agent-under-10s");
    let p = primary_with_enabled_backup_job(&w).await;
    for add in [
        "EXEC msdb.dbo.sp_add_schedule @schedule_name = N'fast', @freq_type = 4, @freq_interval = 1,
              @freq_subday_type = 2, @freq_subday_interval = 9",
        "EXEC msdb.dbo.sp_add_jobschedule @job_name = N'LSBackup_mgc', @name = N'fast', @freq_type = 4,
              @freq_interval = 1, @freq_subday_type = 2, @freq_subday_interval = 1",
    ] {
        let outcome = p.exec(add).await;
        assert_eq!(errors(&outcome), [14278], "{add}");
        let messages = error_texts(&outcome);
        assert!(
            messages[0].contains("@freq_subday_interval"),
            "{messages:?}"
        );
    }
    assert_eq!(
        p.int("SELECT COUNT(*) FROM msdb.dbo.sysschedules WHERE name = N'fast'")
            .await,
        0
    );
    p.ok(
        "EXEC msdb.dbo.sp_add_schedule @schedule_name = N'ten', @freq_type = 4, @freq_interval = 1,
              @freq_subday_type = 2, @freq_subday_interval = 10",
    )
    .await;
    assert_eq!(
        p.err("EXEC msdb.dbo.sp_update_schedule @name = N'ten', @freq_subday_interval = 5")
            .await,
        [14278]
    );
    assert_eq!(
        p.int("SELECT freq_subday_interval FROM msdb.dbo.sysschedules WHERE name = N'ten'")
            .await,
        10
    );
}
