//! Matching a group or mail contact to its AD object (issue 17).
//!
//! Exchange Online gives a group or contact no ImmutableId, so the mailboxes' immutable anchor
//! does not exist for them (`docs/groups-and-contacts.md`, "Mapping to AD"). What stands in
//! for it is an address: an object **of the recipient's class** (`group`, `contact`) holding
//! one of its SMTP addresses in `proxyAddresses`. No user can write that value — not on their
//! own account (`proxyAddresses` is in the Public-Information property set, which SELF may
//! only read: `matching/corroborate.rs`), and a group or contact has no SELF — and Exchange
//! keeps proxy addresses unique in the organisation. An object of another class holding the
//! address (a user) is never the group's or contact's object.
//!
//! `msDS-ExternalDirectoryObjectId = Group_<id>` (MS-ADA2 2.320: the id "for users and
//! groups"; contacts have none) is in the Personal-Information property set, which every
//! user may write on their own account: like `User_<id>` for a mailbox it only
//! **corroborates**. Its holders other than the address's object are named in a
//! `SpoofedMatchKey` event and never followed; with no object holding an address, the key
//! alone is not followed either (`UncorroboratedMatchKey`: there is no witness left that the
//! user cannot write). The order, as for mailboxes: the stored join (checked against the
//! class), the address anchor, then the key as corroboration only.

use crate::directory::DirectoryObject;
use crate::mailbox::{Mailbox, RecipientKind};
use crate::outcome::{OutcomeCode, OutcomeDetail};
use crate::proxy::ProxyAddress;

/// The `msDS-ExternalDirectoryObjectId` a group's object may hold (`Group_<id>`); `None`
/// for a contact (no such key) or a record without an id.
pub fn recipient_key(record: &Mailbox) -> Option<String> {
    let id = record
        .external_directory_object_id
        .as_deref()
        .map(str::trim)
        .filter(|id| !id.is_empty())?;
    (record.kind == RecipientKind::Group).then(|| format!("Group_{id}"))
}

/// The `proxyAddresses` values looked up for the address anchor: `smtp:<address>` for each
/// SMTP address of the record (its EmailAddresses and PrimarySmtpAddress), lower case,
/// unique. AD compares proxyAddresses case-insensitively, so `SMTP:` values are found too.
pub fn anchor_addresses(record: &Mailbox) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let from_list = record
        .email_addresses
        .iter()
        .filter_map(|a| ProxyAddress::parse(a).ok())
        .filter(|p| p.is_smtp())
        .map(|p| p.address);
    for address in from_list.chain(record.primary_smtp_address.iter().cloned()) {
        let value = format!("smtp:{}", address.trim().to_lowercase());
        if address.trim().is_empty() || out.contains(&value) {
            continue;
        }
        out.push(value);
    }
    out
}

/// Whether `object` is of the class of `kind` (its `objectClass` values, which AD lists
/// with every superclass; no user can change them).
pub fn has_class(object: &DirectoryObject, kind: RecipientKind) -> bool {
    object
        .attributes
        .get("objectClass")
        .iter()
        .filter_map(|v| v.as_text())
        .any(|c| c.eq_ignore_ascii_case(kind.object_class()))
}

/// A group's or contact's match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientMatch {
    pub dn: String,
    /// How, for the matching step's message.
    pub how: String,
    /// `SpoofedMatchKey`: other objects hold the group's key (not followed).
    pub security: Option<OutcomeDetail>,
}

