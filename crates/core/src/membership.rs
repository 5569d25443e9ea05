//! A group's `member` from its cloud membership (issue 17 item 3; `write_membership = true`).
//!
//! Exchange Online lists a group's members (Get-DistributionGroupMember) as recipients: an
//! ExternalDirectoryObjectId, a PrimarySmtpAddress and a type — nested groups as group records,
//! not expanded. Each is resolved to **one** AD object, or reported; never guessed:
//!
//! 1. **the stored join** of its ExternalDirectoryObjectId — made when the agent matched that
//!    mailbox, group or contact by its immutable anchor — read by objectGUID now, so a renamed
//!    or moved object is followed;
//! 2. for a group or contact member, its **address anchor** — the rule its own profile matches
//!    by ([`crate::matching::recipient`]): one object *of its class* holding its
//!    PrimarySmtpAddress in `proxyAddresses`, which no user can write on themselves and
//!    Exchange keeps unique (several: reported, never one picked);
//! 3. otherwise the **match key** Entra writes on the objects it provisions,
//!    `msDS-ExternalDirectoryObjectId = User_<id>` / `Group_<id>` (contacts carry none): one
//!    holder is believed only when it also holds the member's PrimarySmtpAddress in
//!    `proxyAddresses` or `mail` — attributes a user cannot write on themselves (see
//!    [`crate::matching::corroborate_key_match`]), because the key is self-writable and would
//!    otherwise let a user put themselves into any group a victim joins;
//! 4. no holder, several holders, or an uncorroborated holder: the member is **unresolved** —
//!    reported by name in the group's log entry ([`OutcomeCode::MemberNotResolved`]) and left
//!    out of the change.
//!
//! The change is incremental: the resolved DNs missing from `member` are added, and `member`
//! values the cloud no longer lists are deleted — single values in chunks of at most
//! [`MEMBER_CHUNK`], never a `replace` of the whole list. **Only members the agent can account
//! for are deleted**: a value is removed only when it names an AD object the agent knows as a
//! cloud recipient (a stored join names it). An on-premises-only object in the group — a user
//! outside directory synchronisation, a computer, a foreign security principal — or an object
//! whose join the agent has not made yet is never in the cloud's list, and deleting it would
//! lose data the cloud never held; it is kept and counted ([`MembershipPlan::kept`]). This is
//! Microsoft's own behaviour for provisioning groups to AD: a member reference is written only
//! for a member that has an AD account, and removing a member in the cloud removes "the
//! corresponding member reference" (entra-docs `cloud-sync/how-provisioning-to-active-directory-works.md`).
//! While any cloud member is unresolved the rule stays the same: an unresolved member is never
//! an object a stored join names (it would have resolved through it).

use std::collections::BTreeSet;

use crate::directory::{AttrChange, AttrValue, DirectoryObject, ModOp};
use crate::ldap_text::Dn;
use crate::mail_recipient::GroupMember;
use crate::mailbox::RecipientKind;
use crate::matching::recipient::has_class;
use crate::matching::smtp_of;
use crate::outcome::{OutcomeCode, OutcomeDetail};

/// The AD attribute written.
pub const MEMBER_ATTRIBUTE: &str = "member";

/// The most `member` values one modification item adds or deletes: a large change is sent as
/// several items of one modify (still one LDAP request, so written whole or not at all).
pub const MEMBER_CHUNK: usize = 1000;

/// How many unresolved members a log entry names one by one.
pub const REPORTED_IN_ENTRY: usize = 20;

/// The attributes a key holder is read with, to corroborate it.
pub const MEMBER_WITNESS_ATTRIBUTES: [&str; 2] = ["proxyAddresses", "mail"];

/// The `msDS-ExternalDirectoryObjectId` value Entra writes on the AD object of this member:
/// `User_<id>` for mailboxes and mail users, `Group_<id>` for groups; `None` for a contact (no
/// key is written on contacts) or a member without an id.
pub fn member_key(member: &GroupMember) -> Option<String> {
    let id = member
        .external_directory_object_id
        .as_deref()
        .map(str::trim)
        .filter(|i| !i.is_empty())?;
    if member.is_group() {
        Some(format!("Group_{id}"))
    } else if member
        .recipient_type_details
        .eq_ignore_ascii_case(crate::mail_recipient::CONTACT_TYPE)
    {
        None
    } else {
        Some(format!("User_{id}"))
    }
}

