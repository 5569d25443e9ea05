//! exo-writeback's HTTP service: what an administrator watches and steers a running agent
//! with.
//!
//! - [`routes`]: the versioned JSON API (`/api/v1/…`), `/metrics`, `/healthz`, `/readyz`
//!   and the web console's static files; one file per operation.
//! - [`auth`]: bearer tokens from files with a role (reader, operator), compared in constant
//!   time; a refused request is logged with its source.
//! - [`model`]: the JSON shapes (the Graph API's `provisioningObjectSummary` fields where
//!   they fit); [`openapi`]: the OpenAPI document generated from them.
//! - [`metrics`]: the Prometheus registry; [`webhook`]: notifications.
//! - [`server`]: the listener (TLS from files beyond loopback); [`daemon`]: `exo-writeback
//!   run` — the scheduler and the server side by side, systemd readiness and watchdog,
//!   SIGHUP reload, a bounded stop; [`client`]: how the CLI finds and asks a running agent.
//!
//! Reads go through the store's read-only roles; every change runs the agent library's
//! operation behind the state lock, so the agent stays the single writer.
//!
//! Architecture invariant: the engine knows nothing of this crate; this crate prints nothing.

pub mod auth;
pub mod client;
pub mod daemon;
pub mod error;
pub mod metrics;
pub mod model;
pub mod openapi;
pub mod routes;
pub mod server;
pub mod state;
pub mod webhook;

pub use error::ApiError;
pub use state::AppState;
