//! The AD attributes each writeback profile of PRODUCT.md §3 writes: the single list used by
//! schema detection (`exo-writeback check`) and by planning.

/// Profile `cloud-managed` (§3a).
pub const CLOUD_MANAGED_ATTRIBUTES: &[&str] = &[
    "extensionAttribute1",
    "extensionAttribute2",
    "extensionAttribute3",
    "extensionAttribute4",
    "extensionAttribute5",
    "extensionAttribute6",
    "extensionAttribute7",
    "extensionAttribute8",
    "extensionAttribute9",
    "extensionAttribute10",
    "extensionAttribute11",
    "extensionAttribute12",
    "extensionAttribute13",
    "extensionAttribute14",
    "extensionAttribute15",
    "msExchExtensionCustomAttribute1",
    "msExchExtensionCustomAttribute2",
    "msExchExtensionCustomAttribute3",
    "msExchExtensionCustomAttribute4",
    "msExchExtensionCustomAttribute5",
    "proxyAddresses",
    "mail",
    "msExchRecipientTypeDetails",
    "msExchRecipientDisplayType",
    "msExchHideFromAddressLists",
    "msExchRemoteRecipientType",
];

/// Profile `hybrid` (§3b).
pub const HYBRID_ATTRIBUTES: &[&str] = &[
    "msDS-ExternalDirectoryObjectId",
    "proxyAddresses",
    "msExchArchiveStatus",
    "msExchBlockedSendersHash",
    "msExchSafeSendersHash",
    "msExchSafeRecipientsHash",
    "msExchUCVoiceMailSettings",
    "msExchUserHoldPolicies",
];

/// `a` then `b`, as one array of `N` names (`N` = their lengths together).
const fn concat<const N: usize>(a: &[&'static str], b: &[&'static str]) -> [&'static str; N] {
    assert!(a.len() + b.len() == N, "N is the length of both lists");
    let mut out = [""; N];
    let mut i = 0;
    while i < a.len() {
        out[i] = a[i];
        i += 1;
    }
    let mut j = 0;
    while j < b.len() {
        out[i + j] = b[j];
        j += 1;
    }
    out
}

/// Profile `cloud-managed-contacts` (issue 17): the custom and extension custom attributes,
/// proxyAddresses and mail of the cloud-managed profile (its first 22), then mailNickname, the
/// hide flag and `targetAddress` from the contact's ExternalEmailAddress — on a contact only,
/// where it is where its mail goes (on a user it is the routing address and never written).
const CONTACT_ATTRIBUTES: [&str; 25] = concat(
    CLOUD_MANAGED_ATTRIBUTES.split_at(22).0,
    &[
        "mailNickname",
        "msExchHideFromAddressLists",
        "targetAddress",
    ],
);
pub const CLOUD_MANAGED_CONTACT_ATTRIBUTES: &[&str] = &CONTACT_ATTRIBUTES;

/// Profile `cloud-managed-groups` (issue 17): a cloud-managed distribution group's or
/// mail-enabled security group's addresses, alias, custom attributes and hide flag
/// (`docs/groups-and-contacts.md`, "Mapping to AD") — the contacts' list without
/// `targetAddress`. Membership is not among them.
pub const CLOUD_MANAGED_GROUP_ATTRIBUTES: &[&str] = CONTACT_ATTRIBUTES.as_slice().split_at(24).0;

/// The writeback profiles with their names as used in the configuration and in reports.
pub const PROFILES: &[(&str, &[&str])] = &[
    ("cloud-managed", CLOUD_MANAGED_ATTRIBUTES),
    ("hybrid", HYBRID_ATTRIBUTES),
];

/// The profiles of groups and mail contacts (issue 17), apart from [`PROFILES`]: they write
/// group and contact objects, whose rights `docs/least-privilege.md` does not grant yet, and
/// add no custom mapping target (their attributes are the cloud-managed profile's or on the
/// never list: `mailNickname`, `targetAddress`).
pub const RECIPIENT_PROFILES: &[(&str, &[&str])] = &[
    ("cloud-managed-groups", CLOUD_MANAGED_GROUP_ATTRIBUTES),
    ("cloud-managed-contacts", CLOUD_MANAGED_CONTACT_ATTRIBUTES),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_have_no_duplicates() {
        for (name, attrs) in PROFILES.iter().chain(RECIPIENT_PROFILES) {
            let mut lower: Vec<String> = attrs.iter().map(|a| a.to_ascii_lowercase()).collect();
            lower.sort();
            let before = lower.len();
            lower.dedup();
            assert_eq!(before, lower.len(), "duplicate attribute in profile {name}");
        }
        assert_eq!(CLOUD_MANAGED_ATTRIBUTES.len(), 26);
        assert_eq!(HYBRID_ATTRIBUTES.len(), 8);
        assert_eq!(CLOUD_MANAGED_GROUP_ATTRIBUTES.len(), 24);
        assert_eq!(
            CLOUD_MANAGED_CONTACT_ATTRIBUTES[..24],
            CLOUD_MANAGED_GROUP_ATTRIBUTES[..]
        );
    }
}
