//! The store's behaviour, written once and run against every backend (feature `testing`).
//!
//! A backend's integration tests implement [`Backend`] (how to open a fresh, empty store, and a
//! second handle on the same state) and expand [`conformance_tests!`](crate::conformance_tests)
//! with it: every test body of [`conformance`] becomes a `#[test]` of that binary. The fixtures
//! (objects numbered `n`, with binary and non-ASCII values) are in [`fixtures`].

pub mod conformance;
pub mod fixtures;

use std::ops::{Deref, DerefMut};

use crate::Store;

/// A fresh store of a backend, with whatever keeps its state alive (a temporary directory, a
/// database dropped afterwards).
pub struct TestStore<S> {
    pub store: S,
    /// Where the state is, for [`Backend::reopen`] (a file path or a database URL).
    pub location: String,
    _keep: Box<dyn std::any::Any>,
}

impl<S> TestStore<S> {
    pub fn new(store: S, location: impl Into<String>, keep: impl std::any::Any) -> Self {
        TestStore {
            store,
            location: location.into(),
            _keep: Box::new(keep),
        }
    }
}

impl<S> Deref for TestStore<S> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.store
    }
}

impl<S> DerefMut for TestStore<S> {
    fn deref_mut(&mut self) -> &mut S {
        &mut self.store
    }
}

/// A backend under test.
pub trait Backend {
    type Store: Store;
    /// A fresh, empty store.
    fn open(&self) -> TestStore<Self::Store>;
    /// Another handle on the same state (what the next process sees).
    fn reopen(&self, store: &TestStore<Self::Store>) -> Self::Store;
}

/// Expands to one `#[test]` per test body of [`conformance`], each run against `$backend` (an
/// expression of a type implementing [`Backend`]).
#[macro_export]
macro_rules! conformance_tests {
    ($backend:expr) => {
        $crate::conformance_tests!(@each $backend;
            cycles_are_numbered_finished_and_listed_newest_first,
            job_states_and_watermarks_round_trip_exactly,
            restart_full_forgets_progress_but_keeps_history,
            restart_scopes_touch_only_their_part,
            pins_come_and_go_with_outcomes_and_by_hand,
            a_pause_is_kept_and_lifted,
            a_held_cycle_is_rejected_once_and_cannot_be_approved_after,
            the_last_cycle_of_some_kinds_skips_the_others,
            repeated_failures_follow_the_back_off_schedule,
            due_entries_are_those_whose_retry_time_has_come,
            intents_round_trip_in_the_order_recorded,
            outcomes_and_the_deletion_of_their_intents_commit_together,
            deleting_intents_counts_only_those_that_existed,
            intents_survive_a_reopen,
            binary_and_text_values_round_trip_byte_exact,
            journal_by_cycle_and_by_object_newest_first,
            log_filters,
            pages_follow_each_other_and_one_entry_is_read_by_id,
            entries_round_trip_exactly,
            retention_purges_old_entries_and_journal_only,
            a_large_purge_removes_everything_older,
            an_outcome_is_stored_whole,
            a_constraint_violation_in_the_middle_stores_nothing_of_the_outcome,
            outcomes_recorded_by_the_log_recorder_read_as_the_stores_own,
            a_batch_is_all_or_nothing,
            a_watermark_committed_with_a_failing_batch_is_not_stored,
            joins_are_set_replaced_listed_and_removed,
            staged_plans_round_trip_in_order_and_are_approved_once,
            staging_needs_an_existing_cycle_and_approval_needs_staged_changes,
            a_state_exported_and_imported_keeps_every_row,
            a_schema_snapshot_is_kept_and_replaced,
            a_schema_snapshot_is_not_copied,
        );
    };
    (@each $backend:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::testing::conformance::$name(&$backend)
            }
        )*
    };
}
