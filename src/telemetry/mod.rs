//! Logging setup (and, later, metrics and the health server).

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Plain,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Install the global tracing subscriber, writing to stderr. The level comes from `RUST_LOG`
/// (default `info`). Safe to call once per process; later calls are ignored.
pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let result = match format {
        LogFormat::Plain => registry
            .with(
                fmt::layer()
                    .with_ansi(colours(
                        std::io::IsTerminal::is_terminal(&std::io::stderr()),
                        std::env::var_os("NO_COLOR"),
                    ))
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(fmt::layer().json().with_writer(std::io::stderr))
            .try_init(),
    };
    // A second initialisation (tests, embedded use) keeps the first subscriber.
    let _ = result;
}

/// Whether plain log lines carry terminal colour codes: only when stderr is a terminal and
/// `NO_COLOR` is unset or empty (no-color.org). In a pod, stderr is a pipe to the container
/// runtime, and escape codes would reach `kubectl logs` and every log collector as text.
fn colours(stderr_is_terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::colours;

    #[test]
    fn plain_logs_are_coloured_only_on_a_terminal_without_no_color() {
        assert!(colours(true, None));
        assert!(colours(true, Some("".into())));
        assert!(!colours(true, Some("1".into())));
        assert!(!colours(false, None));
    }
}
