//! The read phase: plans beyond `max_plans_in_memory` wait in the spill file (the source is
//! read once, each object planned once and written once; a held cycle writes nothing and
//! stages every plan), and mailboxes evaluated concurrently give the sequential result.

use std::sync::atomic::Ordering;

use exo_writeback_core::provisioning::{CycleStatus, JobState};
use exo_writeback_store::LogQuery;
use exo_writeback_store::prelude::*;

use super::fixture;
use crate::CycleMode;

#[tokio::test]
async fn beyond_the_memory_bound_the_source_is_read_once_and_each_object_written_once() {
    let mut f = fixture(9, 500);
    f.engine.options.max_plans_in_memory = 2;
    let r = f.engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    assert_eq!(r.status, CycleStatus::Completed);
    assert_eq!((r.counts.imported, r.counts.written), (9, 9));
    assert_eq!(
        f.source.streams.load(Ordering::SeqCst),
        1,
        "one pass over the source"
    );
    assert_eq!(f.dir.scans.load(Ordering::SeqCst), 1);
    let modifies = f.dir.modifies.lock().expect("lock").clone();
    assert_eq!(modifies.len(), 9, "each object written once");
    for (i, g) in f.guids.iter().enumerate() {
        assert_eq!(
            f.dir.values(g, "extensionAttribute1"),
            [format!("ca1-{}", i + 1)]
        );
    }
    // The spilled objects keep their log entry (four steps, changes), journal and join.
    let logs = f
        .engine
        .store
        .query_logs(&LogQuery {
            cycle: Some(r.cycle),
            ..LogQuery::default()
        })
        .expect("logs");
    assert_eq!(logs.len(), 9);
    for l in &logs {
        assert!(
            l.steps.matching.details.starts_with("matched CN=user"),
            "{:?}",
            l.steps
        );
        assert!(
            l.steps.export.details.starts_with("updated "),
            "{:?}",
            l.steps
        );
        assert!(!l.modified.is_empty());
    }
    assert!(
        f.engine
            .store
            .join("00000000-0000-0000-0000-000000000009")
            .expect("join")
            .is_some()
    );
    // Nothing left to do, and undo finds the journal of a spilled object.
    let r2 = f.engine.run_cycle(CycleMode::Auto).await.expect("cycle 2");
    assert_eq!(r2.counts.written, 0);
    let undone = f
        .engine
        .undo(crate::UndoTarget::Cycle(r.cycle))
        .await
        .expect("undo");
    assert_eq!(undone.counts.written, 9);
    assert_eq!(
        f.dir.values(&f.guids[8], "extensionAttribute1"),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn a_held_cycle_beyond_the_memory_bound_writes_nothing_and_stages_every_plan() {
    let mut f = fixture(7, 3);
    f.engine.options.max_plans_in_memory = 2;
    let before: Vec<_> = f.guids.iter().map(|g| f.dir.get(g)).collect();
    let r = f.engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    assert_eq!(r.status, CycleStatus::ThresholdExceeded);
    assert_eq!(r.removing, 7);
    let after: Vec<_> = f.guids.iter().map(|g| f.dir.get(g)).collect();
    assert_eq!(before, after, "nothing written");
    assert!(f.dir.modifies.lock().expect("lock").is_empty());
    assert_eq!(f.engine.store.staged_count(r.cycle).expect("staged"), 7);
    assert!(matches!(
        f.engine.store.job_state().expect("state"),
        JobState::ThresholdExceeded { .. }
    ));
    let a = f.engine.approve(r.cycle).await.expect("approve");
    assert_eq!(a.counts.written, 7);
    for (i, g) in f.guids.iter().enumerate() {
        assert_eq!(
            f.dir.values(g, "extensionAttribute1"),
            [format!("ca1-{}", i + 1)]
        );
    }
}

#[tokio::test]
async fn concurrent_evaluation_gives_the_sequential_result_and_takes_a_repeat_once() {
    let mut outcomes = Vec::new();
    for concurrency in [1, 3, 8] {
        let mut f = fixture(7, 500);
        f.engine.options.evaluate_concurrency = concurrency;
        // The same mailbox twice in one evaluation batch: taken once.
        let again = f.source.mailboxes.lock().expect("lock")[1].clone();
        f.source.mailboxes.lock().expect("lock").insert(2, again);
        let r = f.engine.run_cycle(CycleMode::Auto).await.expect("cycle");
        assert_eq!(r.status, CycleStatus::Completed);
        assert_eq!(
            f.dir.modifies.lock().expect("lock").len(),
            7,
            "concurrency {concurrency}"
        );
        let logs = f
            .engine
            .store
            .query_logs(&LogQuery {
                cycle: Some(r.cycle),
                ..LogQuery::default()
            })
            .expect("logs");
        let mut summary: Vec<String> = logs
            .iter()
            .map(|l| {
                format!(
                    "{:?} {:?} {:?}",
                    l.source.primary_smtp_address, l.status, l.modified
                )
            })
            .collect();
        summary.sort();
        outcomes.push((r.counts.written, r.counts.imported, summary));
    }
    assert_eq!(outcomes[0].0, 7);
    assert!(outcomes.iter().all(|o| *o == outcomes[0]), "{outcomes:?}");
}

#[tokio::test]
async fn the_spill_file_lives_in_the_configured_directory() {
    // A directory that cannot hold it: the cycle fails naming it, and nothing is written.
    let missing = std::env::temp_dir().join("exo-writeback-no-such-dir-for-spill");
    let mut f = fixture(5, 500);
    f.engine.options.max_plans_in_memory = 2;
    f.engine.options.spill_dir = Some(missing.clone());
    let e = f
        .engine
        .run_cycle(CycleMode::Auto)
        .await
        .expect_err("no spill directory");
    let text = e.to_string();
    assert!(
        text.contains(&missing.display().to_string()) && text.contains("max_plans_in_memory"),
        "{text}"
    );
    assert!(f.dir.modifies.lock().expect("lock").is_empty());

    // An existing directory works.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut f = fixture(5, 500);
    f.engine.options.max_plans_in_memory = 2;
    f.engine.options.spill_dir = Some(dir.path().to_path_buf());
    let r = f.engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    assert_eq!((r.status, r.counts.written), (CycleStatus::Completed, 5));
}
