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

/// Run `job` on the demo runtime and report it: `print` writes the result and says whether it
/// succeeded; a job that cannot start is said on stderr after `cannot_start`. Exit 1 unless
/// the job ran and succeeded.
fn run_reported<T, E: std::fmt::Display>(
    job: impl std::future::Future<Output = Result<T, E>>,
    cannot_start: &str,
    print: impl FnOnce(&T) -> bool,
) -> ExitCode {
    let Some(runtime) = demo_runtime() else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(job) {
        Ok(result) if print(&result) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {cannot_start}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `pchat-operator bench --runs N`: the demo N times, the spread of its figures on stdout; exit
/// 1 when any run failed as the demo would.
pub(super) fn bench_command(runs: usize, timeline: Option<&Path>) -> ExitCode {
    run_reported(
        crate::demo::bench::run(runs),
        "a demo run could not start",
        |bench| {
            print!("{}", crate::demo::bench::summary(bench));
            let written = write_timeline(
                timeline,
                "pchat-operator bench: the last run",
                &bench.pictures,
            );
            bench.failures.is_empty() && written
        },
    )
}

/// Write `pictures` as an HTML timeline to `path`, when one is given; false (said on stderr)
/// when it cannot be written.
fn write_timeline(
    path: Option<&Path>,
    heading: &str,
    pictures: &[crate::demo::timeline::Picture],
) -> bool {
    let Some(path) = path else {
        return true;
    };
    match crate::demo::timeline::write_html(path, heading, pictures) {
        Ok(()) => {
            eprintln!("timeline written to {}", path.display());
            true
        }
        Err(e) => {
            eprintln!("error: {e}");
            false
        }
    }
}

/// `pchat-operator bench scale`: one key=value line per figure; exit 1 when a pool did not
/// become Ready, did not switch, or the steady state wrote.
pub(super) fn scale_command(opts: crate::demo::scale::ScaleOptions) -> ExitCode {
    run_reported(
        crate::demo::scale::run(opts),
        "bench scale could not run",
        |report| {
            print!("{}", report.text());
            report.failures.is_empty()
        },
    )
}

/// `pchat-operator demo`: the summary on stdout; exit 1 when an act failed, a message was lost
/// that may not be, or a safety rule broke.
pub(super) fn demo_command(timeline: Option<&Path>) -> ExitCode {
    run_reported(crate::demo::run(), "the demo could not start", |run| {
        crate::demo::print_summary(run);
        let written = write_timeline(timeline, "pchat-operator demo", &run.pictures);
        run.failures().is_empty() && written
    })
}

/// Where `drill` reads its pool.
pub(crate) enum DrillSource {
    File(std::path::PathBuf),
    Cluster(String),
}

/// `pchat-operator drill`: the report on stdout; exit 2 when the pool is not valid, 1 when it
/// cannot be read or a scenario would not converge or would lose acknowledged data.
pub(super) fn drill_command(
    source: DrillSource,
    rate_per_server: f64,
    time_scale: Option<u32>,
    timeline: Option<&Path>,
) -> ExitCode {
    use crate::drill::source;
    let Some(runtime) = demo_runtime() else {
        return ExitCode::FAILURE;
    };
    let pool = runtime.block_on(async {
        match &source {
            DrillSource::File(path) => source::from_file(path),
            DrillSource::Cluster(reference) => {
                let (namespace, name) = source::parse_reference(reference)?;
                source::from_cluster(&namespace, &name).await
            }
        }
    });
    let (name, spec) = match pool {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {}", e.message);
            return ExitCode::from(e.exit_code);
        }
    };
    // A time scale the pool's backupInterval cannot take is the user's to fix: refused before
    // anything starts.
    let copy = match crate::drill::copy::compress(&spec, time_scale) {
        Ok(copy) => copy,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(crate::drill::run(&name, &spec, copy, rate_per_server)) {
        Ok(drill) => {
            print!("{}", crate::drill::report::render(&drill));
            let heading = format!("pchat-operator drill of pool {}", drill.pool);
            let written = write_timeline(timeline, &heading, &drill.pictures);
            if drill.passed() && written {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: the drill could not start: {e}");
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
