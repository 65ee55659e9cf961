//! The model's core surface through tiberius (tests/sim_model_util): logins, catalog queries,
//! databases, sessions and KILL, INSERT/SELECT of messages, and the parse/lookup errors.

mod support;

use pchat_sim::backend::{ColumnType, Output, Value};
use support::model::*;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn login_with_wrong_password_is_error_18456() {
    let w = world("badlogin");
    let e = w
        .try_login(
            "atl-sql1",
            LoginAs {
                user: "sa".into(),
                password: "nope".into(),
                host: "h".into(),
                app: "a".into(),
                database: String::new(),
            },
        )
        .err()
        .expect("a wrong password must be refused");
    assert_eq!((e.number, e.class), (18456, 14));
    assert_eq!(e.text, "Login failed for user 'sa'.");
    assert_eq!(e.server, "atl-sql1");
}

#[tokio::test]
async fn login_to_a_restoring_database_is_error_4060() {
    let w = world("login4060");
    let c = w.connect("atl-sql1");
    c.ok("BACKUP DATABASE mgc TO DISK = N'\\\\atl-fs\\pchat-ls\\mgc.bak' WITH INIT")
        .await;
    c.ok("BACKUP LOG mgc TO DISK = N'\\\\atl-fs\\pchat-ls\\mgc.trn' WITH NORECOVERY")
        .await;
    let e = w
        .try_login(
            "atl-sql1",
            LoginAs {
                user: "sa".into(),
                password: "Pchat-Sim-1".into(),
                host: "h".into(),
                app: "a".into(),
                database: "mgc".into(),
            },
        )
        .err()
        .expect("a RESTORING initial database must be refused");
    assert_eq!(e.number, 4060);
}

#[tokio::test]
async fn sys_databases_shows_the_topology_databases_online_full_multi_user() {
    let w = world("sysdb");
    let c = w.connect("atl-sql1");
    let o = c
        .ok("SELECT name, state_desc, recovery_model_desc, user_access_desc, database_id FROM sys.databases WHERE name IN (N'mgc', N'mgccomp') ORDER BY name")
        .await;
    let rs = result_sets(&o).remove(0);
    assert_eq!(rs.columns[0].ty, ColumnType::NVarChar(Some(128)));
    assert_eq!(rs.columns[4].ty, ColumnType::Int);
    assert_eq!(
        rs.rows[0][..4],
        [
            Value::NVarChar("mgc".into()),
            Value::NVarChar("ONLINE".into()),
            Value::NVarChar("FULL".into()),
            Value::NVarChar("MULTI_USER".into())
        ]
    );
    assert_eq!(rs.rows.len(), 2);
    // The other site has no chat databases yet.
    let d = w.connect("dal-sql1");
    assert_eq!(
        d.int("SELECT COUNT(*) FROM sys.databases WHERE name = 'mgc'")
            .await,
        0
    );
}

#[tokio::test]
async fn server_name_functions_and_db_functions_answer_for_the_session() {
    let w = world("fns");
    let c = w.connect_as("atl-sql1", "h", "a", "mgc");
    let row = c
        .rows("SELECT @@SERVERNAME, SERVERPROPERTY('ServerName'), DB_NAME(), DB_ID(N'mgc'), DB_NAME(DB_ID('mgccomp')), ISNULL(NULL, 7)")
        .await
        .remove(0);
    assert_eq!(row[0], Value::NVarChar("atl-sql1".into()));
    assert_eq!(row[1], Value::NVarChar("atl-sql1".into()));
    assert_eq!(row[2], Value::NVarChar("mgc".into()));
    assert_eq!(row[3], Value::Int(5));
    assert_eq!(row[4], Value::NVarChar("mgccomp".into()));
    assert_eq!(row[5], Value::Int(7));
}

#[tokio::test]
async fn top_n_and_three_part_msdb_names_are_translated() {
    let w = world("top");
    let c = w.connect("atl-sql1");
    c.ok("BACKUP DATABASE [mgc] TO DISK = N'\\\\atl-fs\\pchat-ls\\a.bak' WITH INIT, CHECKSUM")
        .await;
    c.ok("BACKUP LOG [mgc] TO DISK = N'\\\\atl-fs\\pchat-ls\\a.trn' WITH INIT")
        .await;
    let rows = c
        .rows("SELECT TOP (1) type, first_lsn, last_lsn FROM msdb.dbo.backupset WHERE database_name = N'mgc' ORDER BY backup_set_id DESC")
        .await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][0], Value::NVarChar("L".into()));
    assert!(matches!(rows[0][1], Value::Numeric(_)), "{:?}", rows[0][1]);
}

