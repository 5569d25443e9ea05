//! A group's membership (`write_membership`): members resolved through the joins a cycle
//! stored, else the corroborated key; unresolved ones reported; only joined objects removed.

use exo_writeback_core::directory::{AttrValue, Attributes, DirectoryObject, ModOp};
use exo_writeback_core::mail_recipient::GroupMember;
use exo_writeback_core::matching::MatchRule;
use exo_writeback_core::outcome::OutcomeCode;
use exo_writeback_core::plan::{ObjectPlan, removal_count};

use super::fixture;
use crate::CycleMode;

fn member(id: &str, smtp: &str) -> GroupMember {
    GroupMember {
        external_directory_object_id: Some(id.into()),
        primary_smtp_address: Some(smtp.into()),
        recipient_type_details: "UserMailbox".into(),
        ..GroupMember::default()
    }
}

fn edoid(n: u32) -> String {
    format!("00000000-0000-0000-0000-{n:012}")
}

/// A group's plan before its membership is added: nothing else to write.
fn empty_plan(dn: &str) -> ObjectPlan {
    ObjectPlan {
        dn: dn.to_string(),
        modify: None,
        changes: Vec::new(),
        removes_values: false,
        added_smtp_addresses: Vec::new(),
        added_other_proxies: Vec::new(),
        warnings: Vec::new(),
    }
}

fn text(v: &str) -> AttrValue {
    AttrValue::Text(v.to_string())
}

#[tokio::test]
async fn members_resolve_through_joins_and_corroborated_keys_and_only_joined_ones_leave() {
    let mut f = fixture(4, 500);
    f.engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    let dn = |i: usize| f.dir.get(&f.guids[i]).dn;
    // user5: synced, no mailbox read by the agent, but holding its key and address.
    let five = f.dir.add_user(
        "user5",
        &edoid(5),
        &[("proxyAddresses", &["SMTP:user5@contoso.com"])],
    );
    // mallory wrote user6's key on her own account: no address to back it.
    let mallory = f.dir.add_user(
        "mallory",
        &edoid(6),
        &[("proxyAddresses", &["SMTP:mallory@contoso.com"])],
    );
    let onprem = f.dir.add("svc-onprem", Attributes::new());
    let mut attrs = Attributes::new();
    attrs.insert(
        "member",
        vec![text(&dn(0)), text(&dn(1)), text(&f.dir.get(&onprem).dn)],
    );
    let group_guid = f.dir.add("dl-sales", attrs);
    let group: DirectoryObject = f.dir.get(&group_guid);
    f.source.members.lock().expect("lock").insert(
        "group-1".into(),
        vec![
            member(&edoid(1), "user1@contoso.com"),
            member(&edoid(3), "user3@contoso.com"),
            member(&edoid(5), "user5@contoso.com"),
            member(&edoid(6), "user6@contoso.com"),
            member("ghost", "ghost@contoso.com"),
        ],
    );
    let mut plan = empty_plan(&group.dn);
    let m = f
        .engine
        .add_membership("group-1", &group, &mut plan, None)
        .await
        .expect("membership");
    let five_dn = f.dir.get(&five).dn;
    // A full cycle's match index answers the key look-ups the same, without a search each.
    let mut index = crate::match_index::MatchIndex::new(&[MatchRule::ExternalDirectoryObjectId]);
    for g in f.guids.iter().chain([&five, &mallory]) {
        index.add(&f.dir.get(g));
    }
    let searches = f.dir.searches.load(std::sync::atomic::Ordering::SeqCst);
    let mut indexed_plan = empty_plan(&group.dn);
    let indexed = f
        .engine
        .add_membership("group-1", &group, &mut indexed_plan, Some(&index))
        .await
        .expect("membership");
    assert_eq!(indexed, m);
    assert_eq!(
        f.dir.searches.load(std::sync::atomic::Ordering::SeqCst),
        searches,
        "no search per member"
    );
    assert_eq!(m.add, vec![dn(2), five_dn.clone()]);
    assert_eq!(
        m.delete,
        vec![dn(1)],
        "user2 is joined and no longer listed"
    );
    assert_eq!(m.kept, vec![f.dir.get(&onprem).dn], "never joined: kept");
    assert_eq!(m.unresolved.len(), 2, "{:?}", m.unresolved);
    assert!(m.unresolved[0].reason().contains("user6@contoso.com"));
    assert!(m.unresolved[1].reason().contains("ghost@contoso.com"));

    let modify = plan.modify.as_ref().expect("a modify");
    assert_eq!(
        modify
            .changes
            .iter()
            .map(|c| (c.op, c.attribute.as_str(), c.values.len()))
            .collect::<Vec<_>>(),
        vec![(ModOp::Delete, "member", 1), (ModOp::Add, "member", 2)]
    );
    assert!(plan.removes_values);
    assert_eq!(removal_count(&plan), 1);
    assert_eq!(plan.warnings.len(), 1);
    assert_eq!(plan.warnings[0].code, OutcomeCode::MemberNotResolved);
    let change = &plan.changes[0];
    assert_eq!(change.attribute, "member");
    assert_eq!(change.old.len(), 3);
    assert_eq!(change.new.len(), 4, "user1, svc-onprem, user3, user5");
}

