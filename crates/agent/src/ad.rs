//! Active Directory as the engine's directory, over the `ad` client.

use std::sync::Arc;

use exo_writeback_ad::{AdConnection, AdError};
use exo_writeback_core::directory::{AttrValue, DirectoryObject, ObjectModify};
use exo_writeback_core::drift::{ChangeOrigin, parse_repl_attr_metadata};
use exo_writeback_core::schema::Schema;
use exo_writeback_engine::{Directory, DirectoryError, DirectoryErrorKind, UnreadableAttribute};
use uuid::Uuid;

/// AD as the engine's directory.
pub struct AdDirectory(pub AdConnection);

/// An AD error as the engine sees it: its kind (unreachable, schema, refused) and, when the
/// message does not say it, the LDAP result code that leads an object's failure reason.
pub fn directory_error(e: AdError) -> DirectoryError {
    let code = match &e {
        AdError::Ldap { code, .. } | AdError::BindRefused { code, .. } => Some(*code),
        AdError::InsufficientAccess { .. } => Some(50),
        AdError::NoSuchObject { .. } => Some(32),
        _ => None,
    };
    let kind = if matches!(
        e,
        AdError::Unreachable { .. } | AdError::ConnectionLost { .. } | AdError::Timeout { .. }
    ) {
        DirectoryErrorKind::Unreachable
    } else if matches!(code, Some(16 | 17 | 19 | 21 | 65)) {
        // undefinedAttributeType, constraintViolation, invalidAttributeSyntax,
        // objectClassViolation …: the schema may have changed.
        DirectoryErrorKind::Schema
    } else {
        DirectoryErrorKind::Refused
    };
    let message = e.to_string();
    let result = code
        .filter(|c| !message.contains(&format!("result {c}")))
        .map(|c| format!("LDAP result {c}"));
    DirectoryError {
        message,
        result,
        kind,
    }
}

fn refs(attrs: &[String]) -> Vec<&str> {
    attrs.iter().map(String::as_str).collect()
}

