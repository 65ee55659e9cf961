//! Building and running the foreign test clients under `tests/clients/`: a Go program on
//! Microsoft's go-mssqldb and a Python script on mssql-python (Microsoft's ODBC driver).
//! Each is built or installed under the workspace's `target/` on first use and reused while
//! its sources are unchanged. A client that cannot be built fails the test with what is
//! missing and how to install it; it never skips silently.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace's `target/` directory (where cargo builds this test).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

pub fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// FNV-1a over the files' contents: stable across Rust versions, unlike `DefaultHasher`.
pub fn content_hash(files: &[PathBuf]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for f in files {
        let bytes = std::fs::read(f).unwrap_or_else(|e| panic!("read {}: {e}", f.display()));
        for b in bytes {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

fn require_tool(tool: &str, install: &str) {
    let found = Command::new(tool).arg("--version").output().is_ok()
        || Command::new(tool).arg("version").output().is_ok();
    assert!(
        found,
        "`{tool}` is not on PATH: the foreign-client test needs it. Install it with: {install}"
    );
}

fn run_checked(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The go-mssqldb client's binary, built with its module and build caches under
/// `target/go/` unless a binary of the same sources is already there.
pub fn go_mssqldb_client() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let src = clients_dir().join("go-mssqldb");
            let files = ["go.mod", "go.sum", "main.go"].map(|f| src.join(f));
            let go = target_dir().join("go");
            let bin = go.join(format!("go-mssqldb-client-{}", content_hash(&files)));
            if bin.exists() {
                return bin;
            }
            require_tool(
                "go",
                "the Go toolchain (1.23 or newer) from go.dev, or `apt-get install -y golang-go`",
            );
            run_checked(
                Command::new("go")
                    .args(["build", "-mod=readonly", "-o"])
                    .arg(&bin)
                    .arg(".")
                    .current_dir(&src)
                    .env("GOMODCACHE", go.join("mod"))
                    .env("GOCACHE", go.join("cache"))
                    .env("GOFLAGS", "")
                    .env("GOTOOLCHAIN", "local"),
                "building the go-mssqldb client",
            );
            bin
        })
        .clone()
}

/// The JSON lines a client printed, each parsed; panics with its output when it failed.
pub fn run_client(cmd: &mut Command, what: &str) -> Vec<serde_json::Value> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start {cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{what}: bad line {l}: {e}")))
        .collect()
}

/// The line a client printed for `step`.
pub fn step<'a>(lines: &'a [serde_json::Value], step: &str) -> &'a serde_json::Value {
    lines
        .iter()
        .find(|l| l["step"] == step)
        .unwrap_or_else(|| panic!("no `{step}` line in {lines:?}"))
}

/// The Python of a virtualenv under `target/py-clients` with mssql-python installed from
/// `tests/clients/mssql-python/requirements.txt` (reinstalled when that file changes).
pub fn mssql_python() -> PathBuf {
    static INSTALLED: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let python = INSTALLED
        .get_or_init(|| {
            let requirements = clients_dir().join("mssql-python/requirements.txt");
            let venv = target_dir().join("py-clients");
            let python = venv.join("bin/python");
            let stamp = venv.join(format!(
                "installed-{}",
                content_hash(std::slice::from_ref(&requirements))
            ));
            if stamp.exists() {
                return python;
            }
            require_tool(
                "python3",
                "`apt-get install -y python3 python3-venv` (Python 3.10 or newer)",
            );
            run_checked(
                Command::new("python3").args(["-m", "venv"]).arg(&venv),
                "creating the mssql-python virtualenv (needs `apt-get install -y python3-venv`)",
            );
            run_checked(
                Command::new(&python)
                    .args(["-m", "pip", "install", "--quiet", "-r"])
                    .arg(&requirements),
                "installing mssql-python from PyPI",
            );
            std::fs::write(&stamp, b"").expect("write the install stamp");
            python
        })
        .clone();
    require_odbc_driver_libraries(&venv_of(&python));
    python
}

fn venv_of(python: &Path) -> PathBuf {
    python
        .parent()
        .and_then(Path::parent)
        .expect("venv/bin/python")
        .to_path_buf()
}

/// The Debian packages of the system libraries that the ODBC driver bundled with
/// mssql-python links against but does not ship.
const ODBC_DRIVER_SYSTEM_LIBRARIES: &[(&str, &str)] = &[("libltdl.so.7", "libltdl7")];

/// mssql-python loads its bundled ODBC driver only when the driver's shared libraries all
/// resolve, and otherwise says only "Failed to load the driver": name what is missing.
fn require_odbc_driver_libraries(venv: &Path) {
    let Ok(found) = Command::new("sh")
        .arg("-c")
        .arg("ls \"$0\"/lib/python3*/site-packages/mssql_python_odbc/libs/linux/debian_ubuntu/x86_64/lib/libmsodbcsql-*.so*")
        .arg(venv)
        .output()
    else {
        return;
    };
    let driver = String::from_utf8_lossy(&found.stdout).trim().to_string();
    if driver.is_empty() {
        return;
    }
    let Ok(ldd) = Command::new("ldd").arg(&driver).output() else {
        return;
    };
    let missing: Vec<String> = String::from_utf8_lossy(&ldd.stdout)
        .lines()
        .filter(|l| l.contains("not found"))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    let packages: Vec<&str> = missing
        .iter()
        .map(|lib| {
            ODBC_DRIVER_SYSTEM_LIBRARIES
                .iter()
                .find(|(l, _)| l == lib)
                .map_or(lib.as_str(), |(_, p)| p)
        })
        .collect();
    assert!(
        missing.is_empty(),
        "the ODBC driver bundled with mssql-python ({driver}) needs system libraries that are \
         missing: {missing:?}. Install them with: apt-get install -y {}",
        packages.join(" ")
    );
}
