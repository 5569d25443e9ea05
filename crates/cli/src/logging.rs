//! Where the binary's log goes: one global subscriber, installed by the process (each
//! binary chooses its own; the libraries only emit events).

/// The environment variable that asks for one JSON object per event (`json`), as the
/// systemd unit sets it so journald keeps each event whole.
pub const LOG_FORMAT_ENV: &str = "EXO_WRITEBACK_LOG_FORMAT";

/// Log warnings and errors to stderr (`RUST_LOG` overrides). Safe to call more than once.
/// Coloured only on a terminal, and never when `NO_COLOR` is set (https://no-color.org);
/// JSON lines when `EXO_WRITEBACK_LOG_FORMAT=json`.
pub fn init_logging() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    if std::env::var(LOG_FORMAT_ENV).is_ok_and(|v| v.eq_ignore_ascii_case("json")) {
        let _ = tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_target(false)
            .try_init();
        return;
    }
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .with_target(false)
        .try_init();
}
