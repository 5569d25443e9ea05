use super::*;
use crate::directory::Attributes;
use uuid::Uuid;

const OU: &str = "OU=Mailboxes,DC=lab,DC=example,DC=test";

fn mailbox(id: &str, smtp: &str) -> GroupMember {
    GroupMember {
        external_directory_object_id: Some(id.into()),
        primary_smtp_address: Some(smtp.into()),
        alias: None,
        display_name: None,
        recipient_type_details: "UserMailbox".into(),
    }
}

fn dn(cn: &str) -> String {
    format!("CN={cn},{OU}")
}

fn object(dn: &str, proxies: &[&str]) -> DirectoryObject {
    let mut attributes = Attributes::new();
    attributes.insert(
        "proxyAddresses",
        proxies
            .iter()
            .map(|p| AttrValue::Text(p.to_string()))
            .collect(),
    );
    DirectoryObject {
        dn: dn.into(),
        object_guid: Uuid::nil(),
        attributes,
    }
}

fn texts(dns: &[String]) -> Vec<AttrValue> {
    dns.iter().cloned().map(AttrValue::Text).collect()
}

#[test]
fn keys_follow_the_member_type() {
    let mut m = mailbox("id1", "a@x");
    assert_eq!(member_key(&m).as_deref(), Some("User_id1"));
    m.recipient_type_details = "MailUniversalSecurityGroup".into();
    assert_eq!(member_key(&m).as_deref(), Some("Group_id1"));
    m.recipient_type_details = "MailContact".into();
    assert_eq!(member_key(&m), None, "Entra writes no key on contacts");
    m.recipient_type_details = "UserMailbox".into();
    m.external_directory_object_id = Some("  ".into());
    assert_eq!(member_key(&m), None);
}

#[test]
fn a_join_decides() {
    let m = mailbox("id1", "a@x");
    let e = MemberEvidence {
        address_holders: Vec::new(),
        joined_dn: Some(dn("mbx1")),
        key_holders: vec![object(&dn("other"), &["SMTP:a@x"])],
    };
    assert_eq!(
        resolve_member(&m, &e),
        Resolution::Resolved {
            dn: dn("mbx1"),
            how: "stored join".into()
        }
    );
}

#[test]
fn a_key_holder_is_believed_only_with_the_address() {
    let m = mailbox("id1", "Ann@Contoso.example");
    let holder = object(&dn("mbx1"), &["SMTP:ann@contoso.example", "X500:/o=x"]);
    let e = MemberEvidence {
        address_holders: Vec::new(),
        joined_dn: None,
        key_holders: vec![holder],
    };
    assert!(
        matches!(resolve_member(&m, &e), Resolution::Resolved { dn: d, .. } if d == dn("mbx1"))
    );

    // The key alone (the attacker wrote User_id1 on their own account): not followed.
    let spoof = MemberEvidence {
        address_holders: Vec::new(),
        joined_dn: None,
        key_holders: vec![object(&dn("mallory"), &["SMTP:mallory@contoso.example"])],
    };
    let Resolution::Unresolved(u) = resolve_member(&m, &spoof) else {
        panic!("an uncorroborated key holder must not resolve");
    };
    assert_eq!(
        u.why,
        Unresolved::Uncorroborated {
            key: "User_id1".into(),
            dn: dn("mallory")
        }
    );
    assert!(u.reason().contains("Ann@Contoso.example"), "{}", u.reason());
    assert_eq!(u.outcome().code, OutcomeCode::MemberNotResolved);
    assert_eq!(u.outcome().status(), crate::outcome::LogStatus::Warning);
}

#[test]
fn none_or_several_holders_are_reported_not_guessed() {
    let m = mailbox("id1", "a@x");
    let Resolution::Unresolved(u) = resolve_member(&m, &MemberEvidence::default()) else {
        panic!("nothing holds it");
    };
    assert_eq!(
        u.why,
        Unresolved::NotFound {
            key: Some("User_id1".into())
        }
    );
    let two = MemberEvidence {
        address_holders: Vec::new(),
        joined_dn: None,
        key_holders: vec![
            object(&dn("a"), &["SMTP:a@x"]),
            object(&dn("b"), &["SMTP:a@x"]),
        ],
    };
    let Resolution::Unresolved(u) = resolve_member(&m, &two) else {
        panic!("two holders must not resolve");
    };
    assert!(matches!(&u.why, Unresolved::Ambiguous { dns, .. } if dns.len() == 2));
    assert!(u.reason().contains(&dn("a")) && u.reason().contains(&dn("b")));
}

#[test]
fn nested_groups_resolve_to_group_dns() {
    let mut g = mailbox("gid", "dl-sales@contoso.example");
    g.recipient_type_details = "MailUniversalDistributionGroup".into();
    let group_dn = "CN=dl-sales,OU=Groups,DC=lab,DC=example,DC=test";
    let e = MemberEvidence {
        address_holders: Vec::new(),
        joined_dn: None,
        key_holders: vec![object(group_dn, &["SMTP:dl-sales@contoso.example"])],
    };
    let Resolution::Resolved { dn: got, how } = resolve_member(&g, &e) else {
        panic!("the group holds its key and address");
    };
    assert_eq!(got, group_dn);
    assert!(how.contains("Group_gid"), "{how}");
}