#[tokio::test]
async fn unknown_table_is_error_208() {
    let w = world("e208");
    let c = w.connect("atl-sql1");
    assert_eq!(c.err("SELECT * FROM sys.no_such_view").await, [208]);
    assert_eq!(c.err("SELECT * FROM nothing_here").await, [208]);
}

#[tokio::test]
async fn unknown_procedure_is_error_2812() {
    let w = world("e2812");
    let c = w.connect("atl-sql1");
    let o = c.exec("EXEC dbo.sp_does_not_exist @x = 1").await;
    assert_eq!(errors(&o), [2812]);
    assert_eq!(
        error_texts(&o),
        ["Could not find stored procedure 'dbo.sp_does_not_exist'."]
    );
}

#[tokio::test]
async fn unparseable_batch_is_error_102_and_runs_nothing() {
    let w = world("e102");
    let c = w.connect("atl-sql1");
    assert_eq!(
        c.err("CREATE DATABASE scratch; FROB THE WIDGET").await,
        [102]
    );
    assert_eq!(
        c.int("SELECT COUNT(*) FROM sys.databases WHERE name = 'scratch'")
            .await,
        0
    );
}

#[tokio::test]
async fn juxtaposed_statements_return_one_result_set_each() {
    let w = world("multi");
    let c = w.connect("atl-sql1");
    let o = c
        .ok("SELECT 1 AS a SELECT name FROM sys.databases WHERE database_id = 1; SELECT 'x' AS b")
        .await;
    assert_eq!(result_sets(&o).len(), 3);
}

#[tokio::test]
async fn use_of_an_absent_database_is_error_911() {
    let w = world("e911");
    let c = w.connect("atl-sql1");
    assert_eq!(c.err("USE [nope]").await, [911]);
}

#[tokio::test]
async fn use_of_a_restoring_database_is_error_927() {
    let w = world("e927");
    let c = w.connect("atl-sql1");
    c.ok("BACKUP DATABASE mgc TO DISK = N'\\\\atl-fs\\pchat-ls\\mgc.bak' WITH INIT")
        .await;
    c.ok("BACKUP LOG mgc TO DISK = N'\\\\atl-fs\\pchat-ls\\tail.trn' WITH NORECOVERY")
        .await;
    let o = c.exec("USE mgc").await;
    assert_eq!(errors(&o), [927]);
    assert_eq!(
        error_texts(&o),
        ["Database 'mgc' cannot be opened. It is in the middle of a restore."]
    );
}

#[tokio::test]
async fn use_changes_the_session_database_with_an_envchange() {
    let w = world("use");
    let c = w.connect("atl-sql1");
    let o = c.ok("USE [mgc]").await;
    assert!(o.outputs.contains(&Output::DatabaseChanged {
        old: "master".into(),
        new: "mgc".into()
    }));
    assert_eq!(c.text("SELECT DB_NAME()").await, "mgc");
}

#[tokio::test]
async fn insert_through_sp_executesql_commits_advances_the_lsn_and_select_reads_it() {
    let w = world("insert");
    let c = w.connect("atl-sql1");
    let before = c
        .int("SELECT log_end_lsn FROM sys.dm_db_log_stats(DB_ID(N'mgc'))")
        .await;
    c.post("mgc", [1, 2, 3]).await;
    let after = c
        .int("SELECT log_end_lsn FROM sys.dm_db_log_stats(DB_ID(N'mgc'))")
        .await;
    assert_eq!(after - before, 3);
    let u = w.connect_as("atl-sql1", "atl-pc1", "Persistent Chat", "mgc");
    let rows = u
        .rows("SELECT MessageId, ChatServer, Body FROM dbo.Messages ORDER BY MessageId")
        .await;
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[2][0], Value::BigInt(3));
    assert_eq!(rows[2][2], Value::NVarChar("message 3".into()));
    assert_eq!(w.sim.message_ids("atl-sql1", "mgc"), Some(vec![1, 2, 3]));
}

