//! The match index (initial and full cycles) gives the decisions of the per-mailbox searches.

use std::sync::atomic::Ordering;

use exo_writeback_core::directory::{AttrValue, Attributes};
use exo_writeback_core::guid::{immutable_id, object_guid_bytes};
use exo_writeback_core::mailbox::Mailbox;
use exo_writeback_core::matching::MatchRule;
use exo_writeback_core::provisioning::{CycleKind, CycleStatus, JoinUpdate};
use exo_writeback_core::settings::WritebackSettings;
use exo_writeback_store_sqlite::SqliteStore;
use uuid::Uuid;

use crate::testing::{FakeDirectory, FakeSource};
use crate::{CycleMode, Disposition, Engine, EngineOptions, Processed};

fn mailbox(n: u32, edoid: Option<String>, immutable: Option<String>) -> Mailbox {
    let mut m = super::support::mailbox(n, "2026-01-01T00:00:00Z".parse().expect("ts"));
    m.external_directory_object_id = edoid;
    m.immutable_id = immutable;
    m
}

/// An object with the given keys (no msDS-ExternalDirectoryObjectId unless given).
fn add(dir: &FakeDirectory, cn: &str, edoid: Option<&str>, cguid: Option<&Uuid>) -> Uuid {
    let mut a = Attributes::new();
    if let Some(e) = edoid {
        a.insert(
            "msDS-ExternalDirectoryObjectId",
            vec![AttrValue::Text(e.to_string())],
        );
    }
    if let Some(c) = cguid {
        a.insert(
            "mS-DS-ConsistencyGuid",
            vec![AttrValue::Bytes(object_guid_bytes(c).to_vec())],
        );
    }
    dir.add(cn, a)
}

/// What must not differ between the two paths: the decision, its wording, the target, the join.
fn decision(p: &Processed) -> String {
    let join = match &p.join {
        JoinUpdate::Set(j) => format!("set {} {}", j.object_guid, j.dn),
        other => format!("{other:?}"),
    };
    let disposition = match &p.disposition {
        Disposition::Write { object_guid, plan } => format!("write {object_guid} {}", plan.dn),
        other => format!("{other:?}"),
    };
    format!(
        "{disposition} | {:?} {} | {:?} | {join}",
        p.steps.matching.status, p.steps.matching.details, p.target
    )
}

