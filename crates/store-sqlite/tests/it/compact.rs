//! In-sync log entries stored compactly (migration 9): the texts every in-sync entry of a
//! cycle shares are stored once per cycle, the row holds what is the object's own, and every
//! reader sees the entries exactly as they were recorded.

use std::io::Write;

use exo_writeback_core::outcome::OutcomeCode;
use exo_writeback_core::provisioning::{
    Action, CycleId, CycleKind, LogStatus, ObjectOutcome, ProvisioningLogEntry, Reason, StepStatus,
};
use exo_writeback_store::prelude::*;
use exo_writeback_store::testing::fixtures::{self, at, cloud_id, dn, guid, smtp, success};
use exo_writeback_store::{LogQuery, StateRow};
use exo_writeback_store_sqlite::{DB_FILE_NAME, SqliteStore, StateCopy};
use jiff::Timestamp;

use crate::common::open_temp;

const IN_SYNC: &str = "already in sync: every mapped attribute holds its Exchange Online value";
const SCOPE: &str = "in scope of ProfileBasic, ProfileCustomAttributes";

/// An object already in sync, as a cycle records it: the import and matching steps name the
/// object, the reason, scoping and export texts are the cycle's.
fn in_sync(cycle: CycleId, n: u64, time: Timestamp, export: &str) -> ObjectOutcome {
    let mut o = fixtures::in_sync(cycle, n, time);
    let log = &mut o.log;
    log.reason = Some(Reason {
        code: OutcomeCode::AlreadyInSync,
        message: IN_SYNC.into(),
        recommended_action: "None.".into(),
    });
    log.duration = jiff::SignedDuration::from_nanos(1_234_567 + n as i64 * 7);
    log.steps.import.details = format!(
        "read {} (ExternalDirectoryObjectId {}, UserMailbox, WhenChangedUTC {time})",
        smtp(n),
        cloud_id(n)
    );
    log.steps.scoping.details = SCOPE.into();
    log.steps.matching.details = format!("matched {} by ExternalDirectoryObjectId", dn(n));
    log.steps.export.status = StepStatus::Success;
    log.steps.export.details = export.into();
    o
}

fn deflated_len(text: &str) -> usize {
    let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    z.write_all(text.as_bytes()).expect("deflate");
    z.finish().expect("deflate").len()
}

/// The compact path is taken: N in-sync entries of a cycle store their shared texts once, and
/// each row only the object's own, in fewer bytes than its whole entry deflated.
#[test]
fn in_sync_entries_store_the_cycles_shared_texts_once() {
    let (dir, mut store) = open_temp();
    let cycle = store
        .begin_cycle(CycleKind::FullReconcile, at(0))
        .expect("cycle");
    let done = "already in sync: nothing to write";
    let outcomes: Vec<_> = (1..=200)
        .map(|n| in_sync(cycle, n, at(n as i64), done))
        .collect();
    store.record_outcomes(&outcomes[..120]).expect("record");
    store.record_outcomes(&outcomes[120..]).expect("record");
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE_NAME)).expect("raw open");
    let rows: Vec<(String, Vec<u8>)> = conn
        .prepare("SELECT typeof(entry), CAST(entry AS BLOB) FROM log_entries ORDER BY seq")
        .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
        .expect("rows");
    assert_eq!(rows.len(), 200);
    for ((kind, stored), o) in rows.iter().zip(&outcomes) {
        let text = String::from_utf8_lossy(stored);
        for shared in [IN_SYNC, SCOPE, done, "AlreadyInSync"] {
            assert!(
                !text.contains(shared),
                "{shared:?} stored in the row: {text}"
            );
        }
        let whole = deflated_len(&serde_json::to_string(&o.log).expect("json"));
        assert!(
            stored.len() < whole,
            "{kind} of {} bytes, the whole entry deflated {whole}",
            stored.len()
        );
    }
    let shapes: i64 = conn
        .query_row("SELECT count(*) FROM log_shapes", [], |r| r.get(0))
        .expect("shapes");
    assert_eq!(shapes, 1, "one shape for the cycle's in-sync entries");
    let got = store
        .query_logs(&LogQuery {
            limit: 1000,
            ..LogQuery::default()
        })
        .expect("query");
    let want: Vec<_> = outcomes.iter().rev().map(|o| o.log.clone()).collect();
    assert_eq!(got, want);
}

