use exo_writeback_core::directory::AttrValue;
use exo_writeback_core::provisioning::{
    CycleKind, JournalRecord, ModifiedProperty, ObjectOutcome, ObjectRef,
};
use exo_writeback_store::prelude::*;
use exo_writeback_store::testing::fixtures::{at, success};
use exo_writeback_store::{LogQuery, StateCopy, StateRow};

use crate::SqliteStore;

/// `(entry JSON, modified_in_journal)` as stored for the entry of `o`.
fn stored_row(store: &SqliteStore, o: &ObjectOutcome) -> (String, Option<String>) {
    store
        .conn
        .query_row(
            "SELECT entry, modified_in_journal FROM log_entries WHERE id = ?1",
            [o.log.id.0.hyphenated().to_string()],
            |r| Ok((r.get::<_, crate::packed::Json>(0)?.0, r.get(1)?)),
        )
        .expect("row")
}

/// The modified property a journal record describes.
fn property(j: &JournalRecord) -> ModifiedProperty {
    ModifiedProperty {
        attribute: j.attribute.clone(),
        old: j.previous.clone(),
        new: j.new.clone(),
    }
}

/// Every way the store reads a log entry back.
fn read_back(store: &SqliteStore, o: &ObjectOutcome) {
    assert_eq!(
        store.log_entry(o.log.id).expect("entry").as_ref(),
        Some(&o.log)
    );
    let logs = store
        .query_logs(&LogQuery {
            identity: o.log.source.external_directory_object_id.clone(),
            ..LogQuery::default()
        })
        .expect("logs");
    assert_eq!(logs, std::slice::from_ref(&o.log));
    let mut exported = Vec::new();
    store
        .export(&mut |row| {
            if let StateRow::Log { entry, .. } = row
                && entry.id == o.log.id
            {
                exported.push(entry);
            }
            Ok(())
        })
        .expect("export");
    assert_eq!(exported, std::slice::from_ref(&o.log));
    let guid = o.log.target.object_guid.expect("guid");
    let mut journal = store
        .journal_for_object(&ObjectRef::Guid(guid))
        .expect("journal");
    journal.reverse();
    assert_eq!(journal, o.journal);
}

/// The values of a modified property that the outcome's journal holds are stored once (in the
/// journal) and read back exactly — binary values, an empty list, a property the journal does
/// not hold, a journal record the entry does not list.
#[test]
fn modified_values_are_stored_once_and_read_back_exactly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut store = SqliteStore::open_in(dir.path()).expect("open");
    let cycle = store.begin_cycle(CycleKind::Initial, at(0)).expect("cycle");
    let mut o = success(cycle, 1, at(1));
    // The journal's three records, the last two listed in the entry (in another order), and a
    // property of the entry no record holds.
    let j = &o.journal;
    o.log.modified = vec![
        property(&j[2]),
        ModifiedProperty {
            attribute: "description".into(),
            old: vec![AttrValue::Text("only in the entry".into())],
            new: vec![],
        },
        property(&j[1]),
    ];
    store.record_outcome(&o).expect("record");
    let (entry, column) = stored_row(&store, &o);
    assert_eq!(column.as_deref(), Some("0:2,2:1"));
    assert!(!entry.contains("ünïcödé"), "stored once: {entry}");
    assert!(entry.contains("only in the entry"), "{entry}");
    read_back(&store, &o);

    // A record with the same attribute but other values is not the property's.
    let mut other = success(cycle, 2, at(2));
    other.log.modified = vec![ModifiedProperty {
        attribute: other.journal[0].attribute.clone(),
        old: vec![],
        new: other.journal[0].new.clone(),
    }];
    store.record_outcome(&other).expect("record");
    assert_eq!(stored_row(&store, &other).1, None);
    read_back(&store, &other);
}

/// A journal record older than its entry could outlive it in a purge and the entry lose its
/// values: such an outcome's entry keeps its own.
#[test]
fn an_entry_keeps_its_values_when_a_journal_record_is_older() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut store = SqliteStore::open_in(dir.path()).expect("open");
    let cycle = store.begin_cycle(CycleKind::Initial, at(0)).expect("cycle");
    let mut o = success(cycle, 1, at(10));
    o.log.modified = o.journal.iter().map(property).collect();
    o.journal[1].time = at(9);
    store.record_outcome(&o).expect("record");
    assert_eq!(stored_row(&store, &o).1, None);
    read_back(&store, &o);

    // The same outcome a second later (every record as recent as the entry): stored once, and
    // a purge that removes the entry leaves no record pointing nowhere.
    let mut later = success(cycle, 2, at(20));
    later.log.modified = later.journal.iter().map(property).collect();
    store.record_outcome(&later).expect("record");
    assert_eq!(stored_row(&store, &later).1.as_deref(), Some("0:0,1:1,2:2"));
    read_back(&store, &later);
    store.purge_older_than(at(15)).expect("purge");
    assert_eq!(store.log_entry(o.log.id).expect("entry"), None);
    read_back(&store, &later);
}
