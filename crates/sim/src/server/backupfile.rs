//! The on-disk backup media format: a JSON document holding the backup sets of one file (INIT
//! overwrites, NOINIT appends), each with its RESTORE HEADERONLY fields and the rows it carries
//! (for a full backup every row up to its LastLSN; for a log backup the rows whose LSN lies in
//! [FirstLSN, LastLSN)).

use std::path::Path;

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use super::model::Message;

/// Marker that identifies the simulator's media files.
const MAGIC: &str = "pchat-sim-backup/1";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BackupSet {
    pub backup_name: Option<String>,
    /// 1 full database, 2 log, 5 differential (not produced).
    pub backup_type: i32,
    pub database_name: String,
    pub server_name: String,
    pub first_lsn: i128,
    pub last_lsn: i128,
    pub checkpoint_lsn: i128,
    pub database_backup_lsn: i128,
    /// In UTC; RESTORE HEADERONLY shows them in the taking server's local time of the moment
    /// (`utc_offset_minutes`), as SQL Server records them.
    pub backup_start_date: NaiveDateTime,
    pub backup_finish_date: NaiveDateTime,
    #[serde(default)]
    pub utc_offset_minutes: i32,
    pub is_copy_only: bool,
    pub is_force_offline: bool,
    pub has_checksums: bool,
    pub recovery_model: String,
    pub family_guid: String,
    pub backup_set_guid: String,
    pub fork_point_lsn: Option<i128>,
    /// The source database's recovery path when the backup was taken.
    pub lineage: Vec<(String, i128)>,
    /// The source database's files (RESTORE FILELISTONLY); empty in backups written before
    /// files were modelled.
    #[serde(default)]
    pub files: Vec<super::model::DbFile>,
    pub rows: Vec<Message>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Media {
    pub magic: String,
    pub sets: Vec<BackupSet>,
}

impl Media {
    pub fn new() -> Self {
        Media {
            magic: MAGIC.into(),
            sets: Vec::new(),
        }
    }
}

impl Default for Media {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Debug)]
pub enum ReadError {
    Missing,
    Malformed,
}

pub fn read(path: &Path) -> Result<Media, ReadError> {
    let bytes = std::fs::read(path).map_err(|_| ReadError::Missing)?;
    let media: Media = serde_json::from_slice(&bytes).map_err(|_| ReadError::Malformed)?;
    if media.magic != MAGIC {
        return Err(ReadError::Malformed);
    }
    Ok(media)
}

pub fn write(path: &Path, media: &Media) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let bytes = serde_json::to_vec(media).map_err(std::io::Error::other)?;
    // Write then rename so a reader (the copy job) never sees half a file.
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
