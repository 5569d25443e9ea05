//! The recipient type of a remote mailbox on-premises, kept consistent when Exchange Online
//! changes it (User ↔ Shared ↔ Room ↔ Equipment): `msExchRecipientTypeDetails` and
//! `msExchRecipientDisplayType` (the profile's lookup rows, [`crate::profile::RECIPIENT_TYPE_VALUES`])
//! and `msExchRemoteRecipientType`, whose type bits follow while its other bits stay; and the
//! check of `targetAddress`, which is never written (mail routing).
//!
//! `msExchRemoteRecipientType` is the flags enumeration `RemoteRecipientType` of Exchange
//! (Microsoft Learn, Exchange Server 2013 API reference, "RemoteRecipientType enumeration":
//! None, ProvisionMailbox, ProvisionArchive, Migrated, DeprovisionMailbox, DeprovisionArchive,
//! RoomMailbox, EquipmentMailbox, SharedMailbox, TeamMailbox). The bit values are the ones the
//! attribute holds: ProvisionMailbox 0x1, ProvisionArchive 0x2, Migrated 0x4,
//! DeprovisionMailbox 0x8, DeprovisionArchive 0x10, RoomMailbox 0x20, EquipmentMailbox 0x40,
//! SharedMailbox = RoomMailbox | EquipmentMailbox 0x60 (the S.DS.P module's
//! msExchRemoteRecipientType transform; Microsoft's "msExchRemoteRecipientType" TechNet post of
//! 2015-03-26: 1 provisioned, 3 provisioned with archive, 4 migrated, 6 migrated with archive,
//! 20 migrated with a deprovisioned archive, 33/36 provisioned/migrated room, 65/68
//! provisioned/migrated equipment, 100 migrated shared). `Set-RemoteMailbox -Type
//! Regular|Room|Equipment|Shared` (Microsoft Learn) changes the type of a remote mailbox; "changing
//! the mailbox type of a migrated mailbox in a hybrid environment needs to be done on both sides"
//! — which is this module's job for the on-premises side. Sources in docs/writeback-targets.md.

use crate::directory::{AttrValue, DirectoryObject};
use crate::mailbox::Mailbox;
use crate::outcome::{OutcomeCode, OutcomeDetail};
use crate::plan::PropertyChange;
use crate::profile::RECIPIENT_TYPE_VALUES;

/// The type bits of `msExchRemoteRecipientType` (RoomMailbox 0x20 | EquipmentMailbox 0x40).
pub const TYPE_MASK: i64 = 0x60;

/// RecipientTypeDetails → the type bits of `msExchRemoteRecipientType`.
pub const REMOTE_TYPE_BITS: [(&str, i64); 4] = [
    ("UserMailbox", 0),
    ("RoomMailbox", 0x20),
    ("EquipmentMailbox", 0x40),
    ("SharedMailbox", 0x60),
];

/// The `msExchRemoteRecipientType` a remote mailbox of type `details` carries, from the value it
/// has: the type bits replaced, every other bit (provisioned or migrated, archive) kept. `None`
/// (leave the attribute alone) when it has no value — whether the mailbox was provisioned
/// (New-RemoteMailbox, 0x1) or migrated (0x4) is not the agent's to invent — or a value that is
/// not a number, or an unknown type.
pub fn remote_recipient_type(current: Option<i64>, details: &str) -> Option<i64> {
    let bits = REMOTE_TYPE_BITS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(details))?
        .1;
    current.map(|c| (c & !TYPE_MASK) | bits)
}

/// [`remote_recipient_type`] over the values AD holds (a Large-integer attribute: decimal
/// text): the values to hold, the same ones when there is nothing to change or invent.
pub fn remote_recipient_type_values(held: &[AttrValue], details: &str) -> Vec<AttrValue> {
    let current = match held {
        [v] => v.as_text().and_then(|t| t.trim().parse::<i64>().ok()),
        _ => None,
    };
    match remote_recipient_type(current, details) {
        Some(value) => vec![AttrValue::Text(value.to_string())],
        None => held.to_vec(),
    }
}