fn resolved(cn: &str) -> Resolution {
    Resolution::Resolved {
        dn: dn(cn),
        how: "stored join".into(),
    }
}

#[test]
fn adds_and_deletes_single_values_and_keeps_what_it_cannot_account_for() {
    let current = texts(&[dn("a"), dn("b"), dn("onprem-only")]);
    // The cloud: a stays, b was removed, c was added; one member does not resolve.
    let unresolved = UnresolvedMember {
        member: "x@y".into(),
        why: Unresolved::NotFound { key: None },
    };
    let resolutions = vec![
        resolved("a"),
        resolved("c"),
        Resolution::Unresolved(unresolved.clone()),
    ];
    let joined = [dn_key(&dn("a")), dn_key(&dn("b")), dn_key(&dn("c"))];
    let accountable = |d: &str| joined.contains(&dn_key(d));
    let plan = plan_membership(&current, &resolutions, &accountable);
    assert_eq!(plan.add, vec![dn("c")]);
    assert_eq!(plan.delete, vec![dn("b")]);
    assert_eq!(plan.kept, vec![dn("onprem-only")]);
    assert_eq!(plan.unresolved, vec![unresolved]);
    let changes = plan.changes();
    assert_eq!(
        changes
            .iter()
            .map(|c| (c.op, c.values.len()))
            .collect::<Vec<_>>(),
        vec![(ModOp::Delete, 1), (ModOp::Add, 1)]
    );
    assert!(changes.iter().all(|c| c.op != ModOp::Replace));
    assert_eq!(
        plan.warning().map(|w| w.code),
        Some(OutcomeCode::MemberNotResolved)
    );
}

#[test]
fn dns_compare_as_ad_compares_them() {
    // AD returns its own spelling; the join or the resolution may differ in case and spaces.
    let current = texts(&["cn=A, ou=Mailboxes,dc=lab,DC=example,DC=test".to_string()]);
    let plan = plan_membership(&current, &[resolved("a")], &|_| true);
    assert!(plan.is_empty(), "{plan:?}");
    // The same member listed twice by the cloud is added once.
    let plan = plan_membership(&[], &[resolved("a"), resolved("A")], &|_| true);
    assert_eq!(plan.add.len(), 1);
}

#[test]
fn large_changes_come_in_chunks_never_a_replace() {
    let many: Vec<String> = (0..5_000).map(|i| dn(&format!("mbx{i:05}"))).collect();
    let resolutions: Vec<Resolution> = many
        .iter()
        .map(|d| Resolution::Resolved {
            dn: d.clone(),
            how: "stored join".into(),
        })
        .collect();
    let plan = plan_membership(&[], &resolutions, &|_| true);
    let changes = plan.changes();
    assert_eq!(changes.len(), 5);
    assert!(
        changes
            .iter()
            .all(|c| c.op == ModOp::Add && c.values.len() == MEMBER_CHUNK)
    );
    // And all removed: deletes of single values, chunked.
    let plan = plan_membership(&texts(&many), &[], &|_| true);
    assert_eq!(plan.delete.len(), 5_000);
    assert!(
        plan.changes().iter().all(|c| c.op == ModOp::Delete
            && !c.values.is_empty()
            && c.values.len() <= MEMBER_CHUNK)
    );
}

#[test]
fn an_empty_cloud_list_removes_only_accountable_members() {
    let current = texts(&[dn("a"), dn("svc-onprem")]);
    let joined = [dn_key(&dn("a"))];
    let plan = plan_membership(&current, &[], &|d: &str| joined.contains(&dn_key(d)));
    assert_eq!(plan.delete, vec![dn("a")]);
    assert_eq!(plan.kept, vec![dn("svc-onprem")]);
}

#[test]
fn every_member_removed_counts_toward_the_threshold() {
    use crate::directory::ObjectModify;
    use crate::plan::{ObjectPlan, count_removing, exceeds_threshold, removal_count};
    let many: Vec<String> = (0..600).map(|i| dn(&format!("mbx{i:05}"))).collect();
    let membership = plan_membership(&texts(&many), &[resolved("mbx99999")], &|_| true);
    let group = ObjectPlan {
        dn: "CN=dl-big,OU=Groups,DC=lab,DC=example,DC=test".into(),
        modify: Some(ObjectModify {
            dn: "CN=dl-big,OU=Groups,DC=lab,DC=example,DC=test".into(),
            changes: membership.changes(),
        }),
        changes: Vec::new(),
        removes_values: true,
        added_smtp_addresses: Vec::new(),
        added_other_proxies: Vec::new(),
        warnings: Vec::new(),
    };
    assert_eq!(removal_count(&group), 600);
    // One group losing 600 members is held by the default threshold (500), as 600 objects
    // losing a value each would be.
    assert!(exceeds_threshold([&group], 500));
    let mut adds_only = group.clone();
    adds_only.modify = Some(ObjectModify {
        dn: group.dn.clone(),
        changes: plan_membership(&[], &[resolved("a")], &|_| true).changes(),
    });
    adds_only.removes_values = false;
    assert_eq!(count_removing([&adds_only]), 0);
}

