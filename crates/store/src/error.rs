//! Store errors: what failed, on which file, and what the administrator can do.

use std::path::PathBuf;

/// An error of the state store. Every variant names the database file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "state database {path} is locked by another process ({op}); stop the other exo-writeback \
         process using this state_dir, or point this one at a different state_dir"
    )]
    Locked { path: PathBuf, op: &'static str },

    #[error(
        "permission denied on state database {path} ({op}); give the agent's user read and write \
         access to the file and its directory (WAL needs to create {path}-wal next to it)"
    )]
    PermissionDenied { path: PathBuf, op: &'static str },

    #[error(
        "state database {path} is corrupt or not an exo-writeback database ({op}: {detail}); \
         move it aside and run `exo-writeback restart --scope full` to rebuild the state from \
         Exchange Online (logs and journal in the old file are lost)"
    )]
    Corrupt {
        path: PathBuf,
        op: &'static str,
        detail: String,
    },

    #[error(
        "state database {path} has schema version {found}, newer than this exo-writeback \
         supports ({supported}); run the newer exo-writeback, or restore an older backup"
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },

    #[error(
        "cannot open state database {path} ({op}); check that its directory exists, is a \
         directory, and that the agent's user can write to it"
    )]
    CannotOpen { path: PathBuf, op: &'static str },

    #[error("the disk holding state database {path} is full ({op}); free some space and retry")]
    DiskFull { path: PathBuf, op: &'static str },

    #[error(
        "cannot create state directory {dir}: {source}; create it and give the agent's user write access"
    )]
    StateDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Any other error of the backend (its own error type, kept as the source).
    #[error("state database {path}: {op} failed: {source}")]
    Backend {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A stored row does not decode: written by a different version, or edited by hand.
    #[error(
        "state database {path}: stored {what} does not decode ({detail}); the file was written \
         by an incompatible version or edited by hand"
    )]
    BadRow {
        path: PathBuf,
        what: &'static str,
        detail: String,
    },

    /// A value cannot be stored (e.g. a timestamp outside the years 1677–2262).
    #[error("state database {path}: cannot store {what}: {detail}")]
    Unstorable {
        path: PathBuf,
        what: &'static str,
        detail: String,
    },

    /// The request refers to something that is not there, or is in the wrong state.
    #[error("state database {path}: {message}")]
    Invalid { path: PathBuf, message: String },

    /// The database server cannot be reached (a shared state: PostgreSQL). Nothing was stored.
    #[error(
        "cannot reach the state database {path} ({op}: {detail}); nothing was stored: this agent \
         writes nothing until the database answers again"
    )]
    Unavailable {
        path: PathBuf,
        op: &'static str,
        detail: String,
    },

    /// A shared state refused a write because this process no longer holds the writer lease
    /// (another agent took over, or the lease lapsed): a fenced writer stores nothing.
    #[error(
        "state database {path}: {op} refused: this process no longer holds the writer lease \
         ({detail}); nothing was stored — another agent writes now, or the lease lapsed while \
         this one could not renew it"
    )]
    Fenced {
        path: PathBuf,
        op: &'static str,
        detail: String,
    },
}

impl StoreError {
    /// Whether the write was refused because this process lost the writer lease.
    pub fn is_fenced(&self) -> bool {
        matches!(self, StoreError::Fenced { .. })
    }

    /// Whether the database server could not be reached.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }
}

/// The store's result type.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
