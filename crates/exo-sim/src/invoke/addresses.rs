//! Exchange's rules for a mailbox's address list (EmailAddresses): prefixes, one primary SMTP
//! address, no duplicates, valid SMTP addresses, the primary kept in WindowsEmailAddress.

use crate::errors::InvokeError;
use crate::mailbox::SimMailbox;

use super::{MultiChange, cmdlet_error};

/// Splits `PREFIX:address` (no prefix = `smtp:`).
pub(super) fn split_address(a: &str) -> (String, String) {
    match a.split_once(':') {
        Some((p, rest)) if !p.contains('@') && !p.is_empty() => (p.to_string(), rest.to_string()),
        _ => ("smtp".to_string(), a.to_string()),
    }
}

pub(crate) fn valid_smtp(addr: &str) -> bool {
    let mut parts = addr.split('@');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(local), Some(domain), None) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !addr
                    .chars()
                    .any(|c| c.is_whitespace() || c == ',' || c == ';')
        }
        _ => false,
    }
}

pub(super) fn bad_address(addr: &str) -> InvokeError {
    cmdlet_error(
        "Ex9A4F2B",
        "Microsoft.Exchange.Data.DataValidationException",
        format!(
            "The email address \"{addr}\" isn't correct. Please use this format: user name, the @ sign, followed by the domain name. For example, tonysmith@contoso.com or tony.smith@contoso.com."
        ),
    )
}

/// Normalises one address: `SMTP:`/`smtp:` kept as given, no prefix → `smtp:`; other
/// prefixes kept. SMTP addresses are validated.
fn normalise_address(raw: &str) -> Result<String, InvokeError> {
    let raw = raw.trim();
    let (prefix, addr) = split_address(raw);
    if prefix.eq_ignore_ascii_case("smtp") {
        if !valid_smtp(&addr) {
            return Err(bad_address(&addr));
        }
        let p = if prefix == "SMTP" { "SMTP" } else { "smtp" };
        Ok(format!("{p}:{addr}"))
    } else if addr.is_empty() {
        Err(bad_address(raw))
    } else {
        Ok(format!("{prefix}:{addr}"))
    }
}

fn same_address(a: &str, b: &str) -> bool {
    let (pa, xa) = split_address(a);
    let (pb, xb) = split_address(b);
    pa.eq_ignore_ascii_case(&pb) && xa.eq_ignore_ascii_case(&xb)
}

fn is_smtp(a: &str) -> bool {
    split_address(a).0.eq_ignore_ascii_case("smtp")
}

fn demote_primary(list: &mut [String]) {
    for a in list.iter_mut() {
        if let Some(x) = a.strip_prefix("SMTP:") {
            *a = format!("smtp:{x}");
        }
    }
}

/// Makes `addr` (no prefix) the primary SMTP address, adding it when missing.
pub(super) fn make_primary(list: &mut Vec<String>, addr: &str) {
    demote_primary(list);
    let probe = format!("smtp:{addr}");
    if let Some(a) = list.iter_mut().find(|a| same_address(a, &probe)) {
        let (_, x) = split_address(a);
        *a = format!("SMTP:{x}");
    } else {
        list.push(format!("SMTP:{addr}"));
    }
}

pub(super) fn apply_email_addresses(
    m: &mut SimMailbox,
    change: MultiChange,
) -> Result<(), InvokeError> {
    match change {
        MultiChange::Replace(list) => {
            let mut out: Vec<String> = Vec::new();
            for raw in list {
                let a = normalise_address(&raw)?;
                if out.iter().any(|o| same_address(o, &a)) {
                    return Err(cmdlet_error(
                        "Ex2A0D4C",
                        "Microsoft.Exchange.Data.DataValidationException",
                        format!("The email address \"{a}\" is listed more than once."),
                    ));
                }
                out.push(a);
            }
            let primaries = out.iter().filter(|a| a.starts_with("SMTP:")).count();
            if primaries > 1 {
                return Err(cmdlet_error(
                    "Ex7DA2E6",
                    "Microsoft.Exchange.Data.DataValidationException",
                    "There are multiple primary SMTP addresses. Please ensure there is only one primary address for each address type.".into(),
                ));
            }
            if primaries == 0 {
                match out.iter_mut().find(|a| is_smtp(a)) {
                    Some(first) => {
                        let (_, x) = split_address(first);
                        *first = format!("SMTP:{x}");
                    }
                    None => return Err(no_primary()),
                }
            }
            m.email_addresses = out;
        }
        MultiChange::Modify { add, remove } => {
            let mut list = m.email_addresses.clone();
            for raw in remove {
                let a = normalise_address(&raw)?;
                if list
                    .iter()
                    .any(|o| o.starts_with("SMTP:") && same_address(o, &a))
                {
                    return Err(cmdlet_error(
                        "ExC7E3A1",
                        "Microsoft.Exchange.Data.DataValidationException",
                        format!(
                            "The primary SMTP address \"{}\" can't be removed. Set another primary address first.",
                            split_address(&a).1
                        ),
                    ));
                }
                list.retain(|o| !same_address(o, &a));
            }
            for raw in add {
                let a = normalise_address(&raw)?;
                if let Some(x) = a.strip_prefix("SMTP:") {
                    make_primary(&mut list, x);
                } else if !list.iter().any(|o| same_address(o, &a)) {
                    list.push(a);
                }
            }
            m.email_addresses = list;
        }
    }
    if m.primary_smtp_address().is_empty() {
        return Err(no_primary());
    }
    m.windows_email_address = m.primary_smtp_address().to_string();
    Ok(())
}

fn no_primary() -> InvokeError {
    cmdlet_error(
        "Ex1B1F2C",
        "Microsoft.Exchange.Data.DataValidationException",
        "A primary SMTP address is required. Add an address with the SMTP: prefix.".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_lists_follow_exchange_rules() {
        let now = jiff::Timestamp::UNIX_EPOCH;
        let mut m = SimMailbox::new(uuid::Uuid::from_u128(1), "a", "a@contoso.com", now);
        apply_email_addresses(
            &mut m,
            MultiChange::Modify {
                add: vec!["SMTP:new@contoso.com".into(), "x500:/o=x".into()],
                remove: vec![],
            },
        )
        .unwrap();
        assert_eq!(
            m.email_addresses,
            ["smtp:a@contoso.com", "SMTP:new@contoso.com", "x500:/o=x"]
        );
        assert_eq!(m.windows_email_address, "new@contoso.com");
        let err = apply_email_addresses(
            &mut m,
            MultiChange::Modify {
                add: vec![],
                remove: vec!["new@contoso.com".into()],
            },
        );
        assert!(err.is_err());
        apply_email_addresses(
            &mut m,
            MultiChange::Replace(vec!["b@contoso.com".into(), "SIP:b@contoso.com".into()]),
        )
        .unwrap();
        assert_eq!(
            m.email_addresses,
            ["SMTP:b@contoso.com", "SIP:b@contoso.com"]
        );
        for bad in [
            vec!["SMTP:a@x.com".to_string(), "SMTP:b@x.com".to_string()],
            vec!["SIP:only@x.com".to_string()],
            vec!["not-an-address".to_string()],
            vec!["a@x.com".to_string(), "A@X.com".to_string()],
        ] {
            assert!(
                apply_email_addresses(&mut m, MultiChange::Replace(bad.clone())).is_err(),
                "{bad:?}"
            );
        }
    }
}
