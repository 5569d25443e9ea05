//! The exo-writeback agent as a library: what a daemon, the CLI and tests compose alike.
//!
//! - [`config`]: the configuration file.
//! - [`admin`]: an administrator's decisions on the state (pause, resume, reject, unpin).
//! - [`exo`] and [`ad`]: the engine's ports over the Exchange Online and AD clients (the AD
//!   adapter classifies AD's errors for the engine).
//! - [`address_guard`]: who in the whole forest holds an address a plan adds.
//! - [`dc_status`]: the DCs in use and the last failover, recorded for `status`.
//! - [`compose`]: the configuration turned into an engine — for reading, for writing (behind
//!   the state lock), for cycles.
//! - [`lock`]: one writer per state (the cycle runner's lock and the state lock).
//! - [`observe`]: the edges' requests (LDAP, Exchange Online) reported for metrics.
//! - [`state`]: where the state lives (`[state]`: SQLite, or PostgreSQL shared by several
//!   agents, one leading and writing through leases with fencing).
//! - [`migrate`]: a SQLite state copied into PostgreSQL, its counts verified.
//! - [`scheduler`]: the agent's loop over an engine, with an injected clock.
//! - [`files`]: the state directory and secret files, private to the agent's user.
//! - [`signals`]: SIGTERM and Ctrl-C as a stop flag.
//! - [`check`]: both sides checked, as a [`check::CheckReport`] the CLI prints.
//! - [`test_pause`]: a pause after the n-th modify, for the fault tests (inert unless its
//!   environment variable is set).
//!
//! Architecture invariant: no printing (the CLI prints); errors are typed ([`AgentError`]).

pub mod ad;
pub mod address_guard;
pub mod admin;
pub mod check;
pub mod compose;
pub mod config;
pub mod dc_status;
mod error;
pub mod exo;
pub mod files;
pub mod lock;
pub mod migrate;
pub mod observe;
pub mod read_rights;
pub mod scheduler;
pub mod schema_cache;
pub mod signals;
pub mod state;
pub mod test_pause;

pub use error::AgentError;
