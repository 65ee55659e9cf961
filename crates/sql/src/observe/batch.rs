//! The T-SQL of the observation: one batch per instance that returns every result set the
//! model needs, and the RESTORE HEADERONLY batch for backup files not seen before.
//!
//! Every value (database names, folder paths, file paths) is an `sp_executesql` parameter.
//! Each result set's first column has a name of its own ([`Section`]), so the parser finds
//! each one by name: a statement that fails (a share that cannot be listed) leaves its result
//! set out without shifting the others.

/// The result sets of the instance batch, by the name of their first column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    Server,
    Databases,
    LogShippingPrimary,
    LogShippingSecondary,
    LastLogBackup,
    LogShippingJobs,
    Sessions,
    Files,
    Requests,
    CopyFolder,
    Share,
}

impl Section {
    pub const fn key(self) -> &'static str {
        match self {
            Section::Server => "server_name",
            Section::Databases => "database_name",
            Section::LogShippingPrimary => "ls_primary_database",
            Section::LogShippingSecondary => "ls_secondary_database",
            Section::LastLogBackup => "log_backup_database",
            Section::LogShippingJobs => "ls_job_database",
            Section::Sessions => "session_id",
            Section::Files => "file_database",
            Section::Requests => "request_session_id",
            Section::CopyFolder => "copy_folder_file",
            Section::Share => "share_file",
        }
    }
}

/// The catalog part, which never fails on a healthy instance. `@P1`, `@P2`: the pool's
/// databases (the chat database twice when there is no compliance database). The sessions
/// leave out this process's own (same program and workstation name as this one: this
/// connection, and the one BACKUP and RESTORE go on), which are not chat servers.
const CATALOG: &str = "\
SELECT @@SERVERNAME AS server_name, @@SPID AS spid,
       DATEDIFF(minute, GETUTCDATE(), GETDATE()) AS utc_offset_minutes,
       CAST(SERVERPROPERTY('InstanceDefaultDataPath') AS nvarchar(260)) AS default_data_path,
       CAST(SERVERPROPERTY('InstanceDefaultLogPath') AS nvarchar(260)) AS default_log_path,
       CAST(SERVERPROPERTY('ProductVersion') AS nvarchar(128)) AS product_version;
SELECT d.name AS database_name, d.state_desc, d.user_access_desc, d.recovery_model_desc,
       d.is_read_only, d.is_in_standby,
       m.mirroring_role_desc, m.mirroring_state_desc, m.mirroring_safety_level_desc,
       m.mirroring_partner_name, m.mirroring_partner_instance, m.mirroring_witness_name,
       m.mirroring_failover_lsn,
       (SELECT MIN(f.redo_start_lsn) FROM sys.master_files f
         WHERE f.database_id = d.database_id AND f.type = 0) AS redo_start_lsn,
       r.fork_point_lsn,
       CASE WHEN d.state_desc = N'ONLINE'
            THEN (SELECT s.log_end_lsn FROM sys.dm_db_log_stats(d.database_id) s) END AS log_end_lsn
  FROM sys.databases d
  LEFT JOIN sys.database_mirroring m ON m.database_id = d.database_id
  LEFT JOIN sys.database_recovery_status r ON r.database_id = d.database_id
 WHERE d.name IN (@P1, @P2);
SELECT p.primary_database AS ls_primary_database, p.backup_directory, p.backup_share,
       ISNULL(mp.last_backup_file, p.last_backup_file) AS last_backup_file,
       mp.last_backup_date_utc, p.last_backup_date,
       ps.secondary_server, ps.secondary_database
  FROM msdb.dbo.log_shipping_primary_databases p
  LEFT JOIN msdb.dbo.log_shipping_monitor_primary mp ON mp.primary_id = p.primary_id
  LEFT JOIN msdb.dbo.log_shipping_primary_secondaries ps ON ps.primary_id = p.primary_id
 WHERE p.primary_database IN (@P1, @P2);
SELECT sd.secondary_database AS ls_secondary_database, s.primary_server, s.primary_database,
       s.backup_source_directory, s.backup_destination_directory,
       ISNULL(ms.last_copied_file, s.last_copied_file) AS last_copied_file,
       ms.last_copied_date_utc, s.last_copied_date,
       ISNULL(ms.last_restored_file, sd.last_restored_file) AS last_restored_file,
       ms.last_restored_date_utc, sd.last_restored_date, ms.last_restored_latency
  FROM msdb.dbo.log_shipping_secondary_databases sd
  JOIN msdb.dbo.log_shipping_secondary s ON s.secondary_id = sd.secondary_id
  LEFT JOIN msdb.dbo.log_shipping_monitor_secondary ms
    ON ms.secondary_id = sd.secondary_id AND ms.secondary_database = sd.secondary_database
 WHERE sd.secondary_database IN (@P1, @P2);
