//! Publishers of the active-server list: a file (local mode, read by chat servers and the
//! simulator's workload) and memory (tests, in-process runs).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;

use super::Publisher;
use crate::Error;
use pchat_core::observe::Published;

/// The published state in a file: YAML, or JSON when the name ends in `.json`, in the format of
/// the workload's `FileSource` (`activeServers`, `poolState`) plus `publishedAt`. Written
/// atomically, so a reader never sees half a list.
#[derive(Debug)]
pub struct FilePublisher {
    pub path: PathBuf,
    /// The text last read and what it parsed to: every pass reads the file, and parsing the
    /// same YAML again cost a tenth of a millisecond of each pass between a switch's steps.
    last: Mutex<Option<(String, Published)>>,
}

impl FilePublisher {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FilePublisher {
            path: path.into(),
            last: Mutex::new(None),
        }
    }

    fn is_json(&self) -> bool {
        self.path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    }

    /// Read the file now; a missing file means nothing was ever published.
    pub fn read(&self) -> Result<Option<Published>, Error> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(Error::Publish(format!(
                    "cannot read the active-servers file {}: {e}",
                    self.path.display()
                )));
            }
        };
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((seen, published)) = last.as_ref()
            && *seen == text
        {
            return Ok(Some(published.clone()));
        }
        let parsed: Published = if self.is_json() {
            serde_json::from_str(&text).map_err(|e| e.to_string())
        } else {
            serde_saphyr::from_str(&text).map_err(|e| e.to_string())
        }
        .map_err(|e| {
            Error::Publish(format!(
                "the active-servers file {} is not a published state (activeServers, poolState, publishedAt): {e}",
                self.path.display()
            ))
        })?;
        *last = Some((text, parsed.clone()));
        Ok(Some(parsed))
    }

    /// Write the file atomically.
    pub fn write(&self, published: &Published) -> Result<(), Error> {
        let text = if self.is_json() {
            serde_json::to_string_pretty(published).map_err(|e| e.to_string())
        } else {
            serde_saphyr::to_string(published).map_err(|e| e.to_string())
        }
        .map_err(|e| Error::Publish(format!("cannot serialize the published state: {e}")))?;
        write_atomic(&self.path, text.as_bytes()).map_err(|e| {
            Error::Publish(format!(
                "cannot write the active-servers file {}: {e}",
                self.path.display()
            ))
        })
    }
}

impl Publisher for FilePublisher {
    fn current(&mut self) -> BoxFuture<'_, Result<Option<Published>, Error>> {
        let r = self.read();
        Box::pin(async move { r })
    }

    fn publish<'a>(&'a mut self, published: &'a Published) -> BoxFuture<'a, Result<(), Error>> {
        let r = self.write(published);
        Box::pin(async move { r })
    }
}

/// The published state in memory, shared with whoever holds a clone (a workload, a test).
#[derive(Clone, Debug, Default)]
pub struct MemoryPublisher {
    state: Arc<Mutex<Option<Published>>>,
}

impl MemoryPublisher {
    pub fn new(initial: Option<Published>) -> Self {
        MemoryPublisher {
            state: Arc::new(Mutex::new(initial)),
        }
    }

    /// What is published now.
    pub fn get(&self) -> Option<Published> {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Publisher for MemoryPublisher {
    fn current(&mut self) -> BoxFuture<'_, Result<Option<Published>, Error>> {
        let p = self.get();
        Box::pin(async move { Ok(p) })
    }

    fn publish<'a>(&'a mut self, published: &'a Published) -> BoxFuture<'a, Result<(), Error>> {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = Some(published.clone());
        Box::pin(async { Ok(()) })
    }
}

/// Write `bytes` to `path` so that readers see the old content or the new, never a mix: write a
/// temporary file in the same directory, flush it to disk, rename it over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".to_string());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use pchat_core::api::PoolState;

    #[test]
    fn file_publisher_round_trips_and_leaves_no_temporary_file() {
        let dir = std::env::temp_dir().join(format!("pchat-publish-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = FilePublisher::new(dir.join("active.yaml"));
        assert_eq!(p.read().unwrap(), None);
        let published = Published {
            active_servers: vec!["atl-pc1.litwareinc.com".into()],
            pool_state: PoolState::FailedOver,
            published_at: "2026-11-26T12:00:00Z".parse().unwrap(),
        };
        p.write(&published).unwrap();
        assert_eq!(p.read().unwrap(), Some(published.clone()));
        // The parsed text is remembered, but a change by anyone is seen on the next read.
        let edited = Published {
            active_servers: Vec::new(),
            pool_state: PoolState::Normal,
            ..published.clone()
        };
        std::fs::write(&p.path, serde_saphyr::to_string(&edited).unwrap()).unwrap();
        assert_eq!(p.read().unwrap(), Some(edited));
        std::fs::write(&p.path, "activeServers: [\n").unwrap();
        let broken = p.read().unwrap_err().to_string();
        assert!(broken.contains("active.yaml"), "{broken}");
        p.write(&published).unwrap();
        assert_eq!(p.read().unwrap(), Some(published.clone()));
        let json = FilePublisher::new(dir.join("active.json"));
        json.write(&published).unwrap();
        assert_eq!(json.read().unwrap(), Some(published));
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.contains(".tmp")), "{names:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
