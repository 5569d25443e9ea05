//! The writeback profiles of PRODUCT.md §3, as data.
//!
//! - [`Profile::CloudManaged`] (default): writeback for cloud-managed remote mailboxes — the
//!   custom attributes, extension custom attributes, proxyAddresses (policy of §6), mail, the
//!   recipient type values (remote conventions, [`RECIPIENT_TYPE_VALUES`]) and
//!   msExchHideFromAddressLists.
//! - [`Profile::Hybrid`]: classic Exchange hybrid writeback. Its transforms are expressions in
//!   the provisioning expression language, so users can read and copy them.
//! - [`Profile::CloudManagedGroups`] and [`Profile::CloudManagedContacts`] (issue 17, off by
//!   default): cloud-managed distribution groups, mail-enabled security groups and mail
//!   contacts — their addresses, alias, custom attributes and hide flag, and a contact's
//!   targetAddress (`docs/groups-and-contacts.md`). Each profile handles one
//!   [`RecipientKind`]: a mailbox profile never touches a group or contact, nor these a
//!   mailbox.
//!
//! [`Profile::mappings`] builds the table; [`crate::settings`] combines the enabled profiles
//! with custom mappings and switches into the effective table.

use std::fmt;

use exo_writeback_expr::{Expr, ParseError};

use crate::mailbox::RecipientKind;
use crate::mapping::{Condition, Mapping, MappingKind, MappingOrigin, ValuePolicy, WhenEmpty};

/// A writeback profile.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    CloudManaged,
    Hybrid,
    CloudManagedGroups,
    CloudManagedContacts,
}

/// RecipientTypeDetails → (msExchRecipientTypeDetails, msExchRecipientDisplayType), the values
/// a remote mailbox carries on-premises (PRODUCT.md §3a).
pub const RECIPIENT_TYPE_VALUES: [(&str, i64, i64); 4] = [
    ("UserMailbox", 2147483648, -2147483642),
    ("RoomMailbox", 8589934592, -2147481850),
    ("EquipmentMailbox", 17179869184, -2147481594),
    ("SharedMailbox", 34359738368, -2147483642),
];

/// The hybrid profile's expressions, as shown to users.
pub mod hybrid_expressions {
    /// msDS-ExternalDirectoryObjectId.
    pub const EXTERNAL_DIRECTORY_OBJECT_ID: &str = r#"IIF(IsNullOrEmpty([ExternalDirectoryObjectId]), IgnoreThisFlow, "User_" & [ExternalDirectoryObjectId])"#;
    /// proxyAddresses: the x500 address added.
    pub const X500_FROM_LEGACY_EXCHANGE_DN: &str =
        r#"IIF(IsNullOrEmpty([LegacyExchangeDN]), IgnoreThisFlow, "x500:" & [LegacyExchangeDN])"#;
    /// msExchArchiveStatus.
    pub const ARCHIVE_STATUS: &str =
        r#"Switch([ArchiveStatus], IgnoreThisFlow, "None", "0", "Active", "1")"#;
}

/// A built-in mapping whose expression does not parse (a bug, or the expression language
/// missing a function).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "built-in mapping of profile {profile} to {target}: expression `{expression}` does not parse at offset {offset}: {message}"
)]
pub struct BuiltinExpressionError {
    pub profile: Profile,
    pub target: String,
    pub expression: String,
    pub message: String,
    pub offset: usize,
}

impl Profile {
    pub const ALL: [Profile; 4] = [
        Profile::CloudManaged,
        Profile::Hybrid,
        Profile::CloudManagedGroups,
        Profile::CloudManagedContacts,
    ];

