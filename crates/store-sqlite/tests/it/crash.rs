//! Crash safety: a child process records outcomes and advances the watermark in a loop and
//! is SIGKILLed at random instants; every reopened database must be consistent.
//!
//! The child is this test binary itself, running [`crash_writer_child`] with
//! `STORE_CRASH_CHILD_DB` set. Without that variable the same test runs a short, bounded
//! writer in-process and checks the result, so it is a real test on its own too.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::{at, cloud_id, failed, guid, journal, success};
use exo_writeback_core::provisioning::{
    CycleCounts, CycleKind, CycleStatus, ObjectOutcome, ObjectRef, Watermark,
};
use exo_writeback_store_sqlite::prelude::*;
use exo_writeback_store_sqlite::{LogQuery, SqliteStore};
use jiff::SignedDuration;

const CHILD_ENV: &str = "STORE_CRASH_CHILD_DB";
const OBJECTS_PER_CYCLE: u64 = 40;

/// When fixture object `n` changed in Exchange Online.
fn changed_at(n: u64) -> jiff::Timestamp {
    at(n as i64)
}

/// Object `n` fails when `n % 3 == 0`, else succeeds.
fn outcome_for(cycle: exo_writeback_core::provisioning::CycleId, n: u64) -> ObjectOutcome {
    if n.is_multiple_of(3) {
        failed(cycle, n, changed_at(n))
    } else {
        success(cycle, n, changed_at(n))
    }
}

/// Small deterministic generator (no dependency needed for test randomness).
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// How many objects are recorded: the store holds objects `0..count` (checked by
/// [`assert_consistent`]).
fn recorded_count(store: &SqliteStore) -> u64 {
    store
        .query_logs(&LogQuery {
            limit: 1,
            ..LogQuery::default()
        })
        .expect("latest entry")
        .first()
        .map(|e| {
            let id = e
                .source
                .external_directory_object_id
                .as_deref()
                .expect("source id");
            id.rsplit('-')
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .expect("fixture id")
                + 1
        })
        .unwrap_or(0)
}

/// Records objects from where the store stands, in batches of random size, advancing the
/// watermark after each batch like the engine does; `limit` objects at most (`None`: forever).
fn write_objects(path: &Path, seed: u64, limit: Option<u64>) {
    let mut store = SqliteStore::open(path).expect("open");
    store
        .interrupt_running_cycles(at(0))
        .expect("interrupt running cycles");
    let mut rng = XorShift(seed | 1);
    let mut next = recorded_count(&store);
    let end = limit.map(|l| next + l);
    let mut cycle = store.begin_cycle(CycleKind::Delta, at(0)).expect("cycle");
    loop {
        let size = 1 + rng.below(6);
        let batch_end = match end {
            Some(e) => (next + size).min(e),
            None => next + size,
        };
        if batch_end == next {
            break;
        }
        let batch: Vec<_> = (next..batch_end).map(|n| outcome_for(cycle, n)).collect();
        // Durable before the watermark passes them (the last one stays on the boundary):
        // either in the same transaction, or in a later one.
        let watermark = Watermark {
            changed_since: changed_at(batch_end - 1),
            overlap: SignedDuration::from_secs(60),
            cycle,
            edge: Vec::new(),
        };
        match rng.below(3) {
            0 => {
                for o in &batch {
                    store.record_outcome(o).expect("record");
                }
                store.set_watermark(&watermark).expect("watermark");
            }
            1 => {
                store.record_outcomes(&batch).expect("record batch");
                store.set_watermark(&watermark).expect("watermark");
            }
            _ => store
                .record_outcomes_then_watermark(&batch, Some(&watermark))
                .expect("record batch with watermark"),
        }
        next = batch_end;
        if next.is_multiple_of(OBJECTS_PER_CYCLE) {
            store
                .finish_cycle(
                    cycle,
                    at(next as i64),
                    &CycleCounts::default(),
                    &CycleStatus::Completed,
                )
                .expect("finish");
            cycle = store.begin_cycle(CycleKind::Delta, at(0)).expect("cycle");
        }
    }
}

