//! Get-DistributionGroup, Get-MailContact and Get-DistributionGroupMember: seeded from the
//! lab DC's groups and contacts, and as strict as Get-Mailbox (paging, filters, parameters,
//! identities, `$select`, faults).

use std::collections::BTreeSet;

use exo_sim::seed_ad::{CONTACT_FILTER, GROUP_FILTER, seed_from_ad};
use exo_sim::{Endpoint, FaultKind, FaultRule, RecipientDetails, SimRecipient, StateError};
use exo_writeback_ad::{AdConfig, AdConnection, SearchScope};
use exo_writeback_core::secret::Secret;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::*;

const DL: &str = "Get-DistributionGroup";
const CONTACTS: &str = "Get-MailContact";
const MEMBERS: &str = "Get-DistributionGroupMember";

fn detail(v: &Value) -> String {
    v["error"]["details"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn names(records: &[Value], key: &str) -> BTreeSet<String> {
    records
        .iter()
        .map(|r| r[key].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_contacts_and_members_come_from_the_dc() {
    let (dc, sim, added) = seeded_from_lab(12).await;
    let state = sim.handle.state();
    assert_eq!(added.recipients, 6, "3 groups and 3 contacts: {added:?}");
    assert_eq!(
        seed_from_ad(&state, &dc.config_file, &lab_seed_options())
            .await
            .unwrap()
            .recipients,
        0
    );

    // The DC's own view, read independently.
    let mut cfg = AdConfig::new(dc.url.clone(), dc.bind_dn.clone());
    cfg.ca_file = Some(dc.ca_file.clone());
    cfg.password_file = Some(dc.password_file.clone());
    let conn = AdConnection::connect(&cfg, Secret::new(dc.password()))
        .await
        .unwrap();
    let ad_groups = conn
        .search(&dc.base_dn, SearchScope::Subtree, GROUP_FILTER, &["mail"])
        .await
        .unwrap();
    let ad_contacts = conn
        .search(
            &dc.base_dn,
            SearchScope::Subtree,
            CONTACT_FILTER,
            &["targetAddress"],
        )
        .await
        .unwrap();
    assert_eq!((ad_groups.len(), ad_contacts.len()), (3, 3));

    let token = sim.token().await;
    let (groups, _) = sim.get_all_of(&token, DL, json!({}), 1000).await;
    assert_eq!(
        names(&groups, "Alias"),
        ["dl-all", "dl-sales", "sg-finance"]
            .map(String::from)
            .into()
    );
    for g in &ad_groups {
        let mail = g.attributes.get("mail")[0].as_text().unwrap();
        let (status, v) = sim.invoke(&token, DL, json!({"Identity": mail})).await;
        assert_eq!(status, 200, "{v}");
        let rec = &v["value"][0];
        assert_eq!(
            rec["ExternalDirectoryObjectId"],
            Uuid::new_v5(&exo_sim::seed_ad::EDOID_NAMESPACE, g.object_guid.as_bytes()).to_string()
        );
        assert_eq!(rec["PrimarySmtpAddress"], mail);
        assert_eq!(rec["IsDirSynced"], true);
        // Groups carry no ImmutableId and no user properties.
        assert!(rec.get("ImmutableId").is_none() && rec.get("UserPrincipalName").is_none());
    }
    let (_, sg) = sim
        .invoke(&token, DL, json!({"Identity": "sg-finance"}))
        .await;
    assert_eq!(
        sg["value"][0]["RecipientTypeDetails"],
        "MailUniversalSecurityGroup"
    );
    assert_eq!(sg["value"][0]["GroupType"], "Universal, SecurityEnabled");
    assert_eq!(sg["value"][0]["CustomAttribute1"], "Finance");
    let (_, all) = sim.invoke(&token, DL, json!({"Identity": "dl-all"})).await;
    assert_eq!(
        all["value"][0]["RecipientTypeDetails"],
        "MailUniversalDistributionGroup"
    );
    assert_eq!(all["value"][0]["HiddenFromAddressListsEnabled"], true);

    // Nested groups come back as group records, not expanded.
    let (members, _) = sim
        .get_all_of(
            &token,
            MEMBERS,
            json!({"Identity": "dl-all@contoso.example"}),
            1000,
        )
        .await;
    let kinds: BTreeSet<(String, String)> = members
        .iter()
        .map(|m| {
            (
                m["Alias"].as_str().unwrap().to_string(),
                m["RecipientTypeDetails"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("mbx00003", "UserMailbox"),
        ("dl-sales", "MailUniversalDistributionGroup"),
        ("sg-finance", "MailUniversalSecurityGroup"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(kinds, expected);
    let (members, _) = sim
        .get_all_of(&token, MEMBERS, json!({"Identity": "dl-sales"}), 1000)
        .await;
    assert_eq!(
        names(&members, "Alias"),
        ["ct-partner-a", "mbx00001", "mbx00002"]
            .map(String::from)
            .into()
    );

    // Contacts: ExternalEmailAddress is the DC's targetAddress.
    let (contacts, _) = sim.get_all_of(&token, CONTACTS, json!({}), 2).await;
    assert_eq!(contacts.len(), 3);
    for c in &ad_contacts {
        let target = c.attributes.get("targetAddress")[0].as_text().unwrap();
        let rec = contacts
            .iter()
            .find(|r| r["ExternalEmailAddress"] == target)
            .unwrap_or_else(|| panic!("no contact for {target}"));
        assert_eq!(rec["RecipientTypeDetails"], "MailContact");
        assert_eq!(rec["IsDirSynced"], true);
    }
    let (_, vendor) = sim
        .invoke(&token, CONTACTS, json!({"Identity": "ct-vendor"}))
        .await;
    assert_eq!(vendor["value"][0]["CustomAttribute2"], "vendor");
}

/// An emulator with `mailboxes` seeded mailboxes, a security group `sg` holding all of them,
/// a distribution group `dl` holding `sg` and one contact `partner`, and four more groups.
async fn tenant(mailboxes: usize) -> Sim {
    let sim = start(mailboxes).await;
    let state = sim.handle.state();
    let now = state.now();
    let everyone: BTreeSet<Uuid> = state
        .mailboxes_after(None, mailboxes)
        .iter()
        .map(|m| m.guid)
        .collect();
    let mut sg = SimRecipient::group(Uuid::from_u128(1), "sg", "sg@contoso.com", true, now);
    sg.details = RecipientDetails::Group {
        security: true,
        members: everyone,
    };
    sg.is_dir_synced = true;
    let partner = SimRecipient::contact(Uuid::from_u128(2), "partner", "p@fabrikam.com", now);
    let mut dl = SimRecipient::group(Uuid::from_u128(3), "dl", "dl@contoso.com", false, now);
    dl.details = RecipientDetails::Group {
        security: false,
        members: [sg.guid, partner.guid].into(),
    };
    dl.set_custom_attribute(3, "three");
    let more = (10..14u128).map(|i| {
        SimRecipient::group(
            Uuid::from_u128(i),
            &format!("g{i}"),
            &format!("g{i}@contoso.com"),
            false,
            now,
        )
    });
    state
        .add_recipients([sg, partner, dl].into_iter().chain(more))
        .unwrap();
    sim
}

#[tokio::test]
async fn member_pages_hold_at_most_a_thousand_and_follow_with_the_same_body() {
    let sim = tenant(2500).await;
    let token = sim.token().await;
    let params = json!({"Identity": "sg", "ResultSize": "Unlimited"});
    // No Prefer header: the service's own page of 1,000.
    let mut url = sim.invoke_url();
    let mut seen = BTreeSet::new();
    let mut pages = Vec::new();
    loop {
        let r = sim
            .invoke_at(&url, &token, MEMBERS, params.clone(), None)
            .await;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        let page = v["value"].as_array().unwrap();
        pages.push(page.len());
        for m in page {
            assert!(
                seen.insert(m["Guid"].as_str().unwrap().to_string()),
                "twice: {m}"
            );
        }
        match v["@odata.nextLink"].as_str() {
            Some(next) => {
                assert_eq!(v["@adminapi.warnings"][0], MORE_RESULTS);
                url = next.to_string();
            }
            None => break,
        }
    }
    assert_eq!(pages, [1000, 1000, 500]);
    // The default ResultSize is 1,000: a cap, with the warning and no link.
    let (status, v) = sim.invoke(&token, MEMBERS, json!({"Identity": "sg"})).await;
    assert_eq!(status, 200);
    assert_eq!(v["value"].as_array().unwrap().len(), 1000);
    assert!(v.get("@odata.nextLink").is_none());
    assert_eq!(v["@adminapi.warnings"][0], MORE_RESULTS);
    // A link followed with another body (another group) is refused with C3.
    let first: Value = sim
        .invoke_at(&sim.invoke_url(), &token, MEMBERS, params.clone(), Some(10))
        .await
        .json()
        .await
        .unwrap();
    let link = first["@odata.nextLink"].as_str().unwrap().to_string();
    let r = sim
        .invoke_at(
            &link,
            &token,
            MEMBERS,
            json!({"Identity": "dl", "ResultSize": "Unlimited"}),
            Some(10),
        )
        .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(
        v.to_string()
            .contains("Expired or Invalid pagination request"),
        "{v}"
    );
    // Nor can a link continue another cmdlet with the same parameters.
    let groups: Value = sim
        .invoke_at(&sim.invoke_url(), &token, DL, json!({}), Some(2))
        .await
        .json()
        .await
        .unwrap();
    let link = groups["@odata.nextLink"].as_str().unwrap().to_string();
    let r = sim
        .invoke_at(&link, &token, CONTACTS, json!({}), Some(2))
        .await;
    assert_eq!(r.status(), 400);
    let r = sim.invoke_at(&link, &token, DL, json!({}), Some(2)).await;
    assert_eq!(r.status(), 200);
}

const MORE_RESULTS: &str = "There are more results available than are currently displayed. To view them, increase the value for the ResultSize parameter.";

#[tokio::test]
async fn groups_and_contacts_page_and_filter_like_mailboxes() {
    let sim = tenant(3).await;
    let token = sim.token().await;
    let (groups, pages) = sim.get_all_of(&token, DL, json!({}), 2).await;
    assert_eq!((groups.len(), pages), (6, 3));
    assert_eq!(names(&groups, "RecipientTypeDetails").len(), 2);
    // Contacts are not groups, and groups are not mailboxes.
    assert!(groups.iter().all(|g| g["Alias"] != "partner"));
    let (mailboxes, _) = sim.get_all(&token, json!({}), 100).await;
    assert_eq!(mailboxes.len(), 3);
    let (contacts, _) = sim.get_all_of(&token, CONTACTS, json!({}), 100).await;
    assert_eq!(names(&contacts, "Alias"), ["partner".to_string()].into());
    assert_eq!(contacts[0]["ExternalEmailAddress"], "SMTP:p@fabrikam.com");

    let filtered = |f: &str| json!({"Filter": f});
    let (v, _) = sim
        .get_all_of(
            &token,
            DL,
            filtered("RecipientTypeDetails -eq 'MailUniversalSecurityGroup'"),
            100,
        )
        .await;
    assert_eq!(names(&v, "Alias"), ["sg".to_string()].into());
    let (v, _) = sim
        .get_all_of(
            &token,
            DL,
            filtered("CustomAttribute3 -eq 'three' -and IsDirSynced -eq $false"),
            100,
        )
        .await;
    assert_eq!(names(&v, "Alias"), ["dl".to_string()].into());
    // A change is found by WhenChangedUTC, in the documented date form.
    let state = sim.handle.state();
    state.advance_clock(3600);
    let since = en_us(state.now());
    state.advance_clock(60);
    let token = sim.token().await;
    state
        .update_recipient("g11", true, |g| g.hidden_from_address_lists_enabled = true)
        .unwrap();
    let (v, _) = sim
        .get_all_of(
            &token,
            DL,
            filtered(&format!("WhenChangedUTC -ge '{since}'")),
            100,
        )
        .await;
    assert_eq!(names(&v, "Alias"), ["g11".to_string()].into());
    assert_eq!(v[0]["HiddenFromAddressListsEnabled"], true);
    let (status, _) = sim
        .invoke(
            &token,
            DL,
            json!({"RecipientTypeDetails": "MailUniversalDistributionGroup", "ResultSize": 2}),
        )
        .await;
    assert_eq!(status, 200);

    // What the groups' and contacts' filters refuse: user properties, a property no capture
    // shows on them, another family's types, undocumented dates.
    for (cmdlet, f) in [
        (DL, "UserPrincipalName -eq 'x@contoso.com'"),
        (DL, "IsExchangeCloudManaged -eq $true"),
        (DL, "RecipientTypeDetails -eq 'UserMailbox'"),
        (
            CONTACTS,
            "RecipientTypeDetails -eq 'MailUniversalDistributionGroup'",
        ),
        (CONTACTS, "WhenChangedUTC -ge '2024-04-10T08:56:22Z'"),
        (DL, "Alias -like 'd*'"),
    ] {
        let (status, v) = sim.invoke(&token, cmdlet, filtered(f)).await;
        assert_eq!(status, 400, "{cmdlet} {f}: {v}");
        assert!(
            detail(&v).contains("Cannot bind parameter 'Filter'"),
            "{f}: {v}"
        );
    }
    let (status, v) = sim
        .invoke(&token, DL, json!({"RecipientTypeDetails": "UserMailbox"}))
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(
        detail(&v).contains("ParameterTransformationException")
            || v.to_string().contains("RecipientTypeDetails"),
        "{v}"
    );
}

#[tokio::test]
async fn parameters_identities_and_select_are_as_strict_as_get_mailbox() {
    let sim = tenant(2).await;
    let token = sim.token().await;
    // Real parameters outside the modelled subset, and Get-EXOMailbox's Properties.
    for (cmdlet, params) in [
        (DL, json!({"Anr": "dl"})),
        (DL, json!({"ManagedBy": "x"})),
        (DL, json!({"Properties": ["Alias"]})),
        (CONTACTS, json!({"SortBy": "Name"})),
        (
            MEMBERS,
            json!({"Identity": "dl", "DomainController": "dc1"}),
        ),
        (
            MEMBERS,
            json!({"Identity": "dl", "Filter": "Alias -eq 'x'"}),
        ),
    ] {
        let (status, v) = sim.invoke(&token, cmdlet, params.clone()).await;
        assert_eq!(status, 400, "{cmdlet} {params}: {v}");
    }
    // Identity is mandatory for members; and never with Filter.
    let (status, v) = sim.invoke(&token, MEMBERS, json!({})).await;
    assert_eq!(status, 400, "{v}");
    assert!(detail(&v).contains("Identity"), "{v}");
    let (status, _) = sim
        .invoke(
            &token,
            DL,
            json!({"Identity": "dl", "Filter": "Alias -eq 'dl'"}),
        )
        .await;
    assert_eq!(status, 400);
    // Identities: each documented key finds the group; another family's object is not found
    // (capture C4's shape).
    let (_, dl) = sim.invoke(&token, DL, json!({"Identity": "dl"})).await;
    let dl = dl["value"][0].clone();
    for key in [
        dl["Guid"].as_str().unwrap(),
        dl["ExternalDirectoryObjectId"].as_str().unwrap(),
        "DL@Contoso.com",
        "DL",
    ] {
        let (status, v) = sim.invoke(&token, DL, json!({"Identity": key})).await;
        assert_eq!(status, 200, "{key}: {v}");
        assert_eq!(v["value"][0]["Alias"], "dl");
    }
    let mailbox = sim.handle.state().mailboxes_after(None, 1)[0]
        .primary_smtp_address()
        .to_string();
    for (cmdlet, id) in [
        (DL, "partner"),
        (CONTACTS, "dl"),
        (MEMBERS, mailbox.as_str()),
        (MEMBERS, "partner"),
        (DL, "nobody@contoso.com"),
    ] {
        let (status, v) = sim.invoke(&token, cmdlet, json!({"Identity": id})).await;
        assert_eq!(status, 404, "{cmdlet} {id}: {v}");
        assert!(
            detail(&v).contains("ManagementObjectNotFoundException"),
            "{v}"
        );
    }
    // $select: the record's own properties only, plus the identity ones.
    let url = format!("{}?%24select=Alias,GroupType", sim.invoke_url());
    let v: Value = sim
        .invoke_at(&url, &token, DL, json!({"Identity": "sg"}), None)
        .await
        .json()
        .await
        .unwrap();
    let keys: BTreeSet<&str> = v["value"][0]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| !k.contains('@'))
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "Alias",
            "GroupType",
            "ExternalDirectoryObjectId",
            "Identity",
            "Guid"
        ]
        .into()
    );
    for (cmdlet, select) in [
        (DL, "UserPrincipalName"),
        (CONTACTS, "GroupType"),
        (DL, "ExternalEmailAddress"),
    ] {
        let url = format!("{}?%24select={select}", sim.invoke_url());
        let r = sim.invoke_at(&url, &token, cmdlet, json!({}), None).await;
        assert_eq!(r.status(), 400, "{cmdlet} $select={select}");
    }
}

#[tokio::test]
async fn faults_reach_the_group_cmdlets_and_addresses_stay_unique() {
    let sim = tenant(1500).await;
    let token = sim.token().await;
    let state = sim.handle.state();
    let id = state.add_fault(FaultRule::times(
        Endpoint::Invoke,
        FaultKind::BrokenNextLink,
        1,
    ));
    let first: Value = sim
        .invoke_at(
            &sim.invoke_url(),
            &token,
            MEMBERS,
            json!({"Identity": "sg", "ResultSize": "Unlimited"}),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(state.fired(id), 1);
    let link = first["@odata.nextLink"].as_str().unwrap().to_string();
    let r = sim
        .invoke_at(
            &link,
            &token,
            MEMBERS,
            json!({"Identity": "sg", "ResultSize": "Unlimited"}),
            None,
        )
        .await;
    assert_eq!(r.status(), 400);
    state.add_fault(FaultRule::times(
        Endpoint::Invoke,
        FaultKind::InternalServerError,
        1,
    ));
    let (status, _) = sim.invoke(&token, CONTACTS, json!({})).await;
    assert_eq!(status, 500);

    // One address space: a group cannot take a mailbox's or another group's address, and a
    // group's members must exist.
    let now = state.now();
    let taken = state.mailboxes_after(None, 1)[0]
        .primary_smtp_address()
        .to_string();
    for (alias, address) in [("x1", taken.as_str()), ("x2", "DL@contoso.com")] {
        let g = SimRecipient::group(Uuid::new_v4(), alias, address, false, now);
        let e = state.add_recipients([g]).unwrap_err();
        assert!(matches!(e, StateError::AddressInUse { .. }), "{e}");
    }
    let mut g = SimRecipient::group(Uuid::new_v4(), "x3", "x3@contoso.com", false, now);
    g.details = RecipientDetails::Group {
        security: false,
        members: [Uuid::new_v4()].into(),
    };
    assert!(matches!(
        state.add_recipients([g]),
        Err(StateError::Invalid(_))
    ));
    let e = state
        .update_recipient("partner", false, |c| {
            c.email_addresses.push("smtp:sg@contoso.com".into())
        })
        .unwrap_err();
    assert!(matches!(e, StateError::AddressInUse { .. }), "{e}");
    assert_eq!(
        state
            .recipient("partner", false)
            .unwrap()
            .email_addresses
            .len(),
        1
    );
}