#[tokio::test]
async fn plain_insert_with_literals_and_several_rows_reports_its_row_count() {
    let w = world("insert2");
    let c = w.connect_as("atl-sql1", "h", "a", "mgc");
    let o = c
        .ok("INSERT INTO dbo.Messages VALUES (10, N'pc', N'hi', '2026-11-26 12:00:00'), (11, N'pc', N'yo', GETUTCDATE())")
        .await;
    assert!(o.outputs.contains(&Output::RowCount(2)));
    let posted = c
        .scalar("SELECT PostedAt FROM dbo.Messages WHERE MessageId = 10")
        .await;
    assert!(matches!(posted, Value::DateTime(_)), "{posted:?}");
}

#[tokio::test]
async fn inserting_a_duplicate_message_id_is_error_2627() {
    let w = world("e2627");
    let c = w.connect_as("atl-sql1", "h", "a", "mgc");
    c.ok("INSERT INTO dbo.Messages (MessageId, Body) VALUES (1, N'a')")
        .await;
    assert_eq!(
        c.err("INSERT INTO dbo.Messages (MessageId, Body) VALUES (1, N'b')")
            .await,
        [2627]
    );
}

#[tokio::test]
async fn kill_of_an_inactive_session_is_error_6106() {
    let w = world("e6106");
    let c = w.connect("atl-sql1");
    let o = c.exec("KILL 999").await;
    assert_eq!(errors(&o), [6106]);
    assert_eq!(
        error_texts(&o),
        ["Process ID 999 is not an active process ID."]
    );
}

#[tokio::test]
async fn kill_ends_the_session_and_cancels_its_token() {
    let w = world("kill");
    let c = w.connect("atl-sql1");
    let victim = w.connect_as("atl-sql1", "atl-pc1", "Persistent Chat", "mgc");
    c.ok(&format!("KILL {}", victim.session.session_id)).await;
    assert!(victim.session.killed.is_cancelled());
    let n = c
        .int(&format!(
            "SELECT COUNT(*) FROM sys.dm_exec_sessions WHERE session_id = {}",
            victim.session.session_id
        ))
        .await;
    assert_eq!(n, 0);
}

#[tokio::test]
async fn dm_exec_sessions_shows_host_and_program_as_the_client_sent_them() {
    let w = world("sessions");
    let c = w.connect("atl-sql1");
    let _chat = w.connect_as("atl-sql1", "atl-pc2", "Persistent Chat Server", "mgc");
    let rows = c
        .rows("SELECT s.host_name, s.program_name, d.name FROM sys.dm_exec_sessions s JOIN sys.databases d ON d.database_id = s.database_id WHERE s.is_user_process = 1 AND d.name = 'mgc'")
        .await;
    assert_eq!(
        rows,
        vec![vec![
            Value::NVarChar("atl-pc2".into()),
            Value::NVarChar("Persistent Chat Server".into()),
            Value::NVarChar("mgc".into())
        ]]
    );
}

#[tokio::test]
async fn last_request_start_time_is_when_the_batch_started_for_each_of_its_statements() {
    let w = world("lastrequest");
    let c = w.connect("atl-sql1");
    let started =
        "SELECT last_request_start_time FROM sys.dm_exec_sessions WHERE session_id = @@SPID";
    let batch = format!("{started}; WAITFOR DELAY '00:00:00.050'; {started}");
    let o = c.ok(&batch).await;
    let sets = result_sets(&o);
    assert_eq!(sets.len(), 2);
    assert_eq!(sets[0].rows, sets[1].rows, "one request, one start time");
    let Value::DateTime(first) = sets[0].rows[0][0] else {
        panic!("a datetime: {:?}", sets[0].rows)
    };
    let Value::DateTime(next) = c.scalar(started).await else {
        panic!("a datetime")
    };
    assert!(
        next - first >= chrono::Duration::milliseconds(50),
        "the next batch is a new request: {first} then {next}"
    );
}

#[tokio::test]
async fn sp_who2_lists_sessions_with_its_documented_columns() {
    let w = world("who2");
    let c = w.connect("atl-sql1");
    let o = c.ok("EXEC sp_who2").await;
    let rs = result_sets(&o).remove(0);
    let names: Vec<_> = rs.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "SPID",
            "Status",
            "Login",
            "HostName",
            "BlkBy",
            "DBName",
            "Command",
            "CPUTime",
            "DiskIO",
            "LastBatch",
            "ProgramName",
            "SPID",
            "REQUESTID"
        ]
    );
    assert_eq!(rs.rows.len(), 1);
    assert!(o.outputs.contains(&Output::ReturnStatus(0)));
}

