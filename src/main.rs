//! The `pchat-operator` command: a thin shell over the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use pchat_operator::api::PersistentChatPoolSpec;
use pchat_operator::observe::Observation;

/// mimalloc rather than the system allocator: the operator (and the in-process simulator of
/// the demo) makes many small, short-lived allocations per pass, and glibc's malloc spent a
/// third of an observation pass consolidating and unlinking free chunks (`perf`, this repo's
/// `sim_figures` bench: one observation of four instances 2.9 ms -> 2.0 ms).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "pchat-operator",
    version,
    about = "Declarative SQL Server disaster recovery for a Persistent Chat pool"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the PersistentChatPool CustomResourceDefinition as YAML.
    Crd,
    /// Print the remaining plan for a pool spec and an observation, without sending anything.
    Plan {
        /// The PersistentChatPool manifest as YAML.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// An observation of the pool as YAML (see examples/observed-installer.yaml). Without
        /// it the live instances are observed (read-only: nothing that changes anything is
        /// sent), with credentials as for `reconcile`.
        #[arg(long)]
        observed: Option<PathBuf>,
        /// YAML file with `username` and `password` keys, for observing live instances
        /// (default: PCHAT_SQL_USERNAME and PCHAT_SQL_PASSWORD).
        #[arg(long)]
        credentials_file: Option<PathBuf>,
        /// Where the active-server list is published, for observing live instances (default:
        /// active-servers.yaml beside the manifest).
        #[arg(long)]
        active_servers_file: Option<PathBuf>,
        /// PEM file of the CA that signed the instances' certificates (what
        /// `spec.tls.caSecret` provides in Kubernetes); default: the system's roots.
        #[arg(long)]
        ca_file: Option<PathBuf>,
        /// Output format.
        #[arg(short = 'o', long = "output", value_enum, default_value_t = PlanOutput::Table)]
        output: PlanOutput,
        /// The planner's "now" (RFC 3339); defaults to the observation's takenAt.
        #[arg(long)]
        now: Option<String>,
    },

    /// Keep a pool converged without Kubernetes: the spec is a file, re-read when it changes;
    /// status and the active-server list are files.
    Reconcile {
        /// The PersistentChatPool manifest as YAML.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Run one pass and exit.
        #[arg(long)]
        once: bool,
        /// Where to write status (YAML).
        #[arg(long)]
        status_file: Option<PathBuf>,
        /// Where to publish the active-server list (default: active-servers.yaml beside the
        /// manifest).
        #[arg(long)]
        active_servers_file: Option<PathBuf>,
        /// YAML file with `username` and `password` keys (default: the PCHAT_SQL_USERNAME and
        /// PCHAT_SQL_PASSWORD environment variables).
        #[arg(long)]
        credentials_file: Option<PathBuf>,
        /// PEM file of the CA that signed the instances' certificates (what
        /// `spec.tls.caSecret` provides in Kubernetes); default: the system's roots.
        #[arg(long)]
        ca_file: Option<PathBuf>,
        /// Log line format.
        #[arg(long, value_enum, default_value_t = pchat_operator::telemetry::LogFormat::Plain)]
        log_format: pchat_operator::telemetry::LogFormat,
    },

    /// Run the operator in Kubernetes: reconcile every PersistentChatPool (or those of one
    /// namespace), with leader election, until SIGTERM or Ctrl-C.
    Run {
        /// Watch only this namespace (default: all namespaces).
        #[arg(long)]
        namespace: Option<String>,
        /// Address of the HTTP endpoint serving /healthz, /readyz and /metrics.
        #[arg(long, default_value = "0.0.0.0:8080")]
        http_addr: std::net::SocketAddr,
        /// Name of the Lease used for leader election.
        #[arg(long, default_value = "pchat-operator")]
        lease_name: String,
        /// Namespace of the Lease.
        #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
        lease_namespace: String,
        /// This replica's identity in the Lease (default: POD_NAME, else the host name).
        #[arg(long, env = "POD_NAME")]
        identity: Option<String>,
        /// Seconds a leader's claim lasts after its last renewal (at least 2).
        #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(2..=3600))]
        lease_duration: u64,
        /// Seconds between passes of a pool stalled on a missing Secret or key.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
        stalled_retry: u64,
        /// Seconds between checks of a replica that does not hold the Lease.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
        not_leader_retry: u64,
        /// Log line format.
        #[arg(long, value_enum, default_value_t = pchat_operator::telemetry::LogFormat::Plain)]
        log_format: pchat_operator::telemetry::LogFormat,
    },

    /// Run the demo: a simulated two-site pool under a chat workload, bootstrapped, switched,
    /// failed back, failed over when a site goes down, and protected again when it returns.
    Demo,

    /// Run the demo several times, one after the other, and print each figure's fewest,
    /// median and most over the runs (one run's timings move with the host's load).
    Bench {
        /// How many demo runs.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
        runs: u32,
    },

    /// Run the SQL Server simulator on a topology until interrupted (Ctrl-C or SIGTERM).
    Sim {
        /// The topology YAML (see examples/sim/two-sites.yaml).
        #[arg(long)]
        topology: PathBuf,
        /// Where backup files, shares and copy folders live.
        #[arg(long)]
        state_dir: PathBuf,
        /// Address of the HTTP fault-injection endpoint (POST /faults, GET /state).
        #[arg(long)]
        control: Option<std::net::SocketAddr>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum PlanOutput {
    Table,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd => match pchat_operator::api::crd_yaml() {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Plan {
            file,
            observed,
            credentials_file,
            active_servers_file,
            ca_file,
            output,
            now,
        } => {
            let source = match observed {
                Some(path) => ObservationSource::File(path),
                None => ObservationSource::Live {
                    active_servers_file: active_servers_file.unwrap_or_else(|| {
                        pchat_operator::local::Options::default_active_servers_file(&file)
                    }),
                    credentials_file,
                    ca_file,
                },
            };
            plan_command(&file, source, output, now.as_deref())
        }
        Command::Reconcile {
            file,
            once,
            status_file,
            active_servers_file,
            credentials_file,
            ca_file,
            log_format,
        } => {
            pchat_operator::telemetry::init_logging(log_format);
            let opts = pchat_operator::local::Options {
                active_servers_file: active_servers_file.unwrap_or_else(|| {
                    pchat_operator::local::Options::default_active_servers_file(&file)
                }),
                pool_file: file,
                once,
                status_file,
            };
            reconcile_command(&opts, credentials_file.as_deref(), ca_file.as_deref())
        }
        Command::Sim {
            topology,
            state_dir,
            control,
        } => sim_command(&topology, &state_dir, control),
        Command::Demo => demo_command(),
        Command::Bench { runs } => bench_command(runs as usize),
        Command::Run {
            namespace,
            http_addr,
            lease_name,
            lease_namespace,
            identity,
            lease_duration,
            stalled_retry,
            not_leader_retry,
            log_format,
        } => {
            pchat_operator::telemetry::init_logging(log_format);
            let timing = pchat_operator::k8s::context::Timing {
                stalled_retry: std::time::Duration::from_secs(stalled_retry),
                not_leader_retry: std::time::Duration::from_secs(not_leader_retry),
                ..Default::default()
            };
            let opts = pchat_operator::k8s::Options {
                namespace,
                http_addr,
                lease: pchat_operator::k8s::leader::LeaseConfig {
                    name: lease_name,
                    namespace: lease_namespace,
                    identity: identity.unwrap_or_else(host_name),
                    duration_seconds: lease_duration,
                },
                ca_dir: std::env::temp_dir().join("pchat-operator"),
                timing,
            };
            run_command(opts)
        }
    }
}

/// `pchat-operator run`: exit 0 after a graceful shutdown, 1 when it cannot start.
fn run_command(opts: pchat_operator::k8s::Options) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(pchat_operator::k8s::run(
        opts,
        pchat_operator::k8s::shutdown::signal(),
    ));
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
fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| format!("pchat-operator-{}", std::process::id()))
}

