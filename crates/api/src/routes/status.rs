//! `GET /api/v1/status`: the job, its last cycles, the watermark, escrow, held cycles, and
//! the agents serving the state.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;

use crate::auth::Reader;
use crate::error::{ApiError, ErrorBody};
use crate::model::status::{Status, status_of};
use crate::state::AppState;

#[utoipa::path(get, path = "/api/v1/status", tag = "status",
    security(("bearer" = [])),
    responses(
        (status = 200, body = Status),
        (status = 401, body = ErrorBody),
    ))]
pub async fn status(
    State(state): State<Arc<AppState>>,
    _caller: Reader,
) -> Result<Json<Status>, ApiError> {
    let agent = state.agent();
    let cluster = state.cluster().await?;
    let mut status = state
        .read(move |store, config| {
            Ok(status_of(
                store,
                config.sync.interval,
                agent,
                jiff::Timestamp::now(),
            )?)
        })
        .await?;
    status.cluster = cluster.as_ref().map(Into::into);
    Ok(Json(status))
}