    /// The name used in configuration and logs.
    pub fn name(self) -> &'static str {
        match self {
            Profile::CloudManaged => "cloud-managed",
            Profile::Hybrid => "hybrid",
            Profile::CloudManagedGroups => "cloud-managed-groups",
            Profile::CloudManagedContacts => "cloud-managed-contacts",
        }
    }

    /// The kind of recipient the profile writes back; records of another kind are never in
    /// its scope.
    pub fn kind(self) -> RecipientKind {
        match self {
            Profile::CloudManaged | Profile::Hybrid => RecipientKind::Mailbox,
            Profile::CloudManagedGroups => RecipientKind::Group,
            Profile::CloudManagedContacts => RecipientKind::Contact,
        }
    }

    /// Look a profile up by name (case-insensitive).
    pub fn from_name(name: &str) -> Option<Profile> {
        Profile::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name))
    }

    /// The profile's mapping table, in the order of PRODUCT.md §3.
    pub fn mappings(self) -> Result<Vec<Mapping>, BuiltinExpressionError> {
        let origin = MappingOrigin::Profile(self);
        let row = |target: &str, kind: MappingKind, multi_valued: bool| Mapping {
            target: target.to_string(),
            kind,
            multi_valued,
            when_empty: WhenEmpty::Clear,
            policy: ValuePolicy::Authoritative,
            condition: Condition::Always,
            origin,
        };
        let direct = |p: &str| MappingKind::Direct(p.to_string());
        let expr = |target: &str, text: &str| -> Result<MappingKind, BuiltinExpressionError> {
            Expr::parse(text).map(MappingKind::Expression).map_err(
                |ParseError { message, offset }| BuiltinExpressionError {
                    profile: self,
                    target: target.to_string(),
                    expression: text.to_string(),
                    message,
                    offset,
                },
            )
        };
        let mut rows = Vec::new();
        match self {
            Profile::CloudManaged => {
                rows.extend(custom_attribute_rows(row));
                rows.push(Mapping {
                    policy: ValuePolicy::ProxyAddresses,
                    ..row("proxyAddresses", direct("EmailAddresses"), true)
                });
                rows.push(row("mail", direct("WindowsEmailAddress"), false));
                let table = |column: fn(&(&str, i64, i64)) -> i64| {
                    RECIPIENT_TYPE_VALUES
                        .iter()
                        .map(|r| (r.0.to_string(), column(r).to_string()))
                        .collect()
                };
                rows.push(row(
                    "msExchRecipientTypeDetails",
                    MappingKind::Lookup {
                        source: "RecipientTypeDetails".into(),
                        table: table(|r| r.1),
                    },
                    false,
                ));
                rows.push(row(
                    "msExchRecipientDisplayType",
                    MappingKind::Lookup {
                        source: "RecipientTypeDetails".into(),
                        table: table(|r| r.2),
                    },
                    false,
                ));
                rows.push(row(
                    "msExchHideFromAddressLists",
                    direct("HiddenFromAddressListsEnabled"),
                    false,
                ));
                rows.push(Mapping {
                    policy: ValuePolicy::RemoteRecipientTypeBits,
                    when_empty: WhenEmpty::LeaveAlone,
                    ..row(
                        "msExchRemoteRecipientType",
                        MappingKind::Lookup {
                            source: "RecipientTypeDetails".into(),
                            table: crate::recipient_type::REMOTE_TYPE_BITS
                                .iter()
                                .map(|(t, bits)| (t.to_string(), bits.to_string()))
                                .collect(),
                        },
                        false,
                    )
                });
            }
            Profile::CloudManagedGroups | Profile::CloudManagedContacts => {
                rows.extend(crate::recipient_profile::rows(self, row));
            }
            Profile::Hybrid => {
                use hybrid_expressions::*;
                let t = "msDS-ExternalDirectoryObjectId";
                rows.push(row(t, expr(t, EXTERNAL_DIRECTORY_OBJECT_ID)?, false));
                let t = "proxyAddresses";
                rows.push(Mapping {
                    policy: ValuePolicy::AddIfMissing,
                    ..row(t, expr(t, X500_FROM_LEGACY_EXCHANGE_DN)?, true)
                });
                let t = "msExchArchiveStatus";
                rows.push(row(t, expr(t, ARCHIVE_STATUS)?, false));
                for (target, source) in [
                    ("msExchBlockedSendersHash", "BlockedSendersHash"),
                    ("msExchSafeSendersHash", "SafeSendersHash"),
                    ("msExchSafeRecipientsHash", "SafeRecipientsHash"),
                ] {
                    // No hash known (None) means no source, not "cleared": leave AD alone.
                    rows.push(Mapping {
                        condition: Condition::MailboxInExchangeOnline,
                        when_empty: WhenEmpty::LeaveAlone,
                        ..row(target, direct(source), false)
                    });
                }
                // Exchange Online offers no way to read the UC voice-mail settings (Unified
                // Messaging was retired; see crates/exo/PROTOCOL.md), so the source is always
                // empty: an empty value must leave AD alone rather than clear what
                // on-premises Exchange wrote.
                rows.push(Mapping {
                    when_empty: WhenEmpty::LeaveAlone,
                    ..row(
                        "msExchUCVoiceMailSettings",
                        direct("UCVoiceMailSettings"),
                        true,
                    )
                });
                rows.push(Mapping {
                    when_empty: WhenEmpty::LeaveAlone,
                    ..row("msExchUserHoldPolicies", direct("InPlaceHolds"), true)
                });
            }
        }
        Ok(rows)
    }

    /// The AD attributes the profile writes (the lists of [`crate::profile_attrs`]).
    pub fn target_attributes(self) -> &'static [&'static str] {
        match self {
            Profile::CloudManaged => crate::profile_attrs::CLOUD_MANAGED_ATTRIBUTES,
            Profile::Hybrid => crate::profile_attrs::HYBRID_ATTRIBUTES,
            Profile::CloudManagedGroups => crate::profile_attrs::CLOUD_MANAGED_GROUP_ATTRIBUTES,
            Profile::CloudManagedContacts => crate::profile_attrs::CLOUD_MANAGED_CONTACT_ATTRIBUTES,
        }
    }
}

