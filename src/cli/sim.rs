//! The commands that run the simulator: `demo`, `bench` and `sim` (the `sim` feature).

use std::path::Path;
use std::process::ExitCode;

/// The runtime of `demo` and `bench`, which log only when `RUST_LOG` asks for it, so that the
/// summary stays readable.
fn demo_runtime() -> Option<tokio::runtime::Runtime> {
    if std::env::var_os("RUST_LOG").is_some() {
        crate::telemetry::init_logging(crate::telemetry::LogFormat::Plain);
    }
    super::runtime()
}

/// `pchat-operator bench --runs N`: the demo N times, the spread of its figures on stdout; exit
/// 1 when any run failed as the demo would.
pub(super) fn bench_command(runs: usize) -> ExitCode {
    let Some(runtime) = demo_runtime() else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(crate::demo::bench::run(runs)) {
        Ok(bench) => {
            print!("{}", crate::demo::bench::summary(&bench));
            if bench.failures.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: a demo run could not start: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `pchat-operator bench scale`: one key=value line per figure; exit 1 when a pool did not
/// become Ready, did not switch, or the steady state wrote.
pub(super) fn scale_command(opts: crate::demo::scale::ScaleOptions) -> ExitCode {
    let Some(runtime) = demo_runtime() else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(crate::demo::scale::run(opts)) {
        Ok(report) => {
            print!("{}", report.text());
            if report.failures.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: bench scale could not run: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `pchat-operator demo`: the summary on stdout; exit 1 when an act failed, a message was lost
/// that may not be, or a safety rule broke.
pub(super) fn demo_command() -> ExitCode {
    let Some(runtime) = demo_runtime() else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(crate::demo::run()) {
        Ok(run) => {
            crate::demo::print_summary(&run);
            if run.failures().is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: the demo could not start: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `pchat-operator sim`: one line per instance with its address, then serve until interrupted.
pub(super) fn sim_command(
    topology: &Path,
    state_dir: &Path,
    control: Option<std::net::SocketAddr>,
) -> ExitCode {
    use pchat_sim::{cluster::RunningSim, server::Topology};
    crate::telemetry::init_logging(crate::telemetry::LogFormat::Plain);
    let text = match std::fs::read_to_string(topology) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", topology.display());
            return ExitCode::FAILURE;
        }
    };
    let topo = match Topology::from_yaml(&text) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {}: {e}", topology.display());
            return ExitCode::FAILURE;
        }
    };
    let Some(runtime) = super::runtime() else {
        return ExitCode::FAILURE;
    };
    runtime.block_on(async {
        let running = match RunningSim::start(topo, state_dir, control).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        for i in &running.instances {
            println!("{} {} {}", i.name, i.site, i.addr);
        }
        if let Some(addr) = running.control {
            println!("control http://{addr}");
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
        super::wait_for_shutdown_signal().await;
        running.stop().await;
        ExitCode::SUCCESS
    })
}
