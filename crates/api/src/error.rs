//! The API's errors: a status and a JSON body in the Graph API's shape,
//! `{"error": {"code": "...", "message": "..."}}`. The message is the agent's own (what
//! happened and what to do); none carries a secret.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use exo_writeback_agent::AgentError;
use exo_writeback_agent::config::Role;
use exo_writeback_engine::EngineError;
use exo_writeback_store_sqlite::StoreError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable code: `Unauthorized`, `Forbidden`, `NotFound`, `BadRequest`, `Held`,
    /// `NotHeld`, `Paused`, `Quarantined`, `NothingToUndo`, `Stopped`, `Conflict`,
    /// `Unavailable`, `Internal`.
    pub code: String,
    pub message: String,
}

/// An error with its HTTP status.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "send a valid token: Authorization: Bearer <token> (see [[api.tokens]])",
        )
    }

    pub fn forbidden(needed: Role) -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!("this needs a token with the {} role", needed.as_str()),
        )
    }

    pub fn not_found(what: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "NotFound", what)
    }

    pub fn bad_request(what: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "BadRequest", what)
    }

    /// The body's `error`.
    pub fn detail(&self) -> ErrorDetail {
        ErrorDetail {
            code: self.code.to_string(),
            message: self.message.clone(),
        }
    }

    pub fn internal(what: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal",
            what.to_string(),
        )
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        let (status, code) = match &e {
            EngineError::Held { .. } => (StatusCode::CONFLICT, "Held"),
            EngineError::Paused(_) => (StatusCode::CONFLICT, "Paused"),
            EngineError::NotHeld { .. } => (StatusCode::CONFLICT, "NotHeld"),
            EngineError::NothingToUndo(_) => (StatusCode::CONFLICT, "NothingToUndo"),
            EngineError::Quarantined { .. } => (StatusCode::CONFLICT, "Quarantined"),
            EngineError::Stopped { .. } => (StatusCode::SERVICE_UNAVAILABLE, "Stopped"),
            EngineError::Source(_) | EngineError::Directory(_) => {
                (StatusCode::BAD_GATEWAY, "Unavailable")
            }
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "Internal"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<AgentError> for ApiError {
    fn from(e: AgentError) -> ApiError {
        match e {
            AgentError::Engine(e) => e.into(),
            AgentError::Ad(_) | AgentError::Exo(_) => {
                ApiError::new(StatusCode::BAD_GATEWAY, "Unavailable", e.to_string())
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        ApiError::internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"exo-writeback\""),
            );
        }
        response
    }
}