SELECT b.database_name AS log_backup_database, b.server_name, b.first_lsn, b.last_lsn,
       b.database_backup_lsn, b.backup_finish_date, b.time_zone, b.is_copy_only, b.is_force_offline,
       f.physical_device_name
  FROM msdb.dbo.backupset b
  JOIN msdb.dbo.backupmediafamily f ON f.media_set_id = b.media_set_id AND f.family_sequence_number = 1
 WHERE b.backup_set_id IN (SELECT MAX(x.backup_set_id) FROM msdb.dbo.backupset x
                            WHERE x.type = 'L' AND x.database_name IN (@P1, @P2)
                              AND x.server_name = @@SERVERNAME
                            GROUP BY x.database_name);
SELECT x.database_name AS ls_job_database, x.side, j.name AS job_name, s.schedule_id,
       s.name AS schedule_name, s.enabled, s.freq_type, s.freq_subday_type, s.freq_subday_interval
  FROM (SELECT p.primary_database AS database_name, N'primary' AS side, p.backup_job_id AS job_id
          FROM msdb.dbo.log_shipping_primary_databases p
        UNION ALL
        SELECT sd.secondary_database, N'secondary', s2.copy_job_id
          FROM msdb.dbo.log_shipping_secondary s2
          JOIN msdb.dbo.log_shipping_secondary_databases sd ON sd.secondary_id = s2.secondary_id
        UNION ALL
        SELECT sd.secondary_database, N'secondary', s2.restore_job_id
          FROM msdb.dbo.log_shipping_secondary s2
          JOIN msdb.dbo.log_shipping_secondary_databases sd ON sd.secondary_id = s2.secondary_id) x
  JOIN msdb.dbo.sysjobs j ON j.job_id = x.job_id
  JOIN msdb.dbo.sysjobschedules js ON js.job_id = j.job_id
  JOIN msdb.dbo.sysschedules s ON s.schedule_id = js.schedule_id
 WHERE x.database_name IN (@P1, @P2)
 ORDER BY j.name, s.schedule_id;
SELECT s.session_id, ISNULL(s.host_name, N'') AS host_name,
       ISNULL(s.program_name, N'') AS program_name, DB_NAME(s.database_id) AS database_name
  FROM sys.dm_exec_sessions s
 WHERE s.is_user_process = 1 AND s.session_id <> @@SPID
   AND NOT (ISNULL(s.program_name, N'') = APP_NAME() AND ISNULL(s.host_name, N'') = HOST_NAME());
SELECT d.name AS file_database, f.file_id, f.type AS file_type, f.name AS logical_name,
       f.physical_name
  FROM sys.master_files f
  JOIN sys.databases d ON d.database_id = f.database_id
 WHERE d.name IN (@P1, @P2)
 ORDER BY d.name, f.file_id;
SELECT r.session_id AS request_session_id, r.command,
       CAST(r.percent_complete AS int) AS percent_complete,
       ISNULL(s.program_name, N'') AS program_name
  FROM sys.dm_exec_requests r
  LEFT JOIN sys.dm_exec_sessions s ON s.session_id = r.session_id
 WHERE (r.command LIKE N'BACKUP%' OR r.command LIKE N'RESTORE%')
   AND r.session_id <> @@SPID
 ORDER BY r.session_id;
";

/// How an instance lists a folder, by its version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FolderLister {
    /// `sys.dm_os_enumerate_filesystem` (SQL Server 2017 and later): each file's write time
    /// and size, and an error for a folder the instance cannot read.
    EnumerateFilesystem,
    /// SQL Server 2016, which lacks that function: `xp_fileexist` says whether the folder is
    /// one the instance can see, then `xp_dirtree` names its files (no write time, no size).
    Xp,
}

impl FolderLister {
    /// The lister for a `SERVERPROPERTY('ProductVersion')` major version.
    pub fn for_major_version(major: u32) -> Self {
        if major >= 14 {
            FolderLister::EnumerateFilesystem
        } else {
            FolderLister::Xp
        }
    }
}

