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
        routes::provision::provision_stream,
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    /// `docs/openapi.json`, beside the workspace's other documents.
    fn committed_path() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
    }

    /// The committed document is what the code says. After changing a route or a shape, write
    /// it anew with `UPDATE_OPENAPI=1 cargo test -p exo-writeback-api --lib openapi`.
    #[test]
    fn the_committed_openapi_document_is_not_stale() {
        let path = committed_path();
        let generated = super::document();
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::write(&path, &generated).expect("write docs/openapi.json");
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/openapi.json is stale: run `UPDATE_OPENAPI=1 cargo test -p exo-writeback-api --lib openapi` and commit it"
        );
    }

    #[test]
    fn the_document_says_every_route_but_health_needs_a_token() {
        let doc: serde_json::Value =
            serde_json::from_str(&super::document()).expect("the document is JSON");
        let paths = doc["paths"].as_object().expect("paths");
        assert!(paths.contains_key("/api/v1/pause"), "{paths:?}");
        for (path, ops) in paths {
            for (method, op) in ops.as_object().expect("operations") {
                let open = path == "/healthz" || path == "/readyz";
                assert_eq!(
                    op["security"].is_null(),
                    open,
                    "{method} {path}: security {}",
                    op["security"]
                );
            }
        }
    }
}
