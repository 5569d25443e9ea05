//! The DC's change counter, so that an initial or full cycle decides on its scan's copy of an
//! object that has not changed since, instead of reading it again (Microsoft Learn, "Polling
//! for Changes Using the USNChanged Attribute" and "Example Code to Retrieve Changes Using
//! USNChanged").
//!
//! Before the scan's first request the cycle reads the mark of the DC the scan reads from
//! ([`Directory::change_mark`]: its identity and highestCommittedUSN); after the scan, the mark
//! stands only if the directory is still served by that DC. Where today a batch's candidates
//! are read fresh, those the scan kept are first checked with one search on the mark's DC
//! ([`Directory::changed_since`]): a kept copy of an object with no change since the mark is
//! what a fresh read would return, and is used as one; an object changed, moved or deleted
//! since, or not kept, is read fresh. When the check fails (another DC, no answer), the mark is
//! dropped for the rest of the cycle and every candidate is read fresh, as without it.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};

use exo_writeback_core::directory::DirectoryObject;
use uuid::Uuid;

use crate::engine::Engine;
use crate::match_index::MatchIndex;
use crate::ports::{ChangeMark, Directory};

/// A cycle's mark, confirmed after its scan; dropped at the first check that fails.
#[derive(Debug)]
pub(crate) struct ScanMark {
    mark: ChangeMark,
    dropped: AtomicBool,
}

impl ScanMark {
    pub(crate) fn new(mark: ChangeMark) -> Self {
        ScanMark {
            mark,
            dropped: AtomicBool::new(false),
        }
    }

    /// Whether the mark may still be used.
    pub(crate) fn usable(&self) -> bool {
        !self.dropped.load(Ordering::SeqCst)
    }
}

impl<S, D: Directory, St> Engine<S, D, St> {
    /// The directory's change mark before a scan: `None` when it has none, or reading it
    /// failed (every candidate is then read fresh).
    pub(crate) async fn read_mark(&self) -> Option<ChangeMark> {
        match self.directory.change_mark().await {
            Ok(Some(mark)) => Some(mark),
            Ok(None) => {
                tracing::debug!(
                    "the directory keeps no change mark for this scope: candidates are read fresh"
                );
                None
            }
            Err(e) => {
                tracing::info!(error = %e, "cannot read the DC's change mark (highestCommittedUSN): candidates are read fresh");
                None
            }
        }
    }

    /// The mark read before the scan, when the directory is still served by the same DC (and
    /// incarnation) after it: a scan that moved to another DC may hold objects that DC's
    /// counter does not order against the mark.
    pub(crate) async fn confirm_mark(&self, before: Option<ChangeMark>) -> Option<ScanMark> {
        let before = before?;
        match self.directory.change_mark().await {
            Ok(Some(now)) if now.dc == before.dc => Some(ScanMark::new(before)),
            Ok(now) => {
                tracing::info!(
                    before = %before.dc,
                    after = now.as_ref().map_or("none", |m| m.dc.as_str()),
                    "the directory moved to another DC during the scan: candidates are read fresh"
                );
                None
            }
            Err(e) => {
                tracing::info!(error = %e, "cannot read the DC's change mark after the scan: candidates are read fresh");
                None
            }
        }
    }

    /// Of `guids` (sorted, without repeats), the copies the scan kept of those unchanged since
    /// the mark, and the GUIDs to read fresh: those changed since (or deleted, or moved), and
    /// those not kept. Without a usable mark, every GUID is read fresh.
    pub(crate) async fn unchanged_kept(
        &self,
        mark: Option<&ScanMark>,
        index: &MatchIndex,
        guids: Vec<Uuid>,
    ) -> (Vec<DirectoryObject>, Vec<Uuid>) {
        let Some(mark) = mark.filter(|m| m.usable()) else {
            return (Vec::new(), guids);
        };
        let (kept, mut fresh): (Vec<Uuid>, Vec<Uuid>) =
            guids.into_iter().partition(|g| index.cached(g).is_some());
        if kept.is_empty() {
            return (Vec::new(), fresh);
        }
        let changed: HashSet<Uuid> = match self.directory.changed_since(&mark.mark, &kept).await {
            Ok(changed) => changed.into_iter().collect(),
            Err(e) => {
                if !mark.dropped.swap(true, Ordering::SeqCst) {
                    tracing::info!(error = %e, "cannot ask the DC what changed since the scan; the rest of the cycle reads candidates fresh");
                }
                fresh.extend(kept);
                fresh.sort_unstable();
                return (Vec::new(), fresh);
            }
        };
        let mut objects = Vec::with_capacity(kept.len());
        for g in kept {
            match index.cached(&g) {
                Some(o) if !changed.contains(&g) => objects.push(o.clone()),
                _ => fresh.push(g),
            }
        }
        fresh.sort_unstable();
        (objects, fresh)
    }
}