#[test]
fn undo_restores_the_list_exactly_with_single_values() {
    let before = texts(&[dn("a"), dn("b"), dn("onprem")]);
    let after = texts(&[dn("a"), dn("c"), dn("onprem")]);
    let changes = restore_changes(&after, &before);
    assert_eq!(
        changes
            .iter()
            .map(|c| (c.op, c.values.clone()))
            .collect::<Vec<_>>(),
        vec![
            (ModOp::Delete, texts(&[dn("c")])),
            (ModOp::Add, texts(&[dn("b")])),
        ]
    );
    assert!(same_members(
        &before,
        &texts(&[dn("onprem"), dn("B"), dn("a")])
    ));
    assert!(!same_members(&before, &after));
    assert!(restore_changes(&before, &before).is_empty());
}

#[test]
fn a_member_change_reads_as_who_left_and_who_joined() {
    let old: Vec<String> = (0..30).map(|i| dn(&format!("u{i:02}"))).collect();
    let mut new = old[..18].to_vec();
    new.push(dn("joiner"));
    let text = describe_member_change(&texts(&old), &texts(&new));
    assert!(text.starts_with("30 → 19 members: −12 ("), "{text}");
    assert!(text.contains("and 2 more"), "{text}");
    assert!(text.ends_with(&format!("+1 ({})", dn("joiner"))), "{text}");
}

#[test]
fn a_log_entry_names_twenty_unresolved_members_then_counts() {
    let resolutions: Vec<Resolution> = (0..25)
        .map(|i| {
            Resolution::Unresolved(UnresolvedMember {
                member: format!("m{i:02}@x"),
                why: Unresolved::NotFound { key: None },
            })
        })
        .collect();
    let plan = plan_membership(&[], &resolutions, &|_| true);
    let w = plan.warning().expect("a warning");
    assert!(
        w.reason.contains("m19@x") && !w.reason.contains("m20@x"),
        "{}",
        w.reason
    );
    assert!(
        w.reason
            .ends_with("and 5 more member(s) not resolved (one warning each in the agent's log)")
    );
    assert!(plan_membership(&[], &[], &|_| true).warning().is_none());
}

fn of_class(dn: &str, class: &str) -> DirectoryObject {
    let mut o = object(dn, &[]);
    o.attributes.insert(
        "objectClass",
        vec![AttrValue::Text("top".into()), AttrValue::Text(class.into())],
    );
    o
}

#[test]
fn a_group_or_contact_member_resolves_by_its_address_held_by_an_object_of_its_class() {
    let mut contact = mailbox("cid", "Ann.Partner@Fabrikam.example");
    contact.recipient_type_details = "MailContact".into();
    assert_eq!(
        member_anchor(&contact).as_deref(),
        Some("smtp:ann.partner@fabrikam.example")
    );
    let ct = "CN=ct-partner-a,OU=Contacts,DC=lab,DC=example,DC=test";
    // A user holding the contact's address is never the contact.
    let e = MemberEvidence {
        joined_dn: None,
        address_holders: vec![of_class(&dn("eve"), "user"), of_class(ct, "contact")],
        key_holders: Vec::new(),
    };
    let Resolution::Resolved { dn: got, how } = resolve_member(&contact, &e) else {
        panic!("the contact holds its address");
    };
    assert_eq!(got, ct);
    assert!(how.contains("held by the contact"), "{how}");
    // Only a user holds it: not the contact's object, and a contact has no key.
    let e = MemberEvidence {
        joined_dn: None,
        address_holders: vec![of_class(&dn("eve"), "user")],
        key_holders: Vec::new(),
    };
    assert!(matches!(
        resolve_member(&contact, &e),
        Resolution::Unresolved(UnresolvedMember {
            why: Unresolved::NotFound { key: None },
            ..
        })
    ));
    // Two contacts hold it: reported, none picked.
    let e = MemberEvidence {
        joined_dn: None,
        address_holders: vec![
            of_class(ct, "contact"),
            of_class("CN=ct2,OU=Contacts", "contact"),
        ],
        key_holders: Vec::new(),
    };
    let Resolution::Unresolved(u) = resolve_member(&contact, &e) else {
        panic!("two holders must not resolve");
    };
    assert!(matches!(&u.why, Unresolved::AmbiguousAddress { dns, .. } if dns.len() == 2));
    // A mailbox member has no address anchor: its address alone never resolves it.
    assert_eq!(member_anchor(&mailbox("uid", "a@x")), None);
}