/// The kind of AD object a member is: a group, a mail contact, else a mailbox's user.
pub fn member_kind(member: &GroupMember) -> RecipientKind {
    if member.is_group() {
        RecipientKind::Group
    } else if member
        .recipient_type_details
        .eq_ignore_ascii_case(crate::mail_recipient::CONTACT_TYPE)
    {
        RecipientKind::Contact
    } else {
        RecipientKind::Mailbox
    }
}

/// The `proxyAddresses` value a group or contact member is looked up by — its address anchor
/// (`smtp:<PrimarySmtpAddress>`, lower case; `crate::matching::recipient`) — or `None` for a
/// mailbox member (whose anchor, the ImmutableId, a member record does not carry) or a member
/// without an address.
pub fn member_anchor(member: &GroupMember) -> Option<String> {
    if member_kind(member) == RecipientKind::Mailbox {
        return None;
    }
    member
        .primary_smtp_address
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|a| format!("smtp:{}", a.to_lowercase()))
}

/// How a member is named in logs: its address, id and type.
pub fn describe(member: &GroupMember) -> String {
    let name = member
        .primary_smtp_address
        .as_deref()
        .or(member.alias.as_deref())
        .or(member.display_name.as_deref())
        .unwrap_or("(no address)");
    format!(
        "{name} ({}, ExternalDirectoryObjectId {})",
        if member.recipient_type_details.is_empty() {
            "unknown type"
        } else {
            member.recipient_type_details.as_str()
        },
        member
            .external_directory_object_id
            .as_deref()
            .unwrap_or("none")
    )
}

/// What the directory told the engine about one cloud member.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemberEvidence {
    /// The current DN of the object the member's stored join names (read by objectGUID); `None`
    /// without a join, or when its object is gone.
    pub joined_dn: Option<String>,
    /// The objects holding [`member_anchor`] in `proxyAddresses`, read with `objectClass`;
    /// empty for a mailbox member or when a join decided.
    pub address_holders: Vec<DirectoryObject>,
    /// The objects holding [`member_key`], read with [`MEMBER_WITNESS_ATTRIBUTES`]; empty when
    /// the member has no key or a join or its address decided.
    pub key_holders: Vec<DirectoryObject>,
}

/// Why a member resolves to no AD object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unresolved {
    /// No stored join, and no AD object holds its key (or it has none: a contact not joined).
    NotFound { key: Option<String> },
    /// Several AD objects hold its key.
    Ambiguous { key: String, dns: Vec<String> },
    /// Several AD objects of its class hold its address.
    AmbiguousAddress { address: String, dns: Vec<String> },
    /// One AD object holds its key, but not its address: the key alone is not followed.
    Uncorroborated { key: String, dn: String },
}

/// One member the agent did not write: who, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnresolvedMember {
    pub member: String,
    pub why: Unresolved,
}

impl UnresolvedMember {
    /// The text of its report in the group's log entry.
    pub fn reason(&self) -> String {
        let why = match &self.why {
            Unresolved::NotFound { key: None } => {
                "no stored join, and it carries no key to look up".to_string()
            }
            Unresolved::NotFound { key: Some(k) } => {
                format!("no stored join, and no AD object holds msDS-ExternalDirectoryObjectId {k}")
            }
            Unresolved::Ambiguous { key, dns } => format!(
                "{} AD objects hold msDS-ExternalDirectoryObjectId {key}: {}",
                dns.len(),
                dns.join("; ")
            ),
            Unresolved::AmbiguousAddress { address, dns } => format!(
                "{} AD objects of its class hold proxyAddresses {address}: {}",
                dns.len(),
                dns.join("; ")
            ),
            Unresolved::Uncorroborated { key, dn } => format!(
                "{dn} holds msDS-ExternalDirectoryObjectId {key} but not the member's address \
                 (every user may write that key on their own account, so it alone is not followed)"
            ),
        };
        format!("member {} not written: {why}", self.member)
    }

    pub fn outcome(&self) -> OutcomeDetail {
        OutcomeDetail::new(OutcomeCode::MemberNotResolved, self.reason())
    }
}

/// A member resolved to an AD object, or why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// The DN, and how it was found (for the log).
    Resolved {
        dn: String,
        how: String,
    },
    Unresolved(UnresolvedMember),
}

