//! Changes held by the change threshold: staged, previewed, approved once.

use crate::StoreError;
use crate::prelude::*;
use crate::testing::Backend;
use crate::testing::fixtures::at;
use exo_writeback_core::provisioning::{CycleId, CycleKind, StagedDecision, StagedPlan};
use uuid::Uuid;

fn plans() -> Vec<StagedPlan> {
    (0..50)
        .map(|i| StagedPlan {
            cloud_id: format!("cloud-{i}"),
            object_guid: (i % 2 == 0).then(|| Uuid::from_u128(i)),
            dn: format!("CN=User {i},DC=lab"),
            plan: serde_json::json!({
                "changes": [{"op": "Delete", "attribute": "proxyAddresses",
                             "values": [format!("smtp:old{i}@contoso.com")]}],
                "n": i,
                "nested": {"unicode": "ü✓", "big": u64::MAX}
            }),
        })
        .collect()
}

pub fn staged_plans_round_trip_in_order_and_are_approved_once(b: &impl Backend) {
    let mut store = b.open();
    let held = store.begin_cycle(CycleKind::Delta, at(0)).expect("cycle");
    // Staged in two chunks.
    let all = plans();
    store.stage_changes(held, at(1), &all[..20]).expect("stage");
    store
        .stage_changes(held, at(2), &all[20..])
        .expect("stage more");
    assert_eq!(store.staged_count(held).expect("count"), 50);
    assert_eq!(
        store.staged_plans(held, 45, 10).expect("page"),
        all[45..].to_vec()
    );
    assert_eq!(
        store.staged_plans(held, 10, 5).expect("page"),
        all[10..15].to_vec()
    );

    let staged = store.staged_changes(held).expect("read").expect("present");
    assert_eq!(staged.cycle, held);
    assert_eq!(staged.staged_at, at(1));
    assert_eq!(staged.decision, StagedDecision::Pending);
    assert_eq!(staged.plans, plans());
    assert_eq!(store.pending_staged_cycles().expect("pending"), vec![held]);

    let approve = store
        .begin_cycle(CycleKind::Approve, at(10))
        .expect("cycle");
    store
        .mark_staged_approved(held, approve, at(11))
        .expect("approve");
    assert_eq!(
        store
            .staged_changes(held)
            .expect("read")
            .expect("present")
            .decision,
        StagedDecision::Approved {
            at: at(11),
            by: approve
        }
    );
    assert!(store.pending_staged_cycles().expect("pending").is_empty());
    let err = store
        .mark_staged_approved(held, approve, at(12))
        .expect_err("approve twice");
    assert!(err.to_string().contains("already approved"), "{err}");
    let err = store
        .stage_changes(held, at(13), &all[..1])
        .expect_err("nothing is added to approved changes");
    assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
    assert_eq!(store.staged_count(held).expect("count"), 50);
}

pub fn staging_needs_an_existing_cycle_and_approval_needs_staged_changes(b: &impl Backend) {
    let mut store = b.open();
    let err = store
        .stage_changes(CycleId(77), at(0), &plans())
        .expect_err("no such cycle");
    assert!(err.to_string().contains("no cycle 77"), "{err}");
    assert_eq!(store.staged_changes(CycleId(77)).expect("read"), None);
    let c = store.begin_cycle(CycleKind::Delta, at(0)).expect("cycle");
    let err = store
        .mark_staged_approved(c, c, at(1))
        .expect_err("nothing staged");
    assert!(err.to_string().contains("no staged changes"), "{err}");
}
