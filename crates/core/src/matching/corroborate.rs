//! A match by `msDS-ExternalDirectoryObjectId` alone needs a second witness.
//!
//! On real tenants Get-Mailbox's `ImmutableId` is often empty (it is only set for users whose
//! sourceAnchor was stamped by an older sync, or set by hand), so many mailboxes have no
//! immutable anchor and the key is all there is — a key every user may write on their own
//! account (the Personal-Information property set; module documentation of `matching`). An
//! object found by that key alone is only believed when an attribute **the user cannot write
//! on themselves** agrees with the mailbox:
//!
//! - `userPrincipalName` equal to the mailbox's UserPrincipalName, or
//! - an SMTP address of the object's `proxyAddresses` or `mail` among the mailbox's.
//!
//! Both are in the Public-Information property set (attributeSecurityGUID
//! e48d0154-bcf8-11d1-8702-00c04fb96050 in the Windows Server 2016 schema,
//! `setup/ad-schema/AD_DS_Attributes__Windows_Server_2016.ldf`), which the `user` class's
//! default security descriptor grants SELF only Read Property on — SELF's Write Property
//! grants are for Personal-Information (77b5b886-…, which holds the key), Email-Information
//! (e45795b2-…) and Web-Information (e45795b3-…) (`AD_DS_Classes__Windows_Server_2016.ldf`,
//! class `user`, `defaultSecurityDescriptor`). Exchange also keeps proxy addresses unique in
//! the organisation, so another user's object cannot hold the mailbox's addresses. An object
//! without such a witness is not written (`UncorroboratedMatchKey`).

use crate::directory::DirectoryObject;
use crate::mailbox::Mailbox;
use crate::outcome::{OutcomeCode, OutcomeDetail};

/// The attributes the witness is read from (add them to the attributes of a key look-up).
pub const WITNESS_ATTRIBUTES: [&str; 3] = ["userPrincipalName", "proxyAddresses", "mail"];

/// The address of an SMTP proxy value (`smtp:` or `SMTP:`), or of a bare address, lower case;
/// `None` for another prefix.
pub(crate) fn smtp_of(value: &str) -> Option<String> {
    match value.split_once(':') {
        Some((prefix, address)) if prefix.eq_ignore_ascii_case("smtp") => {
            Some(address.trim().to_lowercase())
        }
        Some(_) => None,
        None => Some(value.trim().to_lowercase()),
    }
}

/// The mailbox's SMTP addresses, lower case.
fn mailbox_addresses(mailbox: &Mailbox) -> Vec<String> {
    mailbox
        .email_addresses
        .iter()
        .filter(|a| a.contains(':'))
        .filter_map(|a| smtp_of(a))
        .chain(
            mailbox
                .primary_smtp_address
                .iter()
                .map(|a| a.to_lowercase()),
        )
        .chain(
            mailbox
                .windows_email_address
                .iter()
                .map(|a| a.to_lowercase()),
        )
        .filter(|a| !a.is_empty())
        .collect()
}

/// How the key-only match of `object` is corroborated (for the log), or why it is not.
pub fn corroborate_key_match(
    mailbox: &Mailbox,
    object: &DirectoryObject,
    key: &str,
) -> Result<String, OutcomeDetail> {
    let texts = |attribute: &str| -> Vec<String> {
        object
            .attributes
            .get(attribute)
            .iter()
            .filter_map(|v| v.as_text())
            .map(str::to_string)
            .collect()
    };
    let upn = mailbox
        .user_principal_name
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty());
    if let Some(upn) = upn
        && texts("userPrincipalName")
            .iter()
            .any(|u| u.trim().eq_ignore_ascii_case(upn))
    {
        return Ok(format!("corroborated by userPrincipalName {upn}"));
    }
    let wanted = mailbox_addresses(mailbox);
    let held = texts("proxyAddresses")
        .iter()
        .filter(|v| v.contains(':'))
        .filter_map(|v| smtp_of(v))
        .chain(texts("mail").iter().map(|m| m.trim().to_lowercase()))
        .find(|a| wanted.contains(a));
    if let Some(address) = held {
        return Ok(format!("corroborated by the SMTP address {address}"));
    }
    Err(OutcomeDetail::new(
        OutcomeCode::UncorroboratedMatchKey,
        format!(
            "{} holds {key}, but the mailbox has no ImmutableId and nothing the user cannot write \
             on their own account agrees: its userPrincipalName ({}) is not the mailbox's ({}) \
             and it holds none of the mailbox's SMTP addresses. Every user may write \
             msDS-ExternalDirectoryObjectId on their own account, so the key alone is not \
             followed; nothing written",
            object.dn,
            texts("userPrincipalName")
                .first()
                .map_or("none", String::as_str),
            upn.unwrap_or("none"),
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::{AttrValue, Attributes};

    fn object(attrs: &[(&str, &[&str])]) -> DirectoryObject {
        let mut a = Attributes::new();
        for (name, values) in attrs {
            a.insert(
                name,
                values
                    .iter()
                    .map(|v| AttrValue::Text(v.to_string()))
                    .collect(),
            );
        }
        DirectoryObject {
            dn: "CN=x,DC=corp,DC=example".into(),
            object_guid: uuid::Uuid::nil(),
            attributes: a,
        }
    }

    fn mailbox() -> Mailbox {
        Mailbox {
            user_principal_name: Some("Ann@corp.example".into()),
            primary_smtp_address: Some("ann@contoso.com".into()),
            email_addresses: vec![
                "SMTP:ann@contoso.com".into(),
                "smtp:ann.old@contoso.com".into(),
                "X500:/o=x/cn=ann".into(),
            ],
            ..Mailbox::default()
        }
    }

    #[test]
    fn a_witness_the_user_cannot_write_must_agree() {
        let m = mailbox();
        let key = "msDS-ExternalDirectoryObjectId = \"User_1\"";
        assert!(
            corroborate_key_match(
                &m,
                &object(&[("userPrincipalName", &["ann@CORP.example"])]),
                key
            )
            .is_ok_and(|how| how.contains("userPrincipalName"))
        );
        assert!(
            corroborate_key_match(
                &m,
                &object(&[("proxyAddresses", &["SMTP:ann.old@Contoso.com"])]),
                key
            )
            .is_ok_and(|how| how.contains("ann.old@contoso.com"))
        );
        assert!(corroborate_key_match(&m, &object(&[("mail", &["ann@contoso.com"])]), key).is_ok());
        // An attacker's own object: its own UPN and addresses; an X500 value is no witness.
        let attacker = object(&[
            ("userPrincipalName", &["mallory@corp.example"]),
            (
                "proxyAddresses",
                &["SMTP:mallory@contoso.com", "X500:/o=x/cn=ann"],
            ),
            ("mail", &["mallory@contoso.com"]),
        ]);
        let refused = corroborate_key_match(&m, &attacker, key).expect_err("no witness");
        assert_eq!(refused.code, OutcomeCode::UncorroboratedMatchKey);
        assert!(
            refused.reason.contains("mallory@corp.example")
                && refused.reason.contains("Ann@corp.example")
                && refused.reason.contains("nothing written"),
            "{}",
            refused.reason
        );
        // No UPN on either side and no address: refused.
        assert!(corroborate_key_match(&Mailbox::default(), &object(&[]), key).is_err());
    }
}
