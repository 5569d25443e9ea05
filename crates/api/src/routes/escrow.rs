//! Escrow: `GET /api/v1/escrow` and `POST /api/v1/escrow/{cloudId}/retry` (the object
//! provisioned now: written, and out of escrow, when it succeeds).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};

use crate::auth::{Operator, Reader};
use crate::error::{ApiError, ErrorBody};
use crate::model::ops::{EscrowList, ProvisionResult};
use crate::state::{AppState, writing};

#[utoipa::path(get, path = "/api/v1/escrow", tag = "escrow",
    security(("bearer" = [])),
    responses((status = 200, body = EscrowList), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    _caller: Reader,
) -> Result<Json<EscrowList>, ApiError> {
    let entries = state.read(|store, _| Ok(store.escrow()?)).await?;
    Ok(Json(EscrowList {
        value: entries.iter().map(Into::into).collect(),
    }))
}

#[utoipa::path(post, path = "/api/v1/escrow/{cloudId}/retry", tag = "escrow",
    security(("bearer" = [])),
    params(("cloudId" = String, Path, description = "the mailbox's ExternalDirectoryObjectId")),
    responses(
        (status = 200, body = ProvisionResult, description = "the retry's steps"),
        (status = 404, body = ErrorBody, description = "not in escrow"),
    ))]
pub async fn retry(
    State(state): State<Arc<AppState>>,
    Operator(caller): Operator,
    Path(cloud_id): Path<String>,
) -> Result<Json<ProvisionResult>, ApiError> {
    let id = cloud_id.clone();
    let entry = state
        .read(move |store, _| Ok(store.escrow_entry(&id)?))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("{cloud_id} is not in escrow")))?;
    tracing::info!(token = %caller.name, cloud_id = %entry.cloud_id, "escrow retry through the API");
    let holder = format!("exo-writeback API ({}): retry from escrow", caller.name);
    let report = writing(&state, caller.who(), holder, move |mut engine| async move {
        Ok(engine.provision(&entry.cloud_id, false).await?)
    })
    .await?;
    Ok(Json((&report).into()))
}
