//! Groups, contacts and group members as records. **Modelled**: no public capture of these
//! cmdlets' records exists (`docs/groups-and-contacts.md`); the property names are those
//! Microsoft documents for the cmdlets (Get-/Set-DistributionGroup, Get-/Set-MailContact,
//! Get-DistributionGroupMember's recipients), the annotations and value forms those of the
//! Get-Mailbox capture A1 (`#Collection(String)` lists, Guids with both annotations, dates
//! with `@data.type` and 7 fractional digits, `CustomAttributeN` `""` when empty).

use std::fmt::Write as _;

use jiff::Timestamp;
use uuid::Uuid;

use super::{RecipientDetails, SimRecipient};
use crate::mailbox::{SimMailbox, format_exchange_date, json_str};

/// The common recipient properties, in the order every record carries them.
const COMMON_HEAD: &[&str] = &[
    "Alias",
    "CustomAttribute1",
    "CustomAttribute2",
    "CustomAttribute3",
    "CustomAttribute4",
    "CustomAttribute5",
    "CustomAttribute6",
    "CustomAttribute7",
    "CustomAttribute8",
    "CustomAttribute9",
    "CustomAttribute10",
    "CustomAttribute11",
    "CustomAttribute12",
    "CustomAttribute13",
    "CustomAttribute14",
    "CustomAttribute15",
    "DisplayName",
    "EmailAddresses",
    "ExtensionCustomAttribute1",
    "ExtensionCustomAttribute2",
    "ExtensionCustomAttribute3",
    "ExtensionCustomAttribute4",
    "ExtensionCustomAttribute5",
    "ExternalDirectoryObjectId",
    "HiddenFromAddressListsEnabled",
    "IsDirSynced",
    "LegacyExchangeDN",
    "PrimarySmtpAddress",
    "RecipientType",
    "RecipientTypeDetails",
    "WindowsEmailAddress",
];

const COMMON_TAIL: &[&str] = &[
    "Identity",
    "Id",
    "Name",
    "DistinguishedName",
    "WhenChanged",
    "WhenCreated",
    "WhenChangedUTC",
    "WhenCreatedUTC",
    "ExchangeObjectId",
    "Guid",
];

/// Get-DistributionGroup's own properties (DistributionGroup in Microsoft's documentation):
/// delivery restrictions and owners are lists of recipient names, empty here.
const GROUP_OWN: &[&str] = &[
    "AcceptMessagesOnlyFrom",
    "AcceptMessagesOnlyFromDLMembers",
    "AcceptMessagesOnlyFromSendersOrMembers",
    "GroupType",
    "ManagedBy",
    "MemberDepartRestriction",
    "MemberJoinRestriction",
    "RejectMessagesFrom",
    "RejectMessagesFromDLMembers",
    "RejectMessagesFromSendersOrMembers",
    "RequireSenderAuthenticationEnabled",
];

/// Get-MailContact's own property: where the contact's mail goes.
const CONTACT_OWN: &[&str] = &["ExternalEmailAddress"];

/// A member as Get-DistributionGroupMember returns it (a recipient, not expanded).
const MEMBER_PROPERTIES: &[&str] = &[
    "Alias",
    "DisplayName",
    "EmailAddresses",
    "ExternalDirectoryObjectId",
    "HiddenFromAddressListsEnabled",
    "PrimarySmtpAddress",
    "RecipientType",
    "RecipientTypeDetails",
    "Identity",
    "Id",
    "Name",
    "ExchangeObjectId",
    "Guid",
    "WhenChangedUTC",
];

