//! `GET /api/v1/cycles` and `GET /api/v1/cycles/{id}`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use exo_writeback_core::provisioning::CycleId;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Reader;
use crate::error::{ApiError, ErrorBody};
use crate::model::cycle::{Cycle, CycleList};
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
pub struct CyclesQuery {
    /// At most this many, newest first (default 20, at most 500).
    pub limit: Option<usize>,
}

#[utoipa::path(get, path = "/api/v1/cycles", tag = "cycles",
    security(("bearer" = [])), params(CyclesQuery),
    responses((status = 200, body = CycleList), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    _caller: Reader,
    Query(q): Query<CyclesQuery>,
) -> Result<Json<CycleList>, ApiError> {
    let limit = q.limit.unwrap_or(20).clamp(1, 500);
    let cycles = state
        .read(move |store, _| Ok(store.recent_cycles(limit)?))
        .await?;
    Ok(Json(CycleList {
        value: cycles.iter().map(Into::into).collect(),
    }))
}

#[utoipa::path(get, path = "/api/v1/cycles/{id}", tag = "cycles",
    security(("bearer" = [])), params(("id" = i64, Path, description = "the cycle")),
    responses((status = 200, body = Cycle), (status = 404, body = ErrorBody)))]
pub async fn one(
    State(state): State<Arc<AppState>>,
    _caller: Reader,
    Path(id): Path<i64>,
) -> Result<Json<Cycle>, ApiError> {
    let cycle = state
        .read(move |store, _| Ok(store.cycle(CycleId(id))?))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("there is no cycle {id}")))?;
    Ok(Json((&cycle).into()))
}
