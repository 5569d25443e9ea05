//! `GET /api/v1/preview`: what the next cycle would write, per object and attribute; writes
//! nothing.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use exo_writeback_engine::CycleMode;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Reader;
use crate::error::{ApiError, ErrorBody};
use crate::model::ops::PreviewView;
use crate::state::{AppState, reading};

#[derive(Debug, Deserialize, IntoParams)]
pub struct PreviewQuery {
    /// Preview a full reconcile instead of the next delta.
    #[serde(default)]
    pub full: bool,
}

#[utoipa::path(get, path = "/api/v1/preview", tag = "operations",
    security(("bearer" = [])), params(PreviewQuery),
    responses((status = 200, body = PreviewView), (status = 502, body = ErrorBody)))]
pub async fn preview(
    State(state): State<Arc<AppState>>,
    _caller: Reader,
    Query(q): Query<PreviewQuery>,
) -> Result<Json<PreviewView>, ApiError> {
    let mode = if q.full {
        CycleMode::Full
    } else {
        CycleMode::Auto
    };
    let preview = reading(&state, move |engine| async move {
        Ok(engine.preview(mode).await?)
    })
    .await?;
    Ok(Json((&preview).into()))
}
