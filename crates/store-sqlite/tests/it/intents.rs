//! What recording and clearing a chunk's write-ahead intents writes, counted in pages appended
//! to the write-ahead log (each changed page is one frame of 4,096 bytes plus its header).

use exo_writeback_core::provisioning::{CycleKind, ObjectOutcome};
use exo_writeback_store::WriteIntent;
use exo_writeback_store::prelude::*;
use exo_writeback_store::testing::fixtures::{at, cloud_id, success};

use crate::common::open_temp;

/// Frames in the write-ahead log of the store at `db`.
fn wal_frames(db: &std::path::Path) -> u64 {
    let len = std::fs::metadata(db.with_extension("db-wal")).map_or(0, |m| m.len());
    len.saturating_sub(32) / (4096 + 24)
}

/// A chunk's intents take the pages their bytes need, once: recording them and clearing them
/// with their outcomes appends about as many pages as their JSON fills, beyond what the
/// outcomes alone append. Stored one row per intent, an intent larger than a third of a page
/// left most of its leaf page empty (two of 1.8 KB to a page, one of 2.1 KB), each with its
/// own index entry; in the benchmark at 100k the intents' pages were 3.9 KB of the
/// write-ahead log per object for 1.8 KB of JSON.
#[test]
fn a_chunks_intents_take_the_pages_their_bytes_need() {
    let (_dir, mut store) = open_temp();
    let db = store.path().to_path_buf();
    let cycle = store.begin_cycle(CycleKind::Initial, at(0)).expect("cycle");
    let chunk = |from: u64| -> Vec<_> {
        (from..from + 200)
            .map(|n| success(cycle, n, at(1)))
            .collect()
    };
    let intents = |outcomes: &[ObjectOutcome]| -> Vec<WriteIntent> {
        outcomes
            .iter()
            .enumerate()
            .map(|(n, o)| WriteIntent::from_success(&cloud_id(n as u64), o).expect("intent"))
            .collect()
    };
    // Warm up: a chunk recorded and cleared, so the next finds the pages it freed.
    let first = chunk(0);
    store.record_intents(&intents(&first)).expect("intents");
    let ids: Vec<_> = first.iter().map(|o| o.log.id.0).collect();
    store
        .record_outcomes_clearing_intents(&first, &ids)
        .expect("outcomes");

    // Outcomes alone, then the same number with their intents, counted in frames.
    let second = chunk(1000);
    let before = wal_frames(&db);
    store.record_outcomes(&second).expect("outcomes alone");
    let alone = wal_frames(&db) - before;

    let third = chunk(2000);
    let batch = intents(&third);
    let json: usize = batch
        .iter()
        .map(|i| serde_json::to_string(i).expect("json").len())
        .sum();
    let needed = json.div_ceil(4096) as u64;
    let before = wal_frames(&db);
    store.record_intents(&batch).expect("intents");
    let ids: Vec<_> = third.iter().map(|o| o.log.id.0).collect();
    store
        .record_outcomes_clearing_intents(&third, &ids)
        .expect("outcomes");
    let with_intents = wal_frames(&db) - before;
    assert!(store.intents().expect("intents").is_empty());
    let intents_cost = with_intents.saturating_sub(alone);
    assert!(
        intents_cost <= needed + needed / 10 + 4,
        "{json} bytes of intents ({needed} pages) cost {intents_cost} pages of the WAL \
         ({with_intents} with the outcomes, {alone} for the outcomes alone)"
    );
}
