//! Tests of the agent library: its loop over an engine with in-memory ports, a real SQLite
//! state and an injected clock (no waiting); and the writer lease of a PostgreSQL state (a
//! real PostgreSQL from `lab/pg-up`).

mod forest;
mod lab_forest;
mod scheduler;
mod schema_cache;
mod state;
mod usn_mark;
