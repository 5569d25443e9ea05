//! The fault middleware in front of the token endpoint and InvokeCommand: counts requests
//! and applies the fault rules (`faults.rs`) — answering in its place, damaging the answer,
//! or marking the request for the handler (`HandlerFault`).

use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::errors::{self, InvokeError};
use crate::faults::{self, ConnInfo, Endpoint, FaultKind};
use crate::invoke::ODATA_JSON;
use crate::{App, SERVER, mailbox};

/// A fault the InvokeCommand handler applies itself (set by the fault middleware).
#[derive(Clone)]
pub(crate) enum HandlerFault {
    /// Answer as if the token had expired.
    ForceExpired,
    /// Emit a nextLink the service will refuse.
    BreakNextLink,
    /// Report these `@adminapi.errors` in the successful page.
    AdminApiErrors(Vec<String>),
}

fn classify(req: &Request) -> Endpoint {
    if req.uri().path().ends_with("/oauth2/v2.0/token") {
        Endpoint::Token
    } else if req.uri().query().is_some_and(|q| q.contains("skiptoken=")) {
        Endpoint::NextLink
    } else {
        Endpoint::Invoke
    }
}

pub(crate) fn json_error_body(code: &str, message: &str) -> String {
    format!(
        "{{\"error\":{{\"code\":{},\"message\":{},\"innererror\":{{\"message\":{},\"type\":\"{}\",\"stacktrace\":\"\"}}}}}}",
        mailbox::json_str(code),
        mailbox::json_str(message),
        mailbox::json_str(message),
        errors::ODATA_EXCEPTION
    )
}

/// The answer with its body replaced by `f(body)` (Content-Length dropped).
async fn rewrite_body(resp: Response, f: impl FnOnce(&[u8]) -> Vec<u8>) -> Response {
    let (mut parts, body) = resp.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(f(&bytes)))
}

/// Counts Exchange requests and applies fault rules.
pub(crate) async fn exchange_faults(
    State(app): State<App>,
    mut req: Request,
    next: Next,
) -> Response {
    let endpoint = classify(&req);
    app.state.count(endpoint);
    let Some(kind) = app.state.take_fault(endpoint) else {
        return next.run(req).await;
    };
    tracing::info!(?endpoint, ?kind, "fault injected");
    match kind {
        FaultKind::TooManyRequests { retry_after_secs } => {
            let retry = if retry_after_secs.fract() == 0.0 {
                format!("{}", retry_after_secs as u64)
            } else {
                format!("{retry_after_secs}")
            };
            let mut resp = (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
                json_error_body(
                    "TooManyRequests",
                    "Too many requests. Retry after the number of seconds in the Retry-After header.",
                ),
            )
                .into_response();
            if let Ok(v) = HeaderValue::from_str(&retry) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            resp
        }
        FaultKind::InternalServerError => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, ODATA_JSON)],
            json_error_body("InternalServerError", "Internal server error"),
        )
            .into_response(),
        FaultKind::ServiceUnavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/html")],
            "<html><body>Service Unavailable</body></html>",
        )
            .into_response(),
        FaultKind::Delay { ms } => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            next.run(req).await
        }
        FaultKind::ResetConnection => {
            match req.extensions().get::<ConnectInfo<ConnInfo>>() {
                Some(ConnectInfo(info)) => info.control.reset(),
                None => tracing::warn!("no connection control; cannot reset"),
            }
            // Never written: the connection is gone.
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
        FaultKind::TruncatedJson | FaultKind::MalformedJson => {
            rewrite_body(next.run(req).await, |bytes| {
                if kind == FaultKind::TruncatedJson {
                    bytes[..bytes.len() / 2].to_vec()
                } else {
                    // Valid prefix, then a stray token where a value is expected.
                    let cut = bytes.len() / 2;
                    let mut v = bytes[..cut].to_vec();
                    v.extend_from_slice(b"}}]{,\"@odata.broken\":");
                    v.extend_from_slice(&bytes[cut..]);
                    v
                }
            })
            .await
        }
        FaultKind::InvalidUtf8 { text } => {
            rewrite_body(next.run(req).await, |bytes| {
                faults::latin1_occurrences(bytes, &text)
            })
            .await
        }
        FaultKind::ExpiredToken => {
            req.extensions_mut().insert(HandlerFault::ForceExpired);
            next.run(req).await
        }
        FaultKind::BrokenNextLink => {
            req.extensions_mut().insert(HandlerFault::BreakNextLink);
            next.run(req).await
        }
        FaultKind::AdminApiErrors { errors } => {
            req.extensions_mut()
                .insert(HandlerFault::AdminApiErrors(errors));
            next.run(req).await
        }
        FaultKind::TransientException { exception, status } => {
            InvokeError::Transient { exception, status }.into_response(SERVER)
        }
    }
}
