//! `scripts/test-cluster start` when it cannot succeed: it fails within its stated time, names
//! the component and shows the last lines of its log, and leaves no process behind.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/test-cluster")
}

fn state_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pchat-cluster-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `start DIR` with these variables: (succeeded, stderr, how long it took).
fn start(dir: &Path, env: &[(&str, String)]) -> (bool, String, Duration) {
    let started = Instant::now();
    let out = Command::new(script())
        .arg("start")
        .arg(dir)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("the script runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        started.elapsed(),
    )
}

/// No process of the control plane runs from `dir`: each pid file is gone, and no process has
/// `dir` on its command line.
fn nothing_left_running(dir: &Path) {
    for component in ["etcd", "kube-apiserver", "kube-controller-manager"] {
        assert!(
            !dir.join(format!("{component}.pid")).exists(),
            "{component}.pid left in {}",
            dir.display()
        );
    }
    let marker = dir.display().to_string();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        assert!(
            !(cmdline.contains(&marker) && cmdline.contains("--")),
            "still running: {cmdline}"
        );
    }
}

#[test]
fn a_taken_port_fails_the_start_at_once_naming_the_component_and_starts_nothing() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = state_dir("port");
    let (ok, stderr, took) = start(&dir, &[("TEST_CLUSTER_APISERVER_PORT", port.to_string())]);
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains("kube-apiserver") && stderr.contains("already in use"),
        "{stderr}"
    );
    assert!(took < Duration::from_secs(60), "{took:?}");
    nothing_left_running(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_apiserver_that_cannot_start_fails_the_start_with_its_log_and_stops_etcd() {
    let dir = state_dir("apiserver-fails");
    // An authorization mode kube-apiserver does not know: it exits before it is ready.
    let (ok, stderr, took) = start(
        &dir,
        &[
            ("TEST_CLUSTER_READY_TIMEOUT", "60".into()),
            (
                "TEST_CLUSTER_APISERVER_ARGS",
                "--authorization-mode=NoSuchMode".into(),
            ),
        ],
    );
    assert!(!ok, "{stderr}");
    assert!(stderr.contains("ERROR: kube-apiserver: exited"), "{stderr}");
    assert!(
        stderr.contains("last 30 lines of") && stderr.contains("NoSuchMode"),
        "{stderr}"
    );
    assert!(took < Duration::from_secs(60), "{took:?}");
    nothing_left_running(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
}