#[tokio::test]
async fn single_user_with_rollback_immediate_kills_the_other_sessions() {
    let w = world("single");
    let c = w.connect("atl-sql1");
    let chat = w.connect_as("atl-sql1", "atl-pc1", "Persistent Chat", "mgc");
    c.ok("ALTER DATABASE [mgc] SET SINGLE_USER WITH ROLLBACK IMMEDIATE")
        .await;
    assert!(chat.session.killed.is_cancelled());
    assert_eq!(
        c.text("SELECT user_access_desc FROM sys.databases WHERE name = 'mgc'")
            .await,
        "SINGLE_USER"
    );
    c.ok("ALTER DATABASE [mgc] SET MULTI_USER").await;
    assert_eq!(
        c.text("SELECT user_access_desc FROM sys.databases WHERE name = 'mgc'")
            .await,
        "MULTI_USER"
    );
}

#[tokio::test]
async fn restricted_user_without_rollback_while_in_use_is_error_5061() {
    let w = world("e5061");
    let c = w.connect("atl-sql1");
    let _chat = w.connect_as("atl-sql1", "atl-pc1", "Persistent Chat", "mgc");
    assert_eq!(
        c.err("ALTER DATABASE mgc SET RESTRICTED_USER").await,
        [5061, 5069]
    );
}

#[tokio::test]
async fn set_offline_then_online_changes_state_and_use_of_offline_is_error_942() {
    let w = world("offline");
    let c = w.connect("atl-sql1");
    c.ok("ALTER DATABASE mgccomp SET OFFLINE WITH ROLLBACK IMMEDIATE")
        .await;
    assert_eq!(
        c.text("SELECT state_desc FROM sys.databases WHERE name = 'mgccomp'")
            .await,
        "OFFLINE"
    );
    assert_eq!(c.err("USE mgccomp").await, [942]);
    c.ok("ALTER DATABASE mgccomp SET ONLINE").await;
    c.ok("USE mgccomp").await;
}

#[tokio::test]
async fn create_then_drop_database_and_their_errors() {
    let w = world("createdrop");
    let c = w.connect("dal-sql1");
    c.ok("CREATE DATABASE [scratch]").await;
    assert_eq!(c.err("CREATE DATABASE scratch").await, [1801]);
    assert_eq!(
        c.text("SELECT recovery_model_desc FROM sys.databases WHERE name = 'scratch'")
            .await,
        "FULL"
    );
    c.ok("DROP DATABASE scratch").await;
    assert_eq!(c.err("DROP DATABASE scratch").await, [3701]);
}

#[tokio::test]
async fn recovery_simple_breaks_the_log_chain_and_log_backup_is_error_4208() {
    let w = world("simple");
    let c = w.connect("atl-sql1");
    c.ok("ALTER DATABASE mgc SET RECOVERY SIMPLE").await;
    assert_eq!(
        c.text("SELECT recovery_model_desc FROM sys.databases WHERE name = 'mgc'")
            .await,
        "SIMPLE"
    );
    assert_eq!(
        c.err("BACKUP LOG mgc TO DISK = N'\\\\atl-fs\\pchat-ls\\x.trn'")
            .await,
        [4208, 3013]
    );
    c.ok("ALTER DATABASE mgc SET RECOVERY FULL").await;
    assert_eq!(
        c.err("BACKUP LOG mgc TO DISK = N'\\\\atl-fs\\pchat-ls\\x.trn'")
            .await,
        [4214, 3013]
    );
}

#[tokio::test]
async fn waitfor_is_cut_short_by_attention() {
    let w = world("cancel");
    // Direct: tiberius cannot send ATTENTION while it awaits the batch on the same client.
    let c = w.connect_direct("atl-sql1");
    let cancel = CancellationToken::new();
    let fut = c.backend.batch(
        &c.session,
        "WAITFOR DELAY '00:00:30'; SELECT 1".into(),
        cancel.clone(),
    );
    let t = tokio::time::Instant::now();
    let canceller = async {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        cancel.cancel();
    };
    let (o, _) = tokio::join!(fut, canceller);
    assert!(t.elapsed() < std::time::Duration::from_secs(5));
    assert!(result_sets(&o).is_empty());
}

