//! Match-key spoofing (issue 12, item 5): msDS-ExternalDirectoryObjectId is writable by every
//! user on their own object, so it never decides a match against the immutable anchor, never
//! moves a join, and a pairing whose write failed is not stored.

use exo_writeback_core::directory::{AttrValue, Attributes};
use exo_writeback_core::guid::immutable_id;
use exo_writeback_core::provisioning::{Action, LogStatus, ProvisioningLogEntry};
use exo_writeback_store_sqlite::prelude::*;
use exo_writeback_store_sqlite::{LogQuery, SqliteStore};
use jiff::Timestamp;
use uuid::Uuid;

use super::TestEngine;
use crate::testing::{FakeDirectory, FakeSource};
use crate::{CycleMode, EngineOptions};

const VICTIM: u32 = 1;
const ATTACKER: u32 = 2;

fn t(n: i64) -> Timestamp {
    Timestamp::from_second(1_767_225_600 + n).expect("ts")
}

fn edoid(n: u32) -> String {
    format!("00000000-0000-0000-0000-{n:012}")
}

/// A synced user `CN=user<n>` holding the lab's seed values and, when given, an
/// msDS-ExternalDirectoryObjectId.
fn user(dir: &FakeDirectory, n: u32, key: Option<String>) -> Uuid {
    let mut a = Attributes::new();
    a.insert(
        "proxyAddresses",
        vec![AttrValue::Text(format!("SMTP:user{n}@contoso.com"))],
    );
    if let Some(k) = key {
        a.insert("msDS-ExternalDirectoryObjectId", vec![AttrValue::Text(k)]);
    }
    dir.add(&format!("user{n}"), a)
}

struct World {
    engine: TestEngine,
    source: FakeSource,
    dir: FakeDirectory,
    victim: Uuid,
    attacker: Uuid,
    _tmp: tempfile::TempDir,
}

