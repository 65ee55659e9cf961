//! Local mode: the `reconcile` command's refusals, and `local::run` over the model-executor
//! double writing the status and active-servers files.

mod support;

use std::path::Path;
use std::time::Duration;

use pchat_core::api::{PersistentChatPoolStatus, Phase, PoolState};
use pchat_operator::Error;
use pchat_operator::local::{self, SpecFile};
use pchat_sim::workload::{FileSource, PublishedSource};
use support::engine::{ModelPort, observed, read};
use support::local::*;
use tokio_util::sync::CancellationToken;

/// `reconcile --once` (status in `dir`) or `plan` on `pool`, with credentials in the
/// environment.
fn one_pass(command: &str, dir: &Path, pool: &Path) -> std::process::Command {
    let mut cmd = binary();
    cmd.arg(command);
    if command == "reconcile" {
        cmd.arg("--once")
            .arg("--status-file")
            .arg(dir.join("status.yaml"));
    }
    cmd.arg("-f")
        .arg(pool)
        .env("PCHAT_SQL_USERNAME", "op")
        .env("PCHAT_SQL_PASSWORD", "pw");
    cmd
}

#[test]
fn reconcile_once_on_a_bad_spec_exits_2_naming_the_field_and_writes_nothing() {
    let dir = temp_dir("badspec");
    let pool = write_pool(&dir, "houston");
    let out = binary()
        .args(["reconcile", "--once", "-f"])
        .arg(&pool)
        .arg("--status-file")
        .arg(dir.join("status.yaml"))
        .env("PCHAT_SQL_USERNAME", "op")
        .env("PCHAT_SQL_PASSWORD", "pw")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("spec.primarySite"), "{stderr}");
    assert!(!dir.join("status.yaml").exists());
    assert!(!dir.join("active-servers.yaml").exists());
    // A misspelt field is refused the same way, naming it.
    let text = read("pool.yaml").replace("suspend: false", "suspnd: false");
    std::fs::write(&pool, text).unwrap();
    let out = binary()
        .args(["reconcile", "--once", "-f"])
        .arg(&pool)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("spec.suspnd"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_ca_file_that_is_missing_or_not_pem_exits_2_naming_the_flag_and_writes_nothing() {
    let dir = temp_dir("cafile");
    let pool = write_pool(&dir, "atlanta");
    let not_pem = dir.join("ca.txt");
    std::fs::write(&not_pem, "not a certificate").unwrap();
    for (command, ca, why) in [
        ("reconcile", dir.join("no-such-ca.pem"), "No such file"),
        ("reconcile", not_pem.clone(), "holds no PEM certificate"),
        ("plan", dir.join("no-such-ca.pem"), "No such file"),
    ] {
        let out = one_pass(command, &dir, &pool)
            .arg("--ca-file")
            .arg(&ca)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
        assert!(stderr.contains("--ca-file"), "{command}: {stderr}");
        assert!(stderr.contains(&ca.display().to_string()), "{stderr}");
        assert!(stderr.contains(why), "{command}: {stderr}");
        assert!(!dir.join("status.yaml").exists());
        assert!(!dir.join("active-servers.yaml").exists());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_spec_naming_a_ca_secret_without_a_ca_file_exits_2_naming_the_secret_and_the_flag() {
    let dir = temp_dir("casecret");
    let pool = write_pool(&dir, "atlanta");
    for command in ["reconcile", "plan"] {
        let out = one_pass(command, &dir, &pool).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
        assert!(
            stderr.contains("spec.tls.caSecret names the Secret `pchat-sql-ca`")
                && stderr.contains("--ca-file"),
            "{command}: {stderr}"
        );
        assert!(!dir.join("status.yaml").exists());
        assert!(!dir.join("active-servers.yaml").exists());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn missing_credentials_exit_2_naming_both_variables() {
    let dir = temp_dir("nocreds");
    let pool = write_pool(&dir, "atlanta");
    let out = binary()
        .args(["reconcile", "--once", "-f"])
        .arg(&pool)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("PCHAT_SQL_USERNAME") && stderr.contains("PCHAT_SQL_PASSWORD"),
        "{stderr}"
    );
    assert!(!dir.join("active-servers.yaml").exists());
    // Only one of the two is no better.
    let out = binary()
        .args(["reconcile", "--once", "-f"])
        .arg(&pool)
        .env("PCHAT_SQL_USERNAME", "op")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn credentials_come_from_the_file_first_then_the_environment() {
    let dir = temp_dir("creds");
    let file = dir.join("creds.yaml");
    std::fs::write(&file, "username: op\npassword: 'p@ss: word'\n").unwrap();
    let env = |n: &str| match n {
        "PCHAT_SQL_USERNAME" => Some("envuser".to_string()),
        "PCHAT_SQL_PASSWORD" => Some("envpw".to_string()),
        _ => None,
    };
    let c = local::load_credentials(Some(&file), env).unwrap();
    assert_eq!((c.username.as_str(), c.password()), ("op", "p@ss: word"));
    let c = local::load_credentials(None, env).unwrap();
    assert_eq!((c.username.as_str(), c.password()), ("envuser", "envpw"));
    assert!(matches!(
        local::load_credentials(None, |_| None),
        Err(Error::NoCredentials)
    ));
    std::fs::write(&file, "username: op\n").unwrap();
    let e = local::load_credentials(Some(&file), env).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("creds.yaml"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn passes_write_status_and_active_servers_files_the_workload_reads_and_resume_from_status() {
    let dir = temp_dir("files");
    let pool = write_pool(&dir, "atlanta");
    let opts = options(&dir, pool, true);
    let mut port = ModelPort::new(observed("observed-installer.yaml"));
    let rt = runtime();
    let mut converged = false;
    let mut last_step = None;
    // Each `--once` pass is a fresh start: only the files carry anything over.
    for _ in 0..40 {
        let report = rt
            .block_on(local::run(&opts, &mut port, CancellationToken::new()))
            .unwrap()
            .expect("one pass");
        let status: PersistentChatPoolStatus =
            serde_saphyr::from_str(&std::fs::read_to_string(dir.join("status.yaml")).unwrap())
                .unwrap();
        assert_eq!(status, report.status);
        if report.step_ran.is_none() {
            converged = true;
            break;
        }
        last_step = report.status.step.clone();
    }
    assert!(converged, "no convergence in 40 passes");
    assert!(port.violations.is_empty(), "{:?}", port.violations);
    let status: PersistentChatPoolStatus =
        serde_saphyr::from_str(&std::fs::read_to_string(dir.join("status.yaml")).unwrap()).unwrap();
    assert_eq!(status.phase, Some(Phase::Protected));
    // The step numbering went on across restarts: the last step was numbered as the last.
    let last_step = last_step.expect("steps ran");
    assert!(
        last_step.index > 1 && last_step.index == last_step.total,
        "{last_step:?}"
    );
    let published = FileSource::new(dir.join("active-servers.yaml"))
        .current()
        .expect("the workload reads the active-servers file");
    assert_eq!(
        published.active_servers,
        ["atl-pc1.litwareinc.com", "atl-pc2.litwareinc.com"]
    );
    assert_eq!(published.pool_state, pchat_sim::workload::PoolState::Normal);
    let raw = std::fs::read_to_string(dir.join("active-servers.yaml")).unwrap();
    assert!(raw.contains("publishedAt"), "{raw}");
    assert_eq!(status.pool_state, Some(PoolState::Normal));
    let leftovers: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_spec_file_is_parsed_again_only_when_its_content_changes() {
    let dir = temp_dir("specfile");
    let pool = write_pool(&dir, "atlanta");
    let mut f = SpecFile::new(&pool);
    let (spec, g1) = f.load();
    assert_eq!(spec.unwrap().primary_site, "atlanta");
    assert!(!f.changed());
    let (_, g2) = f.load();
    assert_eq!(g1, g2);
    write_pool(&dir, "dallas");
    assert!(f.changed());
    let (spec, g3) = f.load();
    assert_eq!(spec.unwrap().primary_site, "dallas");
    assert_eq!(g3, g1 + 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn editing_primary_site_wakes_the_loop_at_once_and_moves_the_pool() {
    let dir = temp_dir("edit");
    let pool = write_pool(&dir, "atlanta");
    let opts = options(&dir, pool.clone(), false);
    // Start converged on atlanta: the loop then sleeps REQUEUE_IDLE (30 s).
    let mut world = observed("observed-steady-atlanta.yaml");
    world.instances.iter_mut().for_each(|i| i.sessions.clear());
    let published = world.published.clone().unwrap();
    pchat_operator::engine::FilePublisher::new(&opts.active_servers_file)
        .write(&published)
        .unwrap();
    let mut port = ModelPort::new(world);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let cancel = CancellationToken::new();
    let status_path = dir.join("status.yaml");
    let read_status = || -> Option<PersistentChatPoolStatus> {
        serde_saphyr::from_str(&std::fs::read_to_string(&status_path).ok()?).ok()
    };
    rt.block_on(async {
        let task = {
            let cancel = cancel.clone();
            let opts = opts.clone();
            tokio::spawn(async move {
                let r = local::run(&opts, &mut port, cancel).await;
                (r, port)
            })
        };
        assert!(
            wait_for(
                &status_path,
                |s: &PersistentChatPoolStatus| s.phase == Some(Phase::Protected),
                10
            )
            .await,
            "{:?}",
            read_status()
        );
        let edited = std::time::Instant::now();
        write_pool(&dir, "dallas");
        // Woken by the change, not by the 30 s requeue.
        assert!(
            wait_for(
                &status_path,
                |s: &PersistentChatPoolStatus| s.observed_generation == Some(2),
                3
            )
            .await,
            "{:?}",
            read_status()
        );
        assert!(edited.elapsed() < Duration::from_secs(3));
        // One step a second: the switch converges on dallas.
        assert!(
            wait_for(
                &status_path,
                |s: &PersistentChatPoolStatus| s.phase == Some(Phase::Protected)
                    && s.serving_site.as_deref() == Some("dallas"),
                40
            )
            .await,
            "{:?}",
            read_status()
        );
        cancel.cancel();
        let (result, port) = task.await.unwrap();
        result.unwrap();
        assert!(port.violations.is_empty(), "{:?}", port.violations);
    });
    let published = FileSource::new(opts.active_servers_file.clone())
        .current()
        .unwrap();
    assert_eq!(
        published.active_servers,
        ["dal-pc1.litwareinc.com", "dal-pc2.litwareinc.com"]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Poll the status file until `pred` holds, for at most `secs` seconds.
async fn wait_for(
    path: &Path,
    pred: impl Fn(&PersistentChatPoolStatus) -> bool,
    secs: u64,
) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let status: Option<PersistentChatPoolStatus> = std::fs::read_to_string(path)
            .ok()
            .and_then(|t| serde_saphyr::from_str(&t).ok());
        if status.is_some_and(|s| pred(&s)) {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
