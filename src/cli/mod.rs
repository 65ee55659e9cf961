//! The `pchat-operator` command line: one module per command family. The binary
//! (`src/main.rs`) only calls [`main`].

mod plan;
mod reconcile;
mod run;
#[cfg(feature = "sim")]
mod sim;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

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
        /// The PersistentChatPool manifest as YAML (`-` for standard input).
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
        #[arg(long, value_enum, default_value_t = crate::telemetry::LogFormat::Plain)]
        log_format: crate::telemetry::LogFormat,
    },

    /// Run the operator in Kubernetes: reconcile every PersistentChatPool (or those of one
    /// namespace), with leader election, until SIGTERM or Ctrl-C.
    Run {
        /// Watch only this namespace (default: all namespaces).
        #[arg(long)]
        namespace: Option<String>,
        /// Address of the HTTP endpoint serving /healthz, /readyz and /metrics. `[::]` takes
        /// IPv6 and, on Linux's default dual-stack sockets, IPv4 as well.
        #[arg(long, default_value = "[::]:8080")]
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
        /// Pools reconciled at once (each pass keeps its pool's SQL connections busy); the
        /// others wait their turn.
        #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=1024))]
        max_concurrent_pools: u16,
        /// Keep one SQL connection per instance open for pools with nothing to do until their
        /// next pass. Off: such pools log in again at each idle pass (every 30 s), which costs
        /// a TLS handshake per instance and saves about 27 KiB of this process's memory per
        /// connection.
        #[arg(long)]
        keep_idle_connections: bool,
        /// Log line format.
        #[arg(long, value_enum, default_value_t = crate::telemetry::LogFormat::Plain)]
        log_format: crate::telemetry::LogFormat,
    },

    #[cfg(feature = "sim")]
    /// Run the demo: a simulated two-site pool under a chat workload, bootstrapped, switched,
    /// failed back, failed over when a site goes down, and protected again when it returns.
    Demo {
        /// Also write each act as a timeline picture to this self-contained HTML file.
        #[arg(long, value_name = "FILE.html")]
        timeline: Option<PathBuf>,
    },

    #[cfg(feature = "sim")]
    /// Run the demo several times, one after the other, and print each figure's fewest,
    /// median and most over the runs (one run's timings move with the host's load).
    Bench {
        /// How many demo runs.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
        runs: u32,
        /// Also write the last run's acts as a timeline picture to this HTML file.
        #[arg(long, value_name = "FILE.html")]
        timeline: Option<PathBuf>,
        #[command(subcommand)]
        kind: Option<BenchKind>,
    },

    #[cfg(feature = "sim")]
    /// Rehearse a pool's switch on a simulated copy of it (same instance names, sites,
    /// databases, policy; intervals divided by a time scale) under a chat workload: the planned
    /// switch, the switch back and a forced failover, with the operator's engine and planner.
    /// Prints each step's T-SQL, the predicted SQL critical path, chat write outage and
    /// data-loss window, and a verdict per scenario. Nothing is sent to the real instances.
    Drill {
        /// The PersistentChatPool manifest as YAML (`-` for standard input).
        #[arg(
            short = 'f',
            long = "file",
            required_unless_present = "from_cluster",
            conflicts_with = "from_cluster"
        )]
        file: Option<PathBuf>,
        /// Read the pool from the cluster of the current kubeconfig instead: NAMESPACE/NAME
        /// (a GET of the PersistentChatPool; nothing is written).
        #[arg(long, value_name = "NAMESPACE/NAME")]
        from_cluster: Option<String>,
        /// Messages a second each published chat server writes during the drill (the chat
        /// write outage is measured to about one interval between two writes).
        #[arg(long, default_value_t = 100.0)]
        rate: f64,
        /// How many times faster than the pool's intervals the drill runs (default: as fast
        /// as SQL Server Agent's 10 s shortest schedule allows for backupInterval, at most 30).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        time_scale: Option<u32>,
        /// Also write each scenario as a timeline picture to this self-contained HTML file.
        #[arg(long, value_name = "FILE.html")]
        timeline: Option<PathBuf>,
    },

    #[cfg(feature = "sim")]
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
pub(crate) enum PlanOutput {
    Table,
    Json,
}

