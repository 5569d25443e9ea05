//! Provisioning-log queries and retention.

use crate::LogQuery;
use crate::prelude::*;
use crate::testing::fixtures::{at, cloud_id, dn, guid, log_entry, smtp, success};
use crate::testing::{Backend, TestStore};
use exo_writeback_core::provisioning::{
    CycleId, CycleKind, EscrowUpdate, JoinUpdate, LogStatus, ObjectOutcome,
};

/// Two cycles; objects 1..=8 in cycle A at t = n·10 s, objects 1..=4 again in cycle B at
/// t = 1000 + n s. Status by n: 1,5 success; 2,6 skipped; 3,7 failure; 4,8 warning.
fn seeded<B: Backend>(b: &B) -> (TestStore<B::Store>, CycleId, CycleId) {
    let mut store = b.open();
    let status = |n: u64| LogStatus::ALL[((n - 1) % 4) as usize];
    let a = store.begin_cycle(CycleKind::Initial, at(0)).expect("cycle");
    let b = store
        .begin_cycle(CycleKind::Delta, at(1000))
        .expect("cycle");
    let outcome = |cycle, n: u64, secs: i64| ObjectOutcome {
        log: log_entry(cycle, n, at(secs), status(n)),
        journal: vec![],
        join: JoinUpdate::Keep,
        escrow: EscrowUpdate::Keep,
        pins: Default::default(),
    };
    let batch: Vec<_> = (1..=8).map(|n| outcome(a, n, n as i64 * 10)).collect();
    store.record_outcomes(&batch).expect("record A");
    for n in 1..=4 {
        store
            .record_outcome(&outcome(b, n, 1000 + n as i64))
            .expect("record B");
    }
    (store, a, b)
}

/// (cycle letter, object) of each entry the query returns, in order.
fn run(store: &dyn Store, a: CycleId, q: LogQuery) -> Vec<(char, u64)> {
    store
        .query_logs(&q)
        .expect("query")
        .into_iter()
        .map(|e| {
            let id = e.source.external_directory_object_id.expect("source id");
            let n = (1..=8).find(|n| cloud_id(*n) == id).expect("fixture id");
            (if e.cycle == a { 'A' } else { 'B' }, n)
        })
        .collect()
}

