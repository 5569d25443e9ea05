//! Real state databases written by earlier versions — by the store of the commit that
//! introduced schema version 2 and by `exo-writeback sync` of released commits writing versions
//! 3, 5, 6 and 7 (`tests/fixtures/`, how each was made: its README.md) — opened by today's store: migrated
//! to the current schema with every record readable as it was written, and usable for new
//! cycles. The migration tests of `migrations.rs` build their "old" databases with today's
//! code; these were written by the old code itself.

use std::path::Path;

use exo_writeback_core::outcome::OutcomeCode;
use exo_writeback_core::provisioning::{
    CycleId, CycleKind, CycleStatus, JobState, JoinUpdate, LogStatus, ObjectRef, StagedDecision,
};
use exo_writeback_store_sqlite::migrations::SCHEMA_VERSION;
use exo_writeback_store_sqlite::prelude::*;
use exo_writeback_store_sqlite::{DB_FILE_NAME, LogQuery, SqliteStore};

use crate::common::{at, success};

/// One cycle of a fixture: kind, status, its (success, skipped, failure) log entries and its
/// journal records.
type CycleHeld = (CycleKind, CycleStatus, (usize, usize, usize), usize);

/// What a fixture holds.
struct Expected {
    file: &'static str,
    version: i64,
    job: JobState,
    /// Watermark set by this cycle.
    watermark_cycle: i64,
    cycles: &'static [CycleHeld],
    joins: usize,
    /// Escrowed mailboxes and their failure code.
    escrow: usize,
    /// A held cycle's staged plans.
    staged: Option<(i64, usize)>,
}

/// The three cycles `make-state` runs: initial (8 written, 2 skipped), a delta (1 written, 1
/// failed), a delta held by the change threshold.
const MAKE_STATE_CYCLES: &[CycleHeld] = &[
    (CycleKind::Initial, CycleStatus::Completed, (8, 2, 0), 32),
    (CycleKind::Delta, CycleStatus::Completed, (7, 2, 1), 1),
    (
        CycleKind::Delta,
        CycleStatus::ThresholdExceeded,
        (4, 2, 1),
        0,
    ),
];

fn fixture_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"))
}

/// A copy of the fixture as the state database of a temporary state directory, opened.
fn open_copy(file: &str) -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(fixture_dir().join(file), dir.path().join(DB_FILE_NAME))
        .unwrap_or_else(|e| panic!("{file}: {e}"));
    let store = SqliteStore::open_in(dir.path()).unwrap_or_else(|e| panic!("{file}: {e}"));
    (dir, store)
}

/// The user_version the fixture file itself carries: the big-endian integer at offset 60 of
/// the database header (read from the bytes: opening the committed file with SQLite would
/// leave its -wal and -shm files beside it).
fn written_version(file: &str) -> i64 {
    let bytes = std::fs::read(fixture_dir().join(file)).expect("fixture");
    assert!(bytes.starts_with(b"SQLite format 3\0"), "{file}");
    let field: [u8; 4] = bytes[60..64].try_into().expect("header");
    i64::from(i32::from_be_bytes(field))
}

