//! What can go wrong talking to AD, said so an administrator can act on it. No variant ever
//! carries the bind password.

use std::path::PathBuf;

/// An error of the AD connector.
#[derive(Debug, thiserror::Error)]
pub enum AdError {
    #[error("invalid [ad] configuration: {problem}")]
    InvalidConfig { problem: String },

    #[error(
        "refusing plain LDAP to {url}: the bind password would cross the network unencrypted; \
         use ldaps://, or set ad.starttls = true, or set ad.allow_insecure_ldap = true if you accept that"
    )]
    InsecureRefused { url: String },

    #[error(
        "cannot read the CA file {path}: {reason} (ad.ca_file must be a PEM file of the CA that issued the DC's certificate)"
    )]
    CaFile { path: PathBuf, reason: String },

    #[error(
        "cannot load the system certificate store: {reason}; set ad.ca_file to the CA that issued the DC's certificate"
    )]
    SystemTrustStore { reason: String },

    #[error("cannot reach the domain controller at {address} (timeout {timeout_secs} s): {reason}")]
    Unreachable {
        address: String,
        timeout_secs: u64,
        reason: String,
    },

    #[error("TLS certificate of {address} rejected: {problem}; {hint}")]
    Certificate {
        address: String,
        problem: String,
        hint: String,
    },

    #[error("TLS with {address} failed: {reason}")]
    Tls { address: String, reason: String },

    #[error(
        "invalid credentials for {bind_identity} (wrong password or unknown account; AD said: {diagnostic})"
    )]
    InvalidCredentials {
        bind_identity: String,
        diagnostic: String,
    },

    #[error("cannot bind as {bind_identity}: {problem} (AD said: {diagnostic})")]
    AccountUnusable {
        bind_identity: String,
        problem: &'static str,
        diagnostic: String,
    },

    #[error(
        "Kerberos bind as {principal} failed: {problem}; check ad.keytab (klist -k -t <keytab> lists \
         the principal and its key version), the KDC in krb5.conf (KRB5_CONFIG), the clocks (5 min \
         skew at most) and ad.spn_host (the DC's ldap/<host> principal)"
    )]
    Kerberos { principal: String, problem: String },

    #[error(
        "bind as {bind_identity} refused: LDAP result {code} ({code_name}): {diagnostic}{hint}"
    )]
    BindRefused {
        bind_identity: String,
        code: u32,
        code_name: &'static str,
        diagnostic: String,
        /// What to do, starting with " — " (strongerAuthRequired: [`SIGNING_REQUIRED_HINT`]),
        /// or empty.
        hint: &'static str,
    },

    #[error(
        "insufficient access {operation} {dn} (attributes: {attributes}): the service account (bind identity) \
         lacks the right to {right}{hint}; AD said: {diagnostic}",
        right = insufficient_right(operation)
    )]
    InsufficientAccess {
        operation: &'static str,
        dn: String,
        attributes: String,
        /// What to do, starting with " — ": grant on the object or its OU, or (an object with
        /// adminCount=1) why a grant on the OU does not reach it.
        hint: &'static str,
        diagnostic: String,
    },

    #[error("{operation} {dn}: the DC answered with a referral to {url}: {meaning}")]
    Referral {
        operation: &'static str,
        dn: String,
        /// The (first) LDAP URL the DC named ([`AdError::referral_host`] takes its host).
        url: String,
        /// The referral names another DC of the object's own domain (a read-only DC refers
        /// writes), not another domain.
        same_object: bool,
        /// What it means and what to configure.
        meaning: String,
    },

    #[error("no such object: {dn}")]
    NoSuchObject { dn: String },

    #[error("{operation} {dn} failed: LDAP result {code} ({code_name}): {diagnostic}")]
    Ldap {
        operation: &'static str,
        dn: String,
        code: u32,
        code_name: &'static str,
        diagnostic: String,
    },

    #[error("the connection to {address} was lost during {operation}: {reason}")]
    ConnectionLost {
        address: String,
        operation: &'static str,
        reason: String,
    },

    #[error("{operation} on {address} timed out after {timeout_secs} s")]
    Timeout {
        address: String,
        operation: &'static str,
        timeout_secs: u64,
    },

    #[error(
        "{operation} on {address} got no answer within {timeout_secs} s, twice, although the DC \
         accepted a new connection and bind at once: the DC is reachable but this operation is \
         slow — raise ad.timeout_secs, or narrow the search (ad.search_bases)"
    )]
    SlowQuery {
        address: String,
        operation: &'static str,
        timeout_secs: u64,
    },

    #[error("{operation} {dn} on {address} hit the DC's {limit}: {problem}")]
    ServerLimit {
        operation: &'static str,
        dn: String,
        address: String,
        /// The Windows LDAP policy involved (KB 315071).
        limit: &'static str,
        /// What happened and what to do.
        problem: String,
    },

    #[error("malformed answer from {address} to {operation}: {problem}")]
    Protocol {
        address: String,
        operation: &'static str,
        problem: String,
    },

    #[error(
        "DNS lookup of {name} at {server} failed: {problem} (the DC locator asks DNS for the \
         domain's SRV records; set ad.dns_server to a DNS server of the domain, or list the DCs \
         in ad.dcs)"
    )]
    Locator {
        name: String,
        server: String,
        problem: String,
    },

    #[error("no usable domain controller for {domain}: {}", tried_list(tried))]
    NoDomainController {
        domain: String,
        /// Each DC tried and why it was passed over.
        tried: Vec<(String, String)>,
    },

    #[error(
        "{attribute} is not replicated to the global catalog in this forest (its schema entry \
         has no isMemberOfPartialAttributeSet: TRUE): a GC search on it would silently find \
         nothing; search each domain instead, or add it to the partial attribute set"
    )]
    NotInGlobalCatalog { attribute: String },

    #[error("{dn} has no usable objectGUID")]
    MissingObjectGuid { dn: String },

    #[error("invalid value for {what}: {problem}")]
    InvalidInput { what: String, problem: String },
}

