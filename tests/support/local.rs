//! What the local-mode test binaries share: a fresh directory, the example pool in it, the
//! operator binary, local-mode options and a runtime.

use std::path::{Path, PathBuf};
use std::process::Command;

use pchat_operator::local::Options;

use super::engine::read;

/// A fresh directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pchat-local-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn write_pool(dir: &Path, primary: &str) -> PathBuf {
    let text =
        read("pool.yaml").replace("primarySite: atlanta", &format!("primarySite: {primary}"));
    let path = dir.join("pool.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

pub fn binary() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pchat-operator"));
    c.env_remove("PCHAT_SQL_USERNAME")
        .env_remove("PCHAT_SQL_PASSWORD");
    c
}

pub fn options(dir: &Path, pool: PathBuf, once: bool) -> Options {
    Options {
        pool_file: pool,
        once,
        status_file: Some(dir.join("status.yaml")),
        active_servers_file: dir.join("active-servers.yaml"),
    }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}
