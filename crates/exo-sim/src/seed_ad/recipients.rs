//! `--seed-from-ad`, groups and contacts: the mail-enabled groups and mail contacts of the
//! DC as directory synchronisation and Exchange Online would show them (issue 17).
//!
//! A group with a `mail` becomes a distribution group, or a mail-enabled security group when
//! its `groupType` has the security bit (0x80000000, MS-ADTS 2.2.12); a contact with a
//! `targetAddress` becomes a mail contact whose ExternalEmailAddress it is. Ids as for users:
//! ExternalDirectoryObjectId a UUIDv5 of the objectGUID (groups and contacts have no
//! ImmutableId in Exchange Online). Members are the recipients their `member` DNs name —
//! users with a mailbox, contacts, groups; other members (a user without a mailbox) are not
//! recipients and are left out, as Exchange Online lists recipients only.

use std::collections::{BTreeSet, HashMap};

use exo_writeback_core::directory::DirectoryObject;
use jiff::Timestamp;
use uuid::Uuid;

use super::{AdSeedOptions, EDOID_NAMESPACE, GUID_NAMESPACE, USER_ATTRIBUTES, text, texts};
use crate::recipient::{RecipientDetails, SimRecipient};

/// The groups read: mail-enabled ones.
pub const GROUP_FILTER: &str = "(&(objectCategory=group)(mail=*))";
/// The contacts read: mail contacts.
pub const CONTACT_FILTER: &str = "(&(objectClass=contact)(targetAddress=*))";

/// The attributes read from each group and contact: the users' custom attributes and these.
pub fn recipient_attributes() -> Vec<&'static str> {
    let mut a = vec![
        "objectGUID",
        "mail",
        "proxyAddresses",
        "mailNickname",
        "displayName",
        "cn",
        "groupType",
        "member",
        "targetAddress",
        "msExchHideFromAddressLists",
    ];
    a.extend(USER_ATTRIBUTES.iter().copied().filter(|n| {
        n.starts_with("extensionAttribute") || n.starts_with("msExchExtensionCustomAttribute")
    }));
    a
}

/// The Guid the emulator gives the recipient of an AD object (mailboxes alike).
pub fn sim_guid(object_guid: &Uuid) -> Uuid {
    Uuid::new_v5(&GUID_NAMESPACE, object_guid.as_bytes())
}

/// The group or contact directory synchronisation would give `o`, without members; `None`
/// when it has no address.
pub fn recipient_for(
    o: &DirectoryObject,
    options: &AdSeedOptions,
    now: Timestamp,
) -> Option<SimRecipient> {
    let g = o.object_guid;
    let target = text(o, "targetAddress");
    let mail = text(o, "mail");
    let mut addresses = texts(o, "proxyAddresses");
    if !addresses.iter().any(|a| a.starts_with("SMTP:")) {
        let primary = mail.or_else(|| target.map(|t| t.split_once(':').map_or(t, |(_, x)| x)))?;
        addresses.retain(|a| !a.eq_ignore_ascii_case(&format!("smtp:{primary}")));
        addresses.insert(0, format!("SMTP:{primary}"));
    }
    let alias = text(o, "mailNickname")
        .or(text(o, "cn"))
        .map(str::to_string)
        .unwrap_or_else(|| g.simple().to_string());
    let primary = addresses
        .iter()
        .find_map(|a| a.strip_prefix("SMTP:"))
        .unwrap_or_default()
        .to_string();
    let mut r = match target {
        Some(t) => {
            let mut r = SimRecipient::contact(sim_guid(&g), &alias, &primary, now);
            r.details = RecipientDetails::Contact {
                external_email_address: t.to_string(),
            };
            r
        }
        None => {
            let group_type: i64 = text(o, "groupType")
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            let security = group_type & 0x8000_0000 != 0;
            // Exchange Online's routing address, as for mailboxes.
            addresses.push(format!("smtp:{alias}@{}", options.tenant_domain));
            SimRecipient::group(sim_guid(&g), &alias, &primary, security, now)
        }
    };
    r.external_directory_object_id = Uuid::new_v5(&EDOID_NAMESPACE, g.as_bytes()).to_string();
    r.display_name = text(o, "displayName")
        .or(text(o, "cn"))
        .unwrap_or(&alias)
        .to_string();
    r.name = text(o, "cn").unwrap_or(&alias).to_string();
    r.email_addresses = addresses;
    r.hidden_from_address_lists_enabled =
        text(o, "msExchHideFromAddressLists").is_some_and(|v| v.eq_ignore_ascii_case("TRUE"));
    for i in 1..=15u8 {
        if let Some(v) = text(o, &format!("extensionAttribute{i}")) {
            r.set_custom_attribute(i, v);
        }
    }
    for i in 1..=5u8 {
        r.set_extension_custom_attribute(
            i,
            texts(o, &format!("msExchExtensionCustomAttribute{i}")),
        );
    }
    r.is_dir_synced = true;
    Some(r)
}

/// The recipients of `contacts` and `groups`, members resolved through `known` (lower-cased
/// DN → the emulator's Guid: the users with a mailbox) and each other, in an order that adds
/// every group after the groups it holds (a membership cycle, impossible for Exchange, is
/// cut where it closes).
pub fn recipients_for(
    contacts: &[DirectoryObject],
    groups: &[DirectoryObject],
    mut known: HashMap<String, Uuid>,
    options: &AdSeedOptions,
    now: Timestamp,
) -> Vec<SimRecipient> {
    let mut out: Vec<SimRecipient> = Vec::new();
    for c in contacts {
        if let Some(r) = recipient_for(c, options, now) {
            known.insert(c.dn.to_lowercase(), r.guid);
            out.push(r);
        }
    }
    let mut pending: Vec<(SimRecipient, Vec<String>)> = Vec::new();
    for g in groups {
        if let Some(r) = recipient_for(g, options, now) {
            known.insert(g.dn.to_lowercase(), r.guid);
            let members = texts(g, "member")
                .iter()
                .map(|m| m.to_lowercase())
                .collect();
            pending.push((r, members));
        }
    }
    let group_guids: BTreeSet<Uuid> = pending.iter().map(|(r, _)| r.guid).collect();
    let mut added: BTreeSet<Uuid> = BTreeSet::new();
    while !pending.is_empty() {
        let ready = pending.iter().position(|(_, ms)| {
            ms.iter()
                .filter_map(|m| known.get(m))
                .all(|g| !group_guids.contains(g) || added.contains(g))
        });
        // A cycle: take the first group and drop the members not added yet.
        let (mut r, members) = pending.remove(ready.unwrap_or(0));
        let set: BTreeSet<Uuid> = members
            .iter()
            .filter_map(|m| known.get(m).copied())
            .filter(|g| !group_guids.contains(g) || added.contains(g))
            .collect();
        if let RecipientDetails::Group { members, .. } = &mut r.details {
            *members = set;
        }
        added.insert(r.guid);
        out.push(r);
    }
    out
}
