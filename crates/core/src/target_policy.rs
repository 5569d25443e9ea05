//! Which AD attributes the writeback may fill from Exchange Online values.
//!
//! Anyone who can edit a mailbox property in Exchange Online (an Exchange administrator, a
//! helpdesk role, an application with Exchange.ManageAsApp) controls every AD attribute that
//! a mapping fills from that property. So:
//!
//! - the profiles' rows write only their own attributes ([`crate::profile_attrs`]), and
//!   never an attribute of the [`DENY_LIST`];
//! - a custom mapping writes only an attribute of [`safe_custom_targets`] — the Exchange
//!   custom and extension attributes, which no Exchange component and no security decision
//!   reads, and the Exchange attributes Microsoft's own writeback fills from Exchange Online —
//!   or an attribute named in `[writeback] allow_extra_targets` (a deliberate, visible opt-in);
//! - an attribute that decides who can log on, as whom, with which rights, or which object a
//!   value belongs to ([`never_written`]) is never a custom mapping target, opted in or not.
//!
//! The lists and their public sources are in `docs/writeback-targets.md`. Pure: names only.

use std::fmt;

/// AD attributes no mapping ever writes, not even a profile row: the identity, password and
/// account-control attributes. A floor; custom mappings are held to [`never_written`] too.
pub const DENY_LIST: [&str; 25] = [
    "sAMAccountName",
    "userPrincipalName",
    "displayName",
    "givenName",
    "sn",
    "cn",
    "name",
    "department",
    "title",
    "manager",
    "unicodePwd",
    "userPassword",
    "userAccountControl",
    "member",
    "memberOf",
    "objectClass",
    "objectGUID",
    "objectSid",
    "nTSecurityDescriptor",
    "servicePrincipalName",
    "msDS-KeyCredentialLink",
    "adminCount",
    "primaryGroupID",
    "pwdLastSet",
    "accountExpires",
];

/// Whether the attribute is on the [`DENY_LIST`] (case-insensitive).
pub fn is_denied(attribute: &str) -> bool {
    DENY_LIST.iter().any(|d| d.eq_ignore_ascii_case(attribute))
}

/// The custom mapping targets that need no opt-in: the attributes the profiles write — the
/// Exchange custom attributes (extensionAttribute1–15, msExchExtensionCustomAttribute1–5)
/// and the Exchange recipient attributes of Microsoft's writeback lists — except those on
/// the never list (the addresses and the match key, which only the profiles' own rows
/// write).
pub fn safe_custom_targets() -> impl Iterator<Item = &'static str> {
    crate::profile_attrs::PROFILES
        .iter()
        .flat_map(|(_, attributes)| attributes.iter().copied())
        .filter(|a| never_written(a).is_none())
}

/// Whether a custom mapping may write the attribute without an opt-in.
pub fn is_safe_custom_target(attribute: &str) -> bool {
    safe_custom_targets().any(|a| a.eq_ignore_ascii_case(attribute))
}

/// Why an attribute is never a custom mapping target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sensitive {
    Identity,
    Credential,
    CertificateMapping,
    Logon,
    Kerberos,
    Membership,
    ServicePrincipal,
    SecurityDescriptor,
    AccountControl,
    MatchKey,
    MailRouting,
    MailboxAccess,
    Posix,
}

impl Sensitive {
    /// Every category, in the order `docs/writeback-targets.md` lists them.
    pub const ALL: [Sensitive; 13] = [
        Sensitive::Identity,
        Sensitive::Credential,
        Sensitive::CertificateMapping,
        Sensitive::Logon,
        Sensitive::Kerberos,
        Sensitive::Membership,
        Sensitive::ServicePrincipal,
        Sensitive::SecurityDescriptor,
        Sensitive::AccountControl,
        Sensitive::MatchKey,
        Sensitive::MailRouting,
        Sensitive::MailboxAccess,
        Sensitive::Posix,
    ];

