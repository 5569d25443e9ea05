//! SQLite's errors classified into the [`StoreError`]s an administrator can act on.

use std::path::Path;

use exo_writeback_store::StoreError;
use rusqlite::ErrorCode;

/// `StoreError::sqlite(path, op, error)`: a SQLite error as a [`StoreError`].
pub(crate) trait Classify {
    fn sqlite(path: &Path, op: &'static str, source: rusqlite::Error) -> StoreError;
}

impl Classify for StoreError {
    /// Classifies a SQLite error into the variants an administrator can act on.
    fn sqlite(path: &Path, op: &'static str, source: rusqlite::Error) -> StoreError {
        let path = path.to_path_buf();
        if let rusqlite::Error::SqliteFailure(e, msg) = &source {
            match e.code {
                ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                    return StoreError::Locked { path, op };
                }
                ErrorCode::PermissionDenied | ErrorCode::ReadOnly => {
                    return StoreError::PermissionDenied { path, op };
                }
                ErrorCode::CannotOpen => return StoreError::CannotOpen { path, op },
                ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt => {
                    return StoreError::Corrupt {
                        path,
                        op,
                        detail: msg.clone().unwrap_or_else(|| e.to_string()),
                    };
                }
                ErrorCode::DiskFull => return StoreError::DiskFull { path, op },
                _ => {}
            }
        }
        StoreError::Backend {
            path,
            op,
            source: Box::new(source),
        }
    }
}
