//! A mailbox as read from Exchange Online, in the core's terms (the wire shape lives in the
//! Exchange Online adapter).

use exo_writeback_expr::Value;

/// The four recipient types the writeback handles, as Exchange Online names them.
pub const RECIPIENT_TYPES: [&str; 4] = [
    "UserMailbox",
    "RoomMailbox",
    "EquipmentMailbox",
    "SharedMailbox",
];

/// What kind of Exchange Online recipient a record is: the engine evaluates mailboxes, groups
/// and mail contacts as one record type, told apart by this (issue 17). A profile handles one
/// kind only ([`crate::profile::Profile::kind`]), so a mailbox profile never touches a group
/// or a contact, nor a group profile a mailbox.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum RecipientKind {
    /// A mailbox (Get-Mailbox).
    #[default]
    Mailbox,
    /// A distribution group or mail-enabled security group (Get-DistributionGroup).
    Group,
    /// A mail contact (Get-MailContact).
    Contact,
}

impl RecipientKind {
    /// The lower-case name logs and messages use.
    pub fn as_str(self) -> &'static str {
        match self {
            RecipientKind::Mailbox => "mailbox",
            RecipientKind::Group => "group",
            RecipientKind::Contact => "contact",
        }
    }

    /// The `objectClass` its AD object has (a mailbox's is `user`).
    pub fn object_class(self) -> &'static str {
        match self {
            RecipientKind::Mailbox => "user",
            RecipientKind::Group => "group",
            RecipientKind::Contact => "contact",
        }
    }

    /// The default kind (a mailbox) is left out of serialised records.
    pub fn is_mailbox(&self) -> bool {
        *self == RecipientKind::Mailbox
    }
}

impl std::fmt::Display for RecipientKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An ExternalDirectoryObjectId as given by an administrator, without the prefix AD's
/// `msDS-ExternalDirectoryObjectId` carries (`User_` for a mailbox's user, `Group_` for a
/// group).
pub fn bare_cloud_id(id: &str) -> &str {
    id.strip_prefix("User_")
        .or_else(|| id.strip_prefix("Group_"))
        .unwrap_or(id)
}

/// A mailbox with every property the writeback profiles read. Empty strings from the service
/// (`CustomAttribute1: ""`, `ExternalDirectoryObjectId: ""`) are `None` here.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mailbox {
    /// A mailbox, or a group or mail contact read into the same record
    /// ([`crate::mail_recipient::MailRecipient::into_record`]).
    pub kind: RecipientKind,
    pub external_directory_object_id: Option<String>,
    pub immutable_id: Option<String>,
    pub user_principal_name: Option<String>,
    pub primary_smtp_address: Option<String>,
    pub windows_email_address: Option<String>,
    pub display_name: Option<String>,
    pub alias: Option<String>,
    /// `SMTP:`/`smtp:`/`X500:`/`SIP:` … values, as the service lists them.
    pub email_addresses: Vec<String>,
    /// CustomAttribute1..15 (index 0 is CustomAttribute1).
    pub custom_attributes: [Option<String>; 15],
    /// ExtensionCustomAttribute1..5 (index 0 is ExtensionCustomAttribute1).
    pub extension_custom_attributes: [Vec<String>; 5],
    pub hidden_from_address_lists_enabled: bool,
    pub recipient_type_details: String,
    pub is_dir_synced: bool,
    pub is_exchange_cloud_managed: bool,
    /// The record did not carry `IsExchangeCloudManaged` (groups and contacts, where no public
    /// capture shows it): `is_exchange_cloud_managed` is then `false`, not read from the
    /// service, and scope says so.
    pub cloud_managed_unreported: bool,
    /// A mail contact's `ExternalEmailAddress` (`SMTP:x@y`); `None` for other kinds.
    pub external_email_address: Option<String>,
    pub legacy_exchange_dn: Option<String>,
    /// `None`, `Active` … as the service writes it.
    pub archive_status: Option<String>,
    pub in_place_holds: Vec<String>,
    pub when_changed_utc: Option<jiff::Timestamp>,
    /// Hybrid profile sources that Get-Mailbox does not return; filled only where a source
    /// exists (see the Exchange Online adapter's documentation).
    pub safe_senders_hash: Option<Vec<u8>>,
    pub blocked_senders_hash: Option<Vec<u8>>,
    pub safe_recipients_hash: Option<Vec<u8>>,
    pub uc_voice_mail_settings: Vec<String>,
}

fn opt_str(v: &Option<String>) -> Value {
    match v {
        Some(s) => Value::Str(s.clone()),
        None => Value::Null,
    }
}

fn list(v: &[String]) -> Value {
    if v.is_empty() {
        Value::Null
    } else {
        Value::List(v.iter().cloned().map(Value::Str).collect())
    }
}

fn bytes(v: &Option<Vec<u8>>) -> Value {
    match v {
        Some(b) => Value::Bytes(b.clone()),
        None => Value::Null,
    }
}

/// Reads one property of a mailbox as an expression value.
type Getter = fn(&Mailbox) -> Value;

