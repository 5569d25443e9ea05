//! Identity keys: how `logs --identity` and the journal of one object find their rows without
//! an index per identity column.
//!
//! The identities of a log entry (cloud id, primary SMTP address, UPN, DN, objectGUID) and of
//! a journal record (objectGUID, DN) are random values. An index per column put every insert
//! on a random page of a B-tree that outgrows SQLite's page cache long before a million
//! objects, so each transaction of outcomes dirtied thousands of pages (written to the WAL and
//! again at checkpoint): ≈ 117 KB written per object at 1M. Instead each row's identities go,
//! as 64-bit FNV-1a hashes of the stored (folded) text, into `identity_keys_new` — no index,
//! appended — and are merged into `identity_keys` (one B-tree ordered by hash) in bulk, sorted:
//! when `identity_keys_new` holds [`MERGE_AT`] keys and when a cycle finishes. A merge dirties
//! each page of the index at most once. Look-ups read both tables (the unmerged part is a
//! bounded scan) and then compare the real columns, so a hash collision costs a row read,
//! never a wrong answer.
//!
//! Hashes spread a merge's keys over every page of `identity_keys`, so each merge rewrites the
//! whole index as it stands. A cycle that merged every [`MERGE_AT`] keys wrote the index over
//! and over: an initial cycle of 1M mailboxes brings ≈ 7M keys, and its seven merges wrote
//! 1 + 2 + … + 7 = 28M keys' pages where one merge at its end writes 7M (485 bytes of the
//! 7.3 KB the store wrote per object, measured). So each merge during a cycle doubles the
//! threshold, up to [`MERGE_AT_MOST`] ([`after_merge`]): that cycle merges at 1M, then 3M,
//! then all 7M at its end — 11M. The cycle's end brings the threshold back to [`MERGE_AT`].
//!
//! A journal's keys wait apart, in `journal_keys_new` (migration 11): a cycle looks up the
//! journal of every object it plans a change for (drift), and that look-up scans the journal's
//! unmerged keys only — not the keys of the log entries the cycle records meanwhile (its
//! in-sync and skipped mailboxes, committed during its read phase), which made each look-up
//! scan up to a million rows (≈ 47 ms, measured) in a large cycle. A cycle starts by merging what a
//! stopped one left, so its read phase finds the journal's unmerged keys empty: journal
//! records come from writes, and a cycle writes after it has planned.
//!
//! A journal key points at one record of an outcome; the look-up takes every record of that
//! outcome (same `log_entry`, same object) — the records of one outcome share time, objectGUID
//! and DN, so the retention purge removes them together.

use std::hash::Hasher;

use rusqlite::{Transaction, params};

/// `kind` of a key: the `seq` is a row of `log_entries`.
pub(crate) const LOG: i64 = 0;
/// `kind` of a key: the `seq` is a row of `journal` (one record of an outcome).
pub(crate) const JOURNAL: i64 = 1;

/// Keys waiting unmerged before a commit merges them, at a cycle's start (≈ 25 MB of rows
/// scanned by a look-up).
pub(crate) const MERGE_AT: i64 = 1_000_000;

/// The most keys a merge during a large cycle waits for ([`after_merge`]): ≈ 100 MB of rows
/// scanned by a look-up while such a cycle runs (`logs --identity`; the engine's own look-ups
/// come before the cycle's writes).
pub(crate) const MERGE_AT_MOST: i64 = 4_000_000;

/// The threshold after a commit merged at `at` during a cycle: doubled, up to
/// [`MERGE_AT_MOST`] (a larger threshold set by hand stays).
pub(crate) fn after_merge(at: i64) -> i64 {
    at.saturating_mul(2).min(MERGE_AT_MOST.max(at))
}

/// The key of a stored identity value (already folded as its column stores it).
pub(crate) fn key(text: &str) -> i64 {
    let mut h = fnv::FnvHasher::default();
    h.write(text.as_bytes());
    // Stored as SQLite's signed 64-bit integer; the bits are what matter.
    h.finish() as i64
}