fn lookup(lists: &[&[&'static str]], name: &str) -> Option<&'static str> {
    lists
        .iter()
        .flat_map(|l| l.iter())
        .find(|n| n.eq_ignore_ascii_case(name))
        .copied()
}

/// The canonical spelling of a Get-DistributionGroup property, if it has it.
pub fn group_property(name: &str) -> Option<&'static str> {
    lookup(&[COMMON_HEAD, GROUP_OWN, COMMON_TAIL], name)
}

/// The canonical spelling of a Get-MailContact property, if it has it.
pub fn contact_property(name: &str) -> Option<&'static str> {
    lookup(&[COMMON_HEAD, CONTACT_OWN, COMMON_TAIL], name)
}

/// The canonical spelling of a Get-DistributionGroupMember property, if it has it.
pub fn member_property(name: &str) -> Option<&'static str> {
    lookup(&[MEMBER_PROPERTIES], name)
}

fn w_str(out: &mut String, name: &str, v: &str) {
    let _ = write!(out, "\"{name}\":{}", json_str(v));
}

fn w_bool(out: &mut String, name: &str, v: bool) {
    let _ = write!(out, "\"{name}\":{v}");
}

fn w_list(out: &mut String, name: &str, v: &[String]) {
    let list = serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
    let _ = write!(
        out,
        "\"{name}@odata.type\":\"#Collection(String)\",\"{name}\":{list}"
    );
}

fn w_guid(out: &mut String, name: &str, g: Uuid) {
    let _ = write!(
        out,
        "\"{name}@data.type\":\"System.Guid\",\"{name}@odata.type\":\"#Guid\",\"{name}\":\"{g}\""
    );
}

fn w_date(out: &mut String, name: &str, t: Timestamp, utc_z: bool) {
    let _ = write!(
        out,
        "\"{name}@data.type\":\"System.DateTime\",\"{name}\":\"{}\"",
        format_exchange_date(t, utc_z)
    );
}

/// What every record needs from a recipient (a group, a contact or, as a member, a mailbox).
struct View<'a> {
    guid: Uuid,
    alias: &'a str,
    display_name: &'a str,
    name: &'a str,
    edoid: &'a str,
    identity: &'a str,
    addresses: &'a [String],
    primary: &'a str,
    hidden: bool,
    recipient_type: &'static str,
    type_details: &'static str,
    when_changed: Timestamp,
}

impl<'a> View<'a> {
    fn of_recipient(r: &'a SimRecipient) -> Self {
        View {
            guid: r.guid,
            alias: &r.alias,
            display_name: &r.display_name,
            name: &r.name,
            edoid: &r.external_directory_object_id,
            identity: r.identity(),
            addresses: &r.email_addresses,
            primary: r.primary_smtp_address(),
            hidden: r.hidden_from_address_lists_enabled,
            recipient_type: r.type_details(),
            type_details: r.type_details(),
            when_changed: r.when_changed,
        }
    }

    fn of_mailbox(m: &'a SimMailbox) -> Self {
        View {
            guid: m.guid,
            alias: &m.alias,
            display_name: &m.display_name,
            name: &m.name,
            edoid: &m.external_directory_object_id,
            identity: m.identity(),
            addresses: &m.email_addresses,
            primary: m.primary_smtp_address(),
            hidden: m.hidden_from_address_lists_enabled,
            recipient_type: "UserMailbox",
            type_details: m.kind.details(),
            when_changed: m.when_changed,
        }
    }

    /// The properties every record shares; false when `name` is not one of them.
    fn render_common(&self, out: &mut String, name: &str) -> bool {
        match name {
            "Alias" => w_str(out, name, self.alias),
            "DisplayName" => w_str(out, name, self.display_name),
            "EmailAddresses" => w_list(out, name, self.addresses),
            "ExternalDirectoryObjectId" => w_str(out, name, self.edoid),
            "HiddenFromAddressListsEnabled" => w_bool(out, name, self.hidden),
            "PrimarySmtpAddress" | "WindowsEmailAddress" => w_str(out, name, self.primary),
            "RecipientType" => w_str(out, name, self.recipient_type),
            "RecipientTypeDetails" => w_str(out, name, self.type_details),
            "Identity" | "Id" => w_str(out, name, self.identity),
            "Name" => w_str(out, name, self.name),
            "ExchangeObjectId" | "Guid" => w_guid(out, name, self.guid),
            "WhenChangedUTC" => w_date(out, name, self.when_changed, true),
            "WhenChanged" => w_date(out, name, self.when_changed, false),
            _ => return false,
        }
        true
    }
}