/// The Get-Mailbox properties a mapping or scoping filter may name besides
/// CustomAttribute1–15 and ExtensionCustomAttribute1–5, as Get-Mailbox spells them: the one
/// list [`Mailbox::property`] looks names up in (case-insensitively).
const NAMED_PROPERTIES: [(&str, Getter); 21] = [
    ("ExternalDirectoryObjectId", |m| {
        opt_str(&m.external_directory_object_id)
    }),
    ("ImmutableId", |m| opt_str(&m.immutable_id)),
    ("UserPrincipalName", |m| opt_str(&m.user_principal_name)),
    ("PrimarySmtpAddress", |m| opt_str(&m.primary_smtp_address)),
    ("WindowsEmailAddress", |m| opt_str(&m.windows_email_address)),
    ("DisplayName", |m| opt_str(&m.display_name)),
    ("Alias", |m| opt_str(&m.alias)),
    ("EmailAddresses", |m| list(&m.email_addresses)),
    ("HiddenFromAddressListsEnabled", |m| {
        Value::Bool(m.hidden_from_address_lists_enabled)
    }),
    ("RecipientTypeDetails", |m| {
        Value::Str(m.recipient_type_details.clone())
    }),
    ("IsDirSynced", |m| Value::Bool(m.is_dir_synced)),
    ("IsExchangeCloudManaged", |m| {
        Value::Bool(m.is_exchange_cloud_managed)
    }),
    ("LegacyExchangeDN", |m| opt_str(&m.legacy_exchange_dn)),
    ("ArchiveStatus", |m| opt_str(&m.archive_status)),
    ("InPlaceHolds", |m| list(&m.in_place_holds)),
    ("WhenChangedUTC", |m| match m.when_changed_utc {
        Some(t) => Value::DateTime(t),
        None => Value::Null,
    }),
    ("SafeSendersHash", |m| bytes(&m.safe_senders_hash)),
    ("BlockedSendersHash", |m| bytes(&m.blocked_senders_hash)),
    ("SafeRecipientsHash", |m| bytes(&m.safe_recipients_hash)),
    ("UCVoiceMailSettings", |m| list(&m.uc_voice_mail_settings)),
    ("ExternalEmailAddress", |m| {
        opt_str(&m.external_email_address)
    }),
];

/// Every property name [`Mailbox::property`] knows, as Get-Mailbox spells it (for "did you
/// mean" hints and listings).
pub fn property_names() -> Vec<String> {
    (1..=15)
        .map(|i| format!("CustomAttribute{i}"))
        .chain((1..=5).map(|i| format!("ExtensionCustomAttribute{i}")))
        .chain(NAMED_PROPERTIES.iter().map(|(name, _)| name.to_string()))
        .collect()
}

/// The known property closest to a misspelt one, if any is close.
pub fn suggest_property(name: &str) -> Option<String> {
    let names = property_names();
    exo_writeback_expr::closest(name, names.iter().map(String::as_str)).map(str::to_string)
}

impl Mailbox {
    /// A property by its Get-Mailbox name (case-insensitive), as an expression value.
    /// `None` when no such property is known.
    pub fn property(&self, name: &str) -> Option<Value> {
        let lower = name.to_ascii_lowercase();
        if let Some(n) = lower.strip_prefix("customattribute") {
            let i: usize = n.parse().ok()?;
            return (1..=15)
                .contains(&i)
                .then(|| opt_str(&self.custom_attributes[i - 1]));
        }
        if let Some(n) = lower.strip_prefix("extensioncustomattribute") {
            let i: usize = n.parse().ok()?;
            return (1..=5)
                .contains(&i)
                .then(|| list(&self.extension_custom_attributes[i - 1]));
        }
        NAMED_PROPERTIES
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(name))
            .map(|(_, get)| get(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_are_found_case_insensitively() {
        let mut m = Mailbox::default();
        m.custom_attributes[2] = Some("three".into());
        m.extension_custom_attributes[4] = vec!["a".into(), "b".into()];
        assert_eq!(
            m.property("customAttribute3"),
            Some(Value::Str("three".into()))
        );
        assert_eq!(m.property("CustomAttribute1"), Some(Value::Null));
        assert_eq!(m.property("CustomAttribute16"), None);
        assert_eq!(
            m.property("ExtensionCustomAttribute5"),
            Some(Value::List(vec![
                Value::Str("a".into()),
                Value::Str("b".into())
            ]))
        );
        assert_eq!(m.property("NoSuchProperty"), None);
    }

    #[test]
    fn the_prefixes_of_the_ad_key_are_taken_off() {
        assert_eq!(bare_cloud_id("User_abc"), "abc");
        assert_eq!(bare_cloud_id("Group_abc"), "abc");
        assert_eq!(bare_cloud_id("abc"), "abc");
        assert_eq!(bare_cloud_id("Contact_abc"), "Contact_abc");
    }

    #[test]
    fn every_listed_name_is_a_property() {
        let m = Mailbox::default();
        for name in property_names() {
            assert!(m.property(&name).is_some(), "{name}");
        }
        assert_eq!(property_names().len(), 41);
        assert_eq!(
            suggest_property("CustomAtribute1").as_deref(),
            Some("CustomAttribute1")
        );
        assert_eq!(suggest_property("Shoesize"), None);
    }
}
