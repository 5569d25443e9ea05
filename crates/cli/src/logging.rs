//! Where the binary's log goes: one global subscriber, installed by the process (each
//! binary chooses its own; the libraries only emit events).

/// Log warnings and errors to stderr (`RUST_LOG` overrides). Safe to call more than once.
/// Coloured only on a terminal, and never when `NO_COLOR` is set (https://no-color.org).
pub fn init_logging() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .with_target(false)
        .try_init();
}