impl AdError {
    /// The bind failed (credentials, account state, signing policy, Kerberos): the agent
    /// cannot start until the configuration or the account is fixed.
    pub fn is_bind_failure(&self) -> bool {
        matches!(
            self,
            AdError::InvalidCredentials { .. }
                | AdError::AccountUnusable { .. }
                | AdError::BindRefused { .. }
                | AdError::Kerberos { .. }
        )
    }

    /// The host (a DC or a domain's DNS name) a referral named.
    pub fn referral_host(&self) -> Option<String> {
        match self {
            AdError::Referral { url, .. } => crate::referral::parse_referral(url).host,
            _ => None,
        }
    }

    /// The connection broke; the operation may be retried on a new one.
    pub fn is_connection_lost(&self) -> bool {
        matches!(self, AdError::ConnectionLost { .. })
    }

    /// The bind failed for a reason of this DC, not of the account: another DC may accept it
    /// (`51f`: a read-only DC that cannot check the password).
    pub fn is_dc_specific_bind_failure(&self) -> bool {
        matches!(self, AdError::AccountUnusable { diagnostic, .. }
            if ad_bind_subcode(diagnostic).as_deref() == Some("51f"))
    }

    /// The DC in use cannot serve the operation but another DC of the domain may: it cannot
    /// be reached, the connection to it could not be re-established, or (for writes) it is
    /// read-only and referred the write elsewhere.
    pub fn is_dc_failure(&self, purpose: crate::domain::Purpose) -> bool {
        match self {
            AdError::Unreachable { .. } | AdError::ConnectionLost { .. } => true,
            AdError::Referral {
                same_object: true, ..
            } => purpose == crate::domain::Purpose::Write,
            _ => self.is_dc_specific_bind_failure(),
        }
    }
}

