//! `kubectl pchat`: the kubectl plugin, a mode of this binary. Copied or linked onto the PATH
//! as `kubectl-pchat`, it is what kubectl runs for `kubectl pchat ...`, with the user's
//! kubeconfig (KUBECONFIG, its current context and namespace) and so with the user's RBAC:
//! `status` and `plan` only read, `switch` patches `spec.primarySite` and nothing else.

mod access;
mod plan;
mod status;
mod switch;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kube::Api;
use pchat_core::api::PersistentChatPool;

pub use access::{ApiAccess, describe};
pub(crate) use status::friendly_seconds;

/// The name kubectl looks for on the PATH.
pub const PLUGIN_NAME: &str = "kubectl-pchat";

#[derive(Parser)]
#[command(
    name = "kubectl pchat",
    version,
    about = "Persistent Chat pools: status, the next steps, a switch of site, a drill"
)]
struct PluginCli {
    /// The pool's namespace (default: the kubeconfig context's, else `default`).
    #[arg(short = 'n', long, global = true)]
    namespace: Option<String>,
    #[command(subcommand)]
    command: PluginCommand,
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Conditions, serving site, the step in progress, lag, data-loss window, last transition.
    Status {
        /// The PersistentChatPool.
        name: String,
    },
    /// What the operator would do next, from the live resource and its instances (read-only:
    /// the instances are observed with the pool's Secret, nothing that changes them is sent).
    Plan {
        name: String,
        /// Output format.
        #[arg(short = 'o', long = "output", value_enum, default_value_t = crate::cli::PlanOutput::Table)]
        output: crate::cli::PlanOutput,
    },
    /// Set `spec.primarySite` to SITE (a planned switch when both sites are up).
    Switch {
        name: String,
        site: String,
        /// Follow the switch until the pool is Ready on SITE, with a progress bar.
        #[arg(long)]
        wait: bool,
        /// How long `--wait` follows before giving up (the switch goes on).
        #[arg(long, default_value = "10m", value_parser = parse_duration)]
        timeout: std::time::Duration,
    },
    #[cfg(feature = "sim")]
    /// Rehearse the pool's switch on a simulated copy of it (`pchat-operator drill
    /// --from-cluster NAMESPACE/NAME`): nothing is sent to its instances.
    Drill {
        name: String,
        /// Messages a second each published chat server writes during the drill (the chat
        /// write outage is measured to about one interval between two writes).
        #[arg(long, default_value_t = 100.0)]
        rate: f64,
        /// How many times faster than the pool's intervals the drill runs.
        #[arg(long)]
        time_scale: Option<u32>,
        /// Also write each scenario as a timeline picture to this HTML file.
        #[arg(long, value_name = "FILE.html")]
        timeline: Option<std::path::PathBuf>,
    },
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let d: jiff::SignedDuration = text
        .parse()
        .map_err(|e| format!("{text:?} is not a duration such as 90s or 10m: {e}"))?;
    std::time::Duration::try_from(d).map_err(|_| format!("{text:?} is negative"))
}

/// Whether this process was started as the plugin (its program name is `kubectl-pchat`).
pub fn started_as_plugin() -> bool {
    std::env::args_os()
        .next()
        .and_then(|arg0| {
            std::path::Path::new(&arg0)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
        })
        .is_some_and(|stem| stem == PLUGIN_NAME)
}

/// The plugin's command line, run.
pub fn main() -> ExitCode {
    let cli = PluginCli::parse();
    let Some(runtime) = crate::cli::runtime() else {
        return ExitCode::FAILURE;
    };
    #[cfg(feature = "sim")]
    if let PluginCommand::Drill {
        name,
        rate,
        time_scale,
        timeline,
    } = &cli.command
    {
        let namespace = match runtime.block_on(context(cli.namespace.as_deref())) {
            Ok((_, namespace)) => namespace,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        drop(runtime);
        return crate::cli::drill(
            crate::cli::DrillSource::Cluster(format!("{namespace}/{name}")),
            *rate,
            *time_scale,
            timeline.as_deref(),
        );
    }
    let result = runtime.block_on(async {
        let (client, namespace) = context(cli.namespace.as_deref()).await?;
        let pools: Api<PersistentChatPool> = Api::namespaced(client.clone(), &namespace);
        match cli.command {
            PluginCommand::Status { name } => {
                let pool = get_pool(&pools, &namespace, &name).await?;
                print!("{}", status::render(&pool, jiff::Timestamp::now()));
                Ok(true)
            }
            PluginCommand::Plan { name, output } => {
                let pool = get_pool(&pools, &namespace, &name).await?;
                plan::run(&client, &namespace, &pool, output).await
            }
            PluginCommand::Switch {
                name,
                site,
                wait,
                timeout,
            } => switch::run(&pools, &namespace, &name, &site, wait.then_some(timeout)).await,
            // The drill starts runtimes of its own, so it was run above, outside this one.
            #[cfg(feature = "sim")]
            PluginCommand::Drill { .. } => unreachable!("drill returned above"),
        }
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A client from the user's kubeconfig, and the namespace to use: `--namespace`, else the
/// context's, else `default`.
async fn context(namespace: Option<&str>) -> Result<(kube::Client, String), String> {
    let config = kube::Config::infer()
        .await
        .map_err(|e| format!("no usable kubeconfig or in-cluster configuration: {e}"))?;
    let namespace = namespace
        .map(str::to_string)
        .unwrap_or_else(|| config.default_namespace.clone());
    let client = kube::Client::try_from(config)
        .map_err(|e| format!("cannot build a client from the kubeconfig: {e}"))?;
    Ok((client, namespace))
}

/// The pool, or why it cannot be read (a refusal names the missing right).
async fn get_pool(
    pools: &Api<PersistentChatPool>,
    namespace: &str,
    name: &str,
) -> Result<PersistentChatPool, String> {
    let access = ApiAccess::pools("get", namespace, name);
    match pools.get_opt(name).await {
        Ok(Some(pool)) => Ok(pool),
        Ok(None) => Err(format!(
            "there is no PersistentChatPool {name} in namespace {namespace}"
        )),
        Err(e) => Err(describe(&e, &access)),
    }
}
