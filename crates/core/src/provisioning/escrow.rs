//! Escrow (PRODUCT.md §7): objects that failed, retried with back-off; and the quarantine's
//! back-off.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::{Reason, SourceIdentity, TargetIdentity};

// ---------------------------------------------------------------------------------------------
// Escrow
// ---------------------------------------------------------------------------------------------

/// A failed object, retried with growing back-off until it succeeds (PRODUCT.md §7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscrowEntry {
    /// The mailbox's ExternalDirectoryObjectId.
    pub cloud_id: String,
    /// The object as known when it failed (for display).
    pub source: SourceIdentity,
    pub target: TargetIdentity,
    /// The last error.
    pub error: Reason,
    /// How many times in a row the object has failed (1 after the first failure).
    pub attempts: u32,
    pub first_failed_at: Timestamp,
    pub last_failed_at: Timestamp,
    /// Not retried before this instant. Equal to `last_failed_at` when the retry is "the next
    /// cycle, whenever it runs".
    pub next_retry: Timestamp,
}

/// When a failed object is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backoff {
    /// In the next cycle, whenever that runs.
    NextCycle,
    /// Not before this long after the failure.
    After(SignedDuration),
}

/// The longest wait between two escrow retries.
pub const ESCROW_BACKOFF_CAP: SignedDuration = SignedDuration::from_hours(24);

/// The escrow back-off after `attempts` consecutive failures (PRODUCT.md §7): the next cycle,
/// then 1 min, 5 min, 30 min, 2 h, then doubling (4 h, 8 h, 16 h) capped at 24 h.
/// `attempts` 0 is treated like 1.
pub fn escrow_backoff(attempts: u32) -> Backoff {
    const MIN: i64 = 60;
    match attempts {
        0 | 1 => Backoff::NextCycle,
        2 => Backoff::After(SignedDuration::from_secs(MIN)),
        3 => Backoff::After(SignedDuration::from_secs(5 * MIN)),
        4 => Backoff::After(SignedDuration::from_secs(30 * MIN)),
        5 => Backoff::After(SignedDuration::from_hours(2)),
        n => {
            // 2 h · 2^(n-5), computed in hours and capped before it can overflow.
            let doublings = (n - 5).min(8);
            let hours = 2i64 << doublings;
            Backoff::After(SignedDuration::from_hours(hours).min(ESCROW_BACKOFF_CAP))
        }
    }
}

/// The instant a failed object becomes due again, given its consecutive failures and when it
/// last failed. Saturates at the end of time rather than overflowing.
pub fn escrow_next_retry(attempts: u32, failed_at: Timestamp) -> Timestamp {
    match escrow_backoff(attempts) {
        Backoff::NextCycle => failed_at,
        Backoff::After(d) => failed_at.checked_add(d).unwrap_or(Timestamp::MAX),
    }
}

/// The quarantine retry interval after `failed_cycles` consecutive bad cycles (PRODUCT.md
/// §7): 1 min, 5 min, 15 min, 1 h, then 6 h.
pub fn quarantine_backoff(failed_cycles: u32) -> SignedDuration {
    match failed_cycles {
        0 | 1 => SignedDuration::from_mins(1),
        2 => SignedDuration::from_mins(5),
        3 => SignedDuration::from_mins(15),
        4 => SignedDuration::from_hours(1),
        _ => SignedDuration::from_hours(6),
    }
}

impl EscrowEntry {
    /// The entry after one more failure at `failed_at` with `error`, starting from `previous`
    /// (the object's current escrow entry, if any).
    pub fn after_failure(
        previous: Option<&EscrowEntry>,
        failure: &EscrowFailure,
        failed_at: Timestamp,
    ) -> EscrowEntry {
        let attempts = previous.map_or(0, |p| p.attempts).saturating_add(1);
        EscrowEntry {
            cloud_id: failure.cloud_id.clone(),
            source: failure.source.clone(),
            target: failure.target.clone(),
            error: failure.error.clone(),
            attempts,
            first_failed_at: previous.map_or(failed_at, |p| p.first_failed_at),
            last_failed_at: failed_at,
            next_retry: escrow_next_retry(attempts, failed_at),
        }
    }

    /// Whether the object should be retried at `now`.
    pub fn is_due(&self, now: Timestamp) -> bool {
        self.next_retry <= now
    }
}

/// A failure to put into escrow (the store counts the attempts and computes the retry time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscrowFailure {
    pub cloud_id: String,
    pub source: SourceIdentity,
    pub target: TargetIdentity,
    pub error: Reason,
}