#[tokio::test]
async fn an_unreadable_member_list_fails_the_group_and_writes_nothing() {
    let f = fixture(1, 500);
    let group_guid = f.dir.add("dl-x", Attributes::new());
    let group = f.dir.get(&group_guid);
    *f.source.members_error.lock().expect("lock") = Some("page 2 refused".into());
    let mut plan = empty_plan(&group.dn);
    let err = f
        .engine
        .add_membership("group-1", &group, &mut plan, None)
        .await
        .expect_err("an incomplete list is no list");
    assert!(err.reason.contains("page 2 refused"), "{err}");
    assert!(plan.modify.is_none() && plan.changes.is_empty());
}

/// Three synced users and `dl` (members user1 and user2) in the fake directory, the group's
/// record with the same members in the fake source, and an engine with the groups profile and
/// `write_membership`; two cycles run (the joins stored, the membership in sync).
struct GroupLab {
    users: crate::testing::Users,
    group: uuid::Uuid,
    engine: crate::Engine<
        crate::testing::FakeSource,
        crate::testing::FakeDirectory,
        exo_writeback_store_sqlite::SqliteStore,
    >,
    _tmp: tempfile::TempDir,
}

fn cloud_members(ids: &[u32]) -> Vec<GroupMember> {
    ids.iter()
        .map(|&i| member(&edoid(i), &format!("user{i}@contoso.com")))
        .collect()
}

