//! `pchat-operator run`: the Kubernetes controller until SIGTERM.

use std::process::ExitCode;

/// `pchat-operator run`: exit 0 after a graceful shutdown, 1 when it cannot start.
pub(super) fn run_command(opts: crate::k8s::Options) -> ExitCode {
    let Some(runtime) = super::runtime() else {
        return ExitCode::FAILURE;
    };
    let result = runtime.block_on(crate::k8s::run(opts, crate::k8s::shutdown::signal()));
    // Background tasks (watch connections) must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The host name, the identity of a replica outside a pod.
pub(super) fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| format!("pchat-operator-{}", std::process::id()))
}