fn check(e: &Expected) {
    let file = e.file;
    assert_eq!(written_version(file), e.version, "{file}: written at");
    let (_dir, mut store) = open_copy(file);
    assert_eq!(store.schema_version().expect("version"), SCHEMA_VERSION);
    store.integrity_check().expect("integrity");
    assert_eq!(store.job_state().expect("job"), e.job, "{file}");
    let w = store.watermark().expect("watermark").expect("a watermark");
    assert_eq!(w.cycle, CycleId(e.watermark_cycle), "{file}");

    let mut cycles = store.recent_cycles(100).expect("cycles");
    cycles.reverse();
    assert_eq!(cycles.len(), e.cycles.len(), "{file}: cycles");
    let every = store
        .query_logs(&LogQuery {
            limit: 100_000,
            ..LogQuery::default()
        })
        .expect("every log entry reads");
    for (record, (kind, status, (ok, skipped, failed), journal)) in cycles.iter().zip(e.cycles) {
        let id = record.id;
        assert_eq!(
            (&record.kind, &record.status),
            (kind, status),
            "{file}: {id}"
        );
        let count = |s: LogStatus| {
            every
                .iter()
                .filter(|l| l.cycle == id && l.status == s)
                .count()
        };
        assert_eq!(
            (
                count(LogStatus::Success),
                count(LogStatus::Skipped),
                count(LogStatus::Failure)
            ),
            (*ok, *skipped, *failed),
            "{file}: log entries of cycle {id}"
        );
        assert_eq!(
            store.journal_for_cycle(id).expect("journal").len(),
            *journal,
            "{file}: journal of cycle {id}"
        );
    }
    // Every entry is found by each of its identities (the identity keys the migration
    // computed), and every journal record by its object, as `undo` reads it.
    for entry in &every {
        let identities = [
            entry.source.external_directory_object_id.clone(),
            entry.source.primary_smtp_address.clone(),
            entry.source.user_principal_name.clone(),
            entry.target.dn.clone(),
            entry.target.object_guid.map(|g| g.to_string()),
        ];
        for identity in identities.into_iter().flatten() {
            let found = store
                .query_logs(&LogQuery {
                    identity: Some(identity.to_uppercase()),
                    limit: 100_000,
                    ..LogQuery::default()
                })
                .expect("logs by identity");
            assert!(
                found.contains(entry),
                "{file}: {identity} finds {}",
                entry.id.0
            );
        }
    }
    let journal: Vec<_> = cycles
        .iter()
        .flat_map(|c| store.journal_for_cycle(c.id).expect("journal"))
        .collect();
    for record in &journal {
        for object in [
            ObjectRef::Guid(record.object_guid),
            ObjectRef::Dn(record.dn.to_uppercase()),
        ] {
            let mut found = store.journal_for_object(&object).expect("journal");
            let mut expected: Vec<_> = journal
                .iter()
                .filter(|j| j.object_guid == record.object_guid)
                .cloned()
                .collect();
            let key = |j: &exo_writeback_core::provisioning::JournalRecord| {
                (j.time, j.attribute.clone(), j.cycle)
            };
            found.sort_by_key(key);
            expected.sort_by_key(key);
            assert_eq!(found, expected, "{file}: journal of {object:?}");
        }
    }
    // A written entry's modified values read back as written: each property is one of the
    // journal records of its object and cycle (where they are the same, a version-7 entry
    // stores them only there, `modified_in_journal`).
    let mut properties = 0;
    for entry in every.iter().filter(|l| l.status == LogStatus::Success) {
        for m in &entry.modified {
            assert!(
                journal.iter().any(|j| j.cycle == entry.cycle
                    && Some(j.object_guid) == entry.target.object_guid
                    && j.attribute == m.attribute
                    && j.previous == m.old
                    && j.new == m.new),
                "{file}: {} of entry {} is not its journal's",
                m.attribute,
                entry.id.0
            );
            assert!(!(m.old.is_empty() && m.new.is_empty()), "{file}: {m:?}");
            properties += 1;
        }
    }
    assert_eq!(
        properties,
        e.cycles.iter().map(|c| c.3).sum::<usize>(),
        "{file}: a property per journal record"
    );
    // Journal by object: what `undo` reads.
    let written = every
        .iter()
        .find(|l| l.status == LogStatus::Success && !l.modified.is_empty())
        .expect("a written object");
    let guid = written.target.object_guid.expect("objectGUID");
    assert!(
        !store
            .journal_for_object(&ObjectRef::Guid(guid))
            .expect("journal")
            .is_empty(),
        "{file}"
    );
    let joins = store.joins(None, 1000).expect("joins");
    assert_eq!(joins.len(), e.joins, "{file}");
    for join in &joins {
        assert_eq!(
            store.join(&join.cloud_id).expect("join").as_ref(),
            Some(join),
            "{file}"
        );
    }
    let escrow = store.escrow().expect("escrow");
    assert_eq!(escrow.len(), e.escrow, "{file}");
    for entry in &escrow {
        assert_eq!(entry.error.code, OutcomeCode::SchemaConstraint, "{file}");
    }
    match e.staged {
        Some((cycle, plans)) => {
            let cycle = CycleId(cycle);
            assert_eq!(store.pending_staged_cycles().expect("staged"), [cycle]);
            let staged = store
                .staged_changes(cycle)
                .expect("staged")
                .expect("held cycle");
            assert_eq!(staged.decision, StagedDecision::Pending, "{file}");
            assert_eq!(staged.plans.len(), plans, "{file}");
        }
        None => assert!(store.pending_staged_cycles().expect("staged").is_empty()),
    }
    assert!(store.intents().expect("intents").is_empty(), "{file}");

    // Still a working state: a new cycle and its outcome are stored beside the old ones.
    let next = store
        .begin_cycle(CycleKind::Delta, at(0))
        .expect("new cycle");
    assert!(next.0 > e.cycles.len() as i64, "{file}: {next}");
    let new = success(next, 9_001, at(1));
    store.record_outcome(&new).expect("record");
    // Its join (unmerged until the cycle finishes, migration 7) is found beside the old ones.
    let JoinUpdate::Set(join) = &new.join else {
        panic!("the fixture outcome sets a join")
    };
    assert_eq!(
        store.join(&join.cloud_id).expect("join").as_ref(),
        Some(join)
    );
    assert_eq!(store.joins(None, 1000).expect("joins").len(), e.joins + 1);
    store
        .finish_cycle(next, at(2), &Default::default(), &CycleStatus::Completed)
        .expect("finish");
    assert_eq!(store.joins(None, 1000).expect("joins").len(), e.joins + 1);
    for old in &joins {
        assert_eq!(store.join(&old.cloud_id).expect("join").as_ref(), Some(old));
    }
    assert_eq!(
        store
            .query_logs(&LogQuery {
                cycle: Some(next),
                ..LogQuery::default()
            })
            .expect("logs")
            .len(),
        1
    );
}

