//! `POST /api/v1/provision`: provision one mailbox now and return its step trace (the
//! Graph API's `provisionOnDemand`), or with `dryRun` what would be written.
//! `POST /api/v1/provision/stream`: the same, each step sent as soon as it is decided (one
//! JSON object per line), then the result — what the console shows live.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::Response;
use exo_writeback_core::provisioning::Step;
use exo_writeback_engine::{ProvisionReport, StepKind};
use serde::Serialize;
use tokio::sync::mpsc;

use futures::StreamExt;

use crate::auth::Operator;
use crate::error::{ApiError, ErrorBody};
use crate::model::log::ProvisioningStep;
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
    let report = run(&state, caller, req, |_, _| {}).await?;
    Ok(Json((&report).into()))
}

/// One line of `POST /api/v1/provision/stream`: a step, then the result or an error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionEvent {
    /// A step, as soon as it is decided (import, scoping, matching, export).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<ProvisioningStep>,
    /// The last line when it went through: the whole trace, as `POST /api/v1/provision`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<ProvisionResult>,
    /// The last line when it could not run (AD or Exchange Online unreachable, paused …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<crate::error::ErrorDetail>,
}

#[utoipa::path(post, path = "/api/v1/provision/stream", tag = "operations",
    security(("bearer" = [])), request_body = ProvisionRequest,
    responses(
        (status = 200, body = ProvisionEvent, content_type = "application/x-ndjson",
         description = "one ProvisionEvent per line: each step as soon as it is decided, then the result (or the error)"),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
    ))]
pub async fn provision_stream(
    State(state): State<Arc<AppState>>,
    Operator(caller): Operator,
    Json(req): Json<ProvisionRequest>,
) -> Result<Response, ApiError> {
    check_identity(&req)?;
    let (tx, mut rx) = mpsc::unbounded_channel::<ProvisionEvent>();
    let steps = tx.clone();
    tokio::spawn(async move {
        let trace = move |kind: StepKind, step: &Step| {
            let _ = steps.send(ProvisionEvent {
                step: Some(ProvisioningStep::of(kind, step)),
                result: None,
                error: None,
            });
        };
        let last = match run(&state, caller, req, trace).await {
            Ok(report) => ProvisionEvent {
                step: None,
                result: Some((&report).into()),
                error: None,
            },
            Err(e) => ProvisionEvent {
                step: None,
                result: None,
                error: Some(e.detail()),
            },
        };
        let _ = tx.send(last);
    });
    let lines = futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).map(|event| {
        let mut line = serde_json::to_vec(&event).unwrap_or_default();
        line.push(b'\n');
        Ok::<_, std::convert::Infallible>(line)
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::from_stream(lines))
        .map_err(ApiError::internal)
}

fn check_identity(req: &ProvisionRequest) -> Result<(), ApiError> {
    if req.identity.trim().is_empty() {
        return Err(ApiError::bad_request("give the mailbox's identity"));
    }
    Ok(())
}

/// Provision on demand, behind the state lock unless it is a dry run; `trace` is told each
/// step as soon as it is decided.
async fn run(
    state: &Arc<AppState>,
    caller: crate::auth::Caller,
    req: ProvisionRequest,
    trace: impl Fn(StepKind, &Step) + Send + Sync + 'static,
) -> Result<ProvisionReport, ApiError> {
    check_identity(&req)?;
    let identity = req.identity.trim().to_string();
    tracing::info!(token = %caller.name, %identity, dry_run = req.dry_run, "provision on demand through the API");
    if req.dry_run {
        reading(state, move |mut engine| async move {
            Ok(engine.provision_traced(&identity, true, &trace).await?)
        })
        .await
    } else {
        let holder = format!("exo-writeback API ({}): provision", caller.name);
        writing(state, caller.who(), holder, move |mut engine| async move {
            Ok(engine.provision_traced(&identity, false, &trace).await?)
        })
        .await
    }
}
