//! The watermark of delta cycles (PRODUCT.md §8) and the tracker that never lets it pass
//! unprocessed work.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::CycleId;
use super::cloud_ids::CloudIdMap;

// ---------------------------------------------------------------------------------------------
// Watermark
// ---------------------------------------------------------------------------------------------

/// How far delta cycles have durably processed Exchange Online changes.
///
/// Invariant: every mailbox whose `WhenChangedUTC` is *strictly before* `changed_since` has a
/// durable outcome. Mailboxes changed exactly at `changed_since` may or may not have been
/// processed, so the next delta reads `WhenChangedUTC >= changed_since - overlap` (never `>`),
/// which re-reads the boundary instead of skipping it; re-processing an already-written
/// mailbox plans nothing (action `Other`). `overlap` covers replication delay and clock skew
/// in the service. Build it with [`WatermarkTracker`], which never passes unfinished work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watermark {
    pub changed_since: Timestamp,
    pub overlap: SignedDuration,
    /// The cycle that set it.
    pub cycle: CycleId,
    /// The mailboxes changed within the overlap before `changed_since` that have a durable
    /// outcome, each with the `WhenChangedUTC` it was processed at: the next delta reads them
    /// again (the overlap) and passes over those still at that instant, so a delta is
    /// proportional to the changes. A mailbox changed again, or changed at an instant inside
    /// the overlap that was not processed (it became visible late), is not passed over.
    /// Empty: every mailbox of the overlap is processed again (a watermark stored before the
    /// edge existed, or an edge too large to keep: [`MAX_EDGE`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edge: Vec<(String, Timestamp)>,
}

/// The largest edge a watermark keeps; beyond it the next delta processes the whole overlap
/// again (as before the edge existed) rather than store a huge watermark.
pub const MAX_EDGE: usize = 10_000;

/// The default overlap re-read by each delta cycle.
pub const DEFAULT_WATERMARK_OVERLAP: SignedDuration = SignedDuration::from_mins(2);

impl Watermark {
    /// The lower bound for the next delta query: `WhenChangedUTC >= query_from()`.
    pub fn query_from(&self) -> Timestamp {
        self.changed_since
            .checked_sub(self.overlap)
            .unwrap_or(Timestamp::MIN)
    }
}

/// Tracks the mailboxes of a cycle between "read from Exchange Online" and "outcome durable in
/// the store", and says how far the watermark may safely advance.
///
/// Use: `seen` when a mailbox is read, `durable` after `Store::record_outcome(s)` returned for
/// it, then `Store::set_watermark(&tracker.watermark(..))`.
#[derive(Debug, Clone)]
pub struct WatermarkTracker {
    floor: Timestamp,
    /// The greatest WhenChangedUTC seen.
    high: Option<Timestamp>,
    /// Seen but not yet durable: cloud id → WhenChangedUTC (compact: an initial cycle holds
    /// every mailbox here until its write).
    pending: CloudIdMap<Timestamp>,
    /// Count of pending ids per instant, for the minimum.
    pending_at: BTreeMap<Timestamp, usize>,
}

impl WatermarkTracker {
    /// `floor`: the watermark this cycle started from. For a delta cycle that is the previous
    /// `changed_since`; for an initial or full cycle the instant the cycle began reading
    /// (everything changed before it is in the enumeration).
    pub fn new(floor: Timestamp) -> Self {
        WatermarkTracker {
            floor,
            high: None,
            pending: CloudIdMap::new(),
            pending_at: BTreeMap::new(),
        }
    }

    /// A mailbox was read; its outcome is not yet durable. Seeing the same id again keeps the
    /// earlier instant (the safer one).
    pub fn seen(&mut self, cloud_id: &str, when_changed: Timestamp) {
        self.high = Some(self.high.map_or(when_changed, |h| h.max(when_changed)));
        if let Some(existing) = self.pending.get(cloud_id) {
            if *existing <= when_changed {
                return;
            }
            let old = *existing;
            self.unpend_instant(old);
        }
        self.pending.insert(cloud_id, when_changed);
        *self.pending_at.entry(when_changed).or_default() += 1;
    }

    /// The mailbox's outcome is now durable in the store.
    pub fn durable(&mut self, cloud_id: &str) {
        if let Some(t) = self.pending.remove(cloud_id) {
            self.unpend_instant(t);
        }
    }

    fn unpend_instant(&mut self, t: Timestamp) {
        if let Some(n) = self.pending_at.get_mut(&t) {
            *n -= 1;
            if *n == 0 {
                self.pending_at.remove(&t);
            }
        }
    }

    /// How many read mailboxes still wait for a durable outcome.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// The furthest safe `changed_since`: the earliest pending instant if any (it is re-read
    /// because the query uses `>=`), else the greatest instant seen; never below the floor.
    pub fn safe_changed_since(&self) -> Timestamp {
        let candidate = match self.pending_at.keys().next() {
            Some(earliest_pending) => *earliest_pending,
            None => self.high.unwrap_or(self.floor),
        };
        candidate.max(self.floor)
    }

    /// The watermark to store now.
    pub fn watermark(&self, cycle: CycleId, overlap: SignedDuration) -> Watermark {
        Watermark {
            changed_since: self.safe_changed_since(),
            overlap,
            cycle,
            edge: Vec::new(),
        }
    }

    /// Whether this mailbox was read and has no durable outcome yet.
    pub fn is_pending(&self, cloud_id: &str) -> bool {
        self.pending.contains_key(cloud_id)
    }
}
