//! Held cycles: `GET /api/v1/held`, `GET /api/v1/held/{cycle}` (every staged change, old →
//! new, paged) and `POST /api/v1/held/{cycle}/approve`.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::{Path, Query, State};
use exo_writeback_agent::admin;
use exo_writeback_core::provisioning::{CycleId, StagedDecision};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::{Operator, Reader};
use crate::error::{ApiError, ErrorBody};
use crate::model::cycle::CycleResult;
use crate::model::ops::{HeldChanges, HeldCycle, HeldList, RejectRequest, StagedChangeView};
use crate::state::{AppState, on_own_thread, writing};

#[utoipa::path(get, path = "/api/v1/held", tag = "held",
    security(("bearer" = [])),
    responses((status = 200, body = HeldList), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    _caller: Reader,
) -> Result<Json<HeldList>, ApiError> {
    let value = state
        .read(|store, _| {
            let mut out = Vec::new();
            for c in store.pending_staged_cycles()? {
                out.push(HeldCycle {
                    cycle: c.0,
                    objects: store.staged_count(c)?,
                });
            }
            Ok(out)
        })
        .await?;
    Ok(Json(HeldList { value }))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct HeldQuery {
    /// Skip this many staged objects.
    pub offset: Option<usize>,
    /// At most this many (default 200, at most 2000).
    pub limit: Option<usize>,
}

#[utoipa::path(get, path = "/api/v1/held/{cycle}", tag = "held",
    security(("bearer" = [])),
    params(("cycle" = i64, Path, description = "the held cycle"), HeldQuery),
    responses((status = 200, body = HeldChanges), (status = 404, body = ErrorBody)))]
pub async fn changes(
    State(state): State<Arc<AppState>>,
    _caller: Reader,
    Path(cycle): Path<i64>,
    Query(q): Query<HeldQuery>,
) -> Result<Json<HeldChanges>, ApiError> {
    let offset = q.offset.unwrap_or(0);
    let limit = q.limit.unwrap_or(200).clamp(1, 2000);
    let held = state
        .read(move |store, _| {
            let id = CycleId(cycle);
            if !store.pending_staged_cycles()?.contains(&id) {
                let why = match store.staged_changes(id)?.map(|s| s.decision) {
                    Some(StagedDecision::Approved { by, .. }) => {
                        format!("cycle {cycle}'s changes were approved (applied by cycle {by})")
                    }
                    Some(_) => format!("cycle {cycle}'s changes were discarded"),
                    None => format!("cycle {cycle} holds no changes"),
                };
                return Err(ApiError::not_found(why));
            }
            Ok(HeldChanges {
                cycle,
                total: store.staged_count(id)?,
                offset,
                value: store
                    .staged_plans(id, offset, limit)?
                    .iter()
                    .map(StagedChangeView::of)
                    .collect(),
            })
        })
        .await?;
    Ok(Json(held))
}

#[utoipa::path(post, path = "/api/v1/held/{cycle}/approve", tag = "held",
    security(("bearer" = [])), params(("cycle" = i64, Path, description = "the held cycle")),
    responses(
        (status = 200, body = CycleResult, description = "the cycle that applied the held changes"),
        (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the cycle holds no changes waiting"),
    ))]
pub async fn approve(
    State(state): State<Arc<AppState>>,
    Operator(caller): Operator,
    Path(cycle): Path<i64>,
) -> Result<Json<CycleResult>, ApiError> {
    tracing::info!(token = %caller.name, cycle, "approve through the API");
    let holder = format!("exo-writeback API ({}): approve {cycle}", caller.name);
    let started = Instant::now();
    let report = writing(&state, caller.who(), holder, move |mut engine| async move {
        Ok(engine.approve(CycleId(cycle)).await?)
    })
    .await?;
    state.metrics.cycle(&report, started.elapsed());
    Ok(Json((&report).into()))
}

#[utoipa::path(post, path = "/api/v1/held/{cycle}/reject", tag = "held",
    security(("bearer" = [])), params(("cycle" = i64, Path, description = "the held cycle")),
    request_body = RejectRequest,
    responses(
        (status = 200, body = CycleResult, description = "the cycle that logged the rejection; its attributes are pinned"),
        (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the cycle holds no changes waiting"),
    ))]
pub async fn reject(
    State(state): State<Arc<AppState>>,
    Operator(caller): Operator,
    Path(cycle): Path<i64>,
    Json(req): Json<RejectRequest>,
) -> Result<Json<CycleResult>, ApiError> {
    let by = caller.who();
    tracing::info!(by = %by, cycle, "reject through the API");
    let config = state.config();
    let started = Instant::now();
    let report = on_own_thread(move || async move {
        Ok(admin::reject(&config, CycleId(cycle), &by, req.reason.as_deref()).await?)
    })
    .await?;
    state.metrics.cycle(&report, started.elapsed());
    Ok(Json((&report).into()))
}
