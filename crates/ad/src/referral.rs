//! Referrals (LDAP result 10) said by name. A DC answers with a referral when the object is not
//! in a naming context it holds writable: a base or object in **another domain** of the forest
//! (the referral names that domain's DNS name and naming context, RFC 4511 4.1.10), or a **write sent to a read-only DC** (the referral names a writable DC and
//! the same object: `0000202B: RefErr … ldap://dc1.corp.example/CN=…`). The agent never chases
//! a referral (it would bind somewhere it was not configured to); it says which domain or DC was
//! named and what to configure.

/// One LDAP URL of a referral, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferralTarget {
    /// The URL as sent.
    pub url: String,
    /// Its host (a DC or the domain's DNS name), if any.
    pub host: Option<String>,
    /// Its DN (percent-decoded), if any.
    pub dn: Option<String>,
}

/// Parses `ldap://host[:port]/DN[?…]` (RFC 4516); the DN is percent-decoded.
pub fn parse_referral(url: &str) -> ReferralTarget {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host = authority
        .rsplit_once(':')
        .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
        .map_or(authority, |(h, _)| h)
        .trim_start_matches('[')
        .trim_end_matches(']');
    let dn = path.split('?').next().unwrap_or("");
    ReferralTarget {
        url: url.to_string(),
        host: (!host.is_empty()).then(|| host.to_string()),
        dn: (!dn.is_empty()).then(|| percent_decode(dn)),
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What a referral for `dn` means, and what to do: (names another DC of the object's own
/// domain?, explanation). A referral to another domain names that domain's DNS name (Windows:
/// `ldap://child.corp.example/<dn>`); one from a DC that does not hold the object writable
/// names a DC (`ldap://dc1.corp.example/<dn>`, a read-only DC referring a write).
pub fn explain(dn: &str, operation: &str, target: &ReferralTarget) -> (bool, String) {
    let host = target.host.as_deref().unwrap_or("another server");
    let named = target.dn.as_deref().unwrap_or(dn);
    let domain = crate::config::dns_name_of_nc(named).unwrap_or_else(|| host.to_string());
    let names_domain = target
        .host
        .as_deref()
        .is_none_or(|h| h.eq_ignore_ascii_case(&domain));
    if !names_domain {
        let writing = operation.starts_with("modify")
            || operation.starts_with("add")
            || operation.starts_with("delet");
        let what = if writing {
            "this DC does not hold the object writable (a read-only DC refers every write)"
        } else {
            "this DC does not hold the object"
        };
        return (
            true,
            format!(
                "{what} and named DC {host}: the agent writes only to writable DCs of the object's \
                 domain; make ad.url / ad.dcs name writable DCs (or let the DC locator skip \
                 read-only ones)"
            ),
        );
    }
    (
        false,
        format!(
            "{dn} is not in this DC's domain: the DC named domain {domain}; the agent reads and \
             writes each object on a DC of its own domain — check that the DCs of {domain} can be \
             located (DNS SRV records, or ad.domain_dcs.\"{domain}\") and that the service \
             account may bind there"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = parse_referral("ldap://child.corp.example/DC=child,DC=corp,DC=example");
        assert_eq!(t.host.as_deref(), Some("child.corp.example"));
        assert_eq!(t.dn.as_deref(), Some("DC=child,DC=corp,DC=example"));
        let t = parse_referral("ldap://dc1.lab.example.test:389/CN=a%20b,DC=lab?base");
        assert_eq!(t.host.as_deref(), Some("dc1.lab.example.test"));
        assert_eq!(t.dn.as_deref(), Some("CN=a b,DC=lab"));
        let t = parse_referral("ldap://[::1]:389/");
        assert_eq!(t.host.as_deref(), Some("::1"));
        assert_eq!(t.dn, None);
    }

    #[test]
    fn meanings() {
        let dn = "CN=u,OU=x,DC=lab,DC=example,DC=test";
        let rodc =
            parse_referral("ldap://dc1.lab.example.test/CN=u,OU=x,DC=lab,DC=example,DC=test");
        let (same, text) = explain(dn, "modifying", &rodc);
        assert!(
            same && text.contains("read-only DC") && text.contains("dc1.lab.example.test"),
            "{text}"
        );
        let child = parse_referral("ldap://child.corp.example/DC=child,DC=corp,DC=example");
        let (same, text) = explain("OU=People,DC=child,DC=corp,DC=example", "searching", &child);
        assert!(
            !same && text.contains("domain child.corp.example"),
            "{text}"
        );
    }
}
