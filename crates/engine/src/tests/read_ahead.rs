//! `read_ahead` (`EngineOptions`): the mailbox records an initial or full cycle reads from
//! Exchange Online while it scans the directory (`read.rs`, `ReadAhead::during`) — at most that
//! many held before the read phase begins — and the objects of a full reconcile's scan held
//! waiting for their mailbox (`settle.rs`, `Pairs`; its own tests: `settle/tests.rs`). A listing
//! longer than the read-ahead is read on after it: the same result whatever the bound.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use exo_writeback_core::mail_recipient::GroupMember;
use exo_writeback_core::mailbox::{Mailbox, RecipientKind};
use exo_writeback_core::provisioning::{CycleKind, CycleStatus};
use futures::StreamExt;
use jiff::Timestamp;

use super::support::{cycle_entries, hooked_engine, users};
use crate::testing::{FakeSource, Hook, Hooked, Users};
use crate::{CycleMode, EngineOptions, MailboxSource, MailboxStream, SourceError};

/// The fake source, counting the mailbox records taken from its listings.
#[derive(Clone)]
struct Counted {
    inner: FakeSource,
    taken: Arc<AtomicUsize>,
}

impl Counted {
    fn counting(&self, stream: MailboxStream) -> MailboxStream {
        let taken = self.taken.clone();
        stream
            .inspect(move |_| {
                taken.fetch_add(1, Ordering::SeqCst);
            })
            .boxed()
    }
}

impl MailboxSource for Counted {
    fn all(&self) -> MailboxStream {
        self.counting(self.inner.all())
    }
    fn changed_since(&self, since: Timestamp, overlap: jiff::SignedDuration) -> MailboxStream {
        self.counting(self.inner.changed_since(since, overlap))
    }
    fn recipients(
        &self,
        kind: RecipientKind,
        changed: Option<(Timestamp, jiff::SignedDuration)>,
    ) -> MailboxStream {
        self.inner.recipients(kind, changed)
    }
    async fn get(&self, identity: &str) -> Result<Option<Mailbox>, SourceError> {
        self.inner.get(identity).await
    }
    async fn group_members(&self, group: &str) -> Result<Vec<GroupMember>, SourceError> {
        self.inner.group_members(group).await
    }
}

/// The scan's end waits a little (a DC still reading its last page: the listing has all the
/// time it wants to read ahead), then notes how many records had been taken from the listing.
#[derive(Clone)]
struct ScanEnd {
    taken: Arc<AtomicUsize>,
    at_end: Arc<Mutex<Vec<usize>>>,
}

impl Hook for ScanEnd {
    async fn after_scan(&self) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let taken = self.taken.load(Ordering::SeqCst);
        self.at_end.lock().expect("lock").push(taken);
    }
}

/// `n` users whose listing is counted and whose scan ends late ([`ScanEnd`]), and an engine
/// on them with `options` (its state in `tmp`).
fn counted(
    n: u32,
    tmp: &tempfile::TempDir,
    options: EngineOptions,
) -> (
    Users,
    Arc<AtomicUsize>,
    ScanEnd,
    crate::Engine<Counted, Hooked<ScanEnd>, exo_writeback_store_sqlite::SqliteStore>,
) {
    let t0: Timestamp = "2026-01-01T00:00:00Z".parse().expect("ts");
    let lab = users(n, t0, &[]);
    let taken = Arc::new(AtomicUsize::new(0));
    let source = Counted {
        inner: lab.source.clone(),
        taken: taken.clone(),
    };
    let hook = ScanEnd {
        taken: taken.clone(),
        at_end: Arc::default(),
    };
    let engine = hooked_engine(&source, &lab.dir, &hook, tmp.path(), options);
    (lab, taken, hook, engine)
}

#[tokio::test]
async fn an_initial_or_full_cycle_holds_at_most_read_ahead_records_read_during_the_scan() {
    for (read_ahead, n, ahead) in [(4, 10, 4), (9, 10, 9), (10, 10, 10), (25, 10, 10)] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let options = EngineOptions {
            read_ahead,
            bulk_read: 3,
            ..EngineOptions::default()
        };
        let (_lab, taken, hook, mut engine) = counted(n, &tmp, options);
        for (mode, kind) in [
            (CycleMode::Auto, CycleKind::Initial),
            (CycleMode::Full, CycleKind::FullReconcile),
        ] {
            taken.store(0, Ordering::SeqCst);
            let r = engine.run_cycle(mode).await.expect("cycle");
            assert_eq!((r.kind, r.status), (kind, CycleStatus::Completed));
            assert_eq!(r.counts.imported, u64::from(n), "{kind:?}");
            assert_eq!(
                r.counts.written + r.counts.unchanged,
                u64::from(n),
                "{kind:?}"
            );
            assert_eq!(
                hook.at_end.lock().expect("lock").pop(),
                Some(ahead as usize),
                "{kind:?} with read_ahead {read_ahead}: records taken from the listing of \
                 {n} while the directory was scanned"
            );
            assert_eq!(
                taken.load(Ordering::SeqCst),
                n as usize,
                "{kind:?}: all read"
            );
        }
    }
}