/// Whether `object` holds `address` in `proxyAddresses` (as `smtp:`) or `mail`.
fn holds_address(object: &DirectoryObject, address: &str) -> bool {
    let wanted = address.trim().to_lowercase();
    if wanted.is_empty() {
        return false;
    }
    let proxies = object
        .attributes
        .get("proxyAddresses")
        .iter()
        .filter_map(AttrValue::as_text)
        .filter(|v| v.contains(':'))
        .filter_map(smtp_of);
    let mail = object
        .attributes
        .get("mail")
        .iter()
        .filter_map(AttrValue::as_text)
        .map(|m| m.trim().to_lowercase());
    proxies.chain(mail).any(|a| a == wanted)
}

/// Resolve one member from what the directory told (module documentation).
pub fn resolve_member(member: &GroupMember, evidence: &MemberEvidence) -> Resolution {
    let who = describe(member);
    if let Some(dn) = &evidence.joined_dn {
        return Resolution::Resolved {
            dn: dn.clone(),
            how: "stored join".into(),
        };
    }
    let unresolved = |why| {
        Resolution::Unresolved(UnresolvedMember {
            member: who.clone(),
            why,
        })
    };
    // A group or contact: its address, held by an object of its class, is its anchor.
    if let Some(address) = member_anchor(member) {
        let kind = member_kind(member);
        let of_class: Vec<&DirectoryObject> = evidence
            .address_holders
            .iter()
            .filter(|o| has_class(o, kind))
            .collect();
        match of_class.as_slice() {
            [one] => {
                return Resolution::Resolved {
                    dn: one.dn.clone(),
                    how: format!("its address {address}, held by the {kind}"),
                };
            }
            [] => {}
            many => {
                return unresolved(Unresolved::AmbiguousAddress {
                    address,
                    dns: many.iter().map(|o| o.dn.clone()).collect(),
                });
            }
        }
    }
    let Some(key) = member_key(member) else {
        return unresolved(Unresolved::NotFound { key: None });
    };
    match evidence.key_holders.as_slice() {
        [] => unresolved(Unresolved::NotFound { key: Some(key) }),
        [one] => match member.primary_smtp_address.as_deref() {
            Some(address) if holds_address(one, address) => Resolution::Resolved {
                dn: one.dn.clone(),
                how: format!("{key}, corroborated by the address {address}"),
            },
            _ => unresolved(Unresolved::Uncorroborated {
                key,
                dn: one.dn.clone(),
            }),
        },
        many => unresolved(Unresolved::Ambiguous {
            key,
            dns: many.iter().map(|o| o.dn.clone()).collect(),
        }),
    }
}

/// A DN as a comparison key: parsed and lower-cased (AD compares DNs case-insensitively and
/// ignores spaces around separators); an unparsable DN is kept as it is, lower-cased.
pub fn dn_key(dn: &str) -> String {
    match Dn::parse(dn) {
        Ok(parsed) => parsed.to_string().to_lowercase(),
        Err(_) => dn.to_lowercase(),
    }
}

/// The membership change of one group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MembershipPlan {
    /// DNs to add to `member`, in the cloud's order.
    pub add: Vec<String>,
    /// `member` values to delete, as AD holds them.
    pub delete: Vec<String>,
    /// Cloud members not written, each with why.
    pub unresolved: Vec<UnresolvedMember>,
    /// `member` values absent from the cloud's list that the agent cannot account for (no
    /// stored join names them): kept.
    pub kept: Vec<String>,
}

impl MembershipPlan {
    /// The unresolved members' reports for a log entry: at most [`REPORTED_IN_ENTRY`] named,
    /// then how many more (the agent's log has one line per member).
    pub fn unresolved_report(&self) -> String {
        let mut out = self
            .unresolved
            .iter()
            .take(REPORTED_IN_ENTRY)
            .map(UnresolvedMember::reason)
            .collect::<Vec<_>>()
            .join("; ");
        let more = self.unresolved.len().saturating_sub(REPORTED_IN_ENTRY);
        if more > 0 {
            out.push_str(&format!(
                "; and {more} more member(s) not resolved (one warning each in the agent's log)"
            ));
        }
        out
    }

    /// Nothing to add or delete.
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.delete.is_empty()
    }

    /// The modification items: deletes, then adds, each in chunks of [`MEMBER_CHUNK`].
    pub fn changes(&self) -> Vec<AttrChange> {
        let chunks = |op: ModOp, dns: &[String]| -> Vec<AttrChange> {
            dns.chunks(MEMBER_CHUNK)
                .map(|c| AttrChange {
                    op,
                    attribute: MEMBER_ATTRIBUTE.to_string(),
                    values: c.iter().cloned().map(AttrValue::Text).collect(),
                })
                .collect()
        };
        let mut out = chunks(ModOp::Delete, &self.delete);
        out.extend(chunks(ModOp::Add, &self.add));
        out
    }

    /// The log entry's warning about the members not written (`None`: every one resolved).
    pub fn warning(&self) -> Option<OutcomeDetail> {
        (!self.unresolved.is_empty())
            .then(|| OutcomeDetail::new(OutcomeCode::MemberNotResolved, self.unresolved_report()))
    }
}

