//! Cycles, job state, watermark and restart.

use crate::StoreError;
use crate::prelude::*;
use crate::testing::fixtures::{at, failed, success};
use crate::testing::{Backend, TestStore};
use exo_writeback_core::provisioning::{
    CycleCounts, CycleId, CycleKind, CycleStatus, JobState, RestartScope, StagedDecision,
    StagedPlan, Watermark,
};
use jiff::SignedDuration;

pub fn cycles_are_numbered_finished_and_listed_newest_first(b: &impl Backend) {
    let mut store = b.open();
    let mut ids = Vec::new();
    for (i, kind) in CycleKind::ALL.into_iter().enumerate() {
        ids.push(store.begin_cycle(kind, at(i as i64 * 60)).expect("begin"));
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let counts = CycleCounts {
        imported: 10,
        reread: 3,
        retried: 1,
        in_scope: 8,
        written: 4,
        unchanged: 1,
        held: 0,
        pinned: 1,
        drift_reported: 0,
        pending: 1,
        skipped: 2,
        failed: 1,
        security_events: 1,
        drift_detected: 2,
        drift_corrected: 1,
    };
    store
        .finish_cycle(ids[0], at(30), &counts, &CycleStatus::Completed)
        .expect("finish");
    store
        .finish_cycle(
            ids[1],
            at(90),
            &CycleCounts::default(),
            &CycleStatus::Quarantined {
                reason: "AD unreachable".into(),
            },
        )
        .expect("finish");
    let first = store.cycle(ids[0]).expect("get").expect("present");
    assert_eq!(first.kind, CycleKind::Initial);
    assert_eq!(first.counts, counts);
    assert_eq!(first.started_at, at(0));
    assert_eq!(first.finished_at, Some(at(30)));
    assert_eq!(first.status, CycleStatus::Completed);
    assert_eq!(store.cycle(CycleId(9999)).expect("get"), None);

    let recent = store.recent_cycles(3).expect("recent");
    let recent_ids: Vec<_> = recent.iter().map(|c| c.id).collect();
    let n = ids.len();
    assert_eq!(recent_ids, vec![ids[n - 1], ids[n - 2], ids[n - 3]]);
    assert_eq!(recent[0].status, CycleStatus::Running);

    // After a crash the cycles still running are marked interrupted, and only those.
    assert_eq!(
        store.interrupt_running_cycles(at(1000)).expect("interrupt"),
        n as u64 - 2
    );
    let c = store.cycle(ids[n - 1]).expect("get").expect("present");
    assert_eq!(c.status, CycleStatus::Interrupted);
    assert_eq!(c.finished_at, Some(at(1000)));
    assert_eq!(
        store.cycle(ids[0]).expect("get").expect("present").status,
        CycleStatus::Completed
    );

    let err = store
        .finish_cycle(CycleId(9999), at(1), &counts, &CycleStatus::Completed)
        .expect_err("unknown cycle");
    assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
}

pub fn job_states_and_watermarks_round_trip_exactly(b: &impl Backend) {
    let mut store = b.open();
    let states = [
        JobState::NotRun,
        JobState::Active,
        JobState::ThresholdExceeded { cycle: CycleId(12) },
        JobState::Quarantine {
            reason: "invalid credentials for CN=svc".into(),
            since: at(5),
            next_retry: at(65),
        },
    ];
    for state in states {
        store.set_job_state(&state).expect("set");
        assert_eq!(store.job_state().expect("get"), state);
    }
    let watermark = Watermark {
        // .NET ticks precision (100 ns) must survive.
        changed_since: "2026-03-01T08:00:00.1234567Z".parse().expect("ts"),
        overlap: SignedDuration::from_secs(120),
        cycle: CycleId(3),
        edge: Vec::new(),
    };
    store.set_watermark(&watermark).expect("set");
    assert_eq!(store.watermark().expect("get"), Some(watermark));
}

fn watermark(cycle: CycleId) -> Watermark {
    Watermark {
        changed_since: at(100),
        overlap: SignedDuration::from_secs(60),
        cycle,
        edge: Vec::new(),
    }
}

/// A store with a watermark, joins, escrow, pending staged changes and a quarantine.
fn busy_store<B: Backend>(b: &B) -> (TestStore<B::Store>, CycleId) {
    let mut store = b.open();
    let cycle = store.begin_cycle(CycleKind::Delta, at(0)).expect("cycle");
    store
        .record_outcomes(&[
            success(cycle, 1, at(1)),
            success(cycle, 2, at(2)),
            failed(cycle, 3, at(3)),
        ])
        .expect("record");
    store.set_watermark(&watermark(cycle)).expect("watermark");
    store
        .stage_changes(
            cycle,
            at(4),
            &[StagedPlan {
                cloud_id: "c".into(),
                object_guid: None,
                dn: "CN=c".into(),
                plan: serde_json::json!({"delete": ["proxyAddresses"]}),
            }],
        )
        .expect("stage");
    store
        .set_job_state(&JobState::Quarantine {
            reason: "AD unreachable".into(),
            since: at(5),
            next_retry: at(65),
        })
        .expect("state");
    (store, cycle)
}

pub fn restart_full_forgets_progress_but_keeps_history(b: &impl Backend) {
    let (mut store, cycle) = busy_store(b);
    let report = store.restart(RestartScope::Full, at(500)).expect("restart");
    assert!(report.watermark_cleared);
    assert_eq!(report.joins_removed, 2);
    assert_eq!(report.escrow_removed, 1);
    assert_eq!(report.staged_cycles_discarded, 1);
    assert_eq!(report.job_state, JobState::NotRun);
    assert_eq!(store.job_state().expect("state"), JobState::NotRun);
    assert_eq!(store.watermark().expect("watermark"), None);
    assert!(store.joins(None, 10).expect("joins").is_empty());
    assert_eq!(store.escrow_count().expect("escrow"), 0);
    assert!(store.pending_staged_cycles().expect("staged").is_empty());
    assert_eq!(
        store
            .staged_changes(cycle)
            .expect("staged")
            .expect("kept")
            .decision,
        StagedDecision::Discarded { at: at(500) }
    );
    assert_eq!(store.journal_for_cycle(cycle).expect("journal").len(), 6);
    assert!(store.cycle(cycle).expect("cycle").is_some());
}

pub fn restart_scopes_touch_only_their_part(b: &impl Backend) {
    // (scope, watermark kept, escrow entries left, joins left, job state after)
    let cases = [
        (RestartScope::Watermark, false, 1, 2, "Quarantine"),
        (RestartScope::Escrow, true, 0, 2, "Quarantine"),
        (RestartScope::Quarantine, true, 1, 2, "Active"),
    ];
    for (scope, watermark_kept, escrow_left, joins_left, state) in cases {
        let (mut store, _cycle) = busy_store(b);
        let report = store.restart(scope, at(500)).expect("restart");
        assert_eq!(
            store.watermark().expect("watermark").is_some(),
            watermark_kept,
            "{scope:?}"
        );
        assert_eq!(
            store.escrow_count().expect("escrow"),
            escrow_left,
            "{scope:?}"
        );
        assert_eq!(
            store.joins(None, 10).expect("joins").len(),
            joins_left,
            "{scope:?}"
        );
        assert_eq!(store.job_state().expect("state").name(), state, "{scope:?}");
        assert_eq!(report.job_state.name(), state, "{scope:?}");
        assert_eq!(store.pending_staged_cycles().expect("staged").len(), 1);
    }
    // Leaving quarantine without a watermark means the next cycle is an initial one.
    let (mut store, _cycle) = busy_store(b);
    store
        .restart(RestartScope::Watermark, at(1))
        .expect("restart");
    store
        .restart(RestartScope::Quarantine, at(2))
        .expect("restart");
    assert_eq!(store.job_state().expect("state"), JobState::NotRun);
}
