//! Windows paths as the instances see them, mapped onto the state directory:
//! `\\host\share\rest` -> `<state>/shares/host/share/rest` (only for declared shares, and only
//! while the share's host is reachable), `D:\x\y` -> `<state>/instances/<instance>/D/x/y`.

use std::path::{Path, PathBuf};

use super::model::State;

/// Why a path cannot be opened, as the OS error SQL Server quotes in 3201.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathError {
    /// 53: the share is not declared, or its host is down or cut off.
    NetworkPath,
    /// 3: not an absolute Windows path.
    BadPath,
}

impl PathError {
    pub fn os_error(&self) -> &'static str {
        match self {
            PathError::NetworkPath => "53(The network path was not found.)",
            PathError::BadPath => "3(The system cannot find the path specified.)",
        }
    }
}

/// A resolved Windows path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub local: PathBuf,
    /// The share host for UNC paths.
    pub share_host: Option<String>,
}

/// Resolve `path` as seen from `instance`.
pub fn resolve(state: &State, instance: &str, path: &str) -> Result<Resolved, PathError> {
    let norm = path.replace('/', "\\");
    if let Some(rest) = norm.strip_prefix("\\\\") {
        let mut parts = rest.split('\\').filter(|p| !p.is_empty());
        let host = parts.next().ok_or(PathError::BadPath)?;
        let share = parts.next().ok_or(PathError::BadPath)?;
        let declared = state
            .shares
            .iter()
            .find(|s| s.host.eq_ignore_ascii_case(host) && s.share.eq_ignore_ascii_case(share))
            .ok_or(PathError::NetworkPath)?;
        if !state.share_reachable(instance, &declared.host) {
            return Err(PathError::NetworkPath);
        }
        let mut local = state
            .state_dir
            .join("shares")
            .join(declared.host.to_ascii_lowercase())
            .join(declared.share.to_ascii_lowercase());
        for p in parts {
            check_component(p)?;
            local.push(p);
        }
        return Ok(Resolved {
            local,
            share_host: Some(declared.host.clone()),
        });
    }
    let bytes = norm.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        let drive = (bytes[0] as char).to_ascii_uppercase().to_string();
        let mut local = state
            .state_dir
            .join("instances")
            .join(instance.to_ascii_lowercase())
            .join(drive);
        for p in norm[2..].split('\\').filter(|p| !p.is_empty()) {
            check_component(p)?;
            local.push(p);
        }
        return Ok(Resolved {
            local,
            share_host: None,
        });
    }
    Err(PathError::BadPath)
}

impl Resolved {
    /// Whether the path is a folder the instance can list. A folder on an instance's own drive
    /// counts as prepared (as the deployment creates the copy folders on every instance) until
    /// something else stands there: the simulator creates local folders when it first writes
    /// into them, and its `sys.dm_os_enumerate_filesystem` lists a missing one as empty, so
    /// `xp_fileexist` must agree with it.
    pub fn is_listable_folder(&self) -> bool {
        if self.share_host.is_some() {
            self.local.is_dir()
        } else {
            !self.local.is_file()
        }
    }
}

/// `..` and `.` would escape the state directory: refuse them.
fn check_component(p: &str) -> Result<(), PathError> {
    if p == ".." || p == "." || p.contains(':') {
        return Err(PathError::BadPath);
    }
    Ok(())
}

/// The file name part of a Windows path.
pub fn file_name(path: &str) -> &str {
    path.rsplit(['\\', '/']).next().unwrap_or(path)
}

/// Join a Windows directory and a file name with one backslash.
pub fn join(dir: &str, file: &str) -> String {
    format!("{}\\{}", dir.trim_end_matches(['\\', '/']), file)
}

/// List the files (not directories) directly in `dir`, sorted by name.
pub fn list_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::topology::Topology;

    fn state(name: &str) -> (std::sync::Arc<crate::server::Simulator>, PathBuf) {
        let dir = std::env::temp_dir().join(format!("simmodel-{name}-{}", std::process::id()));
        let t = Topology::from_yaml(
            "instances:\n  - {name: a, site: s, listen: 'x:1'}\nshares:\n  - {host: fs, share: ls, site: s}\n",
        )
        .unwrap();
        (crate::server::Simulator::new(t, &dir).unwrap(), dir)
    }

    #[test]
    fn unc_and_drive_paths_map_under_the_state_directory() {
        let (sim, dir) = state("paths-map");
        let st = sim.lock();
        let r = resolve(&st, "a", "\\\\FS\\ls\\sub\\f.trn").unwrap();
        assert_eq!(r.local, dir.join("shares/fs/ls/sub/f.trn"));
        assert_eq!(r.share_host.as_deref(), Some("fs"));
        let r = resolve(&st, "a", "d:\\x\\y.bak").unwrap();
        assert_eq!(r.local, dir.join("instances/a/D/x/y.bak"));
        drop(st);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn undeclared_shares_and_escapes_are_refused() {
        let (sim, dir) = state("paths-refuse");
        let st = sim.lock();
        assert_eq!(
            resolve(&st, "a", "\\\\other\\ls\\f").unwrap_err(),
            PathError::NetworkPath
        );
        assert_eq!(
            resolve(&st, "a", "D:\\..\\..\\etc").unwrap_err(),
            PathError::BadPath
        );
        assert_eq!(
            resolve(&st, "a", "relative.bak").unwrap_err(),
            PathError::BadPath
        );
        drop(st);
        let _ = std::fs::remove_dir_all(dir);
    }
}
