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

/// The writeback profiles with their names as used in the configuration and in reports.
pub const PROFILES: &[(&str, &[&str])] = &[
    ("cloud-managed", CLOUD_MANAGED_ATTRIBUTES),
    ("hybrid", HYBRID_ATTRIBUTES),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_have_no_duplicates() {
        for (name, attrs) in PROFILES {
            let mut lower: Vec<String> = attrs.iter().map(|a| a.to_ascii_lowercase()).collect();
            lower.sort();
            let before = lower.len();
            lower.dedup();
            assert_eq!(before, lower.len(), "duplicate attribute in profile {name}");
        }
        assert_eq!(CLOUD_MANAGED_ATTRIBUTES.len(), 26);
        assert_eq!(HYBRID_ATTRIBUTES.len(), 8);
    }
}
