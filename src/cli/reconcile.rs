//! `pchat-operator reconcile`: local mode, and the SQL port local mode and `plan` observe with.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `pchat-operator reconcile`: exit 2 for a spec or credentials the user must fix (nothing is
/// sent), 1 for other failures.
pub(super) fn reconcile_command(
    opts: &crate::local::Options,
    credentials_file: Option<&Path>,
    ca_file: Option<&Path>,
) -> ExitCode {
    use crate::local;
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
    let spec = local::check_spec(&opts.pool_file).ok();
    let ca = match local::local_ca(spec.as_ref(), ca_file) {
        Ok(ca) => ca,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    let mut port = sql_port(credentials, ca);
    let Some(runtime) = super::runtime() else {
        return ExitCode::FAILURE;
    };
    runtime.block_on(async {
        let cancel = tokio_util::sync::CancellationToken::new();
        let on_signal = cancel.clone();
        tokio::spawn(async move {
            super::wait_for_shutdown_signal().await;
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
fn print_pass(report: &crate::engine::PassReport) {
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
pub(super) fn sql_port(
    credentials: pchat_sql::connect::Credentials,
    ca_file: Option<PathBuf>,
) -> crate::engine::sql_port::LivePort {
    crate::engine::sql_port::LivePort::new(credentials, ca_file)
}
