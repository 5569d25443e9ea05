//! The routes, one file per operation, and the router over them.

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::routing::{get, post};

use crate::state::AppState;

pub mod console;
pub mod cycles;
pub mod escrow;
pub mod health;
pub mod held;
pub mod logs;
pub mod metrics;
pub mod pause;
pub mod preview;
pub mod provision;
pub mod restart;
pub mod status;
pub mod undo;
pub mod unpin;

/// The console's content security policy: its own files only, no inline script.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

async fn headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Every route of the service.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::metrics))
        .route("/", get(console::root))
        .route("/console/", get(console::index))
        .route("/console/app.js", get(console::app_js))
        .route("/console/app.css", get(console::app_css))
        .route("/console/icon.svg", get(console::icon))
        .route("/api/v1/openapi.json", get(crate::openapi::serve))
        .route("/api/v1/status", get(status::status))
        .route("/api/v1/cycles", get(cycles::list))
        .route("/api/v1/cycles/{id}", get(cycles::one))
        .route("/api/v1/logs", get(logs::list))
        .route("/api/v1/logs/{id}", get(logs::one))
        .route("/api/v1/preview", get(preview::preview))
        .route("/api/v1/provision", post(provision::provision))
        .route(
            "/api/v1/provision/stream",
            post(provision::provision_stream),
        )
        .route("/api/v1/held", get(held::list))
        .route("/api/v1/held/{cycle}", get(held::changes))
        .route("/api/v1/held/{cycle}/approve", post(held::approve))
        .route("/api/v1/held/{cycle}/reject", post(held::reject))
        .route("/api/v1/pause", post(pause::pause))
        .route("/api/v1/resume", post(pause::resume))
        .route("/api/v1/unpin", post(unpin::unpin))
        .route("/api/v1/undo", post(undo::undo))
        .route("/api/v1/escrow", get(escrow::list))
        .route("/api/v1/escrow/{cloud_id}/retry", post(escrow::retry))
        .route("/api/v1/restart", post(restart::restart))
        .layer(axum::middleware::map_response(headers))
        .with_state(state)
}
