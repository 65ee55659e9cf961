//! `pchat-operator crd` prints the committed CRD.

use std::process::Command;

#[test]
fn crd_command_prints_the_committed_crd() {
    let out = Command::new(env!("CARGO_BIN_EXE_pchat-operator"))
        .arg("crd")
        .output()
        .expect("the binary runs");
    assert!(
        out.status.success(),
        "`pchat-operator crd` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).expect("the CRD is UTF-8");
    assert!(
        printed == include_str!("../crds/persistentchatpool.yaml"),
        "`pchat-operator crd` differs from crds/persistentchatpool.yaml; regenerate it with \
         `cargo run -- crd > crds/persistentchatpool.yaml`"
    );
}
