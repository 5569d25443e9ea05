//! The emulator's distribution groups, mail-enabled security groups and mail contacts
//! (issue 17); their wire rendering is in `recipient/render.rs`.
//!
//! No real capture of a Get-DistributionGroup, Get-MailContact or Get-DistributionGroupMember
//! record is public (`docs/groups-and-contacts.md`): the records are **modelled** from the
//! properties Microsoft documents for the cmdlets and the common recipient properties of the
//! Get-Mailbox capture (A1), with A1's annotations. A [`SimRecipient`] keeps what the
//! writeback reads; a group's members are the Guids of other recipients of the emulator
//! (mailboxes, contacts, groups), kept in Guid order so member pages are range scans.

use std::collections::BTreeSet;

use jiff::Timestamp;
use uuid::Uuid;

use crate::mailbox::{
    custom_attribute, extension_custom_attribute, primary_smtp_address, set_custom_attribute,
    set_extension_custom_attribute,
};
use crate::opath::{Prop, Subject};

mod render;

pub(crate) use render::{Member, member_property};
pub use render::{contact_property, group_property};

/// `RecipientTypeDetails` values of the groups Get-DistributionGroup returns (the cmdlet's
/// documented `-RecipientTypeDetails` values). The emulator holds the first two; room lists
/// and non-universal groups are valid values that match nothing.
pub const GROUP_TYPE_DETAILS: &[&str] = &[
    "MailUniversalDistributionGroup",
    "MailUniversalSecurityGroup",
    "MailNonUniversalGroup",
    "RoomList",
];

/// `RecipientTypeDetails` values Get-MailContact documents; the emulator holds `MailContact`.
pub const CONTACT_TYPE_DETAILS: &[&str] = &["MailContact", "MailForestContact"];

/// What makes a group a group and a contact a contact.
#[derive(Debug, Clone, PartialEq)]
pub enum RecipientDetails {
    /// A mail-enabled universal group; `security` for a mail-enabled security group.
    Group {
        security: bool,
        /// Guids of the member recipients (mailboxes, contacts, groups), nested groups
        /// not expanded.
        members: BTreeSet<Uuid>,
    },
    /// A mail contact: `ExternalEmailAddress` (`SMTP:x@y`), where its mail goes.
    Contact { external_email_address: String },
}

/// One group or mail contact of the emulator.
#[derive(Debug, Clone, PartialEq)]
pub struct SimRecipient {
    /// `Guid`: the stable key; paging is ordered by it.
    pub guid: Uuid,
    pub external_directory_object_id: String,
    pub display_name: String,
    pub alias: String,
    pub name: String,
    pub email_addresses: Vec<String>,
    /// CustomAttribute1..15, sparse and sorted (as `SimMailbox`).
    pub custom_attributes: Vec<(u8, String)>,
    /// ExtensionCustomAttribute1..5, sparse and sorted.
    pub extension_custom_attributes: Vec<(u8, Vec<String>)>,
    pub hidden_from_address_lists_enabled: bool,
    pub is_dir_synced: bool,
    pub when_created: Timestamp,
    pub when_changed: Timestamp,
    pub details: RecipientDetails,
}

impl SimRecipient {
    fn new(
        guid: Uuid,
        alias: &str,
        primary_smtp: &str,
        now: Timestamp,
        d: RecipientDetails,
    ) -> Self {
        SimRecipient {
            guid,
            external_directory_object_id: guid.to_string(),
            display_name: alias.to_string(),
            alias: alias.to_string(),
            name: alias.to_string(),
            email_addresses: vec![format!("SMTP:{primary_smtp}")],
            custom_attributes: Vec::new(),
            extension_custom_attributes: Vec::new(),
            hidden_from_address_lists_enabled: false,
            is_dir_synced: false,
            when_created: now,
            when_changed: now,
            details: d,
        }
    }

    /// A distribution group (or, with `security`, a mail-enabled security group) without
    /// members.
    pub fn group(
        guid: Uuid,
        alias: &str,
        primary_smtp: &str,
        security: bool,
        now: Timestamp,
    ) -> Self {
        let d = RecipientDetails::Group {
            security,
            members: BTreeSet::new(),
        };
        Self::new(guid, alias, primary_smtp, now, d)
    }