impl Directory for AdDirectory {
    async fn schema(&self) -> Result<Arc<Schema>, DirectoryError> {
        self.0.schema().await.map_err(directory_error)
    }
    async fn refresh_schema(&self) -> Result<Arc<Schema>, DirectoryError> {
        self.0.refresh_schema().await.map_err(directory_error)
    }
    async fn find_by_attribute(
        &self,
        attribute: &str,
        value: &AttrValue,
        attributes: &[String],
    ) -> Result<Vec<DirectoryObject>, DirectoryError> {
        self.0
            .find_by_attribute(attribute, value, &refs(attributes))
            .await
            .map_err(directory_error)
    }
    async fn read_by_guid(
        &self,
        guid: &Uuid,
        attributes: &[String],
    ) -> Result<Option<DirectoryObject>, DirectoryError> {
        self.0
            .read_by_guid(guid, &refs(attributes))
            .await
            .map_err(directory_error)
    }
    async fn read_by_dn(
        &self,
        dn: &str,
        attributes: &[String],
    ) -> Result<Option<DirectoryObject>, DirectoryError> {
        self.0
            .read_by_dn(dn, &refs(attributes))
            .await
            .map_err(directory_error)
    }
    async fn modify(&self, modify: &ObjectModify) -> Result<(), DirectoryError> {
        self.0.modify(modify).await.map_err(directory_error)?;
        crate::test_pause::after_modify().await;
        Ok(())
    }
    async fn address_holders(
        &self,
        addresses: &[String],
    ) -> Result<Vec<(String, String)>, DirectoryError> {
        let attrs = ["proxyAddresses", "mail"];
        // One search per ADDRESS_CHUNK addresses: (|(proxyAddresses=smtp:a)(mail=a)(…)…), every
        // value escaped by find_any; a mailbox with thousands of aliases never sends one huge
        // filter (servers bound request sizes and drop the connection beyond them).
        // proxyAddresses and mail compare case-insensitively in AD; the server's answer decides
        // who holds what, the comparison below only says which of the asked values an object
        // holds.
        const ADDRESS_CHUNK: usize = 100;
        let mut out = Vec::new();
        for chunk in addresses.chunks(ADDRESS_CHUNK) {
            let mut equalities = Vec::new();
            for address in chunk {
                equalities.push(("proxyAddresses", AttrValue::Text(format!("smtp:{address}"))));
                equalities.push(("mail", AttrValue::Text(address.clone())));
            }
            let found = self
                .0
                .find_any(&equalities, &attrs)
                .await
                .map_err(directory_error)?;
            for object in found {
                let held = |attribute: &str| -> std::collections::HashSet<String> {
                    object
                        .attributes
                        .get(attribute)
                        .iter()
                        .filter_map(|v| v.as_text())
                        .map(str::to_lowercase)
                        .collect()
                };
                let (proxies, mails) = (held("proxyAddresses"), held("mail"));
                let mut named = false;
                for (attribute, value) in &equalities {
                    let AttrValue::Text(value) = value else {
                        continue;
                    };
                    let set = if *attribute == "mail" {
                        &mails
                    } else {
                        &proxies
                    };
                    if set.contains(&value.to_lowercase()) {
                        out.push((value.clone(), object.dn.clone()));
                        named = true;
                    }
                }
                if !named {
                    // The server matched by a comparison this side does not reproduce (Unicode
                    // case folding): count the object as holding every asked address of the
                    // chunk rather than miss a conflict.
                    out.extend(
                        chunk
                            .iter()
                            .map(|a| (format!("smtp:{a}"), object.dn.clone())),
                    );
                }
            }
        }
        Ok(out)
    }
    async fn unreadable_attributes(
        &self,
        attributes: &[String],
    ) -> Result<Vec<UnreadableAttribute>, DirectoryError> {
        let rights = crate::read_rights::probe(&self.0, attributes)
            .await
            .map_err(directory_error)?;
        if let Some(why) = rights.unverified {
            return Err(DirectoryError::new(why));
        }
        Ok(rights
            .unreadable
            .into_iter()
            .map(|u| UnreadableAttribute {
                attribute: u.attribute,
                message: u.message,
            })
            .collect())
    }
    async fn scan_match_keys(
        &self,
        attributes: &[&str],
        on_object: &mut (dyn FnMut(DirectoryObject) + Send),
    ) -> Result<(), DirectoryError> {
        self.0
            .scan_present(attributes, |page| {
                page.into_iter().for_each(&mut *on_object);
                Ok(())
            })
            .await
            .map_err(directory_error)
    }
    async fn attribute_origins(
        &self,
        dn: &str,
        attributes: &[String],
    ) -> Result<Vec<ChangeOrigin>, DirectoryError> {
        // A constructed attribute (MS-ADTS): one XML value per attribute of the object. Samba
        // does not construct it; the answer is then empty and the drift says so.
        const META: &str = "msDS-ReplAttributeMetaData";
        let Some(object) = self
            .0
            .read_by_dn(dn, &[META])
            .await
            .map_err(directory_error)?
        else {
            return Ok(Vec::new());
        };
        Ok(object
            .attributes
            .get(META)
            .iter()
            .filter_map(AttrValue::as_text)
            .filter_map(parse_repl_attr_metadata)
            .filter(|o| {
                attributes
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(&o.attribute))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ad_errors_are_classified_here_for_the_engine() {
        let lost = AdError::ConnectionLost {
            address: "ldaps://dc".into(),
            operation: "modify",
            reason: "reset".into(),
        };
        assert_eq!(directory_error(lost).kind, DirectoryErrorKind::Unreachable);
        let schema = AdError::Ldap {
            operation: "modifying",
            dn: "CN=a".into(),
            code: 19,
            code_name: "constraintViolation",
            diagnostic: "too long".into(),
        };
        let e = directory_error(schema);
        assert_eq!(e.kind, DirectoryErrorKind::Schema);
        assert_eq!(e.result, None, "the message names the result already");
        assert!(
            e.reason()
                .starts_with("modifying CN=a failed: LDAP result 19")
        );
        let gone = directory_error(AdError::NoSuchObject { dn: "CN=b".into() });
        assert_eq!(gone.kind, DirectoryErrorKind::Refused);
        assert_eq!(gone.reason(), "LDAP result 32: no such object: CN=b");
    }
}