/// A mix of outcomes in two cycles: every reader sees exactly what was recorded.
fn mixed(store: &mut SqliteStore) -> Vec<ProvisioningLogEntry> {
    let a = store
        .begin_cycle(CycleKind::FullReconcile, at(0))
        .expect("cycle");
    let b = store.begin_cycle(CycleKind::Delta, at(500)).expect("cycle");
    let done = "already in sync: nothing to write";
    let mut batch = Vec::new();
    for n in 1..=12u64 {
        let t = at(n as i64 * 10);
        let o = match n % 6 {
            0 => success(a, n, t),
            1 => in_sync(a, n, t, done),
            2 => {
                // A security event instead of "already in sync": another shape.
                let mut o = in_sync(a, n, t, done);
                o.log.reason = Some(Reason {
                    code: OutcomeCode::DuplicateTargetEntries,
                    message: format!("two objects claim {}", smtp(n)),
                    recommended_action: "look".into(),
                });
                o
            }
            3 => in_sync(
                a,
                n,
                t,
                "already in sync: nothing to write; pin of mail released",
            ),
            4 => {
                let mut o = in_sync(a, n, t, done);
                o.log.status = LogStatus::Skipped;
                o.log.action = Action::Skip;
                o
            }
            _ => {
                let mut o = in_sync(a, n, t, done);
                o.log.status = LogStatus::Failure;
                o
            }
        };
        batch.push(o);
    }
    // A time the nanosecond column clamps; an entry without identities.
    let mut far = in_sync(a, 13, "2300-01-01T00:00:00.5Z".parse().expect("ts"), done);
    far.log.source.user_principal_name = None;
    batch.push(far);
    let mut bare = in_sync(a, 14, at(140), done);
    bare.log.source = Default::default();
    bare.log.target = Default::default();
    batch.push(bare);
    store.record_outcomes(&batch).expect("record A");
    let mut all: Vec<_> = batch.into_iter().map(|o| o.log).collect();
    for n in 1..=4u64 {
        let o = in_sync(
            b,
            n,
            at(500 + n as i64),
            "already in sync: nothing to write",
        );
        store.record_outcome(&o).expect("record B");
        all.push(o.log);
    }
    all
}

/// `all` (in recording order) as a query returns them: newest first, then last recorded.
fn newest_first(
    all: &[ProvisioningLogEntry],
    keep: impl Fn(&ProvisioningLogEntry) -> bool,
) -> Vec<ProvisioningLogEntry> {
    let mut v: Vec<(usize, &ProvisioningLogEntry)> =
        all.iter().enumerate().filter(|(_, e)| keep(e)).collect();
    let key = |e: &ProvisioningLogEntry| i64::try_from(e.time.as_nanosecond()).unwrap_or(i64::MAX);
    v.sort_by(|(i, x), (j, y)| (key(y), j).cmp(&(key(x), i)));
    v.into_iter().map(|(_, e)| e.clone()).collect()
}

fn query(store: &SqliteStore, q: LogQuery) -> Vec<ProvisioningLogEntry> {
    store
        .query_logs(&LogQuery { limit: 1000, ..q })
        .expect("query")
}