impl GroupLab {
    async fn start() -> GroupLab {
        use exo_writeback_core::mailbox::{Mailbox, RecipientKind};
        use exo_writeback_core::profile::Profile;
        use exo_writeback_core::settings::WritebackSettings;
        use exo_writeback_store_sqlite::SqliteStore;

        let tmp = tempfile::tempdir().expect("tempdir");
        let t0: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().expect("ts");
        let u = crate::testing::users(3, t0, &[]);
        let mut attrs = Attributes::new();
        attrs.insert("objectClass", vec![text("top"), text("group")]);
        attrs.insert("proxyAddresses", vec![text("SMTP:dl@contoso.com")]);
        attrs.insert("mail", vec![text("dl@contoso.com")]);
        attrs.insert("member", vec![text(&u.dns[0]), text(&u.dns[1])]);
        let group = u.dir.add("dl", attrs);
        u.source.set(Mailbox {
            kind: RecipientKind::Group,
            external_directory_object_id: Some("group-1".into()),
            primary_smtp_address: Some("dl@contoso.com".into()),
            windows_email_address: Some("dl@contoso.com".into()),
            email_addresses: vec!["SMTP:dl@contoso.com".into()],
            recipient_type_details: "MailUniversalDistributionGroup".into(),
            is_dir_synced: true,
            is_exchange_cloud_managed: true,
            when_changed_utc: Some(t0),
            ..Mailbox::default()
        });
        u.source
            .members
            .lock()
            .expect("lock")
            .insert("group-1".into(), cloud_members(&[1, 2]));
        let settings = WritebackSettings {
            profiles: vec![Profile::CloudManaged, Profile::CloudManagedGroups],
            write_membership: true,
            ..WritebackSettings::default()
        }
        .resolve()
        .expect("settings");
        let store = SqliteStore::open_in(tmp.path()).expect("store");
        let mut engine = crate::Engine::new(
            u.source.clone(),
            u.dir.clone(),
            store,
            settings,
            crate::EngineOptions::default(),
        );
        engine.run_cycle(CycleMode::Auto).await.expect("cycle 1");
        engine.run_cycle(CycleMode::Full).await.expect("cycle 2");
        assert_eq!(u.dir.values(&group, "member").len(), 2);
        GroupLab {
            users: u,
            group,
            engine,
            _tmp: tmp,
        }
    }

    fn set_cloud_members(&self, ids: &[u32]) {
        self.users
            .source
            .members
            .lock()
            .expect("lock")
            .insert("group-1".into(), cloud_members(ids));
    }

    fn members(&self) -> Vec<String> {
        let mut m = self.users.dir.values(&self.group, "member");
        m.sort();
        m
    }

    /// The `member` items of the modifies sent since the last call: (op, value count).
    fn member_ops(&self) -> Vec<(ModOp, usize)> {
        let mut sent = self.users.dir.modifies.lock().expect("lock");
        let ops = sent
            .iter()
            .flat_map(|m| m.changes.iter())
            .filter(|c| c.attribute.eq_ignore_ascii_case("member"))
            .map(|c| (c.op, c.values.len()))
            .collect();
        sent.clear();
        ops
    }
}

/// A group through whole cycles: its membership written by single values, and `undo` putting
/// the previous list back by single values too — never a replace of `member`.
#[tokio::test]
async fn a_group_cycle_writes_single_member_values_and_undo_restores_them_the_same_way() {
    let mut lab = GroupLab::start().await;
    let before = lab.members();
    lab.member_ops();
    // user2 leaves, user3 joins.
    lab.set_cloud_members(&[1, 3]);
    let r = lab
        .engine
        .run_cycle(CycleMode::Full)
        .await
        .expect("cycle 3");
    assert_eq!(r.counts.written, 1, "{r:?}");
    assert_eq!(r.removing, 1);
    let dns = &lab.users.dns;
    let mut want = vec![dns[0].clone(), dns[2].clone()];
    want.sort();
    assert_eq!(lab.members(), want);
    assert_eq!(lab.member_ops(), vec![(ModOp::Delete, 1), (ModOp::Add, 1)]);

    // Undo: the previous list exactly, by single values.
    lab.engine
        .undo(crate::UndoTarget::Cycle(r.cycle))
        .await
        .expect("undo");
    assert_eq!(lab.members(), before);
    assert_eq!(lab.member_ops(), vec![(ModOp::Delete, 1), (ModOp::Add, 1)]);
}

/// An account that may not read `member` sees every group empty: nothing is planned from that.
#[tokio::test]
async fn an_unreadable_member_attribute_writes_no_membership() {
    let mut lab = GroupLab::start().await;
    let before = lab.members();
    lab.member_ops();
    lab.users
        .dir
        .unreadable
        .lock()
        .expect("lock")
        .push("member".into());
    lab.set_cloud_members(&[1, 3]);
    lab.engine.run_cycle(CycleMode::Full).await.expect("cycle");
    assert_eq!(lab.members(), before, "nothing written blind");
    assert!(lab.member_ops().is_empty());
}
