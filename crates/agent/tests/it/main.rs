//! Tests of the agent library: its loop over an engine with in-memory ports, a real SQLite
//! state and an injected clock (no waiting).

mod forest;
mod lab_forest;
mod scheduler;