/// Parse the command line and run the command; the process exit code.
pub fn main() -> ExitCode {
    // One TLS provider for the whole process, ring, chosen before any connection: with none
    // installed, tiberius falls back to aws-lc-rs, whose random generator seeds itself from
    // CPU jitter (milliseconds of CPU, a twentieth of the demo's), and test builds link both.
    let _ = rustls::crypto::ring::default_provider().install_default();
    if crate::kubectl::started_as_plugin() {
        return crate::kubectl::main();
    }
    let cli = Cli::parse();
    match cli.command {
        Command::Crd => match pchat_core::api::crd_yaml() {
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
                Some(path) => plan::ObservationSource::File(path),
                None => plan::ObservationSource::Live {
                    active_servers_file: active_servers_file.unwrap_or_else(|| {
                        crate::local::Options::default_active_servers_file(&file)
                    }),
                    credentials_file,
                    ca_file,
                },
            };
            plan::plan_command(&file, source, output, now.as_deref())
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
            crate::telemetry::init_logging(log_format);
            let opts = crate::local::Options {
                active_servers_file: active_servers_file
                    .unwrap_or_else(|| crate::local::Options::default_active_servers_file(&file)),
                pool_file: file,
                once,
                status_file,
            };
            reconcile::reconcile_command(&opts, credentials_file.as_deref(), ca_file.as_deref())
        }
        #[cfg(feature = "sim")]
        Command::Sim {
            topology,
            state_dir,
            control,
        } => sim::sim_command(&topology, &state_dir, control),
        #[cfg(feature = "sim")]
        Command::Demo { timeline } => sim::demo_command(timeline.as_deref()),
        #[cfg(feature = "sim")]
        Command::Drill {
            file,
            from_cluster,
            rate,
            time_scale,
            timeline,
        } => {
            let source = match (file, from_cluster) {
                (Some(file), _) => DrillSource::File(file),
                (None, Some(reference)) => DrillSource::Cluster(reference),
                (None, None) => {
                    eprintln!("error: drill needs --file or --from-cluster");
                    return ExitCode::from(2);
                }
            };
            drill(source, rate, time_scale, timeline.as_deref())
        }
        #[cfg(feature = "sim")]
        Command::Bench {
            runs,
            timeline,
            kind: None,
        } => sim::bench_command(runs as usize, timeline.as_deref()),
        #[cfg(feature = "sim")]
        Command::Bench {
            kind:
                Some(BenchKind::Scale {
                    pools,
                    steady_seconds,
                    max_concurrent_pools,
                    keep_idle_connections,
                    sql_latency,
                    keep_logs,
                }),
            ..
        } => sim::scale_command(crate::demo::scale::ScaleOptions {
            pools: pools as usize,
            steady: std::time::Duration::from_secs(steady_seconds),
            max_concurrent_pools,
            keep_idle_connections,
            sql_latency,
            keep_logs,
        }),
        Command::Run {
            namespace,
            http_addr,
            lease_name,
            lease_namespace,
            identity,
            lease_duration,
            stalled_retry,
            not_leader_retry,
            max_concurrent_pools,
            keep_idle_connections,
            log_format,
        } => {
            crate::telemetry::init_logging(log_format);
            let timing = crate::k8s::context::Timing {
                stalled_retry: std::time::Duration::from_secs(stalled_retry),
                not_leader_retry: std::time::Duration::from_secs(not_leader_retry),
                ..Default::default()
            };
            let opts = crate::k8s::Options {
                namespace,
                http_addr,
                lease: crate::k8s::leader::LeaseConfig {
                    name: lease_name,
                    namespace: lease_namespace,
                    identity: identity.unwrap_or_else(run::host_name),
                    duration_seconds: lease_duration,
                },
                ca_dir: std::env::temp_dir().join("pchat-operator"),
                timing,
                max_concurrent_pools,
                keep_idle_connections,
            };
            run::run_command(opts)
        }
    }
}

#[cfg(feature = "sim")]
#[derive(clap::Subcommand, Debug)]
enum BenchKind {
    /// Many pools on one operator against a real kube-apiserver (scripts/test-cluster, from a
    /// clone of the repository): cold start, steady state, a storm of planned switches under a
    /// chat workload and a storm of forced failovers, as key=value lines.
    Scale {
        /// Pools of four simulated instances, each in its own namespace.
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=2000))]
        pools: u32,
        /// Seconds the steady state is watched (five of the operator's 30 s resync periods).
        #[arg(long, default_value_t = 150, value_parser = clap::value_parser!(u64).range(1..=3600))]
        steady_seconds: u64,
        /// The operator's --max-concurrent-pools.
        #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=1024))]
        max_concurrent_pools: u16,
        /// The operator's --keep-idle-connections.
        #[arg(long)]
        keep_idle_connections: bool,
        /// How long the simulated instances take over each statement: `demo`, the demo's
        /// table (a BACKUP 30 ms, a RESTORE 40 ms, an ALTER DATABASE 5 ms, ...), as SQL Server
        /// takes time over them; `none`, no time at all, so that every switch is only the
        /// CPU of the processes on this machine.
        #[arg(long, value_enum, default_value_t = crate::demo::scale::SqlLatency::Demo)]
        sql_latency: crate::demo::scale::SqlLatency,
        /// Keep the operator's log, the simulator's statement logs and the apiserver's audit
        /// log after a run that passed (a failed run always keeps them); the folder is printed.
        #[arg(long)]
        keep_logs: bool,
    },
}

#[cfg(feature = "sim")]
pub(crate) use sim::DrillSource;

/// `drill` (and `kubectl pchat drill`): exit 2 on a rate out of range, else as
/// [`sim::drill_command`].
#[cfg(feature = "sim")]
pub(crate) fn drill(
    source: DrillSource,
    rate: f64,
    time_scale: Option<u32>,
    timeline: Option<&std::path::Path>,
) -> ExitCode {
    if !(rate.is_finite() && rate > 0.0 && rate <= 1000.0) {
        eprintln!(
            "error: --rate {rate}: messages a second per chat server, more than 0 and at most 1000"
        );
        return ExitCode::from(2);
    }
    sim::drill_command(source, rate, time_scale, timeline)
}

/// The async runtime of a command; `None`, said on stderr, when it cannot start.
pub(crate) fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Runtime::new() {
        Ok(runtime) => Some(runtime),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            None
        }
    }
}

/// Ctrl-C or SIGTERM.
pub(crate) async fn wait_for_shutdown_signal() {
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
