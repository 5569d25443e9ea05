//! `POST /api/v1/provision`: provision one mailbox now and return its step trace (the
//! Graph API's `provisionOnDemand`), or with `dryRun` what would be written.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;

use crate::auth::Operator;
use crate::error::{ApiError, ErrorBody};
use crate::model::ops::{ProvisionRequest, ProvisionResult};
use crate::state::{AppState, reading, writing};

#[utoipa::path(post, path = "/api/v1/provision", tag = "operations",
    security(("bearer" = [])), request_body = ProvisionRequest,
    responses(
        (status = 200, body = ProvisionResult, description = "the steps; the entry's status says whether the object was written, skipped or failed"),
        (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the job is paused"),
        (status = 502, body = ErrorBody, description = "AD or Exchange Online cannot be reached"),
    ))]
pub async fn provision(
    State(state): State<Arc<AppState>>,
    Operator(caller): Operator,
    Json(req): Json<ProvisionRequest>,
) -> Result<Json<ProvisionResult>, ApiError> {
    let identity = req.identity.trim().to_string();
    if identity.is_empty() {
        return Err(ApiError::bad_request("give the mailbox's identity"));
    }
    tracing::info!(token = %caller.name, %identity, dry_run = req.dry_run, "provision on demand through the API");
    let report = if req.dry_run {
        reading(&state, move |mut engine| async move {
            Ok(engine.provision(&identity, true).await?)
        })
        .await?
    } else {
        let holder = format!("exo-writeback API ({}): provision", caller.name);
        writing(&state, caller.who(), holder, move |mut engine| async move {
            Ok(engine.provision(&identity, false).await?)
        })
        .await?
    };
    Ok(Json((&report).into()))
}
