//! The PostgreSQL backend of the agent's durable state ([`PgStore`]): the same behaviour as the
//! SQLite backend for every role of the store, on a database several agents share — one of them
//! writing at a time, behind a fenced lease ([`lease`], [`Fence`]).
//!
//! Tables (migrations in [`migrations`]): those of the SQLite backend (`job`, `cycles`,
//! `log_entries`, `journal`, `joins`, `escrow`, `staged_cycles`, `staged_plans`, `intents`,
//! `pins`), and `leases`, `agents`, `takeovers` for the cluster.
//!
//! The client is the blocking `postgres` crate; the store's API is blocking like SQLite's, and
//! each call runs on a thread of its own when made from an async runtime. The connection is
//! TLS only, the certificate and host name verified (rustls), and is opened again after the
//! server restarts.
//!
//! Architecture invariant: the store knows nothing of LDAP or Exchange Online; it persists the
//! core's `provisioning` types and never interprets staged plans (opaque JSON).

pub mod cluster;
mod connect;
mod copy;
mod cycles;
mod error;
mod fence;
mod job;
mod joins;
pub mod lease;
mod logs;
pub mod migrations;
mod outcomes;
mod pg;
mod pins;
mod recorder;
mod schema_cache;
mod staging;

pub use connect::{PgSettings, PgSettingsError, redact};
pub use exo_writeback_store::*;
pub use fence::{Fence, FenceToken};
pub use pg::PgStore;