fn tried_list(tried: &[(String, String)]) -> String {
    tried
        .iter()
        .map(|(dc, why)| format!("{dc}: {why}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The right an insufficient-access error lacks, by operation.
fn insufficient_right(operation: &str) -> &'static str {
    if operation.starts_with("modify") {
        "write these attributes (Write Property)"
    } else {
        "read these attributes (Read Property / List Contents)"
    }
}

/// What to do about an insufficient-access error on `dn`: `admin_count` is the object's
/// adminCount when it could be read (AdminSDHolder marks protected accounts with 1).
pub fn insufficient_access_hint(admin_count: Option<&str>, writing: bool) -> &'static str {
    if admin_count.is_some_and(|v| v.trim() == "1") {
        return " — the object has adminCount=1: it is (or was) protected by AdminSDHolder, whose \
            SDProp process disables inheritance on it, so rights granted on the OU never reach \
            it; keep it out of the agent's scope, or grant the same per-attribute rights on \
            CN=AdminSDHolder,CN=System of the domain (see docs/least-privilege.md, \
            \"AdminSDHolder-protected accounts\")";
    }
    if writing {
        " — grant the service account Write Property on these attributes for user objects of \
         the OU (see docs/least-privilege.md); if the object's inheritance is disabled, grant \
         it on the object"
    } else {
        " — grant it on the object or its OU (see docs/least-privilege.md)"
    }
}

/// The RFC 4511 name of an LDAP result code.
pub fn result_code_name(code: u32) -> &'static str {
    match code {
        0 => "success",
        1 => "operationsError",
        2 => "protocolError",
        3 => "timeLimitExceeded",
        4 => "sizeLimitExceeded",
        7 => "authMethodNotSupported",
        8 => "strongerAuthRequired",
        10 => "referral",
        11 => "adminLimitExceeded",
        12 => "unavailableCriticalExtension",
        13 => "confidentialityRequired",
        16 => "noSuchAttribute",
        17 => "undefinedAttributeType",
        18 => "inappropriateMatching",
        19 => "constraintViolation",
        20 => "attributeOrValueExists",
        21 => "invalidAttributeSyntax",
        32 => "noSuchObject",
        34 => "invalidDNSyntax",
        48 => "inappropriateAuthentication",
        49 => "invalidCredentials",
        50 => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        54 => "loopDetect",
        64 => "namingViolation",
        65 => "objectClassViolation",
        66 => "notAllowedOnNonLeaf",
        67 => "notAllowedOnRDN",
        68 => "entryAlreadyExists",
        69 => "objectClassModsProhibited",
        80 => "other",
        _ => "unknown result code",
    }
}

/// The AD sub-code of an invalid-credentials (49) diagnostic: `... data 52e, v4563`.
pub fn ad_bind_subcode(diagnostic: &str) -> Option<String> {
    let lower = diagnostic.to_ascii_lowercase();
    let at = lower.find("data ")?;
    let code: String = lower[at + 5..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit())
        .collect();
    (!code.is_empty()).then_some(code)
}