#[tokio::test]
async fn the_index_decides_as_the_searches_do_for_every_case() {
    let dir = FakeDirectory::new();
    let id = |n: u32| format!("00000000-0000-0000-0000-{n:012}");
    let (c1, c2, c3) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    // 1: one object by ExternalDirectoryObjectId (the value's case differs: AD compares it
    //    case-insensitively).
    add(&dir, "one", Some(&format!("USER_{}", id(1))), None);
    // 2: two objects share the ConsistencyGuid: DuplicateTargetEntries naming both.
    add(&dir, "dupA", None, Some(&c2));
    add(&dir, "dupB", None, Some(&c2));
    // 3: nothing anywhere: TargetNotFound listing each rule.
    // 4: only the objectGUID rule finds it.
    let g4 = add(&dir, "byguid", None, None);
    // 5: the anchor wins over the key held by another object (a spoofing attempt, named).
    add(&dir, "first", Some(&format!("User_{}", id(5))), None);
    add(&dir, "second", None, Some(&c1));
    // 6: two objects with the same ExternalDirectoryObjectId.
    add(&dir, "twinA", Some(&format!("User_{}", id(6))), None);
    add(&dir, "twinB", Some(&format!("user_{}", id(6))), None);
    // 7: a non-GUID ExternalDirectoryObjectId.
    add(&dir, "odd", Some("User_legacy-7"), None);
    // 8: an ImmutableId that is not base64 (rules skipped with a reason).
    // 9: by ConsistencyGuid, the object also has an unrelated ExternalDirectoryObjectId.
    add(&dir, "cg", Some("User_someone-else"), Some(&c3));
    let mailboxes = vec![
        mailbox(1, Some(id(1)), None),
        mailbox(2, Some(id(2)), Some(immutable_id(&c2))),
        mailbox(3, Some(id(3)), Some(immutable_id(&Uuid::new_v4()))),
        mailbox(4, Some(id(4)), Some(immutable_id(&g4))),
        mailbox(5, Some(id(5)), Some(immutable_id(&c1))),
        mailbox(6, Some(id(6)), None),
        mailbox(7, Some("legacy-7".into()), None),
        mailbox(8, Some(id(8)), Some("not base64!!".into())),
        mailbox(9, Some(id(9)), Some(immutable_id(&c3))),
        mailbox(10, None, None),
    ];
    let orders: [&[MatchRule]; 4] = [
        &MatchRule::DEFAULT,
        &[MatchRule::ObjectGuid, MatchRule::ExternalDirectoryObjectId],
        &[MatchRule::ConsistencyGuid],
        &[MatchRule::ExternalDirectoryObjectId],
    ];
    for rules in orders {
        let tmp = tempfile::tempdir().expect("tempdir");
        let settings = WritebackSettings {
            match_rules: rules.to_vec(),
            ..WritebackSettings::default()
        }
        .resolve()
        .expect("settings");
        let engine = Engine::new(
            FakeSource::default(),
            dir.clone(),
            SqliteStore::open_in(tmp.path()).expect("store"),
            settings,
            EngineOptions::default(),
        );
        let schema = dir.schema.clone();
        let mut searched = Vec::new();
        for m in &mailboxes {
            searched.push(decision(&engine.evaluate(m, &schema, None).await));
        }
        let index = engine.load_match_index().await;
        assert!(index.is_some());
        let searches = dir.searches.load(Ordering::SeqCst);
        for (m, want) in mailboxes.iter().zip(&searched) {
            let got = decision(&engine.evaluate(m, &schema, index.as_ref()).await);
            assert_eq!(
                &got, want,
                "rules {rules:?}, mailbox {:?}",
                m.primary_smtp_address
            );
        }
        // Only the duplicates (which the searches name) were searched for.
        let with_index = dir.searches.load(Ordering::SeqCst) - searches;
        assert!(
            with_index <= 2 * rules.len(),
            "{with_index} searches with the index (rules {rules:?})"
        );
    }
    // The decisions are the expected ones (not merely equal on both paths).
    let all = {
        let tmp = tempfile::tempdir().expect("tempdir");
        let engine = Engine::new(
            FakeSource::default(),
            dir.clone(),
            SqliteStore::open_in(tmp.path()).expect("store"),
            WritebackSettings::default().resolve().expect("settings"),
            EngineOptions::default(),
        );
        let index = engine.load_match_index().await;
        let mut out = Vec::new();
        for m in &mailboxes {
            out.push(decision(
                &engine
                    .evaluate(m, &dir.schema.clone(), index.as_ref())
                    .await,
            ));
        }
        out
    };
    assert!(
        all[0].contains("CN=one,") && all[0].contains("by msDS-ExternalDirectoryObjectId"),
        "{}",
        all[0]
    );
    assert!(
        all[1].contains("DuplicateTargetEntries")
            && all[1].contains("CN=dupA")
            && all[1].contains("CN=dupB"),
        "{}",
        all[1]
    );
    assert!(
        all[2].contains("TargetNotFound") && all[2].contains("objectGUID ="),
        "{}",
        all[2]
    );
    assert!(
        all[3].contains("CN=byguid,") && all[3].contains("by objectGUID"),
        "{}",
        all[3]
    );
    assert!(
        all[4].starts_with("write ")
            && all[4].contains("matched CN=second,")
            && all[4].contains("by mS-DS-ConsistencyGuid")
            && all[4].contains("SpoofedMatchKey")
            && all[4].contains("also held by CN=first,"),
        "{}",
        all[4]
    );
    assert!(
        all[5].contains("DuplicateTargetEntries")
            && all[5].contains("CN=twinA")
            && all[5].contains("CN=twinB"),
        "{}",
        all[5]
    );
    assert!(all[6].contains("CN=odd,"), "{}", all[6]);
    assert!(
        all[7].contains("TargetNotFound") && all[7].contains("rule skipped"),
        "{}",
        all[7]
    );
    assert!(
        all[8].contains("CN=cg,") && all[8].contains("by mS-DS-ConsistencyGuid"),
        "{}",
        all[8]
    );
    assert!(
        all[9].contains("TargetNotFound") && all[9].contains("no ImmutableId"),
        "{}",
        all[9]
    );
}