/// The first column of the one-row result set that precedes an `Xp` listing of `section`:
/// xp_fileexist and xp_dirtree name their columns themselves, so the marker says which folder
/// the two result sets after it describe.
pub fn xp_marker(section: Section) -> String {
    format!("{}_folder", section.key())
}

/// A folder listing: files only, with what tells a rewritten file from the one seen before.
fn listing(section: Section, param: &str, lister: FolderLister) -> String {
    match lister {
        FolderLister::EnumerateFilesystem => format!(
            "SELECT file_or_directory_name AS {}, last_write_time, size_in_bytes \
             FROM sys.dm_os_enumerate_filesystem({param}, N'*') WHERE is_directory = 0;\n",
            section.key()
        ),
        // xp_dirtree answers an empty set for a folder it cannot read; xp_fileexist, run
        // first, tells that apart from an empty folder ("File is a Directory" is 0).
        FolderLister::Xp => format!(
            "SELECT {param} AS {}; EXEC xp_fileexist {param}; EXEC xp_dirtree {param}, 1, 1;\n",
            xp_marker(section)
        ),
    }
}

/// The instance batch and its parameters: the pool's databases, this instance's copy folder
/// and, when this instance lists its site's share, the share.
///
/// The folders are listed with `sys.dm_os_enumerate_filesystem` where the version has it, not
/// `xp_dirtree`: xp_dirtree answers an empty set for a folder it cannot read, so an unreachable
/// share would look empty; the function raises an error instead, and gives each file's write
/// time and size.
pub fn instance_batch(
    chat: &str,
    compliance: Option<&str>,
    copy_folder: &str,
    share: Option<&str>,
    lister: FolderLister,
) -> (String, Vec<String>) {
    let mut sql = CATALOG.to_string();
    let mut params = vec![
        chat.to_string(),
        compliance.unwrap_or(chat).to_string(),
        copy_folder.to_string(),
    ];
    sql.push_str(&listing(Section::CopyFolder, "@P3", lister));
    if let Some(share) = share {
        sql.push_str(&listing(Section::Share, "@P4", lister));
        params.push(share.to_string());
    }
    (sql, params)
}

/// A batch listing one folder only (a share whose usual lister did not answer).
pub fn share_batch(share: &str, lister: FolderLister) -> (String, Vec<String>) {
    (
        listing(Section::Share, "@P1", lister),
        vec![share.to_string()],
    )
}

/// The column naming which file the next RESTORE HEADERONLY result set describes.
pub const HEADER_FOR: &str = "header_for";

/// RESTORE HEADERONLY of each file, each preceded by a one-row set naming the file, so a file
/// that cannot be read (3201, 3241) leaves out its own header only.
pub fn headers_batch(paths: &[String]) -> (String, Vec<String>) {
    let mut sql = String::new();
    for i in 1..=paths.len() {
        sql.push_str(&format!(
            "SELECT @P{i} AS {HEADER_FOR}; RESTORE HEADERONLY FROM DISK = @P{i};\n"
        ));
    }
    (sql, paths.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_reach_the_batch_only_as_parameters() {
        let (sql, params) = instance_batch(
            "mgc'; DROP DATABASE x; --",
            None,
            r"D:\copy'",
            Some(r"\\fs\share"),
            FolderLister::EnumerateFilesystem,
        );
        assert!(!sql.contains("DROP DATABASE"));
        assert!(!sql.contains(r"D:\copy"));
        assert_eq!(params.len(), 4);
        assert_eq!(params[1], params[0], "no compliance db: the chat db twice");
    }

    #[test]
    fn the_share_is_listed_only_when_asked() {
        let (sql, params) = instance_batch(
            "mgc",
            Some("mgccomp"),
            r"D:\c",
            None,
            FolderLister::EnumerateFilesystem,
        );
        assert!(!sql.contains(Section::Share.key()));
        assert!(sql.contains(Section::CopyFolder.key()));
        assert_eq!(params.len(), 3);
    }

    #[test]
    fn each_header_is_preceded_by_the_name_of_its_file() {
        let (sql, params) = headers_batch(&["a.trn".into(), "b.trn".into()]);
        assert_eq!(sql.matches(HEADER_FOR).count(), 2);
        assert!(sql.contains("FROM DISK = @P2"));
        assert_eq!(params, vec!["a.trn".to_string(), "b.trn".to_string()]);
    }
}