    /// What the attribute does, in an administrator's words.
    pub fn why(self) -> &'static str {
        match self {
            Sensitive::Identity => {
                "it names the account or holds its identity; the identity source owns it, never Exchange Online"
            }
            Sensitive::Credential => "it holds a password, a key or another secret",
            Sensitive::CertificateMapping => {
                "it maps a certificate or key to the account for logon: whoever sets it could log on as the account"
            }
            Sensitive::Logon => {
                "it runs or loads code, a profile or a home directory at logon, or restricts logon"
            }
            Sensitive::Kerberos => {
                "it controls Kerberos delegation or the account's authentication policy"
            }
            Sensitive::Membership => "it decides group membership or who manages a group",
            Sensitive::ServicePrincipal => {
                "it names services or hosts for Kerberos: a wrong value lets one account receive another's tickets"
            }
            Sensitive::SecurityDescriptor => "it is a security descriptor: who may do what",
            Sensitive::AccountControl => "it controls whether and how the account may log on",
            Sensitive::MatchKey => {
                "it is a key that synchronisation uses to match objects: whoever sets it could steer another person's values to this object"
            }
            Sensitive::MailRouting => {
                "it routes or identifies mail: only the profiles write addresses, under the proxy-address policy and the duplicate-address guard"
            }
            Sensitive::MailboxAccess => "it grants access to a mailbox or links the object to one",
            Sensitive::Posix => {
                "it is a UNIX identity (uid, gid, shell, home) used to log on to Linux hosts"
            }
        }
    }

    /// A short title for documentation and listings.
    pub fn title(self) -> &'static str {
        match self {
            Sensitive::Identity => "identity and naming",
            Sensitive::Credential => "passwords, keys and secrets",
            Sensitive::CertificateMapping => "certificate and key mapping",
            Sensitive::Logon => "logon scripts, profiles and restrictions",
            Sensitive::Kerberos => "Kerberos delegation and authentication policy",
            Sensitive::Membership => "group membership",
            Sensitive::ServicePrincipal => "service principal names and host names",
            Sensitive::SecurityDescriptor => "security descriptors",
            Sensitive::AccountControl => "account control",
            Sensitive::MatchKey => "match keys",
            Sensitive::MailRouting => "mail addresses and routing",
            Sensitive::MailboxAccess => "mailbox access and linking",
            Sensitive::Posix => "UNIX identity",
        }
    }
}

impl fmt::Display for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.why())
    }
}

use Sensitive::*;

/// Attributes that are never a custom mapping target, by name.
pub const NEVER_WRITTEN: &[(&str, Sensitive)] = &[
    // identity and naming (with the deny-list's organisational attributes)
    ("sAMAccountName", Identity),
    ("userPrincipalName", Identity),
    ("displayName", Identity),
    ("givenName", Identity),
    ("sn", Identity),
    ("cn", Identity),
    ("name", Identity),
    ("department", Identity),
    ("title", Identity),
    ("manager", Identity),
    ("distinguishedName", Identity),
    ("objectClass", Identity),
    ("objectCategory", Identity),
    ("objectSid", Identity),
    ("sIDHistory", Identity),
    // passwords, keys and secrets
    ("unicodePwd", Credential),
    ("userPassword", Credential),
    ("dBCSPwd", Credential),
    ("ntPwdHistory", Credential),
    ("lmPwdHistory", Credential),
    ("supplementalCredentials", Credential),
    ("msDS-ManagedPassword", Credential),
    ("ms-Mcs-AdmPwd", Credential),
    ("ms-Mcs-AdmPwdExpirationTime", Credential),
    ("msLAPS-Password", Credential),
    ("msLAPS-EncryptedPassword", Credential),
    ("msLAPS-EncryptedPasswordHistory", Credential),
    ("msLAPS-PasswordExpirationTime", Credential),
    ("msFVE-RecoveryPassword", Credential),
    ("msFVE-KeyPackage", Credential),
    ("msPKIAccountCredentials", Credential),
    ("msPKIDPAPIMasterKeys", Credential),
    ("msTPM-OwnerInformation", Credential),
    ("unixUserPassword", Credential),
    // certificate and key mapping
    ("altSecurityIdentities", CertificateMapping),
    ("msDS-KeyCredentialLink", CertificateMapping),
    ("userCertificate", CertificateMapping),
    ("userSMIMECertificate", CertificateMapping),
    ("sshPublicKey", CertificateMapping),
    // logon
    ("scriptPath", Logon),
    ("profilePath", Logon),
    ("homeDirectory", Logon),
    ("homeDrive", Logon),
    ("userWorkstations", Logon),
    ("logonHours", Logon),
    ("userParameters", Logon),
    ("msTSProfilePath", Logon),
    ("msTSHomeDirectory", Logon),
    ("msTSHomeDrive", Logon),
    ("msTSInitialProgram", Logon),
    ("msTSWorkDirectory", Logon),
    // Kerberos delegation and authentication policy
    ("msDS-AllowedToDelegateTo", Kerberos),
    ("msDS-AllowedToActOnBehalfOfOtherIdentity", Kerberos),
    ("msDS-SupportedEncryptionTypes", Kerberos),
    ("msDS-AssignedAuthNPolicy", Kerberos),
    ("msDS-AssignedAuthNPolicySilo", Kerberos),
    ("msDS-HostServiceAccount", Kerberos),
    // group membership
    ("member", Membership),
    ("memberOf", Membership),
    ("primaryGroupID", Membership),
    ("managedBy", Membership),
    ("msExchCoManagedByLink", Membership),
    ("groupType", Membership),
    ("memberUid", Membership),
    // service principal names and host names
    ("servicePrincipalName", ServicePrincipal),
    ("msDS-AdditionalDnsHostName", ServicePrincipal),
    ("msDS-AdditionalSamAccountName", ServicePrincipal),
    ("dNSHostName", ServicePrincipal),
    // security descriptors
    ("nTSecurityDescriptor", SecurityDescriptor),
    ("msDS-GroupMSAMembership", SecurityDescriptor),
    ("msExchMailboxSecurityDescriptor", SecurityDescriptor),
    // account control
    ("userAccountControl", AccountControl),
    ("accountExpires", AccountControl),
    ("adminCount", AccountControl),
    ("pwdLastSet", AccountControl),
    ("lockoutTime", AccountControl),
    ("badPwdCount", AccountControl),
    ("isCriticalSystemObject", AccountControl),
    ("msDS-PSOApplied", AccountControl),
    // match keys
    ("objectGUID", MatchKey),
    ("mS-DS-ConsistencyGuid", MatchKey),
    ("msDS-ExternalDirectoryObjectId", MatchKey),
    ("msDS-SourceAnchor", MatchKey),
    ("msDS-CloudAnchor", MatchKey),
    ("employeeID", MatchKey),
    ("employeeNumber", MatchKey),
    // mail addresses and routing
    ("proxyAddresses", MailRouting),
    ("mail", MailRouting),
    ("targetAddress", MailRouting),
    ("msExchRemoteRecipientType", MailRouting),
    ("mailNickname", MailRouting),
    ("legacyExchangeDN", MailRouting),
    ("textEncodedORAddress", MailRouting),
    ("altRecipient", MailRouting),
    ("deliverAndRedirect", MailRouting),
    ("msExchGenericForwardingAddress", MailRouting),
    ("homeMDB", MailRouting),
    ("homeMTA", MailRouting),
    ("msExchHomeServerName", MailRouting),
    // mailbox access and linking
    ("msExchMailboxGuid", MailboxAccess),
    ("msExchArchiveGuid", MailboxAccess),
    ("msExchMasterAccountSid", MailboxAccess),
    ("msExchDelegateListLink", MailboxAccess),
    ("publicDelegates", MailboxAccess),
    ("authOrig", MailboxAccess),
    ("unauthOrig", MailboxAccess),
    ("dLMemSubmitPerms", MailboxAccess),
    ("dLMemRejectPerms", MailboxAccess),
    ("msExchRequireAuthToSendTo", MailboxAccess),
    // UNIX identity
    ("uidNumber", Posix),
    ("gidNumber", Posix),
    ("loginShell", Posix),
    ("unixHomeDirectory", Posix),
];