/// Where a kind's keys wait unmerged.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Waiting {
    /// `identity_keys_new (h, kind, seq)`: a log entry's keys (and, before migration 11 and
    /// in [`rebuild`], a journal's too).
    Shared,
    /// `journal_keys_new (h, seq)`: a journal's keys.
    Journal,
}

impl Waiting {
    fn of(kind: i64) -> Waiting {
        if kind == JOURNAL {
            Waiting::Journal
        } else {
            Waiting::Shared
        }
    }

    /// A sub-select of the `seq`s of `kind` waiting whose key satisfies `h_matches`.
    fn seqs(self, kind: i64, h_matches: &str) -> String {
        match self {
            Waiting::Shared => {
                format!("SELECT seq FROM identity_keys_new WHERE h {h_matches} AND kind = {kind}")
            }
            Waiting::Journal => format!("SELECT seq FROM journal_keys_new WHERE h {h_matches}"),
        }
    }
}

/// Records the keys of row `seq` of `kind` (values deduplicated; `None`s skipped).
pub(crate) fn add(
    tx: &Transaction<'_>,
    kind: i64,
    seq: i64,
    values: &[Option<&str>],
) -> rusqlite::Result<()> {
    add_to(tx, Waiting::of(kind), kind, seq, values)
}

fn add_to(
    tx: &Transaction<'_>,
    waiting: Waiting,
    kind: i64,
    seq: i64,
    values: &[Option<&str>],
) -> rusqlite::Result<()> {
    let mut keys: Vec<i64> = values.iter().flatten().map(|v| key(v)).collect();
    keys.sort_unstable();
    keys.dedup();
    // One statement for the row's keys (an entry has up to five): one step instead of one
    // per key. Each count has its own text, prepared once and cached.
    for chunk in keys.chunks(ROWS_PER_INSERT) {
        let mut stmt = tx.prepare_cached(insert_sql(waiting, chunk.len()))?;
        // The shared table takes the kind as ?1 and the row as ?2; the journal's the row as ?1.
        let first_key = match waiting {
            Waiting::Shared => {
                stmt.raw_bind_parameter(1, kind)?;
                stmt.raw_bind_parameter(2, seq)?;
                3
            }
            Waiting::Journal => {
                stmt.raw_bind_parameter(1, seq)?;
                2
            }
        };
        for (i, k) in chunk.iter().enumerate() {
            stmt.raw_bind_parameter(first_key + i, k)?;
        }
        stmt.raw_execute()?;
    }
    Ok(())
}

/// Keys inserted by one statement at most.
const ROWS_PER_INSERT: usize = 8;

/// `INSERT INTO identity_keys_new … VALUES (?3, ?1, ?2), (?4, ?1, ?2), …` for `n` keys (1 to
/// [`ROWS_PER_INSERT`]): the kind is `?1`, the row `?2`; `INSERT INTO journal_keys_new …
/// VALUES (?2, ?1), (?3, ?1), …`: the row is `?1`. Built once, not per entry.
fn insert_sql(waiting: Waiting, n: usize) -> &'static str {
    static SQL: std::sync::OnceLock<[Vec<String>; 2]> = std::sync::OnceLock::new();
    let all = SQL.get_or_init(|| {
        let build = |table: &str, row: &dyn Fn(usize) -> String| {
            (1..=ROWS_PER_INSERT)
                .map(|n| {
                    let rows = (0..n).map(row).collect::<Vec<_>>().join(", ");
                    format!("INSERT INTO {table} VALUES {rows}")
                })
                .collect()
        };
        [
            build("identity_keys_new (h, kind, seq)", &|i| {
                format!("(?{}, ?1, ?2)", 3 + i)
            }),
            build("journal_keys_new (h, seq)", &|i| {
                format!("(?{}, ?1)", 2 + i)
            }),
        ]
    });
    let table = match waiting {
        Waiting::Shared => &all[0],
        Waiting::Journal => &all[1],
    };
    &table[n - 1]
}