#[tokio::test]
async fn declared_variables_feed_exec_output_parameters_and_selects() {
    let w = world("vars");
    let c = w.connect("atl-sql1");
    let o = c
        .ok("DECLARE @id uniqueidentifier, @rc int; EXEC @rc = master.dbo.sp_add_log_shipping_primary_database @database = N'mgc', @backup_directory = N'\\\\atl-fs\\pchat-ls', @backup_share = N'\\\\atl-fs\\pchat-ls', @backup_job_name = N'LSBackup_mgc', @primary_id = @id OUTPUT; SELECT @rc AS rc, @id AS id")
        .await;
    let rs = result_sets(&o).pop().unwrap();
    assert_eq!(rs.rows[0][0], Value::Int(0));
    assert!(matches!(rs.rows[0][1], Value::NVarChar(ref s) if s.len() == 36));
}

#[tokio::test]
async fn if_else_runs_the_branch_sqlite_chooses() {
    let w = world("ifelse");
    let c = w.connect("dal-sql1");
    c.ok("IF DB_ID(N'mgc') IS NULL BEGIN CREATE DATABASE mgc; CREATE DATABASE mgccomp END ELSE SELECT 1")
        .await;
    assert_eq!(
        c.int("SELECT COUNT(*) FROM sys.databases WHERE name LIKE 'mgc%'")
            .await,
        2
    );
    let o = c
        .ok("IF EXISTS (SELECT 1 FROM sys.databases WHERE name = N'mgc') SELECT 'yes' AS a ELSE SELECT 'no' AS a")
        .await;
    assert_eq!(result_sets(&o)[0].rows[0][0], Value::NVarChar("yes".into()));
}

