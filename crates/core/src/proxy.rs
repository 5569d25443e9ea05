//! Proxy addresses (`prefix:address`) and the proxyAddresses policies of PRODUCT.md §6.
//!
//! - A proxy address is `PREFIX:address`. For SMTP the prefix's case carries meaning: `SMTP:`
//!   is the primary address, `smtp:` a secondary one. Addresses compare case-insensitively.
//! - [`cloud_managed_policy`]: the cloud is authoritative for every address it lists; values
//!   only in AD survive when their prefix is in `preserve_prefixes` (case-insensitive) and
//!   are removed otherwise; the result has exactly one primary `SMTP:`, the cloud's.
//! - [`add_if_missing`]: the hybrid profile's x500 add, keeping every other value.

use std::fmt;

/// One parsed proxy address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyAddress {
    /// As written (`SMTP`, `smtp`, `X500`, `x500`, `SIP` …).
    pub prefix: String,
    pub address: String,
}

/// Why a proxy address or a cloud list of them cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    #[error("{value:?} is not a proxy address (expected PREFIX:address)")]
    Malformed { value: String },
    #[error("{value:?} is not a valid SMTP address: {why}")]
    InvalidSmtp { value: String, why: String },
    #[error("EmailAddresses has no primary SMTP: address")]
    NoPrimary,
    #[error("EmailAddresses has {} primary SMTP: addresses ({}); exactly one is allowed", primaries.len(), primaries.join(", "))]
    SeveralPrimaries { primaries: Vec<String> },
}

impl ProxyAddress {
    /// Parse `PREFIX:address`. The prefix is letters and digits; the address is not empty.
    /// SMTP addresses are also checked with [`validate_smtp`].
    pub fn parse(value: &str) -> Result<ProxyAddress, ProxyError> {
        let malformed = || ProxyError::Malformed {
            value: value.to_string(),
        };
        let (prefix, address) = value.split_once(':').ok_or_else(malformed)?;
        if prefix.is_empty()
            || !prefix.chars().all(|c| c.is_ascii_alphanumeric())
            || address.trim().is_empty()
        {
            return Err(malformed());
        }
        let parsed = ProxyAddress {
            prefix: prefix.to_string(),
            address: address.to_string(),
        };
        if parsed.is_smtp() {
            validate_smtp(address).map_err(|why| ProxyError::InvalidSmtp {
                value: value.to_string(),
                why,
            })?;
        }
        Ok(parsed)
    }

    /// `SMTP:` or `smtp:`.
    pub fn is_smtp(&self) -> bool {
        self.prefix.eq_ignore_ascii_case("smtp")
    }

    /// The primary SMTP address (`SMTP:`, upper case).
    pub fn is_primary(&self) -> bool {
        self.prefix == "SMTP"
    }

    /// The same address of the same type, ignoring letter case (and so primary vs secondary).
    pub fn same_address(&self, other: &ProxyAddress) -> bool {
        self.prefix.eq_ignore_ascii_case(&other.prefix)
            && same_lowercase(&self.address, &other.address)
    }
}

impl fmt::Display for ProxyAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.prefix, self.address)
    }
}

/// Check an SMTP address (`local@domain`): one `@`, a local part of at most 64 characters
/// without spaces, quotes or separators, and a domain of dot-separated labels of letters,
/// digits and hyphens. The error says what is wrong.
pub fn validate_smtp(address: &str) -> Result<(), String> {
    let (local, domain) = address.split_once('@').ok_or_else(|| "no @".to_string())?;
    if domain.contains('@') {
        return Err("more than one @".into());
    }
    if local.is_empty() {
        return Err("empty local part".into());
    }
    if local.chars().count() > 64 {
        return Err("local part longer than 64 characters".into());
    }
    if let Some(c) = local
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || "\"(),:;<>[\\]".contains(*c))
    {
        return Err(format!("character {c:?} in the local part"));
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err("misplaced dot in the local part".into());
    }
    if domain.is_empty() {
        return Err("empty domain".into());
    }
    if domain.len() > 255 {
        return Err("domain longer than 255 characters".into());
    }
    for label in domain.split('.') {
        if label.is_empty() {
            return Err("empty label in the domain".into());
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "domain label {label:?} starts or ends with a hyphen"
            ));
        }
        if let Some(c) = label.chars().find(|c| !(c.is_alphanumeric() || *c == '-')) {
            return Err(format!("character {c:?} in the domain"));
        }
    }
    Ok(())
}