/// Merges the unmerged keys into the index when there are at least `at` of them (all of them
/// when `at` is 0); true when it merged. The rowids of the tables of unmerged keys restart
/// after each merge (they are emptied), so their largest rowids count their rows without a
/// scan.
pub(crate) fn merge(tx: &Transaction<'_>, at: i64) -> rusqlite::Result<bool> {
    let pending: i64 = tx
        .prepare_cached(
            "SELECT coalesce((SELECT max(rowid) FROM identity_keys_new), 0)
                  + coalesce((SELECT max(rowid) FROM journal_keys_new), 0)",
        )?
        .query_row([], |r| r.get(0))?;
    if pending == 0 || pending < at {
        return Ok(false);
    }
    tx.prepare_cached(&format!(
        "INSERT OR IGNORE INTO identity_keys (h, kind, seq)
         SELECT h, kind, seq FROM identity_keys_new
         UNION ALL SELECT h, {JOURNAL}, seq FROM journal_keys_new
         ORDER BY 1, 2, 3"
    ))?
    .execute([])?;
    tx.prepare_cached("DELETE FROM identity_keys_new")?
        .execute([])?;
    tx.prepare_cached("DELETE FROM journal_keys_new")?
        .execute([])?;
    Ok(true)
}

/// Migration 11: `journal_keys_new` exists (empty); the journal keys waiting in
/// `identity_keys_new` are merged with the rest.
pub(crate) fn migrate_journal_keys_apart(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    merge(tx, 0).map(drop)
}

/// SQL: the `seq`s of `kind` whose key is the key of one of `values` (a sub-select; the keys
/// are integers this module computed, written into the statement as literals).
pub(crate) fn seqs_sql(kind: i64, values: &[&str]) -> String {
    let mut keys: Vec<i64> = values
        .iter()
        .filter(|v| !v.is_empty())
        .map(|v| key(v))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let list = keys
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT seq FROM identity_keys WHERE h IN ({list}) AND kind = {kind} UNION ALL {}",
        Waiting::of(kind).seqs(kind, &format!("IN ({list})"))
    )
}

/// SQL: the `seq`s of `kind` whose key is the statement's parameter `?{param}` (the key of one
/// non-empty value): one text for every value, so the statement is prepared once and cached.
pub(crate) fn seq_of_key_sql(kind: i64, param: usize) -> String {
    format!(
        "SELECT seq FROM identity_keys WHERE h = ?{param} AND kind = {kind} UNION ALL {}",
        Waiting::of(kind).seqs(kind, &format!("= ?{param}"))
    )
}

/// Computes the keys of every stored log entry and journal record (a migration, or after an
/// import into an empty state), merged. It runs in migration 6, before `journal_keys_new`
/// exists, so it keys every row through `identity_keys_new` alone.
pub(crate) fn rebuild(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch("DELETE FROM identity_keys; DELETE FROM identity_keys_new;")?;
    {
        let mut read = tx.prepare("SELECT seq, source_id, smtp, upn, dn, guid FROM log_entries")?;
        let mut rows = read.query([])?;
        while let Some(r) = rows.next()? {
            let seq: i64 = r.get(0)?;
            let values: Vec<Option<String>> =
                (1..=5).map(|i| r.get(i)).collect::<rusqlite::Result<_>>()?;
            let refs: Vec<Option<&str>> = values.iter().map(|v| v.as_deref()).collect();
            add_to(tx, Waiting::Shared, LOG, seq, &refs)?;
        }
    }
    {
        // One record per outcome and object carries the keys.
        let mut read = tx.prepare(
            "SELECT min(seq), object_guid, dn FROM journal GROUP BY log_entry, object_guid, dn",
        )?;
        let mut rows = read.query([])?;
        while let Some(r) = rows.next()? {
            let seq: i64 = r.get(0)?;
            let guid: String = r.get(1)?;
            let dn: String = r.get(2)?;
            add_to(tx, Waiting::Shared, JOURNAL, seq, &[Some(&guid), Some(&dn)])?;
        }
    }
    tx.execute_batch(
        "INSERT OR IGNORE INTO identity_keys (h, kind, seq)
         SELECT h, kind, seq FROM identity_keys_new ORDER BY h, kind, seq;
         DELETE FROM identity_keys_new;",
    )
}

