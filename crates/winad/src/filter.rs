//! Search filters evaluated as AD evaluates them (RFC 4511 4.5.1.7), over the attributes a
//! search may see: on a global catalog port only the partial attribute set (the attributes whose
//! schema entry says `isMemberOfPartialAttributeSet: TRUE`; a GC holds no others of the domains
//! it holds partially, and winad answers every object so on its GC port). Strings compare case-insensitively (the
//! Unicode-string syntax's matching rule in AD), octet strings byte for byte.

use ldap3_proto::proto::LdapFilter;

use crate::model::{Directory, Entry};

/// LDAP_MATCHING_RULE_BIT_AND (MS-ADTS 3.1.1.3.4.4).
const BIT_AND: &str = "1.2.840.113556.1.4.803";
/// LDAP_MATCHING_RULE_BIT_OR.
const BIT_OR: &str = "1.2.840.113556.1.4.804";

/// Whether `entry` matches `filter`; `visible` says whether an attribute can be seen.
pub fn matches(
    dir: &Directory,
    entry: &Entry,
    filter: &LdapFilter,
    visible: &dyn Fn(&str) -> bool,
) -> bool {
    let values = |attr: &str| -> Vec<&[u8]> {
        if !visible(attr) {
            return Vec::new();
        }
        entry
            .get(attr)
            .map(|vs| vs.iter().map(Vec::as_slice).collect())
            .unwrap_or_default()
    };
    let binary = |attr: &str| dir.attr(attr).is_some_and(|a| a.syntax == "2.5.5.10");
    match filter {
        LdapFilter::And(fs) => fs.iter().all(|f| matches(dir, entry, f, visible)),
        LdapFilter::Or(fs) => fs.iter().any(|f| matches(dir, entry, f, visible)),
        LdapFilter::Not(f) => !matches(dir, entry, f, visible),
        LdapFilter::Present(attr) => {
            attr.eq_ignore_ascii_case("objectClass") || !values(attr).is_empty()
        }
        LdapFilter::Equality(attr, want) => values(attr).iter().any(|v| {
            if binary(attr) {
                *v == want.as_bytes()
            } else {
                v.eq_ignore_ascii_case(want.as_bytes())
                    || String::from_utf8_lossy(v).to_lowercase() == want.to_lowercase()
            }
        }),
        LdapFilter::Substring(attr, sub) => values(attr).iter().any(|v| {
            let text = String::from_utf8_lossy(v).to_lowercase();
            let mut rest = text.as_str();
            if let Some(initial) = &sub.initial {
                let initial = initial.to_lowercase();
                match rest.strip_prefix(initial.as_str()) {
                    Some(r) => rest = r,
                    None => return false,
                }
            }
            for any in &sub.any {
                let any = any.to_lowercase();
                match rest.find(any.as_str()) {
                    Some(at) => rest = &rest[at + any.len()..],
                    None => return false,
                }
            }
            sub.final_
                .as_ref()
                .is_none_or(|f| rest.ends_with(f.to_lowercase().as_str()))
        }),
        LdapFilter::GreaterOrEqual(attr, want) => values(attr)
            .iter()
            .any(|v| compare(v, want) != std::cmp::Ordering::Less),
        LdapFilter::LessOrEqual(attr, want) => values(attr)
            .iter()
            .any(|v| compare(v, want) != std::cmp::Ordering::Greater),
        LdapFilter::Approx(attr, want) => values(attr)
            .iter()
            .any(|v| v.eq_ignore_ascii_case(want.as_bytes())),
        LdapFilter::Extensible(assertion) => {
            let Some(attr) = &assertion.type_ else {
                return false;
            };
            let Ok(want) = assertion.match_value.parse::<i64>() else {
                return false;
            };
            let rule = assertion.matching_rule.as_deref().unwrap_or("");
            values(attr).iter().any(|v| {
                let Ok(have) = String::from_utf8_lossy(v).parse::<i64>() else {
                    return false;
                };
                match rule {
                    BIT_AND => have & want == want,
                    BIT_OR => have & want != 0,
                    _ => false,
                }
            })
        }
    }
}

/// Integers numerically, anything else as lower-case text.
fn compare(value: &[u8], want: &str) -> std::cmp::Ordering {
    let text = String::from_utf8_lossy(value);
    match (text.parse::<i64>(), want.parse::<i64>()) {
        (Ok(a), Ok(b)) => a.cmp(&b),
        _ => text.to_lowercase().cmp(&want.to_lowercase()),
    }
}
