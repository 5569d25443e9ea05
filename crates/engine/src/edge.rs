//! Deltas proportional to the changes: the mailboxes a cycle processed inside the overlap
//! window are stored with the watermark ([`Watermark::edge`]), each with the `WhenChangedUTC`
//! it was processed at, and the next delta passes over a mailbox still at that instant instead
//! of importing, matching and planning it again. A mailbox changed since (another instant), or
//! one inside the window that no cycle processed (visible late), is processed; a mailbox
//! without a durable outcome (its write stopped) is not in the edge. An edge too large is not
//! kept (the overlap is then processed whole, as before).

use std::collections::{BTreeMap, HashMap, HashSet};

use exo_writeback_core::provisioning::{MAX_EDGE, Watermark, WatermarkTracker};
use jiff::{SignedDuration, Timestamp};

/// A cycle's view of the edge: the previous watermark's (to pass over) and the one it builds.
#[derive(Debug, Default)]
pub(crate) struct Edge {
    /// The previous watermark's edge (deltas only): cloud id → the instant processed.
    before: HashMap<String, Timestamp>,
    /// Those passed over in this cycle.
    passed: HashSet<String>,
    /// Mailboxes of this cycle near its newest change, by `WhenChangedUTC` (older ones than
    /// the newest minus the overlap are dropped as the cycle reads).
    recent: BTreeMap<Timestamp, Vec<String>>,
    kept: usize,
    newest: Option<Timestamp>,
    overlap: SignedDuration,
}

impl Edge {
    /// For a delta from `previous`: its edge is passed over. Other cycles process everything.
    pub(crate) fn new(previous: Option<&Watermark>, delta: bool, overlap: SignedDuration) -> Edge {
        let before = match previous {
            Some(w) if delta => w.edge.iter().cloned().collect(),
            _ => HashMap::new(),
        };
        Edge {
            before,
            overlap,
            ..Edge::default()
        }
    }

    /// Whether the mailbox was processed at this very `WhenChangedUTC` by the cycle that set
    /// the watermark: it is passed over (and stays in the edge).
    pub(crate) fn processed(&mut self, id: &str, when_changed: Option<Timestamp>) -> bool {
        let Some(t) = when_changed else {
            return false;
        };
        if self.before.get(id) != Some(&t) {
            return false;
        }
        // Once in the edge, however often a listing repeats it.
        if self.passed.insert(id.to_string()) {
            self.note(id, t);
        }
        true
    }

    /// A mailbox this cycle read (its outcome decides later whether it joins the edge).
    pub(crate) fn note(&mut self, id: &str, t: Timestamp) {
        let newest = self.newest.map_or(t, |n| n.max(t));
        self.newest = Some(newest);
        let floor = newest.checked_sub(self.overlap).unwrap_or(Timestamp::MIN);
        if t < floor {
            return;
        }
        self.recent.entry(t).or_default().push(id.to_string());
        self.kept += 1;
        while let Some((&oldest, _)) = self.recent.first_key_value()
            && oldest < floor
        {
            if let Some((_, ids)) = self.recent.pop_first() {
                self.kept -= ids.len();
            }
        }
    }

    /// The edge of the watermark `wm` this cycle stores: the mailboxes within its overlap with
    /// a durable outcome; empty when there are more than [`MAX_EDGE`].
    pub(crate) fn for_watermark(
        &self,
        wm: &Watermark,
        tracker: &WatermarkTracker,
    ) -> Vec<(String, Timestamp)> {
        let from = wm.query_from();
        let mut out = Vec::new();
        for (t, ids) in self.recent.range(from..) {
            for id in ids {
                if !tracker.is_pending(id) {
                    out.push((id.clone(), *t));
                }
            }
            if out.len() > MAX_EDGE {
                return Vec::new();
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use exo_writeback_core::provisioning::CycleId;

    fn at(mins: i64) -> Timestamp {
        Timestamp::UNIX_EPOCH + SignedDuration::from_mins(1_000 + mins)
    }

    #[test]
    fn only_mailboxes_at_the_processed_instant_are_passed_over_and_pending_ones_never_kept() {
        let overlap = SignedDuration::from_mins(5);
        let mut first = Edge::new(None, false, overlap);
        let mut tracker = WatermarkTracker::new(Timestamp::MIN);
        for (id, m) in [("old", 0), ("a", 8), ("b", 10), ("stopped", 9)] {
            first.note(id, at(m));
            tracker.seen(id, at(m));
        }
        for id in ["old", "a", "b"] {
            tracker.durable(id);
        }
        let mut wm = tracker.watermark(CycleId(1), overlap);
        assert_eq!(
            wm.changed_since,
            at(9),
            "the pending mailbox holds the watermark"
        );
        wm.edge = first.for_watermark(&wm, &tracker);
        // Within [9 - 5, …]: a and b; "old" is outside the window, "stopped" has no outcome.
        let mut ids: Vec<&str> = wm.edge.iter().map(|(i, _)| i.as_str()).collect();
        ids.sort();
        assert_eq!(ids, ["a", "b"]);
        let mut next = Edge::new(Some(&wm), true, overlap);
        assert!(next.processed("a", Some(at(8))));
        assert!(!next.processed("b", Some(at(11))), "changed again");
        assert!(!next.processed("stopped", Some(at(9))), "never processed");
        assert!(!next.processed("late", Some(at(7))), "visible late");
        assert!(!next.processed("a", None));
        // A full reconcile passes nothing over.
        let mut full = Edge::new(Some(&wm), false, overlap);
        assert!(!full.processed("a", Some(at(8))));
    }
}
