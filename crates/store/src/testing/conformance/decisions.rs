//! An administrator's decisions kept in the state: pins set and released with outcomes (one
//! transaction), released by hand; a held cycle rejected once; the last cycle of some kinds.

use crate::prelude::*;
use crate::testing::Backend;
use crate::testing::fixtures::{at, guid, success};
use exo_writeback_core::directory::AttrValue;
use exo_writeback_core::provisioning::{
    CycleCounts, CycleId, CycleKind, CycleStatus, Pin, PinCount, PinOrigin, PinUpdate,
    StagedDecision, StagedPlan,
};

fn pin(n: u64, attribute: &str, cycle: CycleId) -> Pin {
    Pin {
        object_guid: guid(n),
        dn: format!("CN=u{n},DC=lab"),
        cloud_id: Some(format!("c{n}")),
        primary_smtp_address: None,
        attribute: attribute.into(),
        cloud_value: vec![AttrValue::Bytes(vec![0, 255]), AttrValue::Text("ü".into())],
        origin: PinOrigin::Undo,
        cycle,
        at: at(5),
        by: "alice".into(),
        note: Some("audit".into()),
    }
}

pub fn pins_come_and_go_with_outcomes_and_by_hand(b: &impl Backend) {
    let mut store = b.open();
    let cycle = store.begin_cycle(CycleKind::Undo, at(0)).expect("cycle");
    let mut o = success(cycle, 1, at(1));
    o.pins = PinUpdate {
        set: vec![pin(1, "extensionAttribute3", cycle), pin(1, "mail", cycle)],
        release: vec![],
    };
    let mut other = success(cycle, 2, at(2));
    other.pins.set = vec![pin(2, "mail", cycle)];
    store.record_outcomes(&[o, other]).expect("record");
    assert_eq!(
        store.pin_count().expect("count"),
        PinCount {
            attributes: 3,
            objects: 2
        }
    );
    let of_one = store.pins_of(&guid(1)).expect("pins");
    assert_eq!(
        of_one,
        vec![pin(1, "extensionAttribute3", cycle), pin(1, "mail", cycle)]
    );
    // Released with a later outcome (attribute names compare case-insensitively).
    let mut later = success(cycle, 1, at(3));
    later.log.id.0 = uuid::Uuid::from_u128(99);
    later.pins.release = vec![pin(1, "EXTENSIONATTRIBUTE3", cycle).key()];
    store.record_outcome(&later).expect("record");
    assert_eq!(
        store.pins_of(&guid(1)).expect("pins"),
        vec![pin(1, "mail", cycle)]
    );
    // By hand: one object, then all.
    assert_eq!(
        store.unpin(Some(&guid(1))).expect("unpin"),
        PinCount {
            attributes: 1,
            objects: 1
        }
    );
    assert_eq!(store.unpin(Some(&guid(1))).expect("unpin").attributes, 0);
    assert_eq!(store.pins(10).expect("pins").len(), 1);
    assert_eq!(
        store.unpin(None).expect("unpin"),
        PinCount {
            attributes: 1,
            objects: 1
        }
    );
    assert_eq!(store.pin_count().expect("count"), PinCount::default());
}

pub fn a_held_cycle_is_rejected_once_and_cannot_be_approved_after(b: &impl Backend) {
    let mut store = b.open();
    let held = store.begin_cycle(CycleKind::Delta, at(0)).expect("cycle");
    let plan = StagedPlan {
        cloud_id: "c1".into(),
        object_guid: None,
        dn: "CN=a".into(),
        plan: serde_json::json!({}),
    };
    store.stage_changes(held, at(1), &[plan]).expect("stage");
    let reject = store.begin_cycle(CycleKind::Reject, at(2)).expect("cycle");
    store
        .mark_staged_rejected(held, reject, at(3), "alice", Some("not now"))
        .expect("reject");
    let decision = store
        .staged_changes(held)
        .expect("read")
        .expect("present")
        .decision;
    assert_eq!(
        decision,
        StagedDecision::Rejected {
            at: at(3),
            cycle: reject,
            by: "alice".into(),
            reason: Some("not now".into())
        }
    );
    assert!(store.pending_staged_cycles().expect("pending").is_empty());
    let err = store
        .mark_staged_approved(held, reject, at(4))
        .expect_err("approve after reject");
    let text = err.to_string();
    assert!(text.contains("already rejected by alice"), "{text}");
    assert!(
        !text.contains("CycleId(") && !text.contains("Rejected {"),
        "{text}"
    );
    store
        .mark_staged_rejected(held, reject, at(5), "bob", None)
        .expect_err("reject twice");
}

pub fn the_last_cycle_of_some_kinds_skips_the_others(b: &impl Backend) {
    let mut store = b.open();
    let delta = store.begin_cycle(CycleKind::Delta, at(0)).expect("cycle");
    store
        .finish_cycle(
            delta,
            at(1),
            &CycleCounts::default(),
            &CycleStatus::Completed,
        )
        .expect("finish");
    let failed = store.begin_cycle(CycleKind::Delta, at(2)).expect("cycle");
    store
        .finish_cycle(
            failed,
            at(3),
            &CycleCounts::default(),
            &CycleStatus::Failed { reason: "x".into() },
        )
        .expect("finish");
    store
        .begin_cycle(CycleKind::OnDemand, at(4))
        .expect("cycle");
    let scheduled = [
        CycleKind::Initial,
        CycleKind::Delta,
        CycleKind::FullReconcile,
    ];
    let last = |completed| {
        store
            .last_cycle_of(&scheduled, completed)
            .expect("read")
            .map(|c| c.id)
    };
    assert_eq!(last(false), Some(failed));
    assert_eq!(last(true), Some(delta));
    assert_eq!(
        store
            .last_cycle_of(&[CycleKind::Undo], false)
            .expect("read"),
        None
    );
}

pub fn a_pause_is_kept_and_lifted(b: &impl Backend) {
    use exo_writeback_core::provisioning::{JobState, Pause};
    let mut store = b.open();
    assert_eq!(store.pause().expect("pause"), None);
    store.set_job_state(&JobState::Active).expect("state");
    let first = Pause {
        by: "alice".into(),
        since: at(9),
        reason: Some("AD migration ✓".into()),
    };
    assert_eq!(store.set_pause(Some(&first)).expect("pause"), None);
    let second = Pause {
        by: "bob".into(),
        since: at(10),
        reason: None,
    };
    assert_eq!(
        store.set_pause(Some(&second)).expect("pause again"),
        Some(first)
    );
    // Another process sees it; the job state under it is unchanged.
    let other = b.reopen(&store);
    assert_eq!(other.pause().expect("pause"), Some(second.clone()));
    assert_eq!(other.job_state().expect("state"), JobState::Active);
    assert_eq!(store.set_pause(None).expect("resume"), Some(second));
    assert_eq!(store.pause().expect("pause"), None);
}
