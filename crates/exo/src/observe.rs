//! What the client reports of its requests, for metrics: each InvokeCommand attempt with its
//! latency and outcome, and each throttling wait. An observer is optional; the client works
//! the same without one.

use std::time::Duration;

/// One event of the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExoEvent {
    /// An attempt of an InvokeCommand POST ended: `outcome` is `ok`, `throttled` (429),
    /// `server_error` (5xx), `client_error` (other 4xx), `timeout` or `transport`.
    Request {
        cmdlet: String,
        elapsed: Duration,
        outcome: &'static str,
    },
    /// The client waits as Exchange Online asked (429 with or without `Retry-After`).
    Throttled { wait: Duration },
}

/// Hears the client's events (from any task; keep it quick).
pub type ExoObserver = std::sync::Arc<dyn Fn(&ExoEvent) + Send + Sync>;

/// The outcome name of an answer's status.
pub(crate) fn outcome_of(status: u16) -> &'static str {
    match status {
        200..=299 => "ok",
        429 => "throttled",
        500..=599 => "server_error",
        _ => "client_error",
    }
}