/// `a.to_lowercase() == b.to_lowercase()`, without allocating when both are ASCII (where
/// lower-casing is ASCII's); other text is compared as `to_lowercase` folds it (a final sigma
/// included).
fn same_lowercase(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        return a.eq_ignore_ascii_case(b);
    }
    a.to_lowercase() == b.to_lowercase()
}

fn prefix_preserved(prefix: &str, preserve_prefixes: &[String]) -> bool {
    preserve_prefixes
        .iter()
        .any(|p| p.eq_ignore_ascii_case(prefix))
}

/// The cloud-managed proxyAddresses policy: the values AD should hold, given the cloud's
/// EmailAddresses and AD's current proxyAddresses.
///
/// - Every cloud value is kept as the cloud writes it (so a case-only change is carried);
///   duplicates of the same address (case-insensitive) keep the first, except that a
///   primary `SMTP:` replaces an earlier secondary `smtp:` of the same address.
/// - An AD value whose address the cloud does not list is kept when its prefix is in
///   `preserve_prefixes`, removed otherwise. A preserved AD-only `SMTP:` is kept as a
///   secondary `smtp:`, so the cloud's primary stays the only one.
/// - The cloud list must hold exactly one primary `SMTP:` and only valid values; otherwise
///   an error (`InvalidProxyAddresses` for the object), nothing is decided.
///
/// Order: cloud values in cloud order, then preserved AD values in AD order.
pub fn cloud_managed_policy(
    cloud: &[String],
    current: &[String],
    preserve_prefixes: &[String],
) -> Result<Vec<String>, ProxyError> {
    let mut desired: Vec<ProxyAddress> = Vec::with_capacity(cloud.len() + current.len());
    // Counted over the whole cloud list (one per distinct address): a primary listed after a
    // secondary of the same address still counts.
    let mut primaries: Vec<String> = Vec::new();
    for value in cloud {
        let parsed = ProxyAddress::parse(value.trim())?;
        if parsed.is_primary()
            && !primaries
                .iter()
                .any(|p| p.to_lowercase() == parsed.to_string().to_lowercase())
        {
            primaries.push(parsed.to_string());
        }
        match desired.iter_mut().find(|d| d.same_address(&parsed)) {
            // The same address twice: the first is kept, but never loses the primary mark.
            Some(kept) if parsed.is_primary() && !kept.is_primary() => *kept = parsed,
            Some(_) => {}
            None => desired.push(parsed),
        }
    }
    match primaries.len() {
        0 => return Err(ProxyError::NoPrimary),
        1 => {}
        _ => return Err(ProxyError::SeveralPrimaries { primaries }),
    }
    let from_cloud = desired.len();
    for value in current {
        // Unparseable AD values have no known prefix: only a listed prefix is preserved.
        let Ok(mut parsed) = ProxyAddress::parse(value).or_else(|_| {
            value
                .split_once(':')
                .map(|(p, a)| ProxyAddress {
                    prefix: p.to_string(),
                    address: a.to_string(),
                })
                .ok_or(())
        }) else {
            continue;
        };
        if desired[..from_cloud]
            .iter()
            .any(|d| d.same_address(&parsed))
            || !prefix_preserved(&parsed.prefix, preserve_prefixes)
        {
            continue;
        }
        if parsed.is_primary() {
            parsed.prefix = "smtp".to_string();
        }
        if !desired.iter().any(|d| d.same_address(&parsed)) {
            desired.push(parsed);
        }
    }
    Ok(desired.iter().map(ToString::to_string).collect())
}