/// The RecipientTypeDetails an `msExchRecipientTypeDetails` value of a remote mailbox stands
/// for (`UserMailbox` for 2147483648, …).
pub fn details_of_remote_value(value: i64) -> Option<&'static str> {
    RECIPIENT_TYPE_VALUES
        .iter()
        .find(|(_, details, _)| *details == value)
        .map(|(name, _, _)| *name)
}

/// The routing domain suffix of a remote mailbox's `targetAddress`.
pub const ROUTING_SUFFIX: &str = ".mail.onmicrosoft.com";

/// Checks (never writes) the `targetAddress` of a remote mailbox whose type changes: it must be
/// `SMTP:<local>@<tenant>.mail.onmicrosoft.com` and one of the mailbox's own addresses in
/// Exchange Online (the remote routing address Exchange gives the mailbox). `None` when it is;
/// otherwise the warning to report.
pub fn check_target_address(current: &[AttrValue], mailbox: &Mailbox) -> Option<OutcomeDetail> {
    let routing: Vec<&str> = mailbox
        .email_addresses
        .iter()
        .filter_map(|a| a.split_once(':'))
        .filter(|(prefix, address)| {
            prefix.eq_ignore_ascii_case("smtp")
                && address.to_ascii_lowercase().ends_with(ROUTING_SUFFIX)
        })
        .map(|(_, address)| address)
        .collect();
    let expected = if routing.is_empty() {
        format!(
            "SMTP:<alias>@<tenant>{ROUTING_SUFFIX} (the mailbox lists no address of that domain)"
        )
    } else {
        routing
            .iter()
            .map(|a| format!("SMTP:{a}"))
            .collect::<Vec<_>>()
            .join(" or ")
    };
    let problem = match current {
        [] => "has no targetAddress".to_string(),
        [AttrValue::Text(t)] => {
            let ok = t.split_once(':').is_some_and(|(prefix, address)| {
                prefix == "SMTP"
                    && address.to_ascii_lowercase().ends_with(ROUTING_SUFFIX)
                    && routing.iter().any(|r| r.eq_ignore_ascii_case(address))
            });
            if ok {
                return None;
            }
            format!("has targetAddress {t:?}")
        }
        other => format!("has {} targetAddress values", other.len()),
    };
    Some(OutcomeDetail::new(
        OutcomeCode::TargetAddressUnexpected,
        format!(
            "the recipient type changed, and the object {problem}; a remote mailbox routes to \
             {expected}. targetAddress was not written (the agent never writes mail routing)"
        ),
    ))
}