/// The change that makes `current` (the group's `member` values) hold the resolved members.
/// `accountable` tells whether a DN names an object the agent knows as a cloud recipient (a
/// stored join names it; compared by [`dn_key`]).
pub fn plan_membership(
    current: &[AttrValue],
    resolutions: &[Resolution],
    accountable: &dyn Fn(&str) -> bool,
) -> MembershipPlan {
    let mut plan = MembershipPlan::default();
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    let held: BTreeSet<String> = current
        .iter()
        .filter_map(AttrValue::as_text)
        .map(dn_key)
        .collect();
    for r in resolutions {
        match r {
            Resolution::Resolved { dn, .. } => {
                let key = dn_key(dn);
                if wanted.insert(key.clone()) && !held.contains(&key) {
                    plan.add.push(dn.clone());
                }
            }
            Resolution::Unresolved(u) => plan.unresolved.push(u.clone()),
        }
    }
    for value in current.iter().filter_map(AttrValue::as_text) {
        if wanted.contains(&dn_key(value)) {
            continue;
        }
        if accountable(value) {
            plan.delete.push(value.to_string());
        } else {
            plan.kept.push(value.to_string());
        }
    }
    plan
}

/// Whether two lists of `member` values name the same objects (any order, AD's DN comparison).
pub fn same_members(a: &[AttrValue], b: &[AttrValue]) -> bool {
    let keys = |v: &[AttrValue]| -> BTreeSet<String> {
        v.iter()
            .map(|x| match x.as_text() {
                Some(t) => dn_key(t),
                None => String::from_utf8_lossy(x.as_bytes()).to_lowercase(),
            })
            .collect()
    };
    keys(a) == keys(b)
}

/// The change that makes a group's `member` go from `now` back to `previous` exactly (undo):
/// the values `previous` lacks deleted, those it has added — single values in chunks, never a
/// replace of the list.
pub fn restore_changes(now: &[AttrValue], previous: &[AttrValue]) -> Vec<AttrChange> {
    let texts = |v: &[AttrValue]| -> Vec<String> {
        v.iter()
            .filter_map(AttrValue::as_text)
            .map(str::to_string)
            .collect()
    };
    let (now, previous) = (texts(now), texts(previous));
    let now_keys: BTreeSet<String> = now.iter().map(|d| dn_key(d)).collect();
    let previous_keys: BTreeSet<String> = previous.iter().map(|d| dn_key(d)).collect();
    MembershipPlan {
        delete: now
            .iter()
            .filter(|d| !previous_keys.contains(&dn_key(d)))
            .cloned()
            .collect(),
        add: previous
            .iter()
            .filter(|d| !now_keys.contains(&dn_key(d)))
            .cloned()
            .collect(),
        ..MembershipPlan::default()
    }
    .changes()
}

/// A `member` change for people to read: the members removed and added (at most ten of each
/// named), not two lists of thousands of DNs.
pub fn describe_member_change(old: &[AttrValue], new: &[AttrValue]) -> String {
    let changes = restore_changes(old, new);
    let of = |op: ModOp| -> Vec<String> {
        changes
            .iter()
            .filter(|c| c.op == op)
            .flat_map(|c| c.values.iter().filter_map(AttrValue::as_text))
            .map(str::to_string)
            .collect()
    };
    let list = |sign: &str, dns: Vec<String>| -> Option<String> {
        if dns.is_empty() {
            return None;
        }
        let shown: Vec<&str> = dns.iter().take(10).map(String::as_str).collect();
        let more = dns.len().saturating_sub(shown.len());
        let tail = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        Some(format!("{sign}{} ({}{tail})", dns.len(), shown.join("; ")))
    };
    let parts: Vec<String> = [list("−", of(ModOp::Delete)), list("+", of(ModOp::Add))]
        .into_iter()
        .flatten()
        .collect();
    format!(
        "{} → {} members: {}",
        old.len(),
        new.len(),
        if parts.is_empty() {
            "the same".to_string()
        } else {
            parts.join(", ")
        }
    )
}

#[cfg(test)]
#[path = "membership_tests.rs"]
mod tests;
