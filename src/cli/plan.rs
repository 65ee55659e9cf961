//! `pchat-operator plan`: the remaining plan for a spec and an observation (a file, or the
//! live instances observed read-only).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use pchat_core::api::PersistentChatPoolSpec;
use pchat_core::observe::Observation;

use super::PlanOutput;

/// `pchat-operator plan`: exit 0 with the plan, 2 on an invalid spec (violations only), 1 when a
/// file cannot be read or parsed.
/// Where `plan` gets its observation.
pub(super) enum ObservationSource {
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
    use crate::engine::{FilePublisher, SqlPort};
    let credentials = crate::local::load_credentials(credentials_file, |n| std::env::var(n).ok())
        .map_err(|e| (e.to_string(), e.exit_code()))?;
    let ca =
        crate::local::local_ca(Some(spec), ca_file).map_err(|e| (e.to_string(), e.exit_code()))?;
    let published = FilePublisher::new(active_servers_file)
        .read()
        .map_err(|e| (e.to_string(), 1))?;
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| (format!("cannot start the async runtime: {e}"), 1))?;
    let mut port = super::reconcile::sql_port(credentials, ca);
    Ok(runtime.block_on(port.observe(spec, published, jiff::Timestamp::now())))
}

pub(super) fn plan_command(
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
    let projection = pchat_core::plan::project(&spec, &obs, now);
    match output {
        PlanOutput::Table => print!("{}", pchat_core::plan::render::table(&projection)),
        PlanOutput::Json => {
            match serde_json::to_string_pretty(&pchat_core::plan::render::json(&projection)) {
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
    pchat_core::api::validate(spec).map_err(|e| e.to_string())
}

fn read_yaml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_saphyr::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// A whole PersistentChatPool manifest (`-` for standard input): unknown fields (a misspelt
/// `suspend`) are refused.
fn load_spec(path: &Path) -> Result<PersistentChatPoolSpec, String> {
    crate::manifest::load(path)
        .map(|pool| pool.spec)
        .map_err(|e| e.to_string())
}
