//! Distribution groups, mail-enabled security groups and mail contacts as read from Exchange
//! Online (issue 17), in the core's terms; the wire shape lives in the Exchange Online
//! adapter. What each property maps to in AD: `docs/groups-and-contacts.md`.

use crate::mailbox::{Mailbox, RecipientKind};

/// `RecipientTypeDetails` of the groups the writeback reads: distribution groups and
/// mail-enabled security groups (Get-DistributionGroup also lists room lists, not ours).
pub const GROUP_TYPES: [&str; 2] = [
    "MailUniversalDistributionGroup",
    "MailUniversalSecurityGroup",
];

/// `RecipientTypeDetails` of a mail contact.
pub const CONTACT_TYPE: &str = "MailContact";

/// A group or mail contact with every property the writeback reads. Empty strings from the
/// service are `None` here, as for a [`Mailbox`](crate::mailbox::Mailbox).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MailRecipient {
    pub external_directory_object_id: Option<String>,
    pub primary_smtp_address: Option<String>,
    pub windows_email_address: Option<String>,
    pub display_name: Option<String>,
    pub alias: Option<String>,
    /// `SMTP:`/`smtp:`/`X500:` … values, as the service lists them.
    pub email_addresses: Vec<String>,
    /// CustomAttribute1..15 (index 0 is CustomAttribute1).
    pub custom_attributes: [Option<String>; 15],
    /// ExtensionCustomAttribute1..5 (index 0 is ExtensionCustomAttribute1).
    pub extension_custom_attributes: [Vec<String>; 5],
    pub hidden_from_address_lists_enabled: bool,
    pub recipient_type_details: String,
    pub is_dir_synced: bool,
    /// Only when the record carries it: no public capture shows `IsExchangeCloudManaged` on a
    /// group or contact (`docs/groups-and-contacts.md`), so its absence is kept as such and
    /// never read as `false` or `true`.
    pub is_exchange_cloud_managed: Option<bool>,
    /// A contact's `ExternalEmailAddress` (`SMTP:x@y`): where its mail goes.
    pub external_email_address: Option<String>,
    pub when_changed_utc: Option<jiff::Timestamp>,
}

impl MailRecipient {
    /// The record the engine evaluates: a [`Mailbox`] of kind group or contact (by its
    /// `RecipientTypeDetails`; anything else — a room list — is kept as a group record that no
    /// profile's scope admits). No ImmutableId or UserPrincipalName: Exchange Online gives
    /// groups and contacts neither. An absent `IsExchangeCloudManaged` stays visible as
    /// [`Mailbox::cloud_managed_unreported`].
    pub fn into_record(self) -> Mailbox {
        let kind = if self.is_contact() {
            RecipientKind::Contact
        } else {
            RecipientKind::Group
        };
        Mailbox {
            kind,
            external_directory_object_id: self.external_directory_object_id,
            primary_smtp_address: self.primary_smtp_address,
            windows_email_address: self.windows_email_address,
            display_name: self.display_name,
            alias: self.alias,
            email_addresses: self.email_addresses,
            custom_attributes: self.custom_attributes,
            extension_custom_attributes: self.extension_custom_attributes,
            hidden_from_address_lists_enabled: self.hidden_from_address_lists_enabled,
            recipient_type_details: self.recipient_type_details,
            is_dir_synced: self.is_dir_synced,
            is_exchange_cloud_managed: self.is_exchange_cloud_managed.unwrap_or(false),
            cloud_managed_unreported: self.is_exchange_cloud_managed.is_none(),
            external_email_address: self.external_email_address,
            when_changed_utc: self.when_changed_utc,
            ..Mailbox::default()
        }
    }

    /// A distribution group or mail-enabled security group.
    pub fn is_group(&self) -> bool {
        GROUP_TYPES
            .iter()
            .any(|t| t.eq_ignore_ascii_case(&self.recipient_type_details))
    }

    /// A mail contact.
    pub fn is_contact(&self) -> bool {
        self.recipient_type_details
            .eq_ignore_ascii_case(CONTACT_TYPE)
    }
}

/// One member of a group as Get-DistributionGroupMember lists it: a recipient (mailbox,
/// contact or group — nested groups are not expanded).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupMember {
    pub external_directory_object_id: Option<String>,
    pub primary_smtp_address: Option<String>,
    pub alias: Option<String>,
    pub display_name: Option<String>,
    pub recipient_type_details: String,
}

impl GroupMember {
    /// A nested group.
    pub fn is_group(&self) -> bool {
        GROUP_TYPES
            .iter()
            .any(|t| t.eq_ignore_ascii_case(&self.recipient_type_details))
    }
}