#[tokio::test]
async fn a_key_changed_after_the_index_was_read_falls_back_to_the_searches() {
    let dir = FakeDirectory::new();
    let edoid = "00000000-0000-0000-0000-000000000001";
    let old = add(&dir, "old", Some(&format!("User_{edoid}")), None);
    let tmp = tempfile::tempdir().expect("tempdir");
    let engine = Engine::new(
        FakeSource::default(),
        dir.clone(),
        SqliteStore::open_in(tmp.path()).expect("store"),
        WritebackSettings::default().resolve().expect("settings"),
        EngineOptions::default(),
    );
    let index = engine.load_match_index().await;
    // The key moves to another object after the index was read.
    dir.set(&old, "msDS-ExternalDirectoryObjectId", vec![]);
    add(&dir, "new", Some(&format!("User_{edoid}")), None);
    let p = engine
        .evaluate(
            &mailbox(1, Some(edoid.into()), None),
            &dir.schema.clone(),
            index.as_ref(),
        )
        .await;
    assert!(decision(&p).contains("CN=new,"), "{}", decision(&p));
}

#[tokio::test]
async fn initial_and_full_cycles_read_the_keys_once_deltas_search_and_a_refusing_directory_still_works()
 {
    let dir = FakeDirectory::new();
    let source = FakeSource::default();
    for n in 1..=4u32 {
        let id = format!("00000000-0000-0000-0000-{n:012}");
        add(&dir, &format!("u{n}"), Some(&format!("User_{id}")), None);
        source.set(mailbox(n, Some(id), None));
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut engine = Engine::new(
        source.clone(),
        dir.clone(),
        SqliteStore::open_in(tmp.path()).expect("store"),
        WritebackSettings::default().resolve().expect("settings"),
        EngineOptions::default(),
    );
    let r = engine.run_cycle(CycleMode::Auto).await.expect("initial");
    assert_eq!((r.kind, r.counts.written), (CycleKind::Initial, 4));
    assert_eq!(dir.scans.load(Ordering::SeqCst), 1);
    assert_eq!(
        dir.searches.load(Ordering::SeqCst),
        0,
        "no search per mailbox"
    );
    // The index is part of the cycle's state (`CycleRun`): it cannot outlive the cycle.
    // A delta searches per mailbox (there are joins now: read by objectGUID instead).
    let r = engine.run_cycle(CycleMode::Auto).await.expect("delta");
    assert_eq!(r.kind, CycleKind::Delta);
    assert_eq!(dir.scans.load(Ordering::SeqCst), 1);
    // A directory that cannot list its keys: the per-mailbox searches, same result.
    *dir.no_scan.lock().expect("lock") = true;
    let tmp2 = tempfile::tempdir().expect("tempdir");
    let mut engine = Engine::new(
        source,
        dir.clone(),
        SqliteStore::open_in(tmp2.path()).expect("store"),
        WritebackSettings::default().resolve().expect("settings"),
        EngineOptions::default(),
    );
    let r = engine.run_cycle(CycleMode::Full).await.expect("initial");
    assert_eq!(r.status, CycleStatus::Completed);
    assert_eq!(r.counts.unchanged, 4);
    assert_eq!(dir.searches.load(Ordering::SeqCst), 4);
}
