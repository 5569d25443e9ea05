//! The fence: every write transaction of a process that shares the state checks, inside the
//! transaction, that the process still holds the writer lease with the epoch it acquired. A
//! takeover increments the epoch; the check reads the lease row `FOR SHARE`, so a takeover
//! waits for a write in flight and every write after it sees the new epoch. A paused or
//! partitioned former writer that wakes up stores nothing.

use std::path::Path;
use std::sync::{Arc, Mutex};

use exo_writeback_store::{Result, StoreError};
use jiff::Timestamp;
use postgres::GenericClient;
use uuid::Uuid;

use crate::error::E;
use crate::pg::{Db, get};

/// The writer lease a process holds: who and which epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FenceToken {
    pub holder: Uuid,
    pub epoch: i64,
}

/// What a store's writes check. Shared by the store and the lease that sets it.
#[derive(Debug, Clone, Default)]
pub struct Fence(Option<Arc<Mutex<Option<FenceToken>>>>);

impl Fence {
    /// Writes are not checked (tests of the store; a database no agent shares yet).
    pub fn unenforced() -> Fence {
        Fence(None)
    }

    /// Writes are checked against the writer lease; until one is held every write is refused.
    pub fn enforced() -> Fence {
        Fence(Some(Arc::new(Mutex::new(None))))
    }

    pub fn is_enforced(&self) -> bool {
        self.0.is_some()
    }

    /// Sets (on acquiring the writer lease) or clears (on losing or releasing it) the token.
    pub fn set(&self, token: Option<FenceToken>) {
        if let Some(cell) = &self.0 {
            *cell
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = token;
        }
    }

    /// The token held, if any.
    pub fn current(&self) -> Option<FenceToken> {
        self.0.as_ref().and_then(|cell| {
            *cell
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        })
    }

    /// The token a write checks: `None` when writes are not checked; an error when they are
    /// and this process holds no writer lease.
    pub(crate) fn token(&self, path: &Path, op: &'static str) -> Result<Option<FenceToken>> {
        match &self.0 {
            None => Ok(None),
            Some(_) => match self.current() {
                Some(t) => Ok(Some(t)),
                None => Err(StoreError::Fenced {
                    path: path.to_path_buf(),
                    op,
                    detail: "this process holds no writer lease".into(),
                }),
            },
        }
    }
}

/// Inside a write transaction: the writer lease is still ours, with our epoch, and not expired
/// (by the database's clock). The row stays share-locked until the transaction ends.
pub(crate) fn check_fence<C: GenericClient>(
    db: &mut Db<'_, C>,
    token: &FenceToken,
    path: &Path,
    op: &'static str,
) -> Result<(), E> {
    let row = db.query_opt(
        "SELECT holder, epoch, expires_at > clock_timestamp(), host, pid, expires_at
         FROM leases WHERE name = 'writer' FOR SHARE",
        &[],
    )?;
    let Some(row) = row else {
        return Err(fenced(path, op, "the state has no writer lease row".into()));
    };
    let holder: Option<Uuid> = get(&row, 0)?;
    let epoch: i64 = get(&row, 1)?;
    let live: Option<bool> = get(&row, 2)?;
    if holder == Some(token.holder) && epoch == token.epoch && live == Some(true) {
        return Ok(());
    }
    let host: Option<String> = get(&row, 3)?;
    let pid: Option<i32> = get(&row, 4)?;
    let expires: Option<Timestamp> = get(&row, 5)?;
    let detail = if epoch != token.epoch || holder != Some(token.holder) {
        match (holder, host, pid) {
            (Some(_), Some(host), Some(pid)) => format!(
                "epoch {} of the lease belongs to {host} pid {pid}; this process held epoch {}",
                epoch, token.epoch
            ),
            _ => format!(
                "the lease is at epoch {epoch}, released or taken since; this process held epoch {}",
                token.epoch
            ),
        }
    } else {
        format!(
            "this process's lease (epoch {epoch}) expired at {}",
            expires.map_or_else(|| "an unknown time".into(), |t| t.to_string())
        )
    };
    Err(fenced(path, op, detail))
}

fn fenced(path: &Path, op: &'static str, detail: String) -> E {
    E::Store(StoreError::Fenced {
        path: path.to_path_buf(),
        op,
        detail,
    })
}
