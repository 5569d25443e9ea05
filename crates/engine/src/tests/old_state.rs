//! States written by old binaries — `exo-writeback sync` of commits e409437 and 3f38b5f (schema
//! version 3), 58541a9 (5), 6de2e21 (6) and 701b54a (7) (`crates/store-sqlite/tests/fixtures/`,
//! made as its README says) —
//! taken over by today's engine: the plans its held cycle staged are shown by `preview` and
//! written by `approve`, as plans staged today are.

use exo_writeback_core::directory::{AttrValue, Attributes, DirectoryObject};
use exo_writeback_core::provisioning::{CycleId, JobState};
use exo_writeback_core::settings::WritebackSettings;
use exo_writeback_store_sqlite::prelude::*;
use exo_writeback_store_sqlite::{DB_FILE_NAME, SqliteStore};

use crate::staged::StagedObject;
use crate::testing::{FakeDirectory, FakeSource};
use crate::{CycleMode, Engine, EngineOptions};

const FIXTURES: [&str; 5] = [
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../store-sqlite/tests/fixtures/v3-sync-e409437.sqlite"
    ),
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../store-sqlite/tests/fixtures/v3-sync-3f38b5f.sqlite"
    ),
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../store-sqlite/tests/fixtures/v5-sync-58541a9.sqlite"
    ),
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../store-sqlite/tests/fixtures/v6-sync-6de2e21.sqlite"
    ),
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../store-sqlite/tests/fixtures/v7-sync-701b54a.sqlite"
    ),
];

#[tokio::test]
async fn a_cycle_held_by_an_old_binary_is_previewed_and_approved_by_todays_engine() {
    for fixture in FIXTURES {
        held_by_an_old_binary(fixture).await;
    }
}

async fn held_by_an_old_binary(fixture: &str) {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::copy(fixture, tmp.path().join(DB_FILE_NAME)).expect("copy the fixture");
    let store = SqliteStore::open_in(tmp.path()).expect("open and migrate");
    let held = CycleId(3);
    assert_eq!(
        store.job_state().expect("state"),
        JobState::ThresholdExceeded { cycle: held },
        "{fixture}"
    );
    // The directory holds the objects as the old cycle planned them from.
    let dir = FakeDirectory::new();
    let staged = store
        .staged_changes(held)
        .expect("staged")
        .expect("held cycle");
    for plan in &staged.plans {
        let obj = StagedObject::from_staged_plan(plan).expect("an old staged plan reads");
        let mut attributes = Attributes::new();
        for m in &obj.modified {
            attributes.insert(&m.attribute, m.old.clone());
        }
        attributes.insert("cn", vec![AttrValue::Text(obj.dn.clone())]);
        dir.insert(DirectoryObject {
            dn: obj.dn.clone(),
            object_guid: obj.object_guid,
            attributes,
        });
    }
    let mut engine = Engine::new(
        FakeSource::default(),
        dir.clone(),
        store,
        WritebackSettings::default().resolve().expect("settings"),
        EngineOptions::default(),
    );
    let preview = engine.preview(CycleMode::Auto).await.expect("preview");
    let shown = preview.held.expect("the held changes");
    assert_eq!(shown.cycle, held);
    assert_eq!(shown.items.len(), 3, "{fixture}");
    assert!(
        shown.items.iter().all(|i| i.removes_values),
        "{fixture}: {shown:?}"
    );

    let report = engine.approve(held).await.expect("approve");
    assert_eq!(
        (report.counts.written, report.counts.failed),
        (3, 0),
        "{fixture}"
    );
    for plan in &staged.plans {
        let obj = StagedObject::from_staged_plan(plan).expect("plan");
        assert!(
            dir.values(&obj.object_guid, "extensionAttribute1")
                .is_empty(),
            "{}: the value the held cycle removes is still there",
            obj.dn
        );
    }
    assert_eq!(engine.store.job_state().expect("state"), JobState::Active);
}
