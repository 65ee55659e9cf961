//! The `plan` command, run as a person would run it.

use std::process::Command;

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn plan(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pchat-operator"))
        .arg("plan")
        .args(args)
        .output()
        .expect("run pchat-operator");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn plan_prints_the_bootstrap_as_a_table_ending_converged() {
    let (code, out, err) = plan(&[
        "-f",
        &fixture("pool.yaml"),
        "--observed",
        &fixture("observed-installer.yaml"),
    ]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("#  STEP"), "{out}");
    assert!(lines[0].contains("T-SQL"));
    assert!(lines[1].starts_with("1  SeedMirror"), "{out}");
    assert!(out.contains("BootstrapSecondary") && out.contains("RESTORE WITH NORECOVERY"));
    assert_eq!(lines.last(), Some(&"end: Converged"));
}

#[test]
fn plan_json_carries_the_same_steps_and_end() {
    let (code, out, err) = plan(&[
        "-f",
        &fixture("pool.yaml"),
        "--observed",
        &fixture("observed-installer.yaml"),
        "-o",
        "json",
        "--now",
        "2026-11-26T12:30:00Z",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let steps = v["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 7);
    assert_eq!(steps[4]["step"], "BootstrapSecondary");
    assert_eq!(
        steps[4]["detail"]["fullBackup"],
        r"\\atl-fs\pchat-ls\mgc_seed_dal-sql1_20261126123000.bak"
    );
    assert_eq!(
        steps[0]["tsqlClass"],
        "BACKUP DATABASE + BACKUP LOG + RESTORE WITH NORECOVERY"
    );
    assert_eq!(v["end"]["kind"], "Converged");
}

#[test]
fn plan_reports_a_blocked_end_with_its_reason() {
    let dallas = std::env::temp_dir().join(format!("pchat-plan-cli-{}.yaml", std::process::id()));
    let text = std::fs::read_to_string(fixture("pool.yaml"))
        .unwrap()
        .replace("primarySite: atlanta", "primarySite: dallas");
    std::fs::write(&dallas, text).unwrap();
    let (code, out, err) = plan(&[
        "-f",
        dallas.to_str().unwrap(),
        "--observed",
        &fixture("observed-atlanta-down.yaml"),
    ]);
    std::fs::remove_file(&dallas).ok();
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("end: Blocked: atlanta is down"), "{out}");
    assert!(out.contains("480s"), "{out}");
}

#[test]
fn plan_names_the_file_it_cannot_parse() {
    let (code, _, err) = plan(&[
        "-f",
        &fixture("pool.yaml"),
        "--observed",
        &fixture("no-such.yaml"),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("no-such.yaml"), "{err}");
}

#[test]
fn plan_refuses_an_invalid_spec_listing_every_violation_and_printing_no_plan() {
    let valid = std::fs::read_to_string(fixture("pool.yaml")).unwrap();
    // Two independent violations: an undefined primary site and a port out of range.
    let invalid = valid
        .replacen("primarySite: atlanta", "primarySite: boston", 1)
        .replacen("port: 1433,", "port: 0,", 1);
    assert_ne!(
        invalid, valid,
        "the fixture changed shape: adjust this test"
    );
    let dir = std::env::temp_dir().join(format!("pchat-plan-invalid-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pool.yaml");
    std::fs::write(&path, invalid).unwrap();
    let (code, out, err) = plan(&[
        "-f",
        path.to_str().unwrap(),
        "--observed",
        &fixture("observed-installer.yaml"),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty(), "no plan may be printed: {out}");
    assert!(err.contains("spec.primarySite"), "{err}");
    assert!(err.contains(".port"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn plan_reads_the_manifest_from_standard_input_when_the_file_is_a_dash() {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_pchat-operator"))
        .args(["plan", "-f", "-", "--observed"])
        .arg(fixture("observed-installer.yaml"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run pchat-operator");
    let manifest = std::fs::read(fixture("pool.yaml")).unwrap();
    child.stdin.take().unwrap().write_all(&manifest).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("1  SeedMirror"), "{stdout}");

    // A manifest of another kind on standard input is refused, naming where it came from.
    let mut child = Command::new(env!("CARGO_BIN_EXE_pchat-operator"))
        .args(["plan", "-f", "-", "--observed"])
        .arg(fixture("observed-installer.yaml"))
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("run pchat-operator");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"apiVersion: v1\nkind: Secret\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("standard input: "), "{stderr}");
}
