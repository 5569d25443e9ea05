//! `POST /api/v1/unpin`: release the pins an undo or a reject set (of one object, or all);
//! the next cycle writes those attributes' Exchange Online values.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use exo_writeback_agent::admin::{self, Unpin};

use crate::auth::Operator;
use crate::error::{ApiError, ErrorBody};
use crate::model::ops::{UnpinRequest, UnpinResult};
use crate::state::{AppState, on_own_thread};

#[utoipa::path(post, path = "/api/v1/unpin", tag = "operations",
    security(("bearer" = [])), request_body = UnpinRequest,
    responses(
        (status = 200, body = UnpinResult),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
    ))]
pub async fn unpin(
    State(state): State<Arc<AppState>>,
    Operator(caller): Operator,
    Json(req): Json<UnpinRequest>,
) -> Result<Json<UnpinResult>, ApiError> {
    let what = match (req.object, req.all) {
        (Some(o), false) if !o.trim().is_empty() => Unpin::Object(o),
        (None, true) => Unpin::All,
        _ => return Err(ApiError::bad_request("give exactly one of object and all")),
    };
    tracing::info!(by = %caller.who(), what = ?what, "unpin through the API");
    let config = state.config();
    let (released, object) =
        on_own_thread(move || async move { Ok(admin::unpin(&config, &what).await?) }).await?;
    Ok(Json(UnpinResult {
        attributes: released.attributes,
        objects: released.objects,
        object_guid: object.map(|g| g.to_string()),
    }))
}
