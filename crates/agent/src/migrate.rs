//! `exo-writeback state migrate --to postgres://…`: the SQLite state of `sync.state_dir`
//! copied whole into an empty PostgreSQL state, in one transaction, and the counts of every
//! table compared afterwards. The SQLite state lock is held throughout (no local command
//! writes meanwhile) and so is the PostgreSQL writer lease (no agent on the target writes).

use std::path::PathBuf;

use exo_writeback_store_sqlite::{DB_FILE_NAME, SqliteStore, StateCopy, StateCounts};

use crate::config::Config;
use crate::error::AgentError;
use crate::lock::StateLock;
use crate::state::{State, StateSettings};

const COMMAND: &str = "exo-writeback state migrate";

/// A finished copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// The SQLite database copied.
    pub source: PathBuf,
    /// The PostgreSQL state (its URL without a password).
    pub target: String,
    /// The rows of each table, the same on both sides.
    pub counts: StateCounts,
}

/// Why the copy was refused or did not add up.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("there is no SQLite state to copy: {} does not exist", path.display())]
    NoSource { path: PathBuf },
    #[error(
        "the counts differ after the copy into {target}: {detail}; the PostgreSQL state must not \
         be used — drop its tables (or the database) and run the migration again"
    )]
    Mismatch { target: String, detail: String },
}

/// Copies the configuration's SQLite state into the PostgreSQL state `target` names.
pub async fn sqlite_to_postgres(
    config: &Config,
    target: &StateSettings,
) -> Result<Migrated, AgentError> {
    let dir = &config.sync.state_dir;
    let source_path = dir.join(DB_FILE_NAME);
    if !source_path.exists() {
        return Err(MigrateError::NoSource { path: source_path }.into());
    }
    let _local = StateLock::acquire(dir, COMMAND).await?;
    let state = State::postgres(target, COMMAND)?;
    let _writer = state.writer(COMMAND).await?;
    let source = SqliteStore::open_in(dir)?;
    let mut pg = state.pg_store()?;
    let copied = pg.import_from(&source)?;
    let expected = source.counts()?;
    let found = pg.counts()?;
    let target_label = state.location();
    let mut differ = Vec::new();
    for ((table, want), ((_, got), (_, moved))) in expected
        .tables()
        .into_iter()
        .zip(found.tables().into_iter().zip(copied.tables()))
    {
        if want != got || want != moved {
            differ.push(format!(
                "{table}: {want} in SQLite, {moved} copied, {got} in PostgreSQL"
            ));
        }
    }
    if !differ.is_empty() {
        return Err(MigrateError::Mismatch {
            target: target_label,
            detail: differ.join(", "),
        }
        .into());
    }
    Ok(Migrated {
        source: source_path,
        target: target_label,
        counts: found,
    })
}