/// `pchat-operator reconcile`: exit 2 for a spec or credentials the user must fix (nothing is
/// sent), 1 for other failures.
fn reconcile_command(
    opts: &pchat_operator::local::Options,
    credentials_file: Option<&Path>,
    ca_file: Option<&Path>,
) -> ExitCode {
    use pchat_operator::local;
    if opts.once
        && let Err(e) = local::check_spec(&opts.pool_file)
    {
        eprintln!("error: {e}");
        return ExitCode::from(e.exit_code());
    }
    let credentials =
        match local::load_credentials(credentials_file, |name| std::env::var(name).ok()) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(e.exit_code());
            }
        };
    let ca = match ca_file.map(local::check_ca_file).transpose() {
        Ok(ca) => ca,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    let mut port = sql_port(credentials, ca);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let cancel = tokio_util::sync::CancellationToken::new();
        let on_signal = cancel.clone();
        tokio::spawn(async move {
            wait_for_shutdown_signal().await;
            on_signal.cancel();
        });
        match local::run(opts, &mut port, cancel).await {
            Ok(Some(report)) => {
                if opts.once {
                    print_pass(&report);
                }
                match &report.step_ran {
                    Some((step, Err(e))) if !e.retryable => {
                        eprintln!("error: {} failed: {e}", step.name());
                        ExitCode::FAILURE
                    }
                    _ => ExitCode::SUCCESS,
                }
            }
            Ok(None) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(e.exit_code())
            }
        }
    })
}

