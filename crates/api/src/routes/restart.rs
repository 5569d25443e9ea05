//! `POST /api/v1/restart`: forget state so the next cycle starts over (full, watermark,
//! escrow or quarantine), behind the state lock (or a PostgreSQL state's writer lease).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use exo_writeback_agent::state::WriteLock;
use exo_writeback_core::provisioning::RestartScope;
use exo_writeback_store_sqlite::RestartStore;

use crate::auth::Operator;
use crate::error::{ApiError, ErrorBody};
use crate::model::ops::{RestartRequest, RestartResult, RestartScopeName};
use crate::model::status::Job;
use crate::state::{AppState, on_own_thread};

#[utoipa::path(post, path = "/api/v1/restart", tag = "operations",
    security(("bearer" = [])), request_body = RestartRequest,
    responses((status = 200, body = RestartResult), (status = 403, body = ErrorBody)))]
pub async fn restart(
    State(state): State<Arc<AppState>>,
    Operator(caller): Operator,
    Json(req): Json<RestartRequest>,
) -> Result<Json<RestartResult>, ApiError> {
    let scope = match req.scope {
        RestartScopeName::Full => RestartScope::Full,
        RestartScopeName::Watermark => RestartScope::Watermark,
        RestartScopeName::Escrow => RestartScope::Escrow,
        RestartScopeName::Quarantine => RestartScope::Quarantine,
    };
    tracing::info!(token = %caller.name, scope = ?req.scope, "restart through the API");
    let config = state.config();
    let holder = format!("exo-writeback API ({}): restart", caller.name);
    let r = on_own_thread(move || async move {
        let lock = WriteLock::acquire(&config, &holder).await?;
        let mut store = lock.store()?;
        Ok(store.restart(scope, jiff::Timestamp::now())?)
    })
    .await?;
    Ok(Json(RestartResult {
        watermark_cleared: r.watermark_cleared,
        joins_removed: r.joins_removed,
        escrow_removed: r.escrow_removed,
        held_cycles_discarded: r.staged_cycles_discarded,
        job: Job::of(&r.job_state, None),
    }))
}