/// What an AD bind sub-code means, for those that are not a wrong password. The sub-code is
/// the Win32 error of the logon, in hex (`net helpmsg <decimal>` prints Windows' text).
pub fn ad_bind_subcode_problem(subcode: &str) -> Option<&'static str> {
    Some(match subcode {
        // ERROR_NO_LOGON_SERVERS (1311): e.g. a read-only DC that cannot reach a writable one
        "51f" => {
            "the DC found no logon server to check the password (a read-only DC that does not cache this account's password and cannot reach a writable DC): bind to a writable DC"
        }
        // ERROR_NO_SUCH_USER (1317)
        "525" => "the account does not exist",
        // ERROR_ACCOUNT_RESTRICTION (1327)
        "52f" => {
            "an account restriction prevents the logon (e.g. a blank password, or the account is in Protected Users)"
        }
        // ERROR_INVALID_LOGON_HOURS (1328)
        "530" => "the account may not log on at this time (logon hours)",
        // ERROR_INVALID_WORKSTATION (1329)
        "531" => {
            "the account may not log on from this workstation (its userWorkstations list excludes this host)"
        }
        // ERROR_PASSWORD_EXPIRED (1330)
        "532" => "the password has expired",
        // ERROR_ACCOUNT_DISABLED (1331)
        "533" => "the account is disabled",
        // ERROR_TOO_MANY_CONTEXT_IDS (1384)
        "568" => "the account has too many security identifiers",
        // ERROR_LOGON_TYPE_NOT_GRANTED (1385)
        "569" => {
            "the account is not granted the network logon type on the DC (\"Access this computer from the network\" / \"Deny access to this computer from the network\" user rights)"
        }
        // ERROR_ACCOUNT_EXPIRED (1793)
        "701" => "the account has expired",
        // ERROR_PASSWORD_MUST_CHANGE (1907)
        "773" => "the password must be changed before the account can bind",
        // ERROR_ACCOUNT_LOCKED_OUT (1909)
        "775" => "the account is locked out",
        _ => return None,
    })
}

/// A strongerAuthRequired (8) bind answer: the DC requires signing (Windows:
/// `00002028: LdapErr: …, comment: The server requires binds to turn on integrity checking if
/// SSL\TLS are not already active on the connection`; Samba: "Strong(er) authentication
/// required"). What to do about it.
pub const SIGNING_REQUIRED_HINT: &str = " — the DC requires LDAP signing, so it refuses a simple bind without TLS: use ldaps:// (or ldap:// with ad.starttls = true), or ad.auth = \"kerberos\"";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subcodes() {
        let cases = [
            (
                "80090308: LdapErr: DSID-0C09042A, comment: AcceptSecurityContext error, data 52e, v3839",
                Some("52e"),
            ),
            ("... data 775, v1db1", Some("775")),
            ("Invalid credentials", None),
            ("data ", None),
        ];
        for (text, want) in cases {
            assert_eq!(ad_bind_subcode(text).as_deref(), want, "{text}");
        }
        assert_eq!(
            ad_bind_subcode_problem("533"),
            Some("the account is disabled")
        );
        assert_eq!(ad_bind_subcode_problem("52e"), None);
        // Every sub-code the issue names, and the RODC's 51f, has its own explanation.
        for (code, part) in [
            ("51f", "read-only DC"),
            ("52f", "account restriction"),
            ("530", "logon hours"),
            ("531", "workstation"),
            ("569", "network logon type"),
            ("773", "must be changed"),
            ("775", "locked out"),
        ] {
            let problem = ad_bind_subcode_problem(code).unwrap_or_default();
            assert!(problem.contains(part), "{code}: {problem}");
        }
    }

    #[test]
    fn insufficient_access_hints() {
        let protected = insufficient_access_hint(Some("1"), true);
        assert!(
            protected.contains("adminCount=1")
                && protected.contains("AdminSDHolder")
                && protected.contains("docs/least-privilege.md"),
            "{protected}"
        );
        for other in [None, Some("0")] {
            let hint = insufficient_access_hint(other, true);
            assert!(
                !hint.contains("AdminSDHolder") && hint.contains("docs/least-privilege.md"),
                "{hint}"
            );
        }
        let e = AdError::InsufficientAccess {
            operation: "modifying",
            dn: "CN=a,DC=x".into(),
            attributes: "mail".into(),
            hint: protected,
            diagnostic: "00002098: SecErr".into(),
        };
        let text = e.to_string();
        assert!(
            text.starts_with("insufficient access modifying CN=a,DC=x (attributes: mail)")
                && text.contains("(Write Property) — the object has adminCount=1")
                && text.ends_with("; AD said: 00002098: SecErr"),
            "{text}"
        );
    }

    #[test]
    fn names() {
        assert_eq!(result_code_name(50), "insufficientAccessRights");
        assert_eq!(result_code_name(19), "constraintViolation");
        assert_eq!(result_code_name(999), "unknown result code");
    }
}