/// `--once`: what the pass decided and did, on stdout.
fn print_pass(report: &pchat_operator::engine::PassReport) {
    if let Some(phase) = report.status.phase {
        println!("phase: {phase:?}");
    }
    if let Some(d) = &report.decision {
        println!("decision: {d}");
    }
    if let Some((step, result)) = &report.step_ran {
        match result {
            Ok(run) => println!(
                "ran: {} ({} statements, {} ms)",
                step.name(),
                run.statements_sent,
                run.elapsed.as_millis()
            ),
            Err(e) => println!("failed: {}: {e}", step.name()),
        }
    }
    match report.requeue_after {
        d if d.is_zero() => println!("next pass: at once"),
        d if d.subsec_millis() == 0 => println!("next pass in {}s", d.as_secs()),
        d => println!("next pass in {} ms", d.as_millis()),
    }
}

/// The SQL executor the engine runs against. Local mode has no Kubernetes Secret to read
/// `spec.tls.caSecret` from: `--ca-file` gives the CA instead, else the certificates must
/// chain to the system roots.
fn sql_port(
    credentials: pchat_operator::sql::connect::Credentials,
    ca_file: Option<PathBuf>,
) -> pchat_operator::engine::sql_port::LivePort {
    pchat_operator::engine::sql_port::LivePort::new(credentials, ca_file)
}

/// The runtime of `demo` and `bench`, which log only when `RUST_LOG` asks for it, so that the
/// summary stays readable.
fn demo_runtime() -> Option<tokio::runtime::Runtime> {
    if std::env::var_os("RUST_LOG").is_some() {
        pchat_operator::telemetry::init_logging(pchat_operator::telemetry::LogFormat::Plain);
    }
    match tokio::runtime::Runtime::new() {
        Ok(r) => Some(r),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            None
        }
    }
}