/// Name prefixes of attribute families that are never a custom mapping target (LAPS,
/// BitLocker, credential roaming, TPM, key credentials, delegation, authentication policies).
pub const NEVER_WRITTEN_PREFIXES: &[(&str, Sensitive)] = &[
    ("msLAPS-", Credential),
    ("ms-Mcs-AdmPwd", Credential),
    ("msFVE-", Credential),
    ("msPKI", Credential),
    ("msTPM-", Credential),
    ("msDS-ManagedPassword", Credential),
    ("msDS-KeyCredential", CertificateMapping),
    ("msDS-AllowedTo", Kerberos),
    ("msDS-AssignedAuthN", Kerberos),
];

/// Name fragments (case-insensitive) that mark an attribute as never a custom mapping
/// target wherever they appear: passwords (`pwd`, `password`) and security descriptors.
/// Names ending in `Sid` (security identifiers) are refused too.
pub const NEVER_WRITTEN_FRAGMENTS: &[(&str, Sensitive)] = &[
    ("password", Credential),
    ("pwd", Credential),
    ("securitydescriptor", SecurityDescriptor),
];

/// Why a custom mapping may never write `attribute`, or `None` if it may (with an opt-in
/// unless it is one of [`safe_custom_targets`]).
pub fn never_written(attribute: &str) -> Option<Sensitive> {
    let lower = attribute.to_ascii_lowercase();
    NEVER_WRITTEN
        .iter()
        .find(|(a, _)| a.eq_ignore_ascii_case(attribute))
        .map(|(_, why)| *why)
        .or_else(|| {
            NEVER_WRITTEN_PREFIXES
                .iter()
                .find(|(p, _)| lower.starts_with(&p.to_ascii_lowercase()))
                .map(|(_, why)| *why)
        })
        .or_else(|| {
            NEVER_WRITTEN_FRAGMENTS
                .iter()
                .find(|(f, _)| lower.contains(f))
                .map(|(_, why)| *why)
        })
        .or_else(|| lower.ends_with("sid").then_some(Identity))
}