#[tokio::test]
async fn text_comparisons_are_case_insensitive_like_the_default_collation() {
    let w = world("collation");
    let c = w.connect("atl-sql1");
    assert_eq!(
        c.int("SELECT COUNT(*) FROM sys.databases WHERE name = N'MGC'")
            .await,
        1
    );
    assert_eq!(
        c.int(
            "SELECT COUNT(*) FROM sys.databases WHERE name = N'MGC' COLLATE Latin1_General_CS_AS"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn sp_executesql_parameters_bind_into_queries() {
    let w = world("params");
    let c = w.connect("atl-sql1");
    let o = c
        .rpc_sql(
            "SELECT state_desc FROM sys.databases WHERE name = @P1 AND database_id > @P2",
            vec![
                ("@P1", Value::NVarChar("mgc".into())),
                ("@P2", Value::Int(1)),
            ],
        )
        .await;
    assert_eq!(
        result_sets(&o)[0].rows,
        vec![vec![Value::NVarChar("ONLINE".into())]]
    );
    let o = c.rpc_sql("SELECT @P9", vec![]).await;
    assert_eq!(errors(&o), [137]);
}

#[tokio::test]
async fn select_assigning_a_variable_is_refused_not_misread() {
    let w = world("selassign");
    let c = w.connect("atl-sql1");
    assert_eq!(
        c.err("DECLARE @n int; SELECT @n = COUNT(*) FROM sys.databases")
            .await,
        [141]
    );
}

#[tokio::test]
async fn datediff_and_dateadd_are_translated_for_sqlite() {
    let w = world("dates");
    let c = w.connect("atl-sql1");
    assert_eq!(
        c.int("SELECT DATEDIFF(minute, '2026-11-26 12:00:00', '2026-11-26 12:30:00')")
            .await,
        30
    );
    assert_eq!(
        c.int("SELECT DATEDIFF(second, DATEADD(minute, -2, GETUTCDATE()), GETUTCDATE())")
            .await,
        120
    );
}

#[tokio::test]
async fn a_batch_on_a_killed_session_fails_with_error_596_and_does_nothing() {
    let w = world("e596");
    let c = w.connect("atl-sql1");
    // Direct: over TDS the killed session's connection is closed before it can send a batch.
    let victim = w.connect_direct_as("atl-sql1", "atl-pc1", "Persistent Chat", "mgc");
    c.ok(&format!("KILL {}", victim.session.session_id)).await;
    let o = victim
        .exec("INSERT INTO dbo.Messages (MessageId) VALUES (1)")
        .await;
    assert_eq!(errors(&o), [596]);
    assert_eq!(
        w.sim.message_ids("atl-sql1", "mgc").unwrap(),
        Vec::<i64>::new()
    );
}

#[tokio::test]
async fn a_statement_error_ends_the_statement_but_a_compile_error_ends_the_batch() {
    let w = world("continue");
    let c = w.connect("atl-sql1");
    let o = c.exec("KILL 999; SELECT 1 AS after").await;
    assert_eq!(errors(&o), [6106]);
    assert_eq!(result_sets(&o).len(), 1, "the batch went on after 6106");
    let o = c.exec("SELECT * FROM sys.nope; SELECT 1 AS after").await;
    assert_eq!(errors(&o), [208]);
    assert!(result_sets(&o).is_empty(), "208 ends the batch");
}

#[tokio::test]
async fn an_operator_style_observation_batch_runs_in_one_round_trip() {
    let w = world("observe");
    let c = w.connect("atl-sql1");
    c.ok("BACKUP DATABASE mgc TO DISK = N'\\\\atl-fs\\pchat-ls\\o.bak' WITH INIT")
        .await;
    c.ok("BACKUP LOG mgc TO DISK = N'\\\\atl-fs\\pchat-ls\\o.trn' WITH INIT")
        .await;
    let _chat = w.connect_as(
        "atl-sql1",
        "atl-pc1.litwareinc.com",
        "Persistent Chat Server",
        "mgc",
    );
    let o = c
        .ok("SET NOCOUNT ON;
            SELECT d.name, d.state_desc, d.user_access_desc, d.recovery_model_desc,
                   ISNULL(m.mirroring_role_desc, N'NONE') AS role, m.mirroring_state_desc,
                   CONVERT(NUMERIC(25,0), mf.redo_start_lsn) AS redo_start_lsn, rs.fork_point_lsn
            FROM sys.databases AS d
            LEFT JOIN sys.database_mirroring AS m ON m.database_id = d.database_id
            LEFT JOIN sys.master_files AS mf ON mf.database_id = d.database_id AND mf.file_id = 1
            LEFT JOIN sys.database_recovery_status AS rs ON rs.database_id = d.database_id
            WHERE d.name IN (N'mgc', N'mgccomp') ORDER BY d.name;
            SELECT COUNT(*) AS chat_sessions FROM sys.dm_exec_sessions
              WHERE is_user_process = 1 AND database_id = DB_ID(N'mgc') AND program_name LIKE N'%persistent chat%';
            SELECT TOP (1) bs.last_lsn, bmf.physical_device_name
              FROM msdb.dbo.backupset bs JOIN msdb.dbo.backupmediafamily bmf ON bmf.media_set_id = bs.media_set_id
              WHERE bs.database_name = N'mgc' AND bs.type = 'L' ORDER BY bs.backup_finish_date DESC;
            SELECT @@SERVERNAME AS server_name, CAST(SERVERPROPERTY('ProductVersion') AS NVARCHAR(128)) AS version")
        .await;
    let sets = result_sets(&o);
    assert_eq!(sets.len(), 4);
    assert_eq!(sets[0].rows.len(), 2);
    assert_eq!(sets[0].rows[0][4], Value::NVarChar("NONE".into()));
    assert_eq!(
        sets[0].columns[6].ty,
        ColumnType::Numeric {
            precision: 25,
            scale: 0
        }
    );
    assert_eq!(sets[1].rows[0][0], Value::Int(1));
    assert!(matches!(sets[2].rows[0][0], Value::Numeric(_)));
    assert_eq!(
        sets[2].rows[0][1],
        Value::NVarChar("\\\\atl-fs\\pchat-ls\\o.trn".into())
    );
    assert_eq!(sets[3].rows[0][0], Value::NVarChar("atl-sql1".into()));
}

#[tokio::test]
async fn string_concatenation_with_plus_and_object_id_are_translated() {
    let w = world("concat");
    let c = w.connect("atl-sql1");
    assert_eq!(
        c.text("SELECT N'\\\\atl-fs\\pchat-ls\\' + name + N'.bak' FROM sys.databases WHERE name = N'mgc'")
            .await,
        "\\\\atl-fs\\pchat-ls\\mgc.bak"
    );
    assert_eq!(
        c.int("SELECT CASE WHEN OBJECT_ID(N'msdb.dbo.log_shipping_secondary') IS NOT NULL THEN 1 ELSE 0 END")
            .await,
        1
    );
    assert_eq!(
        c.int("SELECT CASE WHEN OBJECT_ID(N'dbo.nothing') IS NULL THEN 1 ELSE 0 END")
            .await,
        1
    );
}

#[tokio::test]
async fn a_client_that_disconnects_leaves_dm_exec_sessions() {
    let w = world("logout");
    let c = w.connect("atl-sql1");
    let chat = w.connect_as("atl-sql1", "bye-host", "Persistent Chat", "mgc");
    let count = "SELECT COUNT(*) FROM sys.dm_exec_sessions WHERE host_name = N'bye-host'";
    assert_eq!(c.int(count).await, 1);
    drop(chat);
    let mut left = false;
    for _ in 0..200 {
        if c.int(count).await == 0 {
            left = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(left, "the session outlived its connection");
}

/// The catalog tables behind queries are reused while their rows are unchanged and refilled
/// when they change: every change shows in the very next query, through the same cached query
/// text, whether rows are added, changed or removed.
#[tokio::test]
async fn a_catalog_view_read_again_after_a_change_shows_the_change() {
    let w = world("catalogreuse");
    let c = w.connect("atl-sql1");
    let count = "SELECT COUNT(*) FROM sys.databases WHERE name LIKE N'scratch%'";
    let state = "SELECT recovery_model_desc FROM sys.databases WHERE name = N'scratch1'";
    assert_eq!(c.int(count).await, 0);
    assert_eq!(c.int(count).await, 0);
    c.ok("CREATE DATABASE scratch1").await;
    assert_eq!(c.int(count).await, 1);
    c.ok("ALTER DATABASE scratch1 SET RECOVERY SIMPLE").await;
    assert_eq!(c.text(state).await, "SIMPLE");
    c.ok("ALTER DATABASE scratch1 SET RECOVERY FULL").await;
    assert_eq!(c.text(state).await, "FULL");
    c.ok("CREATE DATABASE scratch2").await;
    assert_eq!(c.int(count).await, 2);
    c.ok("DROP DATABASE scratch1").await;
    assert_eq!(c.int(count).await, 1);
    // Another session's arrival shows in the sessions view at once.
    let sessions = "SELECT COUNT(*) FROM sys.dm_exec_sessions WHERE is_user_process = 1";
    let before = c.int(sessions).await;
    let other = w.connect("atl-sql1");
    other.ok("SELECT 1").await;
    assert_eq!(c.int(sessions).await, before + 1);
}

// The simulator remembers how it rewrote each query text (sim::server::memo); a remembered
// rewrite must never stand in for what the session, its variables, the clock or the
// instance's state make of the same text now.

#[tokio::test]
async fn the_same_text_with_other_parameter_values_reads_with_the_new_values() {
    let w = world("memo-params");
    let c = w.connect("atl-sql1");
    let sql = "SELECT name FROM sys.databases WHERE name = @P1";
    for name in ["mgc", "msdb", "mgc"] {
        let o = c
            .rpc_sql(sql, vec![("@P1", Value::NVarChar(name.into()))])
            .await;
        assert_eq!(
            result_sets(&o)[0].rows,
            vec![vec![Value::NVarChar(name.into())]]
        );
    }
    // Without the parameter the text is an error again, not the remembered rewrite.
    assert_eq!(errors(&c.rpc_sql(sql, vec![]).await), [137]);
}

#[tokio::test]
async fn the_same_text_in_another_database_or_session_answers_for_that_one() {
    let w = world("memo-session");
    let a = w.connect("atl-sql1");
    assert_eq!(a.text("SELECT DB_NAME()").await, "master");
    a.ok("USE mgc").await;
    assert_eq!(a.text("SELECT DB_NAME()").await, "mgc");
    let b = w.connect("atl-sql1");
    let spid_a = a.int("SELECT @@SPID").await;
    let spid_b = b.int("SELECT @@SPID").await;
    assert_ne!(spid_a, spid_b);
    let other = w.connect("atl-sql2");
    assert_eq!(a.text("SELECT @@SERVERNAME").await, "atl-sql1");
    assert_eq!(other.text("SELECT @@SERVERNAME").await, "atl-sql2");
    let login = "SELECT HOST_NAME() + N'/' + APP_NAME()";
    let chat = w.connect_as("atl-sql1", "chat-1", "PersistentChat", "master");
    let tool = w.connect_as("atl-sql1", "ops-pc", "SSMS", "master");
    assert_eq!(chat.text(login).await, "chat-1/PersistentChat");
    assert_eq!(tool.text(login).await, "ops-pc/SSMS");
}

#[tokio::test]
async fn the_clock_moves_between_runs_of_the_same_text() {
    let w = world("memo-clock");
    let c = w.connect("atl-sql1");
    let sql = "SELECT GETUTCDATE()";
    let at = |v: Value| match v {
        Value::DateTime(d) => d,
        other => panic!("{sql}: expected a datetime, got {other:?}"),
    };
    let first = at(c.scalar(sql).await);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let second = at(c.scalar(sql).await);
    assert!(second > first, "{second} after {first}");
}

#[tokio::test]
async fn a_messages_query_run_again_sees_its_database_go_into_restore() {
    let w = world("memo-state");
    let c = w.connect("atl-sql1");
    let sql = "SELECT COUNT(*) FROM mgc.dbo.Messages";
    assert_eq!(c.int(sql).await, 0);
    c.ok("BACKUP DATABASE mgc TO DISK = N'\\\\atl-fs\\pchat-ls\\mgc.bak' WITH INIT")
        .await;
    c.ok("BACKUP LOG mgc TO DISK = N'\\\\atl-fs\\pchat-ls\\tail.trn' WITH NORECOVERY")
        .await;
    let o = c.exec(sql).await;
    assert_eq!(errors(&o).len(), 1, "{:?}", o.outputs);
    assert!(result_sets(&o).is_empty());
}

#[tokio::test]
async fn a_select_sqlite_rejects_ends_its_batch_and_what_follows_does_not_run() {
    // SQLite finds the unknown column (the rewrite does not know columns): its error must
    // still end the batch where SQL Server's would (207 is a compile error).
    let w = world("select-abort");
    let c = w.connect("atl-sql1");
    let o = c
        .exec("SELECT nope FROM msdb.dbo.backupset; SELECT 1 AS after_the_error")
        .await;
    assert_eq!(errors(&o), [207]);
    assert!(result_sets(&o).is_empty(), "{o:?}");
    // The session is still usable, and the same query text with a real column answers.
    let o = c
        .exec("SELECT database_name FROM msdb.dbo.backupset; SELECT 1 AS after_the_select")
        .await;
    assert!(errors(&o).is_empty(), "{o:?}");
    assert_eq!(result_sets(&o).len(), 2);
}

#[tokio::test]
async fn an_older_version_refuses_the_views_that_came_after_it_with_208() {
    let w = world_with(
        "version",
        r#"
instances:
  - {name: old-sql, site: atlanta, listen: "127.0.0.1:0", logins: [{name: sa, password: Pchat-Sim-1}], version: 12.0.6024.0}
  - {name: new-sql, site: atlanta, listen: "127.0.0.1:0", logins: [{name: sa, password: Pchat-Sim-1}]}
databases:
  - {name: mgc, instance: old-sql}
  - {name: mgc, instance: new-sql}
"#,
    );
    let old = w.connect("old-sql");
    let new = w.connect("new-sql");
    assert_eq!(
        old.text("SELECT CAST(SERVERPROPERTY('ProductVersion') AS nvarchar(128))")
            .await,
        "12.0.6024.0"
    );
    for query in [
        "SELECT log_end_lsn FROM sys.dm_db_log_stats(DB_ID(N'mgc'))",
        "SELECT file_or_directory_name FROM sys.dm_os_enumerate_filesystem(N'D:\\x', N'*')",
    ] {
        assert_eq!(old.err(query).await, [208], "{query}");
        new.ok(query).await;
    }
}

#[tokio::test]
async fn set_read_only_moves_the_end_of_log_and_a_backup_of_the_read_only_copy_does_not() {
    let w = world("readonlylog");
    let c = w.connect("atl-sql1");
    let end = "SELECT log_end_lsn FROM sys.dm_db_log_stats(DB_ID(N'mgc'))";
    let before = c.int(end).await;
    c.ok("ALTER DATABASE mgc SET READ_ONLY WITH ROLLBACK IMMEDIATE")
        .await;
    let fenced = c.int(end).await;
    assert!(fenced > before, "the fence writes its own log record");
    c.ok("BACKUP DATABASE mgc TO DISK = N'\\\\atl-fs\\pchat-ls\\salvage.bak' WITH COPY_ONLY, INIT")
        .await;
    assert_eq!(
        c.int(end).await,
        fenced,
        "nothing to checkpoint in a read-only copy"
    );
    let salvage_last = c
        .int("SELECT TOP 1 last_lsn FROM msdb.dbo.backupset ORDER BY backup_set_id DESC")
        .await;
    assert!(
        salvage_last >= fenced,
        "the salvage covers the fenced copy's log"
    );
    c.ok("ALTER DATABASE mgc SET READ_WRITE").await;
    c.ok("BACKUP DATABASE mgc TO DISK = N'\\\\atl-fs\\pchat-ls\\full.bak' WITH COPY_ONLY, INIT")
        .await;
    assert!(
        c.int(end).await > fenced + 1,
        "a writable copy is checkpointed by a backup"
    );
}