fn dns(objects: &[&DirectoryObject]) -> String {
    objects
        .iter()
        .map(|o| o.dn.as_str())
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Decide a group's or contact's match from what the look-ups found: `by_address`, the
/// objects holding one of [`anchor_addresses`] (any class; deduplicated here), and `by_key`,
/// the objects holding [`recipient_key`] (when there is one). `Err` is the outcome of an
/// object not written (`TargetNotFound`, `DuplicateTargetEntries`, `SpoofedMatchKey`,
/// `UncorroboratedMatchKey`).
pub fn decide_recipient_match(
    record: &Mailbox,
    by_address: &[DirectoryObject],
    key: Option<&str>,
    by_key: &[DirectoryObject],
) -> Result<RecipientMatch, OutcomeDetail> {
    let kind = record.kind;
    let mut anchored: Vec<&DirectoryObject> = Vec::new();
    for o in by_address.iter().filter(|o| has_class(o, kind)) {
        if !anchored.iter().any(|a| a.object_guid == o.object_guid) {
            anchored.push(o);
        }
    }
    let addresses = anchor_addresses(record).join(", ");
    let key_text = key.map(|k| format!("msDS-ExternalDirectoryObjectId = {k:?}"));
    match anchored.as_slice() {
        [one] => {
            let others: Vec<&DirectoryObject> = by_key
                .iter()
                .filter(|o| o.object_guid != one.object_guid)
                .collect();
            let security = (!others.is_empty()).then(|| {
                OutcomeDetail::new(
                    OutcomeCode::SpoofedMatchKey,
                    format!(
                        "{} is also held by {}, which is not the {kind}'s object (the {} \
                         holding its address, {}): not followed; {} was matched. Every user \
                         may write msDS-ExternalDirectoryObjectId on their own account \
                         (Personal-Information property set): someone may be trying to \
                         receive this {kind}'s values",
                        key_text.as_deref().unwrap_or("its key"),
                        dns(&others),
                        kind.object_class(),
                        one.dn,
                        one.dn
                    ),
                )
            });
            let corroborated = if by_key.iter().any(|o| o.object_guid == one.object_guid) {
                format!(
                    ", corroborated by {}",
                    key_text.as_deref().unwrap_or("its key")
                )
            } else {
                String::new()
            };
            Ok(RecipientMatch {
                dn: one.dn.clone(),
                how: format!(
                    "by its SMTP address (the only {} holding one of {addresses}){corroborated}",
                    kind.object_class()
                ),
                security,
            })
        }
        [] => {
            let holders: Vec<&DirectoryObject> = by_key.iter().collect();
            if holders.is_empty() {
                let mut tried = vec![format!(
                    "no {} holds one of {} in proxyAddresses",
                    kind.object_class(),
                    if addresses.is_empty() {
                        "(no SMTP address)"
                    } else {
                        &addresses
                    }
                )];
                if let Some(k) = &key_text {
                    tried.push(format!("{k}: no object"));
                }
                return Err(OutcomeDetail::new(
                    OutcomeCode::TargetNotFound,
                    format!("no AD object matched: {}", tried.join("; ")),
                ));
            }
            Err(OutcomeDetail::new(
                OutcomeCode::UncorroboratedMatchKey,
                format!(
                    "{} is held by {}, but no {} holds one of the {kind}'s SMTP addresses \
                     ({addresses}). Every user may write msDS-ExternalDirectoryObjectId on \
                     their own account, so the key alone is not followed; nothing written",
                    key_text.as_deref().unwrap_or("its key"),
                    dns(&holders),
                    kind.object_class(),
                ),
            ))
        }
        several => Err(OutcomeDetail::new(
            OutcomeCode::DuplicateTargetEntries,
            format!(
                "{} AD objects of class {} hold the {kind}'s SMTP addresses ({addresses}): {}",
                several.len(),
                kind.object_class(),
                dns(several)
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::{AttrValue, Attributes};
    use uuid::Uuid;

    fn object(n: u128, dn: &str, class: &str) -> DirectoryObject {
        let mut attributes = Attributes::new();
        attributes.insert(
            "objectClass",
            vec![AttrValue::Text("top".into()), AttrValue::Text(class.into())],
        );
        DirectoryObject {
            dn: dn.into(),
            object_guid: Uuid::from_u128(n),
            attributes,
        }
    }

    fn group() -> Mailbox {
        Mailbox {
            kind: RecipientKind::Group,
            external_directory_object_id: Some("abc".into()),
            primary_smtp_address: Some("Sales@contoso.example".into()),
            email_addresses: vec![
                "SMTP:Sales@contoso.example".into(),
                "smtp:dl-sales@contoso.example".into(),
                "X500:/o=x".into(),
            ],
            ..Mailbox::default()
        }
    }

    #[test]
    fn the_key_and_addresses_of_a_group_and_a_contact() {
        assert_eq!(recipient_key(&group()).as_deref(), Some("Group_abc"));
        let contact = Mailbox {
            kind: RecipientKind::Contact,
            ..group()
        };
        assert_eq!(recipient_key(&contact), None);
        assert_eq!(
            anchor_addresses(&group()),
            vec![
                "smtp:sales@contoso.example",
                "smtp:dl-sales@contoso.example"
            ]
        );
    }

    #[test]
    fn the_address_of_an_object_of_the_class_decides_and_the_key_only_corroborates() {
        let dl = object(1, "CN=dl-sales,OU=Groups", "group");
        let user = object(2, "CN=eve,OU=Users", "user");
        // A user holding the group's address is never its object.
        let m = decide_recipient_match(&group(), &[user.clone(), dl.clone()], None, &[])
            .expect("matched");
        assert_eq!(m.dn, dl.dn);
        assert!(m.security.is_none());
        // A user holding the group's key: matched to the group all the same, and reported.
        let m = decide_recipient_match(
            &group(),
            std::slice::from_ref(&dl),
            Some("Group_abc"),
            &[user.clone(), dl.clone()],
        )
        .expect("matched");
        assert_eq!(m.dn, dl.dn);
        let event = m.security.expect("spoofing reported");
        assert_eq!(event.code, OutcomeCode::SpoofedMatchKey);
        assert!(event.reason.contains("CN=eve"), "{}", event.reason);
        assert!(m.how.contains("corroborated"), "{}", m.how);
        // The key alone is never followed.
        let e = decide_recipient_match(
            &group(),
            std::slice::from_ref(&user),
            Some("Group_abc"),
            std::slice::from_ref(&user),
        )
        .expect_err("not followed");
        assert_eq!(e.code, OutcomeCode::UncorroboratedMatchKey);
        let e = decide_recipient_match(&group(), &[], Some("Group_abc"), &[]).expect_err("none");
        assert_eq!(e.code, OutcomeCode::TargetNotFound);
        let other = object(3, "CN=dl-sales2,OU=Groups", "group");
        let e = decide_recipient_match(&group(), &[dl, other], None, &[]).expect_err("two");
        assert_eq!(e.code, OutcomeCode::DuplicateTargetEntries);
    }
}
