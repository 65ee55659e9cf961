//! The SQL password in no log line or error of local mode. A binary of its own: the test
//! captures tracing output with a scoped subscriber, and tests running beside it in the same
//! process (with no subscriber) could get the engine's callsites cached as disabled first.

mod support;

use std::sync::{Arc, Mutex};

use pchat_operator::local;
use support::engine::{ModelPort, observed};
use support::local::*;
use tokio_util::sync::CancellationToken;

/// A buffer a tracing subscriber writes into.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn the_password_appears_in_no_log_line_or_error_at_any_level() {
    const PASSWORD: &str = "Zq9-unlikely-Pa55word";
    let dir = temp_dir("secret");
    let pool = write_pool(&dir, "atlanta");
    let creds = dir.join("creds.yaml");
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let mut errors = Vec::new();
    tracing::subscriber::with_default(subscriber, || {
        // Other tests in this binary run on other threads with no subscriber; a callsite they
        // reach first can be cached as uninteresting. Recompute with this subscriber in place.
        tracing::callsite::rebuild_interest_cache();
        std::fs::write(&creds, format!("username: op\npassword: {PASSWORD}\n")).unwrap();
        let c = local::load_credentials(Some(&creds), |_| None).unwrap();
        tracing::debug!(credentials = ?c, "loaded");
        // A broken file whose bad line is the password line.
        std::fs::write(&creds, format!("username: op\npassword: [{PASSWORD}\n")).unwrap();
        errors.push(
            local::load_credentials(Some(&creds), |_| None)
                .unwrap_err()
                .to_string(),
        );
        std::fs::write(&creds, format!("username: op\npasword: {PASSWORD}\n")).unwrap();
        errors.push(
            local::load_credentials(Some(&creds), |_| None)
                .unwrap_err()
                .to_string(),
        );
        let opts = options(&dir, pool.clone(), true);
        let mut port = ModelPort::new(observed("observed-installer.yaml"));
        runtime()
            .block_on(local::run(&opts, &mut port, CancellationToken::new()))
            .unwrap();
    });
    let logs = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("TRACE") || logs.contains("DEBUG"), "{logs}");
    assert!(logs.contains("planned"), "the pass logged nothing: {logs}");
    assert!(!logs.contains(PASSWORD), "{logs}");
    for e in &errors {
        assert!(!e.contains(PASSWORD), "{e}");
    }
    // The command, at the most verbose level, with the password in its environment.
    let out = binary()
        .args(["reconcile", "--once", "--log-format", "json", "-f"])
        .arg(&pool)
        .arg("--ca-file")
        .arg(support::engine::fixture_path("ca.crt"))
        .env("RUST_LOG", "trace")
        .env("PCHAT_SQL_USERNAME", "op")
        .env("PCHAT_SQL_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains(PASSWORD), "{all}");
    std::fs::remove_dir_all(&dir).unwrap();
}
