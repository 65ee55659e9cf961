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
        LogFormat::Plain => {
            let layer = fmt::layer().with_writer(std::io::stderr);
            // The layer leaves colours out when NO_COLOR is set, but not when stderr is no
            // terminal: in a pod it is a pipe to the container runtime, and escape codes would
            // reach `kubectl logs` and every log collector as text. (`with_ansi(true)` would
            // override NO_COLOR, so only ever turn colours off here.)
            let layer = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                layer
            } else {
                layer.with_ansi(false)
            };
            registry.with(layer).try_init()
        }
        LogFormat::Json => registry
            .with(fmt::layer().json().with_writer(std::io::stderr))
            .try_init(),
    };
    // A second initialisation (tests, embedded use) keeps the first subscriber.
    let _ = result;
}
