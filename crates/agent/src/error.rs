//! Why the agent could not do what was asked. Every variant says what to do; none carries a
//! secret.

use std::path::PathBuf;

use exo_writeback_ad::AdError;
use exo_writeback_engine::EngineError;
use exo_writeback_exo::ExoError;
use exo_writeback_store_sqlite::StoreError;

use crate::config::{ConfigError, SecretError};

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A secret the configuration names that cannot be loaded (its message names the setting).
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(
        "the configuration has no [exo] section: the writeback needs an Exchange Online tenant to read"
    )]
    NoExo,
    /// A state directory or secret file open to others that cannot be made private.
    #[error(transparent)]
    Files(#[from] crate::files::FileError),
    #[error("cannot open the {what} {}", path.display())]
    LockFile {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot lock {}", path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "another exo-writeback sync or run is running cycles on {} (lock {}); wait for it or stop it first",
        dir.display(),
        lock.display()
    )]
    CycleRunnerBusy { dir: PathBuf, lock: PathBuf },
    /// An identity given on the command line names no object the state knows.
    #[error("{0}")]
    UnknownObject(String),
    #[error(transparent)]
    Ad(Box<AdError>),
    #[error(transparent)]
    Exo(Box<ExoError>),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Migrate(#[from] crate::migrate::MigrateError),
}

impl From<AdError> for AgentError {
    fn from(e: AdError) -> Self {
        AgentError::Ad(Box::new(e))
    }
}

impl From<ExoError> for AgentError {
    fn from(e: ExoError) -> Self {
        AgentError::Exo(Box::new(e))
    }
}