#[test]
fn a_version_2_database_written_by_the_first_store_is_migrated_with_its_data() {
    check(&Expected {
        file: "v2-store-3066245.sqlite",
        version: 2,
        job: JobState::Active,
        watermark_cycle: 1,
        cycles: &[(CycleKind::Initial, CycleStatus::Completed, (4, 0, 1), 8)],
        joins: 4,
        escrow: 1,
        staged: None,
    });
}

#[test]
fn version_3_databases_written_by_released_binaries_are_migrated_with_their_data() {
    // The first binary that wrote state; its later cycles are full reconciles (its delta
    // filter is one the service refuses).
    check(&Expected {
        file: "v3-sync-e409437.sqlite",
        version: 3,
        job: JobState::ThresholdExceeded { cycle: CycleId(3) },
        watermark_cycle: 2,
        cycles: &[
            (CycleKind::Initial, CycleStatus::Completed, (8, 2, 0), 32),
            (
                CycleKind::FullReconcile,
                CycleStatus::Completed,
                (7, 2, 1),
                1,
            ),
            (
                CycleKind::FullReconcile,
                CycleStatus::ThresholdExceeded,
                (4, 2, 1),
                0,
            ),
        ],
        joins: 8,
        escrow: 1,
        staged: Some((3, 3)),
    });
    // The last binary before migration 4.
    check(&Expected {
        file: "v3-sync-3f38b5f.sqlite",
        version: 3,
        job: JobState::ThresholdExceeded { cycle: CycleId(3) },
        watermark_cycle: 2,
        cycles: MAKE_STATE_CYCLES,
        joins: 8,
        escrow: 1,
        staged: Some((3, 3)),
    });
}

#[test]
fn a_version_5_database_written_by_the_last_binary_before_identity_keys_is_migrated() {
    // The last binary before migration 6 (one index per identity column).
    check(&Expected {
        file: "v5-sync-58541a9.sqlite",
        version: 5,
        job: JobState::ThresholdExceeded { cycle: CycleId(3) },
        watermark_cycle: 2,
        cycles: MAKE_STATE_CYCLES,
        joins: 8,
        escrow: 1,
        staged: Some((3, 3)),
    });
}

/// `make-state`'s three cycles as a binary with the watermark's edge runs them (a delta passes
/// over what the watermark's cycle processed) against today's `lab/env` (10 users, 4 not
/// cloud-managed): initial (6 written, 4 skipped), a delta of the two changed mailboxes (1
/// written, 1 failed into escrow), a delta held by the change threshold (the escrowed one
/// failed again; the 3 held entries have the status `held`).
const EDGE_CYCLES: &[CycleHeld] = &[
    (CycleKind::Initial, CycleStatus::Completed, (6, 4, 0), 24),
    (CycleKind::Delta, CycleStatus::Completed, (1, 0, 1), 1),
    (
        CycleKind::Delta,
        CycleStatus::ThresholdExceeded,
        (0, 0, 1),
        0,
    ),
];

/// A fixture of [`EDGE_CYCLES`] written at `version`: [`check`], then the watermark's edge (the
/// ten mailboxes processed at its instants, so the next delta passes over them) and the held
/// cycle's entries.
fn check_edge_fixture(file: &'static str, version: i64) {
    check(&Expected {
        file,
        version,
        job: JobState::ThresholdExceeded { cycle: CycleId(3) },
        watermark_cycle: 2,
        cycles: EDGE_CYCLES,
        joins: 6,
        escrow: 1,
        staged: Some((3, 3)),
    });
    let (_dir, store) = open_copy(file);
    let w = store.watermark().expect("watermark").expect("a watermark");
    assert_eq!(w.edge.len(), 10, "{file}: the watermark's edge");
    let held = store
        .query_logs(&LogQuery {
            cycle: Some(CycleId(3)),
            statuses: vec![LogStatus::Held],
            ..LogQuery::default()
        })
        .expect("held entries");
    assert_eq!(held.len(), 3, "{file}: held entries");
}

#[test]
fn a_version_6_database_written_by_the_last_binary_before_appended_joins_is_migrated() {
    // The last binary before migration 7 (joins appended and merged in bulk).
    check_edge_fixture("v6-sync-6de2e21.sqlite", 6);
}

#[test]
fn a_version_7_database_written_by_the_last_binary_before_deflated_intents_is_migrated() {
    // The last binary before migration 8 (write-ahead intents one deflated row per chunk, the
    // journal one row per modify); its written entries keep their values in the journal only.
    check_edge_fixture("v7-sync-701b54a.sqlite", 7);
}