fn render_record(
    out: &mut String,
    lists: &[&[&'static str]],
    select: Option<&[&str]>,
    mut one: impl FnMut(&mut String, &'static str),
) {
    out.push('{');
    let mut first = true;
    for name in lists.iter().flat_map(|l| l.iter()) {
        if select.is_some_and(|s| !s.contains(name)) {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        one(out, name);
    }
    out.push('}');
}

impl SimRecipient {
    /// Appends this group or contact as a Get-DistributionGroup / Get-MailContact record.
    /// `select`: property names to keep (canonical spelling), or `None` for all.
    pub fn render_into(&self, out: &mut String, select: Option<&[&str]>, tenant_domain: &str) {
        let own = if self.is_group() {
            GROUP_OWN
        } else {
            CONTACT_OWN
        };
        let view = View::of_recipient(self);
        render_record(
            out,
            &[COMMON_HEAD, own, COMMON_TAIL],
            select,
            |out, name| {
                if view.render_common(out, name) {
                    return;
                }
                if let Some(n) = name.strip_prefix("CustomAttribute") {
                    return w_str(out, name, self.custom_attribute(n.parse().unwrap_or(0)));
                }
                if let Some(n) = name.strip_prefix("ExtensionCustomAttribute") {
                    let n = n.parse().unwrap_or(0);
                    return w_list(out, name, self.extension_custom_attribute(n));
                }
                match (name, &self.details) {
                    ("IsDirSynced", _) => w_bool(out, name, self.is_dir_synced),
                    ("LegacyExchangeDN", _) => w_str(out, name, &self.legacy_exchange_dn()),
                    ("DistinguishedName", _) => w_str(
                        out,
                        name,
                        &format!(
                            "CN={},OU={tenant_domain},OU=Microsoft Exchange Hosted Organizations,DC=EMULATOR,DC=PROD,DC=OUTLOOK,DC=COM",
                            self.name
                        ),
                    ),
                    ("WhenCreated", _) => w_date(out, name, self.when_created, false),
                    ("WhenCreatedUTC", _) => w_date(out, name, self.when_created, true),
                    ("GroupType", RecipientDetails::Group { security, .. }) => w_str(
                        out,
                        name,
                        if *security {
                            "Universal, SecurityEnabled"
                        } else {
                            "Universal"
                        },
                    ),
                    ("MemberDepartRestriction", _) => w_str(out, name, "Closed"),
                    ("MemberJoinRestriction", _) => w_str(out, name, "Closed"),
                    ("RequireSenderAuthenticationEnabled", _) => w_bool(out, name, true),
                    (
                        "ExternalEmailAddress",
                        RecipientDetails::Contact {
                            external_email_address,
                        },
                    ) => w_str(out, name, external_email_address),
                    // AcceptMessagesOnlyFrom…, RejectMessagesFrom…, ManagedBy: not modelled yet.
                    _ => w_list(out, name, &[]),
                }
            },
        );
    }
}

/// A member record of Get-DistributionGroupMember: a group or contact of the emulator, or a
/// mailbox.
pub(crate) enum Member<'a> {
    Recipient(&'a SimRecipient),
    Mailbox(&'a SimMailbox),
}

impl Member<'_> {
    pub(crate) fn guid(&self) -> Uuid {
        match self {
            Member::Recipient(r) => r.guid,
            Member::Mailbox(m) => m.guid,
        }
    }

    pub(crate) fn render_into(&self, out: &mut String, select: Option<&[&str]>) {
        let view = match self {
            Member::Recipient(r) => View::of_recipient(r),
            Member::Mailbox(m) => View::of_mailbox(m),
        };
        render_record(out, &[MEMBER_PROPERTIES], select, |out, name| {
            view.render_common(out, name);
        });
    }
}
