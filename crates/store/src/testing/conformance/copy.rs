//! A whole state exported and imported into a fresh one (`exo-writeback state migrate`).

use exo_writeback_core::provisioning::{
    CycleCounts, CycleKind, CycleStatus, JobState, ObjectRef, Pause, PinOrigin, PinUpdate,
    StagedPlan, Watermark,
};
use jiff::SignedDuration;

use crate::prelude::*;
use crate::testing::Backend;
use crate::testing::fixtures::{at, failed, guid, success};
use crate::{LogQuery, StateCopy, StateCounts, WriteIntent};

pub fn a_state_exported_and_imported_keeps_every_row<B: Backend>(b: &B)
where
    B::Store: StateCopy,
{
    let mut source = b.open();
    let c1 = source
        .begin_cycle(CycleKind::Initial, at(0))
        .expect("cycle");
    source
        .finish_cycle(c1, at(50), &CycleCounts::default(), &CycleStatus::Completed)
        .expect("finish");
    let c2 = source
        .begin_cycle(CycleKind::Delta, at(100))
        .expect("cycle");
    let mut pinned = success(c1, 3, at(3));
    pinned.pins = PinUpdate {
        set: vec![exo_writeback_core::provisioning::Pin {
            object_guid: guid(3),
            dn: "CN=User 3".into(),
            cloud_id: None,
            primary_smtp_address: None,
            attribute: "mail".into(),
            cloud_value: vec![],
            origin: PinOrigin::Reject,
            cycle: c1,
            at: at(3),
            by: "alice".into(),
            note: None,
        }],
        release: vec![],
    };
    // Two entries at the same instant: their order is kept.
    source
        .record_outcomes(&[success(c1, 1, at(1)), success(c1, 2, at(1)), pinned])
        .expect("record");
    source
        .record_outcome(&failed(c2, 4, at(104)))
        .expect("record");
    let plan = StagedPlan {
        cloud_id: "c9".into(),
        object_guid: None,
        dn: "CN=c9".into(),
        plan: serde_json::json!({"delete": ["proxyAddresses"]}),
    };
    source
        .stage_changes(c2, at(105), &[plan.clone(), plan])
        .expect("stage");
    let intent = WriteIntent::from_success("c5", &success(c2, 5, at(106))).expect("intent");
    source.record_intents(&[intent]).expect("intent");
    let wm = Watermark {
        changed_since: "2026-03-01T08:00:00.1234567Z".parse().expect("ts"),
        overlap: SignedDuration::from_secs(300),
        cycle: c1,
        edge: Vec::new(),
    };
    source.set_watermark(&wm).expect("watermark");
    source
        .set_job_state(&JobState::ThresholdExceeded { cycle: c2 })
        .expect("state");
    let pause = Pause {
        by: "bob".into(),
        since: at(110),
        reason: Some("checking".into()),
    };
    source.set_pause(Some(&pause)).expect("pause");

    let mut target = b.open();
    let copied = target.import_from(&*source).expect("import");
    let want = StateCounts {
        cycles: 2,
        log_entries: 4,
        journal: 9,
        joins: 3,
        escrow: 1,
        staged_cycles: 1,
        staged_plans: 2,
        intents: 1,
        pins: 1,
    };
    assert_eq!(copied, want);
    assert_eq!(source.counts().expect("counts"), want);
    assert_eq!(target.counts().expect("counts"), want);

    let all = LogQuery {
        limit: 100,
        ..LogQuery::default()
    };
    assert_eq!(
        target.query_logs(&all).expect("logs"),
        source.query_logs(&all).expect("logs")
    );
    assert_eq!(
        target.recent_cycles(10).expect("cycles"),
        source.recent_cycles(10).expect("cycles")
    );
    assert_eq!(
        target.journal_for_cycle(c1).expect("journal"),
        source.journal_for_cycle(c1).expect("journal")
    );
    assert_eq!(
        target
            .journal_for_object(&ObjectRef::Guid(guid(2)))
            .expect("journal"),
        source
            .journal_for_object(&ObjectRef::Guid(guid(2)))
            .expect("journal")
    );
    assert_eq!(
        target.joins(None, 10).expect("joins"),
        source.joins(None, 10).expect("joins")
    );
    assert_eq!(
        target.escrow().expect("escrow"),
        source.escrow().expect("escrow")
    );
    assert_eq!(
        target.staged_changes(c2).expect("staged"),
        source.staged_changes(c2).expect("staged")
    );
    assert_eq!(
        target.intents().expect("intents"),
        source.intents().expect("intents")
    );
    assert_eq!(
        target.pins(10).expect("pins"),
        source.pins(10).expect("pins")
    );
    assert_eq!(target.watermark().expect("watermark"), Some(wm));
    assert_eq!(
        target.job_state().expect("state"),
        JobState::ThresholdExceeded { cycle: c2 }
    );
    assert_eq!(target.pause().expect("pause"), Some(pause));

    // The copy goes on numbering after the copied cycles and entries.
    let next = target
        .begin_cycle(CycleKind::Delta, at(200))
        .expect("cycle");
    assert!(next > c2, "{next} after {c2}");
    let mut later = success(next, 1, at(1));
    later.log.id.0 = uuid::Uuid::from_u128(4242);
    target.record_outcome(&later).expect("record");
    let newest = target.query_logs(&all).expect("logs");
    // Same instant as objects 1 and 2 of cycle 1: stored after them, listed before them.
    assert_eq!(newest[2].id, later.log.id, "{newest:#?}");

    // A state that already holds cycles is not imported into.
    let err = target.import_from(&*source).expect_err("not empty");
    assert!(err.to_string().contains("not empty"), "{err}");
    assert_eq!(target.counts().expect("counts").cycles, 3);
}
