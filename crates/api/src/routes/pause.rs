//! `POST /api/v1/pause` and `POST /api/v1/resume`: no cycle runs while the job is paused;
//! state, held changes and pins are kept.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use exo_writeback_agent::admin;

use crate::auth::Operator;
use crate::error::{ApiError, ErrorBody};
use crate::model::ops::{PauseRequest, PauseResult, ResumeResult};
use crate::state::{AppState, on_own_thread};

#[utoipa::path(post, path = "/api/v1/pause", tag = "operations",
    security(("bearer" = [])), request_body = PauseRequest,
    responses((status = 200, body = PauseResult), (status = 403, body = ErrorBody)))]
pub async fn pause(
    State(state): State<Arc<AppState>>,
    Operator(caller): Operator,
    Json(req): Json<PauseRequest>,
) -> Result<Json<PauseResult>, ApiError> {
    let config = state.config();
    let by = caller.who();
    tracing::info!(by = %by, "pause through the API");
    let (pause, replaced) = on_own_thread(move || async move {
        Ok(admin::pause(&config, &by, req.reason.as_deref()).await?)
    })
    .await?;
    Ok(Json(PauseResult {
        pause: (&pause).into(),
        replaced: replaced.as_ref().map(Into::into),
    }))
}

#[utoipa::path(post, path = "/api/v1/resume", tag = "operations",
    security(("bearer" = [])),
    responses((status = 200, body = ResumeResult), (status = 403, body = ErrorBody)))]
pub async fn resume(
    State(state): State<Arc<AppState>>,
    Operator(caller): Operator,
) -> Result<Json<ResumeResult>, ApiError> {
    let config = state.config();
    tracing::info!(by = %caller.who(), "resume through the API");
    let lifted = on_own_thread(move || async move { Ok(admin::resume(&config).await?) }).await?;
    Ok(Json(ResumeResult {
        lifted: lifted.as_ref().map(Into::into),
    }))
}
