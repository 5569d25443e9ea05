//! Groups, mail contacts and group members against the emulator: the client pages through
//! them, reads each record and survives a damaged one as for mailboxes.

use std::collections::BTreeSet;

use exo_sim::{Endpoint, FaultKind, RecipientDetails, SimCloud, SimHandle, SimRecipient};
use exo_writeback_exo::{ExoClient, ExoError, ResultStream};
use futures::StreamExt;
use uuid::Uuid;

use crate::support::{INITIAL_DOMAIN, client, fault, section, spawn, tenant};

async fn drain<T>(mut s: ResultStream<T>) -> (Vec<T>, Vec<ExoError>) {
    let (mut ok, mut errors) = (Vec::new(), Vec::new());
    while let Some(item) = s.next().await {
        match item {
            Ok(v) => ok.push(v),
            Err(e) => errors.push(e),
        }
    }
    (ok, errors)
}

/// 1,200 mailboxes; `sg` (security) holds them all, `dl` holds `sg` and the contact
/// `partner`; the client reads pages of 500.
async fn start() -> (SimHandle, ExoClient) {
    let sim = spawn(tenant(1200, SimCloud::Worldwide, None)).await;
    let state = sim.state();
    let now = state.now();
    let everyone = state
        .mailboxes_after(None, 1200)
        .iter()
        .map(|m| m.guid)
        .collect();
    let mut sg = SimRecipient::group(Uuid::from_u128(1), "sg", "sg@contoso.com", true, now);
    sg.details = RecipientDetails::Group {
        security: true,
        members: everyone,
    };
    sg.is_dir_synced = true;
    sg.set_custom_attribute(1, "Finance");
    let mut partner = SimRecipient::contact(Uuid::from_u128(2), "partner", "ann@fabrikam.com", now);
    partner.display_name = "Ann Partner".into();
    let mut dl = SimRecipient::group(Uuid::from_u128(3), "dl", "dl@contoso.com", false, now);
    dl.details = RecipientDetails::Group {
        security: false,
        members: [sg.guid, partner.guid].into(),
    };
    dl.hidden_from_address_lists_enabled = true;
    dl.set_extension_custom_attribute(2, vec!["x".into(), "y".into()]);
    state.add_recipients([sg, partner, dl]).unwrap();
    let client = client(&section(&sim.base_url(), INITIAL_DOMAIN, "page_size = 500"));
    (sim, client)
}

#[tokio::test]
async fn groups_contacts_and_members_are_listed_to_the_end() {
    let (sim, client) = start().await;
    let (groups, errors) = drain(client.distribution_groups(None)).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(groups.len(), 2);
    let sg = groups
        .iter()
        .find(|g| g.alias.as_deref() == Some("sg"))
        .unwrap();
    assert!(sg.is_group() && sg.is_dir_synced);
    assert_eq!(sg.recipient_type_details, "MailUniversalSecurityGroup");
    assert_eq!(sg.custom_attributes[0].as_deref(), Some("Finance"));
    assert_eq!(sg.is_exchange_cloud_managed, None);
    let dl = groups
        .iter()
        .find(|g| g.alias.as_deref() == Some("dl"))
        .unwrap();
    assert!(dl.hidden_from_address_lists_enabled);
    assert_eq!(dl.extension_custom_attributes[1], ["x", "y"]);
    assert_eq!(dl.primary_smtp_address.as_deref(), Some("dl@contoso.com"));
    assert!(dl.when_changed_utc.is_some());

    let (contacts, errors) = drain(client.mail_contacts(None)).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(contacts.len(), 1);
    assert!(contacts[0].is_contact());
    assert_eq!(
        contacts[0].external_email_address.as_deref(),
        Some("SMTP:ann@fabrikam.com")
    );

    // 1,200 members in pages of 500: every one once, nothing cut at the default 1,000.
    let before = client.stats().api_requests;
    let (members, errors) =
        drain(client.group_members(&sg.external_directory_object_id.clone().unwrap())).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(client.stats().api_requests - before, 3);
    let ids: BTreeSet<_> = members
        .iter()
        .map(|m| m.external_directory_object_id.clone())
        .collect();
    assert_eq!((members.len(), ids.len()), (1200, 1200));
    assert!(
        members
            .iter()
            .all(|m| m.recipient_type_details.ends_with("Mailbox"))
    );
    // Nested groups are members, not expanded.
    let (members, _) = drain(client.group_members("dl@contoso.com")).await;
    let kinds: BTreeSet<_> = members
        .iter()
        .map(|m| (m.alias.clone().unwrap(), m.is_group()))
        .collect();
    assert_eq!(
        kinds,
        [("partner".to_string(), false), ("sg".to_string(), true)].into()
    );

    // A filter reaches the service as written.
    let (v, _) = drain(client.distribution_groups(Some("CustomAttribute1 -eq 'Finance'"))).await;
    assert_eq!(v.len(), 1);
    // An unknown group is the service's not-found, said as such.
    let (_, errors) = drain(client.group_members("nobody@contoso.com")).await;
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0]
            .service_error()
            .is_some_and(|e| e.is_object_not_found()),
        "{}",
        errors[0]
    );
    drop(sim);
}

#[tokio::test]
async fn a_damaged_group_record_fails_alone() {
    let (sim, client) = start().await;
    sim.state()
        .update_recipient("dl", true, |g| g.display_name = "Ventes é".into())
        .unwrap();
    fault(
        &sim,
        Endpoint::Invoke,
        FaultKind::InvalidUtf8 {
            text: "Ventes é".into(),
        },
        None,
    );
    let (groups, errors) = drain(client.distribution_groups(None)).await;
    assert_eq!(groups.len(), 1, "the other group is read");
    assert_eq!(errors.len(), 1);
    match &errors[0] {
        ExoError::MalformedRecord { problem, .. } => {
            assert!(problem.contains("UTF-8"), "{problem}")
        }
        other => panic!("{other}"),
    }
}
