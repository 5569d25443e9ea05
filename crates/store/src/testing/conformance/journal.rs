//! The journal keeps exact previous values for undo.

use crate::prelude::*;
use crate::testing::Backend;
use crate::testing::fixtures::{at, awkward_bytes, dn, guid, journal, success};
use exo_writeback_core::directory::AttrValue;
use exo_writeback_core::provisioning::{CycleKind, LogEntryId, ObjectRef};
use uuid::Uuid;

pub fn binary_and_text_values_round_trip_byte_exact(b: &impl Backend) {
    let mut store = b.open();
    let cycle = store.begin_cycle(CycleKind::Delta, at(0)).expect("cycle");
    store
        .record_outcome(&success(cycle, 1, at(1)))
        .expect("record");
    let mut got = store.journal_for_cycle(cycle).expect("journal");
    got.reverse(); // newest first → insertion order
    assert_eq!(got, journal(cycle, 1, at(1)));
    let bytes = &got[1].previous;
    assert_eq!(bytes, &vec![AttrValue::Bytes(awkward_bytes(1))]);
    assert_eq!(got[1].new, vec![AttrValue::Bytes(vec![])]);
    // Text that looks like the byte encoding stays text.
    let mut o = success(cycle, 2, at(2));
    o.journal[0].previous = vec![AttrValue::Text(r#"{"base64":"AAEC"}"#.into())];
    store.record_outcome(&o).expect("record");
    let rec = store
        .journal_for_object(&ObjectRef::Guid(guid(2)))
        .expect("journal");
    let proxy = rec
        .iter()
        .find(|r| r.attribute == "proxyAddresses")
        .expect("present");
    assert_eq!(
        proxy.previous,
        vec![AttrValue::Text(r#"{"base64":"AAEC"}"#.into())]
    );
}

pub fn journal_by_cycle_and_by_object_newest_first(b: &impl Backend) {
    let mut store = b.open();
    let c1 = store.begin_cycle(CycleKind::Initial, at(0)).expect("cycle");
    let c2 = store.begin_cycle(CycleKind::Delta, at(100)).expect("cycle");
    store
        .record_outcomes(&[success(c1, 1, at(1)), success(c1, 2, at(2))])
        .expect("record");
    let mut again = success(c2, 1, at(101));
    again.log.id = LogEntryId(Uuid::from_u128(500));
    store.record_outcome(&again).expect("record");

    let by_cycle = store.journal_for_cycle(c1).expect("journal");
    assert_eq!(by_cycle.len(), 6);
    assert!(by_cycle.iter().all(|r| r.cycle == c1));
    assert_eq!(by_cycle[0].object_guid, guid(2), "newest first");
    assert_eq!(by_cycle[0].attribute, "extensionAttribute1");
    assert_eq!(by_cycle[5].object_guid, guid(1));
    assert_eq!(by_cycle[5].attribute, "proxyAddresses");

    let by_guid = store
        .journal_for_object(&ObjectRef::Guid(guid(1)))
        .expect("journal");
    assert_eq!(by_guid.len(), 6);
    assert_eq!(by_guid[0].cycle, c2);
    assert_eq!(by_guid[5].cycle, c1);
    // DNs compare case-insensitively.
    let by_dn = store
        .journal_for_object(&ObjectRef::Dn(dn(1).to_uppercase()))
        .expect("journal");
    assert_eq!(by_dn, by_guid);
    assert!(
        store
            .journal_for_object(&ObjectRef::Dn("CN=nobody,DC=lab".into()))
            .expect("journal")
            .is_empty()
    );
}