    /// A mail contact whose mail goes to `external`.
    pub fn contact(guid: Uuid, alias: &str, external: &str, now: Timestamp) -> Self {
        let d = RecipientDetails::Contact {
            external_email_address: format!("SMTP:{external}"),
        };
        Self::new(guid, alias, external, now, d)
    }

    pub fn is_group(&self) -> bool {
        matches!(self.details, RecipientDetails::Group { .. })
    }

    /// `RecipientTypeDetails` (also `RecipientType` for these recipients).
    pub fn type_details(&self) -> &'static str {
        match &self.details {
            RecipientDetails::Group {
                security: false, ..
            } => GROUP_TYPE_DETAILS[0],
            RecipientDetails::Group { security: true, .. } => GROUP_TYPE_DETAILS[1],
            RecipientDetails::Contact { .. } => CONTACT_TYPE_DETAILS[0],
        }
    }

    /// The member Guids of a group (none for a contact).
    pub fn members(&self) -> Option<&BTreeSet<Uuid>> {
        match &self.details {
            RecipientDetails::Group { members, .. } => Some(members),
            RecipientDetails::Contact { .. } => None,
        }
    }

    pub fn primary_smtp_address(&self) -> &str {
        primary_smtp_address(&self.email_addresses)
    }

    /// `Identity`: the Entra object id when there is one, else `Name`.
    pub fn identity(&self) -> &str {
        if self.external_directory_object_id.is_empty() {
            &self.name
        } else {
            &self.external_directory_object_id
        }
    }

    pub fn custom_attribute(&self, n: u8) -> &str {
        custom_attribute(&self.custom_attributes, n)
    }

    pub fn set_custom_attribute(&mut self, n: u8, value: &str) {
        set_custom_attribute(&mut self.custom_attributes, n, value)
    }

    pub fn extension_custom_attribute(&self, n: u8) -> &[String] {
        extension_custom_attribute(&self.extension_custom_attributes, n)
    }

    pub fn set_extension_custom_attribute(&mut self, n: u8, values: Vec<String>) {
        set_extension_custom_attribute(&mut self.extension_custom_attributes, n, values)
    }

    pub fn legacy_exchange_dn(&self) -> String {
        format!(
            "/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn={}-{}",
            self.guid.simple(),
            self.alias
        )
    }

    /// True when `key` identifies this recipient for `-Identity`: its Guid,
    /// ExternalDirectoryObjectId, alias, name, display name or any SMTP address (any case).
    pub fn is_identified_by(&self, key: &str) -> bool {
        let k = key.trim();
        if Uuid::parse_str(k).is_ok_and(|g| g == self.guid) {
            return true;
        }
        let same = |s: &str| !s.is_empty() && s.eq_ignore_ascii_case(k);
        same(&self.external_directory_object_id)
            || same(&self.alias)
            || same(&self.name)
            || same(&self.display_name)
            || self.smtp_addresses().any(same)
    }

    /// The SMTP addresses of EmailAddresses, without their prefix.
    pub fn smtp_addresses(&self) -> impl Iterator<Item = &str> {
        self.email_addresses.iter().filter_map(|a| {
            a.split_once(':')
                .filter(|(p, _)| p.eq_ignore_ascii_case("smtp"))
                .map(|(_, x)| x)
        })
    }
}

impl Subject for SimRecipient {
    fn date(&self, created: bool) -> Timestamp {
        if created {
            self.when_created
        } else {
            self.when_changed
        }
    }
    fn flag(&self, prop: &Prop) -> bool {
        match prop {
            Prop::IsDirSynced => self.is_dir_synced,
            Prop::HiddenFromAddressListsEnabled => self.hidden_from_address_lists_enabled,
            // Not parsed for groups and contacts (opath::Family).
            _ => false,
        }
    }
    fn text(&self, prop: &Prop) -> &str {
        match prop {
            Prop::RecipientTypeDetails => self.type_details(),
            Prop::CustomAttribute(n) => self.custom_attribute(*n),
            Prop::PrimarySmtpAddress => self.primary_smtp_address(),
            Prop::Alias => &self.alias,
            Prop::DisplayName => &self.display_name,
            Prop::ExternalDirectoryObjectId => &self.external_directory_object_id,
            _ => "",
        }
    }
}
