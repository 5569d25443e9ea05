//! The OpenAPI document, generated from the routes and shapes in the code (`utoipa`). It is
//! committed as `docs/openapi.json`; a test fails when that file is not what the code says.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A token from one of the files [[api.tokens]] names; its role (reader or operator) says what it may do",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "exo-writeback agent API",
        description = "Watch and steer a running exo-writeback agent: status, cycles, provisioning logs, provision on demand, held cycles and their approval, undo, escrow, restart, metrics. Every route but /healthz and /readyz needs a bearer token; reads need the reader role, changes the operator role.",
        license(name = "Apache-2.0"),
    ),
    paths(
        routes::health::healthz,
        routes::health::readyz,
        routes::metrics::metrics,
        routes::status::status,
        routes::cycles::list,
        routes::cycles::one,
        routes::logs::list,
        routes::logs::one,
        routes::preview::preview,
        routes::provision::provision,
        routes::held::list,
        routes::held::changes,
        routes::held::approve,
        routes::held::reject,
        routes::pause::pause,
        routes::pause::resume,
        routes::unpin::unpin,
        routes::undo::undo,
        routes::escrow::list,
        routes::escrow::retry,
        routes::restart::restart,
    ),
    modifiers(&Bearer),
    tags(
        (name = "health", description = "Liveness and readiness, without a token"),
        (name = "status", description = "The job and the agents"),
        (name = "cycles"), (name = "logs", description = "Provisioning logs"),
        (name = "held", description = "Cycles held by the change threshold"),
        (name = "escrow", description = "Objects that failed, waiting for a retry"),
        (name = "operations", description = "Provision, preview, undo, unpin, pause and resume, restart"),
        (name = "metrics", description = "Prometheus"),
    )
)]
pub struct ApiDoc;

/// The document as committed (pretty JSON, a final newline).
pub fn document() -> String {
    let mut text = ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    text.push('\n');
    text
}

pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
