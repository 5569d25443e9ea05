//! Errors the source reports beside a result page (Exchange Online's `@adminapi.errors`): the
//! mailboxes handed on before them are processed and written, the error is a Failure of the
//! provisioning log and the cycle's reason, and the watermark waits for the next poll.

use exo_writeback_core::outcome::OutcomeCode;
use exo_writeback_core::provisioning::{CycleKind, CycleStatus, JobState};
use exo_writeback_store_sqlite::prelude::*;

use super::{failures, fixture};
use crate::CycleMode;

const TEXT: &str = "The operation couldn't be performed because object 'user4' couldn't be read.";

#[tokio::test]
async fn the_mailboxes_before_reported_errors_are_written_the_error_logged_and_the_watermark_waits()
{
    let mut f = fixture(5, 500);
    *f.source.reported_after.lock().expect("lock") = Some((3, TEXT.into()));
    let r = f.engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    assert!(
        matches!(&r.status, CycleStatus::Failed { reason } if reason.contains(TEXT)),
        "{:?}",
        r.status
    );
    assert_eq!((r.counts.imported, r.counts.written), (3, 3));
    assert_eq!(f.dir.modifies.lock().expect("lock").len(), 3);
    for g in &f.guids[..3] {
        assert!(!f.dir.values(g, "extensionAttribute1").is_empty());
    }
    for g in &f.guids[3..] {
        assert!(f.dir.values(g, "extensionAttribute1").is_empty());
    }
    assert!(r.watermark.is_none());
    assert!(f.engine.store.watermark().expect("wm").is_none());
    assert_eq!(
        r.failure_causes.get(&OutcomeCode::ServiceReportedErrors),
        Some(&1)
    );
    let failures = failures(&f.engine.store);
    assert_eq!(failures.len(), 1, "{failures:?}");
    let reason = failures[0].reason.clone().expect("reason");
    assert_eq!(reason.code, OutcomeCode::ServiceReportedErrors);
    assert!(reason.message.contains(TEXT), "{reason:?}");
    assert_eq!(f.engine.store.escrow_count().expect("escrow"), 0);
    let cycle = &f.engine.store.recent_cycles(1).expect("cycles")[0];
    assert!(matches!(&cycle.status, CycleStatus::Failed { reason } if reason.contains(TEXT)));
    assert_eq!(cycle.counts.written, 3);
    // Not a quarantine: the service answered.
    assert_eq!(f.engine.store.job_state().expect("state"), JobState::NotRun);

    // The next poll (still initial: no watermark) reads everything; the rest is written.
    *f.source.reported_after.lock().expect("lock") = None;
    let r = f.engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    assert_eq!(r.kind, CycleKind::Initial);
    assert_eq!(r.status, CycleStatus::Completed);
    assert_eq!((r.counts.written, r.counts.unchanged), (2, 3));
    assert!(r.watermark.is_some());
}

#[tokio::test]
async fn the_threshold_guards_the_mailboxes_read_before_reported_errors() {
    // Every object loses a stale address: 3 removals read before the error > threshold 2.
    let mut f = fixture(5, 2);
    *f.source.reported_after.lock().expect("lock") = Some((3, TEXT.into()));
    let r = f.engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    assert_eq!(r.status, CycleStatus::ThresholdExceeded);
    assert!(
        f.dir.modifies.lock().expect("lock").is_empty(),
        "nothing written"
    );
    assert!(matches!(
        f.engine.store.job_state().expect("state"),
        JobState::ThresholdExceeded { .. }
    ));
    let failures = failures(&f.engine.store);
    assert_eq!(
        failures.len(),
        1,
        "the reported error is logged: {failures:?}"
    );
}