pub fn log_filters(b: &impl Backend) {
    let (store, a, b_) = seeded(b);
    let q = |f: &dyn Fn(&mut LogQuery)| {
        let mut q = LogQuery {
            limit: 100,
            ..LogQuery::default()
        };
        f(&mut q);
        q
    };
    type Case = (&'static str, LogQuery, Vec<(char, u64)>);
    let cases: Vec<Case> = vec![
        (
            "everything, newest first",
            q(&|_| {}),
            vec![
                ('B', 4),
                ('B', 3),
                ('B', 2),
                ('B', 1),
                ('A', 8),
                ('A', 7),
                ('A', 6),
                ('A', 5),
                ('A', 4),
                ('A', 3),
                ('A', 2),
                ('A', 1),
            ],
        ),
        ("limit", q(&|q| q.limit = 2), vec![('B', 4), ('B', 3)]),
        (
            "one status",
            q(&|q| q.statuses = vec![LogStatus::Failure]),
            vec![('B', 3), ('A', 7), ('A', 3)],
        ),
        (
            "two statuses",
            q(&|q| q.statuses = vec![LogStatus::Success, LogStatus::Warning]),
            vec![('B', 4), ('B', 1), ('A', 8), ('A', 5), ('A', 4), ('A', 1)],
        ),
        ("cycle", q(&|q| q.cycle = Some(a)), {
            (1..=8).rev().map(|n| ('A', n)).collect()
        }),
        (
            "cycle and status",
            q(&|q| {
                q.cycle = Some(b_);
                q.statuses = vec![LogStatus::Skipped];
            }),
            vec![('B', 2)],
        ),
        (
            "since (inclusive)",
            q(&|q| q.since = Some(at(70))),
            vec![('B', 4), ('B', 3), ('B', 2), ('B', 1), ('A', 8), ('A', 7)],
        ),
        (
            "identity: ExternalDirectoryObjectId",
            q(&|q| q.identity = Some(cloud_id(2))),
            vec![('B', 2), ('A', 2)],
        ),
        (
            "identity: User_ prefix and upper case",
            q(&|q| q.identity = Some(format!("User_{}", cloud_id(2).to_uppercase()))),
            vec![('B', 2), ('A', 2)],
        ),
        (
            "identity: SMTP, case-insensitive",
            q(&|q| q.identity = Some(smtp(6).to_uppercase())),
            vec![('A', 6)],
        ),
        (
            "identity: DN, case-insensitive",
            q(&|q| q.identity = Some(dn(3).to_lowercase())),
            vec![('B', 3), ('A', 3)],
        ),
        (
            "identity: objectGUID",
            q(&|q| q.identity = Some(guid(5).to_string().to_uppercase())),
            vec![('A', 5)],
        ),
        (
            "identity: braced objectGUID",
            q(&|q| q.identity = Some(format!("{{{}}}", guid(5)))),
            vec![('A', 5)],
        ),
        (
            "identity with SQL and LDAP metacharacters matches nothing",
            q(&|q| q.identity = Some("' OR 1=1 --*)(cn=*".into())),
            vec![],
        ),
        (
            "identity is exact, not a substring",
            q(&|q| q.identity = Some("contoso.com".into())),
            vec![],
        ),
        (
            "everything combined",
            q(&|q| {
                q.identity = Some(smtp(1));
                q.statuses = vec![LogStatus::Success];
                q.cycle = Some(a);
                q.since = Some(at(10));
            }),
            vec![('A', 1)],
        ),
    ];
    for (name, query, want) in cases {
        assert_eq!(run(&*store, a, query), want, "{name}");
    }
}

pub fn entries_round_trip_exactly(b: &impl Backend) {
    let mut store = b.open();
    let c = store
        .begin_cycle(CycleKind::OnDemand, at(0))
        .expect("cycle");
    let mut o = success(c, 1, at(1));
    o.log.time = "2026-03-01T08:00:01.123456789Z".parse().expect("ts");
    o.log.source.primary_smtp_address = None;
    o.log.target.object_guid = None;
    store.record_outcome(&o).expect("record");
    let got = store.query_logs(&LogQuery::default()).expect("query");
    assert_eq!(got, vec![o.log]);
}

pub fn retention_purges_old_entries_and_journal_only(b: &impl Backend) {
    let mut store = b.open();
    let c = store.begin_cycle(CycleKind::Initial, at(0)).expect("cycle");
    let batch: Vec<_> = (1..=6).map(|n| success(c, n, at(n as i64 * 100))).collect();
    store.record_outcomes(&batch).expect("record");
    let report = store.purge_older_than(at(300)).expect("purge");
    assert_eq!(report.log_entries, 2);
    assert_eq!(report.journal_records, 6);
    let left = store
        .query_logs(&LogQuery::default())
        .expect("query")
        .into_iter()
        .map(|e| e.time)
        .collect::<Vec<_>>();
    assert_eq!(left, vec![at(600), at(500), at(400), at(300)]);
    assert_eq!(store.journal_for_cycle(c).expect("journal").len(), 12);
    // Joins and the cycle are state, not history: kept.
    assert_eq!(store.joins(None, 100).expect("joins").len(), 6);
    assert!(store.cycle(c).expect("cycle").is_some());
    assert_eq!(
        store.purge_older_than(at(300)).expect("purge again"),
        Default::default()
    );
}

/// Keyset paging: each page starts after the previous page's last entry, with the filters
/// kept, so pages neither repeat nor skip an entry (even entries of one instant); one entry
/// is read by its id.
pub fn pages_follow_each_other_and_one_entry_is_read_by_id(b: &impl Backend) {
    let (store, a, _b) = seeded(b);
    let all = run(&*store, a, LogQuery::default());
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let q = LogQuery {
            limit: 5,
            after,
            ..LogQuery::default()
        };
        let page = store.query_logs(&q).expect("page");
        paged.extend(run(&*store, a, q));
        match page.last() {
            Some(last) => after = Some(last.id),
            None => break,
        }
    }
    assert_eq!(paged, all);

    let failures = LogQuery {
        statuses: vec![LogStatus::Failure],
        limit: 1,
        ..LogQuery::default()
    };
    let first = store.query_logs(&failures).expect("first");
    let second = run(
        &*store,
        a,
        LogQuery {
            after: Some(first[0].id),
            ..failures.clone()
        },
    );
    assert_eq!(second, vec![('A', 7)], "the filter holds across pages");

    let one = store.log_entry(first[0].id).expect("read").expect("found");
    assert_eq!(one, first[0]);
    let unknown = exo_writeback_core::provisioning::LogEntryId(uuid::Uuid::nil());
    assert_eq!(store.log_entry(unknown).expect("read"), None);
    let none = LogQuery {
        after: Some(unknown),
        ..LogQuery::default()
    };
    assert!(store.query_logs(&none).expect("query").is_empty());
}

/// More entries than a purge deletes per transaction (SQLite: 5,000): all the old ones go.
pub fn a_large_purge_removes_everything_older(b: &impl Backend) {
    let mut store = b.open();
    let c = store.begin_cycle(CycleKind::Delta, at(0)).expect("cycle");
    let batch: Vec<_> = (1..=6_000)
        .map(|n| ObjectOutcome {
            log: log_entry(c, n, at(n as i64), LogStatus::Success),
            journal: vec![],
            join: JoinUpdate::Keep,
            escrow: EscrowUpdate::Keep,
            pins: Default::default(),
        })
        .collect();
    store.record_outcomes(&batch).expect("record");
    let report = store.purge_older_than(at(5_501)).expect("purge");
    assert_eq!(report.log_entries, 5_500);
    let left = store
        .query_logs(&LogQuery {
            limit: 10_000,
            ..LogQuery::default()
        })
        .expect("query");
    assert_eq!(left.len(), 500);
    assert!(left.iter().all(|e| e.time >= at(5_501)));
}