/// How a custom mapping target was admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// One of [`safe_custom_targets`].
    Safe,
    /// Named in `allow_extra_targets`.
    OptedIn,
}

/// Why a custom mapping target is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Security-sensitive: never written by a custom mapping, opted in or not.
    Never(Sensitive),
    /// Not on the safe list and not opted in.
    NotAllowListed,
}

/// Whether a custom mapping may write `attribute`, given the opted-in extra targets.
pub fn admit_custom_target(attribute: &str, extra: &[String]) -> Result<Admission, Refusal> {
    if let Some(why) = never_written(attribute) {
        return Err(Refusal::Never(why));
    }
    if is_safe_custom_target(attribute) {
        return Ok(Admission::Safe);
    }
    if extra.iter().any(|e| e.eq_ignore_ascii_case(attribute)) {
        return Ok(Admission::OptedIn);
    }
    Err(Refusal::NotAllowListed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deny_list_is_a_floor_under_the_never_list() {
        for denied in DENY_LIST {
            assert!(never_written(denied).is_some(), "{denied}");
        }
    }

    #[test]
    fn safe_targets_are_the_profiles_attributes_but_addresses_and_the_match_key() {
        let kept_for_profiles = [
            "proxyAddresses",
            "mail",
            "msDS-ExternalDirectoryObjectId",
            "msExchRemoteRecipientType",
        ];
        let mut expected: Vec<&str> = crate::profile_attrs::PROFILES
            .iter()
            .flat_map(|(_, attributes)| attributes.iter().copied())
            .filter(|a| !kept_for_profiles.contains(a))
            .collect();
        expected.sort();
        expected.dedup();
        let mut safe: Vec<&str> = safe_custom_targets().collect();
        safe.sort();
        assert_eq!(safe, expected);
        assert_eq!(safe.len(), 15 + 5 + 9);
        for never in kept_for_profiles {
            assert!(!is_safe_custom_target(never), "{never}");
        }
        assert!(is_safe_custom_target("EXTENSIONATTRIBUTE15"));
    }

    #[test]
    fn lists_have_no_duplicates() {
        let mut names: Vec<String> = NEVER_WRITTEN
            .iter()
            .map(|(a, _)| a.to_ascii_lowercase())
            .collect();
        let before = names.len();
        names.sort();
        names.dedup();
        assert_eq!(before, names.len());
    }

    #[test]
    fn families_are_refused_by_prefix_fragment_and_sid_suffix() {
        let cases = [
            ("msLAPS-EncryptedDSRMPassword", Credential),
            ("msFVE-VolumeGuid", Credential),
            ("msDS-KeyCredentialLink-BL", CertificateMapping),
            ("msDS-AllowedToDelegateToSomethingNew", Kerberos),
            ("msSFU30Password", Credential),
            ("someVendorPwdHint", Credential),
            ("mS-DS-CreatorSID", Identity),
            ("msDS-ShadowPrincipalSid", Identity),
        ];
        for (attribute, why) in cases {
            assert_eq!(never_written(attribute), Some(why), "{attribute}");
        }
        assert_eq!(never_written("info"), None);
        assert_eq!(never_written("physicalDeliveryOfficeName"), None);
    }

    /// docs/writeback-targets.md lists every attribute and family of these lists.
    #[test]
    fn the_document_lists_every_attribute() {
        let doc = include_str!("../../../docs/writeback-targets.md");
        let quoted = |name: &str| doc.contains(&format!("`{name}`"));
        for (attribute, _) in NEVER_WRITTEN {
            assert!(
                quoted(attribute),
                "docs/writeback-targets.md misses {attribute}"
            );
        }
        for (prefix, _) in NEVER_WRITTEN_PREFIXES.iter().chain(NEVER_WRITTEN_FRAGMENTS) {
            assert!(quoted(prefix), "docs/writeback-targets.md misses {prefix}");
        }
        for attribute in safe_custom_targets().filter(|a| {
            !a.starts_with("extensionAttribute") && !a.starts_with("msExchExtensionCustomAttribute")
        }) {
            assert!(
                quoted(attribute),
                "docs/writeback-targets.md misses {attribute}"
            );
        }
    }

    #[test]
    fn admission() {
        let extra = vec!["Info".to_string(), "scriptPath".to_string()];
        assert_eq!(
            admit_custom_target("extensionAttribute3", &[]),
            Ok(Admission::Safe)
        );
        assert_eq!(admit_custom_target("info", &extra), Ok(Admission::OptedIn));
        assert_eq!(
            admit_custom_target("info", &[]),
            Err(Refusal::NotAllowListed)
        );
        assert_eq!(
            admit_custom_target("scriptPath", &extra),
            Err(Refusal::Never(Logon))
        );
    }
}
