//! `GET /metrics`: the Prometheus text exposition (a reader token: Prometheus sends it with
//! `authorization: { credentials_file: … }`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::auth::Reader;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

#[utoipa::path(get, path = "/metrics", tag = "metrics",
    security(("bearer" = [])),
    responses((status = 200, body = String, content_type = "text/plain; version=0.0.4"),
              (status = 401, body = ErrorBody)))]
pub async fn metrics(
    State(state): State<Arc<AppState>>,
    _caller: Reader,
) -> Result<Response, ApiError> {
    let metrics = state.metrics.clone();
    let text = state
        .read(move |store, _| metrics.encode(store, jiff::Timestamp::now()))
        .await?;
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(response)
}
