//! PostgreSQL's errors classified into the [`StoreError`]s an administrator can act on.

use std::path::Path;

use exo_writeback_store::StoreError;
use postgres::error::SqlState;

/// An error inside a store operation: the client's, or one of ours (a row that does not
/// decode, a fenced write).
#[derive(Debug)]
pub(crate) enum E {
    Pg(postgres::Error),
    Store(StoreError),
}

impl From<postgres::Error> for E {
    fn from(e: postgres::Error) -> Self {
        E::Pg(e)
    }
}

impl From<StoreError> for E {
    fn from(e: StoreError) -> Self {
        E::Store(e)
    }
}

impl std::fmt::Display for E {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            E::Pg(e) => write!(f, "{e}"),
            E::Store(e) => write!(f, "{e}"),
        }
    }
}

impl E {
    pub(crate) fn into_store(self, path: &Path, op: &'static str) -> StoreError {
        match self {
            E::Pg(e) => classify(path, op, e),
            E::Store(e) => e,
        }
    }

    /// The connection is gone (the server restarted, the network broke): reconnect.
    pub(crate) fn lost_connection(&self) -> bool {
        match self {
            E::Pg(e) => connection_lost(e),
            E::Store(e) => e.is_unavailable(),
        }
    }
}

/// Whether the client's error means the connection is unusable.
pub(crate) fn connection_lost(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(code) => [
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::CONNECTION_FAILURE,
            SqlState::CONNECTION_EXCEPTION,
            SqlState::CONNECTION_DOES_NOT_EXIST,
            SqlState::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION,
            SqlState::IDLE_SESSION_TIMEOUT,
            SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT,
        ]
        .contains(code),
        // No server error: I/O, TLS, a timeout.
        None => true,
    }
}

/// Classifies a PostgreSQL error.
pub(crate) fn classify(path: &Path, op: &'static str, e: postgres::Error) -> StoreError {
    let path = path.to_path_buf();
    if let Some(code) = e.code() {
        if *code == SqlState::INSUFFICIENT_PRIVILEGE {
            return StoreError::PermissionDenied { path, op };
        }
        if *code == SqlState::DISK_FULL {
            return StoreError::DiskFull { path, op };
        }
        if *code == SqlState::INVALID_PASSWORD
            || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
            || *code == SqlState::INVALID_CATALOG_NAME
        {
            // Connecting works but is refused: a configuration problem, said as the server
            // says it.
            return StoreError::Invalid {
                path,
                message: format!(
                    "{op}: {} (check state.url, the user's password and that the database exists)",
                    e.as_db_error()
                        .map_or_else(|| e.to_string(), |d| d.message().to_string())
                ),
            };
        }
    }
    if connection_lost(&e) {
        return StoreError::Unavailable {
            path,
            op,
            detail: detail(&e),
        };
    }
    // The server's message names the table and constraint ("db error" alone says nothing).
    StoreError::Backend {
        path,
        op,
        source: Box::new(PgError(detail(&e))),
    }
}

/// A PostgreSQL error as its whole text.
#[derive(Debug)]
struct PgError(String);

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PgError {}

/// The error and its causes on one line (the TLS or I/O reason is in the source).
fn detail(e: &postgres::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}