/// The victim and the attacker, each with a mailbox whose ImmutableId is its objectGUID
/// (`with_anchor`) or absent; the attacker's object holds `User_<victim's id>` when
/// `spoofed`.
fn world(with_anchor: bool, spoofed: bool) -> World {
    let dir = FakeDirectory::new();
    let source = FakeSource::default();
    let victim = user(&dir, VICTIM, None);
    let attacker = user(
        &dir,
        ATTACKER,
        spoofed.then(|| format!("User_{}", edoid(VICTIM))),
    );
    for (n, guid) in [(VICTIM, victim), (ATTACKER, attacker)] {
        let mut m = super::support::mailbox(n, t(0));
        if with_anchor {
            m.immutable_id = Some(immutable_id(&guid));
        }
        source.set(m);
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let engine = super::support::engine(
        &source,
        dir.clone(),
        tmp.path(),
        500,
        EngineOptions::default(),
    );
    World {
        engine,
        source,
        dir,
        victim,
        attacker,
        _tmp: tmp,
    }
}

fn entries(store: &SqliteStore, id: &str) -> Vec<ProvisioningLogEntry> {
    store
        .query_logs(&LogQuery {
            identity: Some(id.to_string()),
            ..LogQuery::default()
        })
        .expect("logs")
}

fn code(e: &ProvisioningLogEntry) -> &str {
    e.reason.as_ref().map_or("", |r| r.code.as_str())
}

#[tokio::test]
async fn a_user_who_writes_the_victims_key_on_itself_receives_nothing() {
    let mut w = world(true, true);
    let r = w.engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    assert_eq!(r.counts.failed, 0, "{r:?}");
    // The victim holds its own values; the attacker its own.
    assert_eq!(w.dir.values(&w.victim, "extensionAttribute1"), ["ca1-1"]);
    assert_eq!(w.dir.values(&w.victim, "mail"), ["user1@contoso.com"]);
    assert_eq!(w.dir.values(&w.attacker, "extensionAttribute1"), ["ca1-2"]);
    assert_eq!(w.dir.values(&w.attacker, "mail"), ["user2@contoso.com"]);
    let join = w.engine.store.join(&edoid(VICTIM)).expect("join");
    assert_eq!(join.map(|j| j.object_guid), Some(w.victim));
    // The victim's entry: written, and the security event is what it is about.
    let logged = entries(&w.engine.store, &edoid(VICTIM));
    assert_eq!(logged.len(), 1, "{logged:?}");
    let e = &logged[0];
    assert_eq!(code(e), "SpoofedMatchKey", "{e:?}");
    assert_eq!((e.status, e.action), (LogStatus::Warning, Action::Update));
    assert_eq!(e.target.object_guid, Some(w.victim));
    let reason = &e.reason.as_ref().expect("reason").message;
    assert!(
        reason.contains("CN=user2,") && reason.contains("not followed"),
        "{reason}"
    );
    assert!(
        e.steps
            .matching
            .details
            .contains("by mS-DS-ConsistencyGuid")
            || e.steps.matching.details.contains("by objectGUID"),
        "{:?}",
        e.steps.matching
    );
    // The attacker's own mailbox is matched and written normally.
    let attacker_entries = entries(&w.engine.store, &edoid(ATTACKER));
    assert_eq!(code(&attacker_entries[0]), "", "{attacker_entries:?}");
    // The cycle counts the event.
    assert_eq!(r.counts.security_events, 1);

    // The victim's next change: still the victim's object (by the join).
    let mut m = super::support::mailbox(VICTIM, t(3600));
    m.immutable_id = Some(immutable_id(&w.victim));
    m.custom_attributes[2] = Some("victim only".into());
    w.source.set(m);
    let r = w.engine.run_cycle(CycleMode::Auto).await.expect("delta");
    assert_eq!(r.counts.written, 1);
    assert_eq!(
        w.dir.values(&w.victim, "extensionAttribute3"),
        ["victim only"]
    );
    assert!(w.dir.values(&w.attacker, "extensionAttribute3").is_empty());
}

#[tokio::test]
async fn the_index_of_an_initial_cycle_and_the_searches_decide_alike() {
    // The initial cycle answers from the match index; a preview of a delta searches.
    for full in [true, false] {
        let mut w = world(true, true);
        if !full {
            *w.dir.no_scan.lock().expect("lock") = true;
        }
        w.engine.run_cycle(CycleMode::Auto).await.expect("cycle");
        assert_eq!(w.dir.values(&w.victim, "extensionAttribute1"), ["ca1-1"]);
        assert_eq!(w.dir.values(&w.attacker, "extensionAttribute1"), ["ca1-2"]);
        let logged = entries(&w.engine.store, &edoid(VICTIM));
        assert_eq!(code(&logged[0]), "SpoofedMatchKey", "index: {full}");
    }
}

#[tokio::test]
async fn a_key_without_the_anchor_is_not_followed_and_nothing_is_written() {
    let mut w = world(true, true);
    // The victim's object is outside the directory (deleted, or another forest): only the
    // attacker's key remains.
    w.dir.remove(&w.victim);
    let before = w.dir.get(&w.attacker);
    let r = w.engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    let logged = entries(&w.engine.store, &edoid(VICTIM));
    let e = &logged[0];
    assert_eq!(code(e), "SpoofedMatchKey", "{e:?}");
    assert_eq!((e.status, e.action), (LogStatus::Warning, Action::Skip));
    assert!(e.modified.is_empty());
    assert_eq!(w.engine.store.join(&edoid(VICTIM)).expect("join"), None);
    assert_eq!(r.counts.security_events, 1);
    // The attacker's object holds only its own mailbox's values.
    assert_eq!(w.dir.values(&w.attacker, "extensionAttribute1"), ["ca1-2"]);
    let after = w.dir.get(&w.attacker);
    assert_eq!(
        after.attributes.get("msDS-ExternalDirectoryObjectId"),
        before.attributes.get("msDS-ExternalDirectoryObjectId")
    );
}

#[tokio::test]
async fn a_join_the_anchor_contradicts_is_left_for_the_anchors_object() {
    // Before the mailbox's ImmutableId was known, the key alone matched — the attacker's
    // object (the join an older version stored from a spoofed key).
    let mut w = world(false, true);
    w.dir.set(&w.victim, "proxyAddresses", vec![]);
    w.engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    let join = w.engine.store.join(&edoid(VICTIM)).expect("join");
    assert_eq!(join.map(|j| j.object_guid), Some(w.attacker));
    assert_eq!(w.dir.values(&w.attacker, "extensionAttribute1"), ["ca1-1"]);
    // The ImmutableId becomes known: the join is checked against it and left.
    for (n, guid) in [(VICTIM, w.victim), (ATTACKER, w.attacker)] {
        let mut m = super::support::mailbox(n, t(3600));
        m.immutable_id = Some(immutable_id(&guid));
        m.custom_attributes[1] = Some(format!("anchored-{n}"));
        w.source.set(m);
    }
    w.engine.run_cycle(CycleMode::Auto).await.expect("delta");
    // The attacker's object still held the victim's addresses (written by the old join): the
    // victim's write fails this time, and the distrusted join is gone all the same.
    let logged = entries(&w.engine.store, &edoid(VICTIM));
    assert_eq!(code(&logged[0]), "ProxyAddressConflict", "{:?}", logged[0]);
    assert_eq!(w.engine.store.join(&edoid(VICTIM)).expect("join"), None);
    assert_eq!(w.dir.values(&w.attacker, "extensionAttribute1"), ["ca1-2"]);
    // The attacker's own mailbox took its addresses back: the next cycle writes the victim.
    w.engine.run_cycle(CycleMode::Full).await.expect("full");
    let join = w.engine.store.join(&edoid(VICTIM)).expect("join");
    assert_eq!(join.map(|j| j.object_guid), Some(w.victim));
    assert_eq!(
        w.dir.values(&w.victim, "extensionAttribute2"),
        ["anchored-1"]
    );
    assert_eq!(
        w.dir.values(&w.attacker, "extensionAttribute2"),
        ["anchored-2"]
    );
    let logged = entries(&w.engine.store, &edoid(VICTIM));
    let e = &logged[0];
    assert_eq!(code(e), "SpoofedMatchKey", "{e:?}");
    let e = &logged[1];
    assert!(
        e.steps
            .matching
            .details
            .contains("does not hold the mailbox's immutable anchor"),
        "{:?}",
        e.steps.matching
    );
}

#[tokio::test]
async fn a_stored_join_never_moves_because_a_key_appeared_elsewhere() {
    // No ImmutableId: the key is all there is, and the victim's object holds it.
    let mut w = world(false, false);
    w.dir.set(
        &w.victim,
        "msDS-ExternalDirectoryObjectId",
        vec![AttrValue::Text(format!("User_{}", edoid(VICTIM)))],
    );
    w.engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    // The attacker writes the victim's key on itself afterwards.
    w.dir.set(
        &w.attacker,
        "msDS-ExternalDirectoryObjectId",
        vec![AttrValue::Text(format!("User_{}", edoid(VICTIM)))],
    );
    let mut m = super::support::mailbox(VICTIM, t(3600));
    m.custom_attributes[2] = Some("victim only".into());
    w.source.set(m);
    for mode in [CycleMode::Auto, CycleMode::Full] {
        w.engine.run_cycle(mode).await.expect("cycle");
        assert_eq!(
            w.dir.values(&w.victim, "extensionAttribute3"),
            ["victim only"]
        );
        assert!(w.dir.values(&w.attacker, "extensionAttribute3").is_empty());
        let join = w.engine.store.join(&edoid(VICTIM)).expect("join");
        assert_eq!(join.map(|j| j.object_guid), Some(w.victim), "{mode:?}");
    }
}

#[tokio::test]
async fn a_new_pairing_whose_write_failed_is_not_stored() {
    // Before the fix a failed object's new join was stored anyway, and followed next time
    // without matching again.
    let mut w = world(false, false);
    for (n, guid) in [(VICTIM, w.victim), (ATTACKER, w.attacker)] {
        w.dir.set(
            &guid,
            "msDS-ExternalDirectoryObjectId",
            vec![AttrValue::Text(format!("User_{}", edoid(n)))],
        );
    }
    // The victim's address is held by another object: ProxyAddressConflict.
    let mut holder = Attributes::new();
    holder.insert(
        "proxyAddresses",
        vec![AttrValue::Text("smtp:user1@contoso.onmicrosoft.com".into())],
    );
    w.dir.add("holder", holder);
    // The attacker's modify is refused by the directory.
    let attacker_dn = w.dir.get(&w.attacker).dn;
    w.dir.fail_dns.lock().expect("lock").insert(attacker_dn, 50);
    let r = w.engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    assert_eq!(r.counts.failed, 2, "{r:?}");
    let victim_entries = entries(&w.engine.store, &edoid(VICTIM));
    assert_eq!(code(&victim_entries[0]), "ProxyAddressConflict");
    for n in [VICTIM, ATTACKER] {
        assert_eq!(
            w.engine.store.join(&edoid(n)).expect("join"),
            None,
            "mailbox {n}: a failed first write leaves no join"
        );
    }
    // Once the object is written, the pairing is stored.
    w.dir.fail_dns.lock().expect("lock").clear();
    w.engine.run_cycle(CycleMode::Full).await.expect("cycle");
    let join = w.engine.store.join(&edoid(ATTACKER)).expect("join");
    assert_eq!(join.map(|j| j.object_guid), Some(w.attacker));
}
