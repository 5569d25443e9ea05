//! `POST /api/v1/undo`: restore the journaled previous values of a cycle or an object.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::State;
use exo_writeback_core::provisioning::CycleId;
use exo_writeback_engine::UndoTarget;

use crate::auth::Operator;
use crate::error::{ApiError, ErrorBody};
use crate::model::cycle::CycleResult;
use crate::model::ops::UndoRequest;
use crate::state::{AppState, writing};

#[utoipa::path(post, path = "/api/v1/undo", tag = "operations",
    security(("bearer" = [])), request_body = UndoRequest,
    responses(
        (status = 200, body = CycleResult, description = "the undo cycle"),
        (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "nothing to undo"),
    ))]
pub async fn undo(
    State(state): State<Arc<AppState>>,
    Operator(caller): Operator,
    Json(req): Json<UndoRequest>,
) -> Result<Json<CycleResult>, ApiError> {
    let what = match (req.cycle, req.object) {
        (Some(c), None) => Ok(c),
        (None, Some(o)) if !o.trim().is_empty() => Err(o),
        _ => {
            return Err(ApiError::bad_request(
                "give exactly one of cycle and object",
            ));
        }
    };
    tracing::info!(token = %caller.name, what = ?what, "undo through the API");
    let holder = format!("exo-writeback API ({}): undo", caller.name);
    let started = Instant::now();
    let report = writing(&state, caller.who(), holder, move |mut engine| async move {
        let target = match what {
            Ok(c) => UndoTarget::Cycle(CycleId(c)),
            Err(o) => UndoTarget::Object(engine.object_ref(&o).await?),
        };
        Ok(engine.undo(target).await?)
    })
    .await?;
    state.metrics.cycle(&report, started.elapsed());
    Ok(Json((&report).into()))
}