/// Every outcome is entirely present or entirely absent, present ones form a prefix `0..N`,
/// and the watermark is not ahead of the recorded outcomes. Returns N.
fn assert_consistent(path: &Path) -> u64 {
    let store = SqliteStore::open(path).expect("reopen after kill");
    store.integrity_check().expect("SQLite integrity");
    let count = recorded_count(&store);
    let all = store
        .query_logs(&LogQuery {
            limit: usize::MAX,
            ..LogQuery::default()
        })
        .expect("all logs");
    assert_eq!(
        all.len() as u64,
        count,
        "log entries form the prefix 0..{count}"
    );
    let mut total_journal = 0;
    for n in 0..count {
        let want = outcome_for(all[(count - 1 - n) as usize].cycle, n);
        assert_eq!(all[(count - 1 - n) as usize], want.log, "log of object {n}");
        let journal_got = store
            .journal_for_object(&ObjectRef::Guid(guid(n)))
            .expect("journal");
        if n.is_multiple_of(3) {
            assert!(journal_got.is_empty(), "object {n} failed: no journal");
            let e = store
                .escrow_entry(&cloud_id(n))
                .expect("escrow")
                .unwrap_or_else(|| panic!("object {n} failed but is not in escrow"));
            assert_eq!(e.attempts, 1);
        } else {
            let mut journal_got = journal_got;
            journal_got.reverse();
            assert_eq!(
                journal_got,
                journal(want.log.cycle, n, changed_at(n)),
                "journal {n}"
            );
            let j = store.join(&cloud_id(n)).expect("join");
            assert_eq!(
                j.map(|j| j.object_guid),
                Some(guid(n)),
                "join of object {n}"
            );
            total_journal += 3;
        }
    }
    // Nothing of the object after the prefix.
    assert!(
        store
            .journal_for_object(&ObjectRef::Guid(guid(count)))
            .expect("journal")
            .is_empty()
    );
    assert_eq!(store.join(&cloud_id(count)).expect("join"), None);
    assert_eq!(store.escrow_entry(&cloud_id(count)).expect("escrow"), None);
    let journal_stored: usize = store
        .recent_cycles(usize::MAX)
        .expect("cycles")
        .iter()
        .map(|c| store.journal_for_cycle(c.id).expect("journal").len())
        .sum();
    assert_eq!(journal_stored, total_journal, "no orphan journal records");
    assert_eq!(store.escrow_count().expect("escrow"), count.div_ceil(3));
    match store.watermark().expect("watermark") {
        None => {}
        Some(w) => {
            assert!(count > 0, "a watermark without any recorded outcome");
            assert!(
                w.changed_since <= changed_at(count - 1),
                "watermark {} ahead of the last recorded outcome {}",
                w.changed_since,
                changed_at(count - 1)
            );
        }
    }
    count
}

#[test]
fn crash_writer_child() {
    if let Ok(path) = std::env::var(CHILD_ENV) {
        let seed = std::process::id() as u64;
        write_objects(Path::new(&path), seed, None);
        unreachable!("the writer runs until it is killed");
    }
    // In-process: a bounded run, resumed twice, then checked.
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state.db");
    write_objects(&path, 7, Some(25));
    write_objects(&path, 8, Some(30));
    write_objects(&path, 9, Some(1));
    assert_eq!(assert_consistent(&path), 56);
}

#[test]
fn killing_the_writer_at_random_instants_leaves_a_consistent_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state.db");
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(42);
    eprintln!("crash test seed {seed}");
    let mut rng = XorShift(seed | 1);
    let exe = std::env::current_exe().expect("test binary");
    let mut previous = 0;
    let mut advanced = 0;
    for round in 0..8 {
        let mut child = Command::new(&exe)
            .args(["crash::crash_writer_child", "--exact", "--test-threads=1"])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn writer");
        // From a few ms (often before or during open/migration) to ~0.8 s.
        std::thread::sleep(Duration::from_millis(5 + rng.below(800)));
        child.kill().expect("SIGKILL");
        let status = child.wait().expect("wait");
        assert!(
            !status.success(),
            "round {round}: the writer stopped by itself"
        );
        let count = assert_consistent(&path);
        assert!(count >= previous, "round {round}: outcomes were lost");
        if count > previous {
            advanced += 1;
        }
        previous = count;
    }
    assert!(
        advanced >= 2,
        "the writer made progress in only {advanced} of 8 rounds (seed {seed})"
    );
    eprintln!("crash test: {previous} outcomes recorded across 8 kills");
}
