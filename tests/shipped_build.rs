//! The binary the image ships (`--no-default-features`, as the Dockerfile builds it) links no
//! simulator and no SQLite; the default build, which runs the demo, does. Read from `cargo
//! tree`, so a dependency added anywhere in the graph is caught.

use std::process::Command;

/// The names of the packages in the normal (non-dev) dependency graph of pchat-operator.
fn shipped_packages(features: &[&str]) -> Vec<String> {
    let output = Command::new(env!("CARGO"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["tree", "--locked", "--offline", "-p", "pchat-operator"])
        .args(["-e", "normal,build", "--prefix", "none", "--format", "{p}"])
        .args(features)
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[test]
fn the_image_build_links_no_simulator_and_no_sqlite() {
    let packages = shipped_packages(&["--no-default-features"]);
    assert!(packages.iter().any(|p| p == "pchat-sql"), "{packages:?}");
    for absent in ["pchat-sim", "rusqlite", "libsqlite3-sys"] {
        assert!(
            !packages.iter().any(|p| p == absent),
            "{absent} is in the shipped build"
        );
    }
}

#[test]
fn the_default_build_links_the_simulator_for_the_demo() {
    let packages = shipped_packages(&[]);
    for present in ["pchat-sim", "rusqlite"] {
        assert!(
            packages.iter().any(|p| p == present),
            "{present} is missing from the default build"
        );
    }
}