/// `pchat-operator bench --runs N`: the demo N times, the spread of its figures on stdout; exit
/// 1 when any run failed as the demo would.
fn bench_command(runs: usize) -> ExitCode {
    let Some(runtime) = demo_runtime() else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(pchat_operator::demo::bench::run(runs)) {
        Ok(bench) => {
            print!("{}", pchat_operator::demo::bench::summary(&bench));
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

/// `pchat-operator demo`: the summary on stdout; exit 1 when an act failed, a message was lost
/// that may not be, or a safety rule broke.
fn demo_command() -> ExitCode {
    let Some(runtime) = demo_runtime() else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(pchat_operator::demo::run()) {
        Ok(run) => {
            pchat_operator::demo::print_summary(&run);
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
fn sim_command(
    topology: &Path,
    state_dir: &Path,
    control: Option<std::net::SocketAddr>,
) -> ExitCode {
    use pchat_operator::sim::{cluster::RunningSim, server::Topology};
    pchat_operator::telemetry::init_logging(pchat_operator::telemetry::LogFormat::Plain);
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
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
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
        wait_for_shutdown_signal().await;
        running.stop().await;
        ExitCode::SUCCESS
    })
}

/// Ctrl-C or SIGTERM.
async fn wait_for_shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// `pchat-operator plan`: exit 0 with the plan, 2 on an invalid spec (violations only), 1 when a
/// file cannot be read or parsed.
/// Where `plan` gets its observation.
enum ObservationSource {
    /// A YAML observation.
    File(PathBuf),
    /// The live instances, observed once (read-only), with the published list from a file.
    Live {
        active_servers_file: PathBuf,
        credentials_file: Option<PathBuf>,
        ca_file: Option<PathBuf>,
    },
}

/// Observe the live instances once: the observation batches only, no step.
fn observe_live(
    spec: &PersistentChatPoolSpec,
    active_servers_file: &Path,
    credentials_file: Option<&Path>,
    ca_file: Option<&Path>,
) -> Result<Observation, (String, u8)> {
    use pchat_operator::engine::{FilePublisher, SqlPort};
    let credentials =
        pchat_operator::local::load_credentials(credentials_file, |n| std::env::var(n).ok())
            .map_err(|e| (e.to_string(), e.exit_code()))?;
    let ca = ca_file
        .map(pchat_operator::local::check_ca_file)
        .transpose()
        .map_err(|e| (e.to_string(), e.exit_code()))?;
    let published = FilePublisher::new(active_servers_file)
        .read()
        .map_err(|e| (e.to_string(), 1))?;
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| (format!("cannot start the async runtime: {e}"), 1))?;
    let mut port = sql_port(credentials, ca);
    Ok(runtime.block_on(port.observe(spec, published, jiff::Timestamp::now())))
}

fn plan_command(
    file: &Path,
    source: ObservationSource,
    output: PlanOutput,
    now: Option<&str>,
) -> ExitCode {
    let spec = match load_spec(file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(violations) = validate_spec(&spec) {
        eprintln!("{violations}");
        return ExitCode::from(2);
    }
    let obs: Observation = match &source {
        ObservationSource::File(path) => match read_yaml(path) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        },
        ObservationSource::Live {
            active_servers_file,
            credentials_file,
            ca_file,
        } => match observe_live(
            &spec,
            active_servers_file,
            credentials_file.as_deref(),
            ca_file.as_deref(),
        ) {
            Ok(o) => o,
            Err((e, code)) => {
                eprintln!("error: {e}");
                return ExitCode::from(code);
            }
        },
    };
    let now = match now {
        None => obs.taken_at,
        Some(s) => match s.parse::<jiff::Timestamp>() {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: --now {s:?} is not an RFC 3339 timestamp: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let projection = pchat_operator::plan::project(&spec, &obs, now);
    match output {
        PlanOutput::Table => print!("{}", pchat_operator::plan::render::table(&projection)),
        PlanOutput::Json => {
            match serde_json::to_string_pretty(&pchat_operator::plan::render::json(&projection)) {
                Ok(s) => println!("{s}"),
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    ExitCode::SUCCESS
}

/// Validation before any plan is made: every violation, one per line, each naming its field.
fn validate_spec(spec: &PersistentChatPoolSpec) -> Result<(), String> {
    pchat_operator::api::validate(spec).map_err(|e| e.to_string())
}

fn read_yaml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_saphyr::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// A whole PersistentChatPool manifest: unknown fields (a misspelt `suspend`) are refused.
fn load_spec(path: &Path) -> Result<PersistentChatPoolSpec, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    pchat_operator::api::load_pool_yaml(&text)
        .map(|pool| pool.spec)
        .map_err(|e| format!("{}: {e}", path.display()))
}
