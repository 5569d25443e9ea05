//! `/healthz` and `/readyz`, the only routes without a token: they say whether the process
//! answers and whether the agent's loop has started, nothing else.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;

use crate::state::AppState;

/// The process answers.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "the agent answers", body = String)))]
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// The agent has started its loop (its state opened, both sides composed): a load balancer
/// or `systemctl` may send it work.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "ready", body = String),
        (status = 503, description = "starting, or waiting for a quarantine's retry", body = String),
    ))]
pub async fn readyz(State(state): State<Arc<AppState>>) -> (StatusCode, &'static str) {
    if state.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n")
    }
}