#[test]
fn every_reader_sees_compact_entries_as_they_were_recorded() {
    let (dir, mut store) = open_temp();
    let all = mixed(&mut store);
    let (a, b) = (all[0].cycle, all[all.len() - 1].cycle);

    let is_in_sync =
        |e: &ProvisioningLogEntry| e.action == Action::Other && e.status == LogStatus::Success;

    assert_eq!(
        query(&store, LogQuery::default()),
        newest_first(&all, |_| true)
    );
    for status in LogStatus::ALL {
        let q = LogQuery {
            statuses: vec![status],
            ..LogQuery::default()
        };
        assert_eq!(
            query(&store, q),
            newest_first(&all, |e| e.status == status),
            "{status:?}"
        );
    }
    for cycle in [a, b] {
        let q = LogQuery {
            cycle: Some(cycle),
            ..LogQuery::default()
        };
        assert_eq!(query(&store, q), newest_first(&all, |e| e.cycle == cycle));
    }
    let q = LogQuery {
        hide_in_sync: true,
        ..LogQuery::default()
    };
    assert_eq!(query(&store, q), newest_first(&all, |e| !is_in_sync(e)));
    let q = LogQuery {
        since: Some(at(75)),
        ..LogQuery::default()
    };
    assert_eq!(query(&store, q), newest_first(&all, |e| e.time >= at(75)));
    let identities = [
        smtp(1).to_uppercase(),
        cloud_id(3),
        format!("User_{}", cloud_id(2)),
        dn(4).to_lowercase(),
        guid(1).to_string(),
        "upn12@corp.example".to_string(),
    ];
    for identity in identities {
        let q = LogQuery {
            identity: Some(identity.clone()),
            ..LogQuery::default()
        };
        let got = query(&store, q);
        assert!(!got.is_empty(), "{identity}");
        let want = newest_first(&all, |e| got.iter().any(|g| g.id == e.id));
        assert_eq!(got, want, "{identity}");
        for e in &got {
            assert!(all.contains(e), "{identity}: {e:?}");
        }
    }
    // Keyset pages of 3.
    let (mut paged, mut after) = (Vec::new(), None);
    loop {
        let page = store
            .query_logs(&LogQuery {
                limit: 3,
                after,
                ..LogQuery::default()
            })
            .expect("page");
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        paged.extend(page);
    }
    assert_eq!(paged, newest_first(&all, |_| true));
    for e in &all {
        assert_eq!(store.log_entry(e.id).expect("read").as_ref(), Some(e));
    }
    // A copy of the state (export, then import into a fresh store) holds the same entries.
    let mut exported = Vec::new();
    store
        .export(&mut |row| {
            if let StateRow::Log { entry, .. } = row {
                exported.push(entry);
            }
            Ok(())
        })
        .expect("export");
    assert_eq!(exported, all);
    let (_copy_dir, mut copy) = open_temp();
    copy.import_from(&store).expect("import");
    assert_eq!(
        copy.query_logs(&LogQuery {
            limit: 1000,
            ..LogQuery::default()
        })
        .expect("query copy"),
        newest_first(&all, |_| true)
    );

    // Retention: compact rows go like the others, and the shapes of cycles left without rows.
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE_NAME)).expect("raw open");
    let shapes_of = |cycle: CycleId| -> i64 {
        conn.query_row(
            "SELECT count(*) FROM log_shapes WHERE cycle = ?1",
            [cycle.0],
            |r| r.get(0),
        )
        .expect("shapes")
    };
    assert!(shapes_of(a) >= 3, "three shapes in cycle A");
    assert_eq!(shapes_of(b), 1);
    let report = store.purge_older_than(at(400)).expect("purge");
    let left = newest_first(&all, |e| e.time >= at(400));
    assert_eq!(report.log_entries as usize, all.len() - left.len());
    assert_eq!(query(&store, LogQuery::default()), left);
    assert!(
        shapes_of(a) >= 1,
        "cycle A keeps the far entry, so its shapes"
    );
    let report = store.purge_older_than(at(1000)).expect("purge");
    assert_eq!(report.log_entries, 4);
    assert_eq!(shapes_of(b), 0, "cycle B's shapes went with its rows");
    assert_eq!(
        query(&store, LogQuery::default()),
        newest_first(&all, |e| e.time >= at(1000))
    );
}
