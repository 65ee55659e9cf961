//! Helpers shared by this crate's integration tests.

use pchat_sim::cluster::{RunningSim, with_free_ports};
use pchat_sim::server::Topology;
use pchat_sql::connect::Target;

/// A simulator of `topology` (listening on free loopback ports) under a state folder named
/// after `test`, and the connection target of its instance `instance`.
pub async fn single_instance(test: &str, topology: &str, instance: &str) -> (RunningSim, Target) {
    let dir = state_dir(test);
    let topology = with_free_ports(Topology::from_yaml(topology).unwrap());
    let running = RunningSim::start(topology, &dir, None).await.unwrap();
    let addr = running.addr(instance).unwrap();
    let target = Target {
        instance: instance.into(),
        host: addr.ip().to_string(),
        port: addr.port(),
    };
    (running, target)
}

/// Where `single_instance` keeps the simulator's files for `test`.
fn state_dir(test: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("pchat-sql-{test}-{}", std::process::id()))
}

/// Stop the simulator started for `test` and remove its files.
pub async fn stop(running: RunningSim, test: &str) {
    running.stop().await;
    let _ = std::fs::remove_dir_all(state_dir(test));
}