/// When a plan changes a remote mailbox's recipient type (`msExchRecipientTypeDetails` from one
/// remote type to another), the check of its `targetAddress` ([`check_target_address`]).
pub fn type_change_warning(
    changes: &[PropertyChange],
    current: &DirectoryObject,
    mailbox: &Mailbox,
) -> Option<OutcomeDetail> {
    let change = changes.iter().find(|c| {
        c.attribute
            .eq_ignore_ascii_case("msExchRecipientTypeDetails")
    })?;
    let remote = |values: &[AttrValue]| match values {
        [v] => v
            .as_text()
            .and_then(|t| t.trim().parse::<i64>().ok())
            .and_then(details_of_remote_value),
        _ => None,
    };
    match (remote(&change.old), remote(&change.new)) {
        (Some(from), Some(to)) if from != to => {
            check_target_address(current.attributes.get("targetAddress"), mailbox)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every transition between the four types, from each origin the attribute may record:
    /// the type bits follow, the rest stays; nothing is invented for an object without it.
    #[test]
    fn every_type_transition_keeps_the_origin_and_archive_bits() {
        // (origin bits as held before, description) — from Microsoft's table of values.
        let origins = [
            (0x1, "provisioned"),
            (0x3, "provisioned, archive"),
            (0x4, "migrated"),
            (0x6, "migrated, archive"),
            (0x14, "migrated, deprovisioned archive"),
        ];
        let types = [
            "UserMailbox",
            "RoomMailbox",
            "EquipmentMailbox",
            "SharedMailbox",
        ];
        // The values of Microsoft's table for the pairs it lists.
        let known = [
            (0x1, "UserMailbox", 1),
            (0x3, "UserMailbox", 3),
            (0x4, "UserMailbox", 4),
            (0x6, "UserMailbox", 6),
            (0x14, "UserMailbox", 20),
            (0x1, "RoomMailbox", 33),
            (0x4, "RoomMailbox", 36),
            (0x1, "EquipmentMailbox", 65),
            (0x4, "EquipmentMailbox", 68),
            (0x4, "SharedMailbox", 100),
            (0x6, "SharedMailbox", 102),
        ];
        for (origin, what) in origins {
            for from in types {
                let from_bits = REMOTE_TYPE_BITS
                    .iter()
                    .find(|t| t.0 == from)
                    .expect("type")
                    .1;
                let held = origin | from_bits;
                for to in types {
                    let got = remote_recipient_type(Some(held), to).expect("a value");
                    let to_bits = REMOTE_TYPE_BITS.iter().find(|t| t.0 == to).expect("type").1;
                    assert_eq!(got & TYPE_MASK, to_bits, "{what}: {from} → {to}");
                    assert_eq!(got & !TYPE_MASK, origin, "{what}: {from} → {to}");
                    if let Some(&(_, _, want)) =
                        known.iter().find(|(o, t, _)| *o == origin && *t == to)
                    {
                        assert_eq!(got, want, "{what}: {from} → {to}");
                    }
                }
                assert_eq!(remote_recipient_type(None, from), None, "never invented");
            }
        }
        assert_eq!(remote_recipient_type(Some(4), "TeamMailbox"), None);
        // Case of the cloud's text does not matter; other high bits are kept.
        assert_eq!(
            remote_recipient_type(Some(0x84), "sharedmailbox"),
            Some(0xe4)
        );
    }

    #[test]
    fn remote_type_values_name_their_type() {
        assert_eq!(details_of_remote_value(2147483648), Some("UserMailbox"));
        assert_eq!(details_of_remote_value(34359738368), Some("SharedMailbox"));
        assert_eq!(details_of_remote_value(1), None, "an on-premises mailbox");
    }

    #[test]
    fn the_target_address_is_checked_never_invented() {
        let mailbox = Mailbox {
            email_addresses: vec![
                "SMTP:ann@contoso.com".into(),
                "smtp:ann@contoso.mail.onmicrosoft.com".into(),
            ],
            ..Mailbox::default()
        };
        let t = |s: &str| vec![AttrValue::Text(s.into())];
        assert_eq!(
            check_target_address(&t("SMTP:ann@contoso.mail.onmicrosoft.com"), &mailbox),
            None
        );
        assert_eq!(
            check_target_address(&t("SMTP:ANN@Contoso.Mail.OnMicrosoft.com"), &mailbox),
            None,
            "addresses compare case-insensitively"
        );
        for (held, needle) in [
            (vec![], "has no targetAddress"),
            (
                t("SMTP:ann@contoso.com"),
                "has targetAddress \"SMTP:ann@contoso.com\"",
            ),
            (
                t("smtp:ann@contoso.mail.onmicrosoft.com"),
                "has targetAddress \"smtp:ann@contoso.mail.onmicrosoft.com\"",
            ),
            (
                t("SMTP:bob@contoso.mail.onmicrosoft.com"),
                "has targetAddress \"SMTP:bob@contoso.mail.onmicrosoft.com\"",
            ),
            (
                vec![AttrValue::Text("a".into()), AttrValue::Text("b".into())],
                "has 2 targetAddress values",
            ),
        ] {
            let w = check_target_address(&held, &mailbox).expect("a warning");
            assert_eq!(w.code, OutcomeCode::TargetAddressUnexpected);
            assert!(w.reason.contains(needle), "{needle:?} in {}", w.reason);
            assert!(
                w.reason
                    .contains("routes to SMTP:ann@contoso.mail.onmicrosoft.com")
                    && w.reason.contains("was not written"),
                "{}",
                w.reason
            );
        }
        let no_routing = Mailbox {
            email_addresses: vec!["SMTP:ann@contoso.com".into()],
            ..Mailbox::default()
        };
        let w = check_target_address(&[], &no_routing).expect("a warning");
        assert!(
            w.reason.contains("lists no address of that domain"),
            "{}",
            w.reason
        );
    }
}
