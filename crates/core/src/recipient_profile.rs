//! The profiles of groups and mail contacts (issue 17): `cloud-managed-groups` and
//! `cloud-managed-contacts` — their mapping rows and their scope. What each property maps to
//! and why: `docs/groups-and-contacts.md`. Planning itself is the mailboxes' (`crate::plan`):
//! the same allow-list, deny-list, proxyAddresses policy, duplicate-address guard, threshold,
//! journal and undo. A group's membership (`member`) is not planned here.

use crate::mail_recipient::{CONTACT_TYPE, GROUP_TYPES};
use crate::mailbox::{Mailbox, RecipientKind};
use crate::mapping::{Mapping, MappingKind, ValuePolicy};
use crate::profile::Profile;

/// The rows of a group or contact profile, built with the profile's `row` constructor
/// (target, kind, multi-valued), in the order of
/// [`crate::profile_attrs::CLOUD_MANAGED_CONTACT_ATTRIBUTES`].
pub(crate) fn rows(
    profile: Profile,
    row: impl Fn(&str, MappingKind, bool) -> Mapping,
) -> Vec<Mapping> {
    let direct = |p: &str| MappingKind::Direct(p.to_string());
    let mut rows = crate::profile::custom_attribute_rows(&row);
    rows.push(Mapping {
        policy: ValuePolicy::ProxyAddresses,
        ..row("proxyAddresses", direct("EmailAddresses"), true)
    });
    rows.push(row("mail", direct("PrimarySmtpAddress"), false));
    rows.push(row("mailNickname", direct("Alias"), false));
    rows.push(row(
        "msExchHideFromAddressLists",
        direct("HiddenFromAddressListsEnabled"),
        false,
    ));
    if profile == Profile::CloudManagedContacts {
        rows.push(row("targetAddress", direct("ExternalEmailAddress"), false));
    }
    rows
}

fn bool_text(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

/// The conditions of a group or contact profile's scope that fail for `record` (empty: in
/// scope): the right kind and `RecipientTypeDetails`, directory-synced, and cloud-managed —
/// `IsExchangeCloudManaged` true, or, where the record does not carry it (no public capture
/// shows it on a group or contact), the tenant's explicit opt-in `assume_cloud_managed`.
pub fn scope_failures(
    profile: Profile,
    record: &Mailbox,
    assume_cloud_managed: bool,
) -> Vec<String> {
    let kind = profile.kind();
    if record.kind != kind {
        return vec![format!("a {}, not a {kind}", record.kind)];
    }
    let mut failed = Vec::new();
    if !record.is_dir_synced {
        failed.push(format!("IsDirSynced is {}", bool_text(false)));
    }
    if record.cloud_managed_unreported {
        if !assume_cloud_managed {
            failed.push(
                "IsExchangeCloudManaged is not in the record, and \
                 writeback.assume_cloud_managed_recipients is off (turn it on once the source of \
                 authority of the synced groups and contacts is the cloud)"
                    .to_string(),
            );
        }
    } else if !record.is_exchange_cloud_managed {
        failed.push(format!("IsExchangeCloudManaged is {}", bool_text(false)));
    }
    let types: &[&str] = match kind {
        RecipientKind::Group => &GROUP_TYPES,
        _ => &[CONTACT_TYPE],
    };
    if !types
        .iter()
        .any(|t| t.eq_ignore_ascii_case(&record.recipient_type_details))
    {
        failed.push(format!(
            "RecipientTypeDetails is {:?}, not one of {}",
            record.recipient_type_details,
            types.join(", ")
        ));
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group() -> Mailbox {
        Mailbox {
            kind: RecipientKind::Group,
            recipient_type_details: "MailUniversalDistributionGroup".into(),
            is_dir_synced: true,
            cloud_managed_unreported: true,
            ..Mailbox::default()
        }
    }

    #[test]
    fn a_group_profile_admits_only_synced_cloud_managed_groups() {
        let p = Profile::CloudManagedGroups;
        assert!(scope_failures(p, &group(), true).is_empty());
        let unreported = scope_failures(p, &group(), false);
        assert_eq!(unreported.len(), 1);
        assert!(unreported[0].contains("assume_cloud_managed_recipients"));
        let reported_false = Mailbox {
            cloud_managed_unreported: false,
            ..group()
        };
        assert_eq!(
            scope_failures(p, &reported_false, true),
            vec!["IsExchangeCloudManaged is False".to_string()]
        );
        let room_list = Mailbox {
            recipient_type_details: "RoomList".into(),
            ..group()
        };
        assert!(scope_failures(p, &room_list, true)[0].contains("RoomList"));
        let unsynced = Mailbox {
            is_dir_synced: false,
            ..group()
        };
        assert_eq!(
            scope_failures(p, &unsynced, true),
            vec!["IsDirSynced is False".to_string()]
        );
    }

    #[test]
    fn each_profile_refuses_the_other_kinds() {
        let mailbox = Mailbox {
            recipient_type_details: "UserMailbox".into(),
            is_dir_synced: true,
            is_exchange_cloud_managed: true,
            ..Mailbox::default()
        };
        assert_eq!(
            scope_failures(Profile::CloudManagedGroups, &mailbox, true),
            vec!["a mailbox, not a group".to_string()]
        );
        assert_eq!(
            scope_failures(Profile::CloudManagedContacts, &group(), true),
            vec!["a group, not a contact".to_string()]
        );
    }

    #[test]
    fn the_group_and_contact_profiles_are_off_by_default_and_named_in_configuration() {
        let default = crate::settings::WritebackPlanSettings::default();
        assert!(
            default
                .profiles
                .iter()
                .all(|p| p.kind() == RecipientKind::Mailbox)
        );
        assert!(!default.assume_cloud_managed_recipients);
        for (name, p) in [
            ("cloud-managed-groups", Profile::CloudManagedGroups),
            ("Cloud-Managed-Contacts", Profile::CloudManagedContacts),
        ] {
            assert_eq!(Profile::from_name(name), Some(p));
        }
        // A group with only the mailbox profiles enabled is not in scope, and says why.
        let skip = crate::scope::evaluate_scope(&default, &group()).expect_err("not in scope");
        assert!(
            skip.to_string()
                .contains("no enabled profile writes back a group"),
            "{skip}"
        );
    }

    #[test]
    fn only_the_contact_profile_writes_target_address() {
        let targets = |p: Profile| -> Vec<String> {
            p.mappings()
                .expect("no expressions")
                .into_iter()
                .map(|m| m.target)
                .collect()
        };
        let groups = targets(Profile::CloudManagedGroups);
        let contacts = targets(Profile::CloudManagedContacts);
        assert_eq!(groups, Profile::CloudManagedGroups.target_attributes());
        assert_eq!(contacts, Profile::CloudManagedContacts.target_attributes());
        assert!(!groups.iter().any(|t| t == "targetAddress"));
        assert_eq!(contacts.last().map(String::as_str), Some("targetAddress"));
        assert!(!groups.iter().any(|t| t == "member"));
    }
}