/// What a cycle did: its counts (imported, written, unchanged, failed), the modifies per DN
/// and the log entries per cloud id.
type Outcome = (
    (u64, u64, u64, u64),
    BTreeMap<String, usize>,
    BTreeMap<String, usize>,
);

/// An initial cycle, then — three mailboxes changed, at both ends of the listing and in its
/// middle — a full reconcile, over `n` users with `read_ahead`; what each did.
async fn initial_then_full(n: u32, read_ahead: usize) -> (Outcome, Outcome, Vec<Vec<String>>) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let options = EngineOptions {
        read_ahead,
        bulk_read: 2,
        ..EngineOptions::default()
    };
    // The scan ends after a pause: the listing is read ahead up to the bound meanwhile.
    let (lab, taken, hook, mut engine) = counted(n, &tmp, options);
    let mut outcomes = Vec::new();
    for mode in [CycleMode::Auto, CycleMode::Full] {
        if mode == CycleMode::Full {
            for i in [0, n as usize / 2, n as usize - 1] {
                let mut m = lab.source.mailboxes.lock().expect("lock")[i].clone();
                m.custom_attributes[1] = Some(format!("changed {i}"));
                lab.source.set(m);
            }
        }
        let before = lab.dir.modifies.lock().expect("lock").len();
        taken.store(0, Ordering::SeqCst);
        let r = engine.run_cycle(mode).await.expect("cycle");
        assert_eq!(r.status, CycleStatus::Completed, "read_ahead {read_ahead}");
        assert_eq!(
            hook.at_end.lock().expect("lock").pop(),
            Some(read_ahead.min(n as usize)),
            "{mode:?} with read_ahead {read_ahead}: read ahead during the scan"
        );
        assert!(r.watermark.is_some(), "read_ahead {read_ahead}");
        let mut modified = BTreeMap::new();
        for m in &lab.dir.modifies.lock().expect("lock")[before..] {
            *modified.entry(m.dn.clone()).or_insert(0) += 1;
        }
        let mut logged = BTreeMap::new();
        let entries = cycle_entries(&engine.store, r.cycle);
        for e in entries {
            let id = e.source.external_directory_object_id.unwrap_or_default();
            *logged.entry(id).or_insert(0) += 1;
        }
        let c = &r.counts;
        outcomes.push((
            (c.imported, c.written, c.unchanged, c.failed),
            modified,
            logged,
        ));
    }
    let values = lab
        .guids
        .iter()
        .map(|g| {
            let mut v = lab.dir.values(g, "extensionAttribute1");
            v.extend(lab.dir.values(g, "extensionAttribute2"));
            v
        })
        .collect();
    let full = outcomes.pop().expect("full");
    let initial = outcomes.pop().expect("initial");
    (initial, full, values)
}

#[tokio::test]
async fn a_listing_longer_than_the_read_ahead_gives_the_same_cycles() {
    let n = 7;
    let (initial, full, values) = initial_then_full(n, 10_000).await;
    // The reference, read ahead whole: each object written once, each mailbox logged once.
    assert_eq!(initial.0, (7, 7, 0, 0));
    assert_eq!(initial.1.len(), 7);
    assert!(initial.1.values().all(|&m| m == 1), "{:?}", initial.1);
    assert_eq!(initial.2.len(), 7);
    assert!(initial.2.values().all(|&l| l == 1), "{:?}", initial.2);
    assert_eq!(full.0, (7, 3, 4, 0));
    assert_eq!(
        full.1.keys().collect::<Vec<_>>(),
        [
            "CN=user1,OU=Mailboxes,DC=lab,DC=test",
            "CN=user4,OU=Mailboxes,DC=lab,DC=test",
            "CN=user7,OU=Mailboxes,DC=lab,DC=test"
        ]
    );
    assert_eq!(full.2.len(), 7);
    assert!(full.2.values().all(|&l| l == 1), "{:?}", full.2);
    // Read-aheads shorter than the listing (by one, by most of it), as long and longer.
    for read_ahead in [1, 2, 6, 7, 8] {
        let (i, f, v) = initial_then_full(n, read_ahead).await;
        assert_eq!(i, initial, "initial cycle with read_ahead {read_ahead}");
        assert_eq!(f, full, "full reconcile with read_ahead {read_ahead}");
        assert_eq!(v, values, "AD with read_ahead {read_ahead}");
    }
}
