//! Groups and contacts in the mailboxes' engine (issue 17): read only with their profile,
//! written only to an object of their class found by their address, never given a custom
//! mapping (written for mailboxes).

use exo_writeback_core::directory::{AttrValue, Attributes};
use exo_writeback_core::mailbox::{Mailbox, RecipientKind};
use exo_writeback_core::profile::Profile;
use exo_writeback_core::settings::{MappingSettings, WritebackSettings};

use super::*;

fn text(values: &[&str]) -> Vec<AttrValue> {
    values
        .iter()
        .map(|v| AttrValue::Text(v.to_string()))
        .collect()
}

fn dl(changed: Timestamp) -> Mailbox {
    let mut m = Mailbox {
        kind: RecipientKind::Group,
        external_directory_object_id: Some("g-1".into()),
        primary_smtp_address: Some("dl-sales@contoso.com".into()),
        alias: Some("dl-sales".into()),
        email_addresses: vec!["SMTP:dl-sales@contoso.com".into()],
        recipient_type_details: "MailUniversalDistributionGroup".into(),
        is_dir_synced: true,
        cloud_managed_unreported: true,
        when_changed_utc: Some(changed),
        ..Mailbox::default()
    };
    m.custom_attributes[0] = Some("Sales EMEA".into());
    m.custom_attributes[6] = Some("seven".into());
    m
}

#[tokio::test]
async fn a_group_is_read_and_written_only_with_its_profile() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let t0: Timestamp = "2026-01-01T00:00:00Z".parse().expect("ts");
    let users = support::users(1, t0, &[]);
    let mut a = Attributes::new();
    a.insert("objectClass", text(&["top", "group"]));
    a.insert("proxyAddresses", text(&["SMTP:dl-sales@contoso.com"]));
    a.insert("mail", text(&["dl-sales@contoso.com"]));
    a.insert("mailNickname", text(&["dl-sales"]));
    a.insert("extensionAttribute1", text(&["Sales"]));
    let group = users.dir.add("dl-sales", a);
    users.source.set(dl(t0));
    let mut engine = support::engine(
        &users.source,
        users.dir.clone(),
        tmp.path(),
        500,
        EngineOptions::default(),
    );

    // The default profile: the group is not even read.
    let before = users
        .source
        .streams
        .load(std::sync::atomic::Ordering::SeqCst);
    let r = engine.run_cycle(CycleMode::Auto).await.expect("initial");
    assert_eq!(r.counts.imported, 1, "the mailbox only: {r:?}");
    assert_eq!(
        users
            .source
            .streams
            .load(std::sync::atomic::Ordering::SeqCst)
            - before,
        1
    );
    assert_eq!(users.dir.values(&group, "extensionAttribute1"), ["Sales"]);

    // With the groups profile (and a custom mapping, which is the mailboxes' only).
    engine.settings = WritebackSettings {
        profiles: vec![Profile::CloudManaged, Profile::CloudManagedGroups],
        assume_cloud_managed_recipients: true,
        mappings: vec![MappingSettings {
            target: "extensionAttribute7".into(),
            source: Some("CustomAttribute1".into()),
            constant: None,
            expression: None,
            multi_valued: false,
            empty_leaves_alone: false,
        }],
        ..WritebackSettings::default()
    }
    .resolve()
    .expect("settings");
    let r = engine.run_cycle(CycleMode::Full).await.expect("full");
    assert_eq!(r.counts.imported, 2, "{r:?}");
    assert_eq!(
        users.dir.values(&group, "extensionAttribute1"),
        ["Sales EMEA"]
    );
    assert_eq!(
        users.dir.values(&group, "extensionAttribute7"),
        ["seven"],
        "a custom mapping is never applied to a group, nor takes its profile's row away"
    );
    assert!(
        users
            .dir
            .values(&group, "msExchRecipientTypeDetails")
            .is_empty(),
        "the mailbox profile's rows are never applied to a group"
    );
    let logs = engine
        .store
        .query_logs(&LogQuery {
            cycle: Some(r.cycle),
            ..LogQuery::default()
        })
        .expect("logs");
    let entry = logs
        .iter()
        .find(|e| e.target.object_guid == Some(group))
        .expect("the group's entry");
    assert_eq!(entry.source.kind, RecipientKind::Group);
    assert!(
        entry.steps.matching.details.contains("by its SMTP address"),
        "{:?}",
        entry.steps.matching
    );
    // The user's object received nothing of the group's.
    assert!(
        users
            .dir
            .values(&users.guids[0], "extensionAttribute1")
            .iter()
            .all(|v| v != "Sales EMEA")
    );
}