/// Add `value` unless a value equal to it ignoring case is present; keep every other value.
pub fn add_if_missing(current: &[String], value: &str) -> Vec<String> {
    let mut out = current.to_vec();
    if !current
        .iter()
        .any(|c| c.to_lowercase() == value.to_lowercase())
    {
        out.push(value.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The comparison without allocation answers as `to_lowercase` on both sides does,
        /// for ASCII, mixed and non-ASCII text (Σ/ς/σ, İ, K and the Kelvin sign among them).
        #[test]
        fn same_lowercase_is_to_lowercase_equality(
            a in "[a-cA-C@.ΣσςİiKk\u{212A}ß]{0,6}",
            flips in proptest::collection::vec(proptest::bool::ANY, 6),
        ) {
            let b: String = a
                .chars()
                .zip(flips.iter().chain(std::iter::repeat(&false)))
                .map(|(c, f)| if *f { c.to_uppercase().next().unwrap_or(c) } else { c })
                .collect();
            proptest::prop_assert_eq!(
                same_lowercase(&a, &b),
                a.to_lowercase() == b.to_lowercase()
            );
            proptest::prop_assert_eq!(
                same_lowercase(&a, "abc@c.a"),
                a.to_lowercase() == "abc@c.a"
            );
        }
    }

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parse_proxy_addresses() {
        let p = ProxyAddress::parse("SMTP:Ann@Contoso.com").expect("valid");
        assert!(p.is_primary() && p.is_smtp());
        let s = ProxyAddress::parse("smtp:ann@contoso.com").expect("valid");
        assert!(!s.is_primary() && s.is_smtp());
        assert!(p.same_address(&s));
        assert!(ProxyAddress::parse("X500:/o=Org/ou=x/cn=Recipients/cn=ann").is_ok());
        assert!(ProxyAddress::parse("sip:ann@contoso.com").is_ok_and(|p| !p.is_smtp()));
        for bad in ["ann@contoso.com", ":x", "SMTP:", "SM TP:a@b"] {
            assert!(
                matches!(ProxyAddress::parse(bad), Err(ProxyError::Malformed { .. })),
                "{bad}"
            );
        }
    }

    /// (address, Ok or the error fragment).
    #[test]
    fn smtp_syntax() {
        let cases = [
            ("ann@contoso.com", None),
            ("ann.lee+tag@mail.contoso.co.uk", None),
            ("o'brien@contoso.com", None),
            ("jörg@müller.de", None),
            ("ann", Some("no @")),
            ("ann@@contoso.com", Some("more than one @")),
            ("@contoso.com", Some("empty local part")),
            (
                "ann lee@contoso.com",
                Some("character ' ' in the local part"),
            ),
            ("ann@", Some("empty domain")),
            ("ann@contoso..com", Some("empty label")),
            ("ann@-contoso.com", Some("hyphen")),
            ("ann@contoso_x.com", Some("character '_' in the domain")),
            (".ann@contoso.com", Some("misplaced dot")),
        ];
        for (addr, expected) in cases {
            let got = validate_smtp(addr);
            match expected {
                None => assert_eq!(got, Ok(()), "{addr}"),
                Some(frag) => assert!(
                    got.as_ref().is_err_and(|e| e.contains(frag)),
                    "{addr}: {got:?} lacks {frag:?}"
                ),
            }
        }
    }

    /// (cloud, AD, expected result or error fragment).
    #[test]
    fn policy_cases() {
        let x500 = v(&["X500"]);
        type Case = (
            &'static [&'static str],
            &'static [&'static str],
            Result<&'static [&'static str], &'static str>,
        );
        let cases: Vec<Case> = vec![
            // already equal
            (
                &["SMTP:a@x.com", "smtp:b@x.com"],
                &["SMTP:a@x.com", "smtp:b@x.com"],
                Ok(&["SMTP:a@x.com", "smtp:b@x.com"]),
            ),
            // alias added in the cloud
            (
                &["SMTP:a@x.com", "smtp:c@x.com"],
                &["SMTP:a@x.com"],
                Ok(&["SMTP:a@x.com", "smtp:c@x.com"]),
            ),
            // X500 only in AD survives; other AD-only values are removed
            (
                &["SMTP:a@x.com"],
                &[
                    "SMTP:a@x.com",
                    "X500:/o=Org/cn=a",
                    "smtp:old@x.com",
                    "SIP:a@x.com",
                ],
                Ok(&["SMTP:a@x.com", "X500:/o=Org/cn=a"]),
            ),
            // preserved prefix compared case-insensitively
            (
                &["SMTP:a@x.com"],
                &["x500:/o=Org/cn=a"],
                Ok(&["SMTP:a@x.com", "x500:/o=Org/cn=a"]),
            ),
            // primary change: the cloud's primary and secondaries, AD's old primary demoted per cloud
            (
                &["smtp:a@x.com", "SMTP:b@x.com"],
                &["SMTP:a@x.com", "smtp:b@x.com"],
                Ok(&["smtp:a@x.com", "SMTP:b@x.com"]),
            ),
            // case-only change of the address carried as the cloud writes it
            (
                &["SMTP:Ann@X.com"],
                &["SMTP:ann@x.com"],
                Ok(&["SMTP:Ann@X.com"]),
            ),
            // X500 also in the cloud: the cloud's spelling wins, no duplicate
            (
                &["SMTP:a@x.com", "X500:/o=Org/cn=A"],
                &["x500:/o=org/cn=a"],
                Ok(&["SMTP:a@x.com", "X500:/o=Org/cn=A"]),
            ),
            // malformed AD value is removed (its prefix is not preserved)
            (&["SMTP:a@x.com"], &["garbage"], Ok(&["SMTP:a@x.com"])),
            // failures
            (&["smtp:a@x.com"], &[], Err("no primary SMTP")),
            (&[], &["SMTP:a@x.com"], Err("no primary SMTP")),
            (
                &["SMTP:a@x.com", "SMTP:b@x.com"],
                &[],
                Err("2 primary SMTP: addresses (SMTP:a@x.com, SMTP:b@x.com)"),
            ),
            // the same address as secondary then primary: one value, the primary
            (
                &["smtp:a@x.com", "smtp:b@x.com", "SMTP:A@x.com"],
                &[],
                Ok(&["SMTP:A@x.com", "smtp:b@x.com"]),
            ),
            // a primary hidden behind a secondary of its address still counts (found by fuzzing)
            (
                &["smtp:a@x.com", "SMTP:a@x.com", "SMTP:b@x.com"],
                &[],
                Err("2 primary SMTP: addresses (SMTP:a@x.com, SMTP:b@x.com)"),
            ),
            (
                &["SMTP:a@x.com", "smtp:not an address"],
                &[],
                Err("not a valid SMTP address"),
            ),
            (
                &["SMTP:a@x.com", "no-prefix"],
                &[],
                Err("is not a proxy address"),
            ),
        ];
        for (cloud, ad, expected) in cases {
            let got = cloud_managed_policy(&v(cloud), &v(ad), &x500);
            match expected {
                Ok(want) => assert_eq!(got, Ok(v(want)), "cloud {cloud:?} AD {ad:?}"),
                Err(frag) => assert!(
                    got.as_ref().is_err_and(|e| e.to_string().contains(frag)),
                    "cloud {cloud:?} AD {ad:?}: {got:?} lacks {frag:?}"
                ),
            }
        }
    }

    /// EmailAddresses lists from captures of the real service (fixtures/exo-real: burp-vdbdx
    /// Get-Mailbox body; graph2otel narrowed records): valid as they are, primary not first,
    /// SPO/SIP values carried, braces in a local part accepted.
    #[test]
    fn real_captured_lists_are_valid() {
        let lists: [&[&str]; 2] = [
            &[
                "smtp:c@vdbdx.onmicrosoft.com",
                "smtp:C@dread.ie",
                "SPO:SPO_afdc2165-9c1e-4c14-9223-f02a033ec8cf@SPO_fafb46b1-4b64-41ef-8f52-68ed0ccae30f",
                "SIP:c@lvin.ie",
                "SMTP:C@lvin.ie",
            ],
            &[
                "SMTP:DiscoverySearchMailbox{D919BA05-46A6-415f-80AD-7E09334BB852}@m7knio.onmicrosoft.com",
            ],
        ];
        for list in lists {
            assert_eq!(
                cloud_managed_policy(&v(list), &[], &v(&["X500"])),
                Ok(v(list))
            );
        }
    }

    #[test]
    fn preserved_smtp_is_never_a_second_primary() {
        let got = cloud_managed_policy(
            &v(&["SMTP:a@x.com"]),
            &v(&["SMTP:legacy@x.com", "SIP:a@x.com"]),
            &v(&["smtp", "SIP"]),
        );
        assert_eq!(
            got,
            Ok(v(&["SMTP:a@x.com", "smtp:legacy@x.com", "SIP:a@x.com"]))
        );
        let nothing_kept = cloud_managed_policy(&v(&["SMTP:a@x.com"]), &v(&["X500:/o=a"]), &[]);
        assert_eq!(nothing_kept, Ok(v(&["SMTP:a@x.com"])));
    }

    #[test]
    fn x500_add_is_case_insensitive_and_keeps_everything() {
        let ad = v(&["SMTP:a@x.com", "X500:/O=ORG/CN=A", "SIP:a@x.com"]);
        assert_eq!(add_if_missing(&ad, "x500:/o=Org/cn=a"), ad);
        let mut more = ad.clone();
        more.push("x500:/o=Org/cn=b".into());
        assert_eq!(add_if_missing(&ad, "x500:/o=Org/cn=b"), more);
    }
}
