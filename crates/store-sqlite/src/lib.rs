//! The embedded SQLite backend of the agent's durable state ([`SqliteStore`]): one file,
//! `state.db` in the configured `state_dir`, WAL mode, `synchronous=FULL`.
//!
//! Tables (migrations in [`migrations`]): `job` (state, watermark), `cycles`, `log_entries`,
//! `log_shapes`, `journal`, `joins`, `escrow`, `staged_cycles`, `staged_plans`, `intent_batches`, `pins`, and
//! `identity_keys` / `identity_keys_new` (how identities are found: `keys.rs`).
//!
//! The trait it implements, and the records it stores, are `exo-writeback-store`'s (re-exported
//! here, so a user of this backend needs one crate).
//!
//! Architecture invariant: the store knows nothing of LDAP or Exchange Online; it persists the
//! core's `provisioning` types and never interprets staged plans (opaque JSON).

mod compact;
mod copy;
mod cycles;
mod error;
mod escrow;
mod intents;
mod job;
mod joins;
mod keys;
mod logs;
pub mod migrations;
mod modified;
mod outcomes;
mod packed;
mod pins;
mod recorder;
mod records;
mod schema_cache;
mod sqlite;
mod staging;

pub use exo_writeback_store::*;
pub use sqlite::{DB_FILE_NAME, DEFAULT_STATE_DIR, SqliteStore};