/// extensionAttribute1–15 from CustomAttribute1–15 and msExchExtensionCustomAttribute1–5
/// (multi-valued) from ExtensionCustomAttribute1–5, built with a profile's `row` constructor
/// (target, kind, multi-valued): the first rows of every profile but `hybrid`.
pub(crate) fn custom_attribute_rows(
    row: impl Fn(&str, MappingKind, bool) -> Mapping,
) -> Vec<Mapping> {
    let direct = |p: String| MappingKind::Direct(p);
    (1..=15)
        .map(|i| {
            row(
                &format!("extensionAttribute{i}"),
                direct(format!("CustomAttribute{i}")),
                false,
            )
        })
        .chain((1..=5).map(|i| {
            row(
                &format!("msExchExtensionCustomAttribute{i}"),
                direct(format!("ExtensionCustomAttribute{i}")),
                true,
            )
        }))
        .collect()
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloud_managed_has_the_24_ga_rows_plus_hide_and_the_remote_type() {
        let rows = Profile::CloudManaged.mappings().expect("no expressions");
        assert_eq!(rows.len(), 26);
        let remote = &rows[25];
        assert_eq!(remote.target, "msExchRemoteRecipientType");
        assert_eq!(remote.policy, ValuePolicy::RemoteRecipientTypeBits);
        assert_eq!(remote.when_empty, WhenEmpty::LeaveAlone);
        let targets: Vec<&str> = rows.iter().map(|m| m.target.as_str()).collect();
        assert_eq!(targets, Profile::CloudManaged.target_attributes());
        let ea11 = &rows[10];
        assert_eq!(ea11.target, "extensionAttribute11");
        assert_eq!(ea11.kind, MappingKind::Direct("CustomAttribute11".into()));
        assert!(rows[15].multi_valued);
        assert_eq!(rows[20].policy, ValuePolicy::ProxyAddresses);
    }

    #[test]
    fn profile_names_round_trip() {
        for p in Profile::ALL {
            assert_eq!(Profile::from_name(p.name()), Some(p));
        }
        assert_eq!(
            Profile::from_name("Cloud-Managed"),
            Some(Profile::CloudManaged)
        );
        assert_eq!(Profile::from_name("classic"), None);
    }
}