/// Forgets the keys of rows a purge deleted (those below the oldest row left).
pub(crate) fn forget_purged(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    for (kind, table) in [(LOG, "log_entries"), (JOURNAL, "journal")] {
        for keys in ["identity_keys", "identity_keys_new"] {
            tx.execute(
                &format!(
                    "DELETE FROM {keys} WHERE kind = ?1 AND
                       seq < coalesce((SELECT min(seq) FROM {table}), 9223372036854775807)"
                ),
                params![kind],
            )?;
        }
    }
    tx.execute(
        "DELETE FROM journal_keys_new
         WHERE seq < coalesce((SELECT min(seq) FROM journal), 9223372036854775807)",
        [],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LogQuery, SqliteStore};
    use exo_writeback_core::provisioning::{CycleKind, ObjectRef};
    use exo_writeback_store::prelude::*;
    use exo_writeback_store::testing::fixtures::{at, success};

    /// Keys waiting: the log entries', the journal's.
    fn waiting(store: &SqliteStore) -> (i64, i64) {
        store
            .conn
            .query_row(
                "SELECT (SELECT count(*) FROM identity_keys_new),
                        (SELECT count(*) FROM journal_keys_new)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("count")
    }

    fn unmerged(store: &SqliteStore) -> i64 {
        let (log, journal) = waiting(store);
        log + journal
    }

    fn keyed_rows(store: &SqliteStore) -> i64 {
        store
            .conn
            .query_row(
                "SELECT count(DISTINCT seq) FROM identity_keys WHERE kind = 0",
                [],
                |r| r.get(0),
            )
            .expect("count")
    }

    /// Entries are found by each identity whether their keys are merged or not; a commit
    /// merges at the threshold, a finished cycle merges the rest; a purge forgets the keys
    /// of the rows it deleted.
    #[test]
    fn look_ups_see_unmerged_and_merged_keys_and_purges_forget_them() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut store = SqliteStore::open_in(dir.path()).expect("open");
        (store.merge_keys_at, store.merge_keys_first) = (12, 12);
        let cycle = store.begin_cycle(CycleKind::Initial, at(0)).expect("cycle");
        let found = |store: &SqliteStore, n: u64| {
            let o = success(cycle, n, at(n as i64));
            for identity in [
                format!("USER{n}@contoso.com"),
                format!("0000aaaa-0000-0000-0000-{n:012}"),
                format!("cn=user {n},ou=staff,dc=lab,dc=example"),
            ] {
                let logs = store
                    .query_logs(&LogQuery {
                        identity: Some(identity.clone()),
                        ..LogQuery::default()
                    })
                    .expect("logs");
                assert_eq!(logs, vec![o.log.clone()], "{identity}");
            }
            let guid = o.log.target.object_guid.expect("guid");
            let mut journal = store
                .journal_for_object(&ObjectRef::Guid(guid))
                .expect("journal");
            journal.reverse();
            assert_eq!(journal, o.journal, "journal of {n}");
        };
        store.record_outcome(&success(cycle, 1, at(1))).expect("1");
        assert!(unmerged(&store) > 0);
        assert_eq!(keyed_rows(&store), 0);
        found(&store, 1);
        // Each entry brings more than six keys (five identities, two of its journal): the
        // second commit reaches 12 and merges.
        store.record_outcome(&success(cycle, 2, at(2))).expect("2");
        assert_eq!(unmerged(&store), 0);
        assert_eq!(keyed_rows(&store), 2);
        store.record_outcome(&success(cycle, 3, at(3))).expect("3");
        for n in 1..=3 {
            found(&store, n);
        }
        let counts = Default::default();
        let status = exo_writeback_core::provisioning::CycleStatus::Completed;
        store
            .finish_cycle(cycle, at(4), &counts, &status)
            .expect("finish");
        assert_eq!(unmerged(&store), 0);
        assert_eq!(keyed_rows(&store), 3);
        found(&store, 3);

        store.purge_older_than(at(2)).expect("purge");
        assert_eq!(
            keyed_rows(&store),
            2,
            "the purged entry's keys are forgotten"
        );
        found(&store, 2);
        found(&store, 3);
    }

    /// A cycle's merges come at doubling counts of unmerged keys, up to the most, so that a
    /// large cycle does not rewrite the index at every [`MERGE_AT`] keys; the cycle's end
    /// merges the rest and brings the threshold back for the next cycle.
    #[test]
    fn a_cycle_merges_at_doubling_thresholds_and_its_end_resets_them() {
        assert_eq!(after_merge(MERGE_AT), 2 * MERGE_AT);
        assert_eq!(after_merge(MERGE_AT_MOST / 2 + 1), MERGE_AT_MOST);
        assert_eq!(after_merge(MERGE_AT_MOST), MERGE_AT_MOST);
        assert_eq!(after_merge(2 * MERGE_AT_MOST), 2 * MERGE_AT_MOST);

        let dir = tempfile::tempdir().expect("temp dir");
        let mut store = SqliteStore::open_in(dir.path()).expect("open");
        (store.merge_keys_at, store.merge_keys_first) = (10, 10);
        let merged = |store: &SqliteStore| -> i64 {
            store
                .conn
                .query_row("SELECT count(*) FROM identity_keys", [], |r| r.get(0))
                .expect("count")
        };
        // Records entries `ns` of `cycle`; returns how many keys each merge took.
        let record = |store: &mut SqliteStore, cycle, ns: std::ops::RangeInclusive<u64>| {
            let mut merges = Vec::new();
            for n in ns {
                let before = merged(store);
                store
                    .record_outcome(&success(cycle, n, at(n as i64)))
                    .expect("outcome");
                if merged(store) > before {
                    merges.push(merged(store) - before);
                }
            }
            merges
        };
        let cycle = store.begin_cycle(CycleKind::Initial, at(0)).expect("cycle");
        assert_eq!(record(&mut store, cycle, 1..=1), Vec::<i64>::new());
        assert_eq!(
            unmerged(&store),
            7,
            "five identities and two of the journal"
        );
        // Merged when 14 waited (≥ 10), then 21 (≥ 20), then 42 (≥ 40); 63 wait (< 80).
        assert_eq!(record(&mut store, cycle, 2..=20), vec![14, 21, 42]);
        assert_eq!(unmerged(&store), 63);
        assert_eq!(store.merge_keys_at, 80);
        let status = exo_writeback_core::provisioning::CycleStatus::Completed;
        store
            .finish_cycle(cycle, at(30), &Default::default(), &status)
            .expect("finish");
        assert_eq!((unmerged(&store), merged(&store)), (0, 140));
        assert_eq!(keyed_rows(&store), 20);
        assert_eq!(
            store.merge_keys_at, 10,
            "the next cycle starts from the first threshold"
        );
        let next = store.begin_cycle(CycleKind::Delta, at(31)).expect("cycle");
        assert_eq!(record(&mut store, next, 21..=22), vec![14]);
    }

    /// A journal's keys wait apart from the log entries' (a journal look-up scans only its
    /// own), and a cycle starts by merging what a stopped cycle left, so that its look-ups,
    /// one per object it plans a change for, find none waiting.
    #[test]
    fn journal_keys_wait_apart_and_a_new_cycle_merges_what_a_stopped_one_left() {
        assert!(!seq_of_key_sql(JOURNAL, 2).contains("identity_keys_new"));
        assert!(!seqs_sql(LOG, &["x"]).contains("journal_keys_new"));
        let dir = tempfile::tempdir().expect("temp dir");
        let mut store = SqliteStore::open_in(dir.path()).expect("open");
        let stopped = store.begin_cycle(CycleKind::Initial, at(0)).expect("cycle");
        for n in 1..=3 {
            store
                .record_outcome(&success(stopped, n, at(n as i64)))
                .expect("outcome");
        }
        // Five identities an entry; two (objectGUID, DN) of its journal.
        assert_eq!(waiting(&store), (15, 6));
        let journal = |store: &SqliteStore, n: u64| {
            let o = success(stopped, n, at(n as i64));
            let guid = o.log.target.object_guid.expect("guid");
            let mut j = store
                .journal_for_object(&ObjectRef::Guid(guid))
                .expect("journal");
            j.reverse();
            assert_eq!(j, o.journal, "journal of {n}");
        };
        journal(&store, 2);
        // The process stopped there; the next cycle starts with everything merged.
        let next = store
            .begin_cycle(CycleKind::Initial, at(10))
            .expect("cycle");
        assert_eq!(waiting(&store), (0, 0));
        assert_eq!(keyed_rows(&store), 3);
        for n in 1..=3 {
            journal(&store, n);
        }
        // Entries without a journal (in sync, skipped) add to the log entries' keys only.
        let in_sync = exo_writeback_store::testing::fixtures::in_sync(next, 4, at(11));
        assert!(in_sync.journal.is_empty());
        store.record_outcome(&in_sync).expect("in sync");
        assert_eq!(waiting(&store), (5, 0));
    }

    /// The keys of a row go in one statement per eight: ten values give ten keys (two
    /// statements), a repeated value one.
    #[test]
    fn every_distinct_value_of_a_row_is_keyed_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut store = SqliteStore::open_in(dir.path()).expect("open");
        let values: Vec<String> = (0..10).map(|i| format!("value {i}")).collect();
        let mut refs: Vec<Option<&str>> = values.iter().map(|v| Some(v.as_str())).collect();
        refs.push(Some("value 3"));
        refs.push(None);
        let tx = store.conn.transaction().expect("tx");
        add(&tx, LOG, 77, &refs).expect("add");
        tx.commit().expect("commit");
        let mut stmt = store
            .conn
            .prepare("SELECT h, kind, seq FROM identity_keys_new ORDER BY h")
            .expect("prepare");
        let rows: Vec<(i64, i64, i64)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .expect("query")
            .collect::<rusqlite::Result<_>>()
            .expect("rows");
        let mut want: Vec<(i64, i64, i64)> = values.iter().map(|v| (key(v), LOG, 77)).collect();
        want.sort_unstable();
        assert_eq!(rows, want);
    }

    /// A purge that deletes nothing leaves the keys alone (forgetting scans all of them: the
    /// cost of every `sync` would grow with the state); a key without its row (a process
    /// stopped between a purge and its forgetting) goes with the next purge that deletes rows.
    #[test]
    fn a_purge_that_deletes_nothing_does_not_touch_the_keys() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut store = SqliteStore::open_in(dir.path()).expect("open");
        let cycle = store.begin_cycle(CycleKind::Initial, at(0)).expect("cycle");
        for n in 1..=2 {
            store
                .record_outcome(&success(cycle, n, at(n as i64)))
                .expect("outcome");
        }
        let counts = Default::default();
        let status = exo_writeback_core::provisioning::CycleStatus::Completed;
        store
            .finish_cycle(cycle, at(4), &counts, &status)
            .expect("finish");
        assert_eq!(keyed_rows(&store), 2);
        // Keys of a row already deleted, left behind.
        store
            .conn
            .execute("INSERT INTO identity_keys VALUES (42, 0, -1)", [])
            .expect("orphan key");
        assert_eq!(keyed_rows(&store), 3);
        store.purge_older_than(at(0)).expect("purge nothing");
        assert_eq!(keyed_rows(&store), 3, "a purge that deleted nothing");
        store.purge_older_than(at(2)).expect("purge one");
        assert_eq!(
            keyed_rows(&store),
            1,
            "the purged entry's and the orphan's keys"
        );
    }

    #[test]
    fn keys_are_fnv1a_64_of_the_text() {
        // FNV-1a 64 test vectors (Fowler, Noll, Vo): stored keys must never change.
        assert_eq!(key("") as u64, 0xcbf29ce484222325);
        assert_eq!(key("a") as u64, 0xaf63dc4c8601ec8c);
        assert_eq!(key("foobar") as u64, 0x85944171f73967e8);
    }
}
