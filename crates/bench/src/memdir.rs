//! An in-memory LDAP target for `scale`: holds one user object per directory-synchronised
//! mailbox of the emulator's generator (matching by objectGUID, as the DC would), indexed
//! like AD's indexed attributes so a lookup costs what an indexed search costs, not a scan.
//! Modifies are checked (the DN must exist) and counted, not stored: the target's own storage
//! is the DC's memory, not the agent's.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use exo_sim::SimMailbox;
use exo_writeback_core::directory::{AttrValue, Attributes, DirectoryObject, ObjectModify};
use exo_writeback_core::schema::Schema;
use exo_writeback_engine::{Directory, DirectoryError};
use uuid::Uuid;

/// Attributes with a value index (lower-cased text, or raw bytes).
const INDEXED: [&str; 4] = [
    "msds-externaldirectoryobjectid",
    "ms-ds-consistencyguid",
    "proxyaddresses",
    "mail",
];

pub struct MemDirectory {
    objects: HashMap<Uuid, DirectoryObject>,
    by_dn: HashMap<String, Uuid>,
    by_value: HashMap<(String, Vec<u8>), Vec<Uuid>>,
    schema: Arc<Schema>,
    pub modifies: AtomicU64,
}

fn key(attr: &str, v: &AttrValue) -> (String, Vec<u8>) {
    let bytes = match v {
        AttrValue::Text(t) => t.to_lowercase().into_bytes(),
        AttrValue::Bytes(b) => b.clone(),
    };
    (attr.to_ascii_lowercase(), bytes)
}

impl MemDirectory {
    /// The object AD holds for each dir-synced mailbox, before writeback: the primary address
    /// only (so every cloud-managed mailbox needs a write).
    pub fn from_mailboxes(mailboxes: impl Iterator<Item = SimMailbox>) -> MemDirectory {
        let mut d = MemDirectory {
            objects: HashMap::new(),
            by_dn: HashMap::new(),
            by_value: HashMap::new(),
            schema: Arc::new(schema()),
            modifies: AtomicU64::new(0),
        };
        for m in mailboxes {
            let Ok(guid) = exo_writeback_core::guid::uuid_from_immutable_id(&m.immutable_id) else {
                continue;
            };
            let dn = format!("CN={},OU=Mailboxes,DC=lab,DC=example,DC=test", m.alias);
            let mut a = Attributes::new();
            let t = |s: &str| vec![AttrValue::Text(s.to_string())];
            a.insert(
                "objectClass",
                ["top", "person", "organizationalPerson", "user"]
                    .iter()
                    .map(|s| AttrValue::Text(s.to_string()))
                    .collect(),
            );
            a.insert("mail", t(&m.windows_email_address));
            a.insert(
                "proxyAddresses",
                t(&format!("SMTP:{}", m.windows_email_address)),
            );
            a.insert("userPrincipalName", t(&m.user_principal_name));
            a.insert("mailNickname", t(&m.alias));
            for (name, values) in a.iter() {
                if INDEXED.contains(&name.to_ascii_lowercase().as_str()) {
                    for v in values {
                        d.by_value.entry(key(name, v)).or_default().push(guid);
                    }
                }
            }
            d.by_dn.insert(dn.to_ascii_lowercase(), guid);
            d.objects.insert(
                guid,
                DirectoryObject {
                    dn,
                    object_guid: guid,
                    attributes: a,
                },
            );
        }
        d
    }

    pub fn len(&self) -> usize {
        self.objects.len()
    }
}

impl Directory for MemDirectory {
    async fn schema(&self) -> Result<Arc<Schema>, DirectoryError> {
        Ok(self.schema.clone())
    }
    async fn refresh_schema(&self) -> Result<Arc<Schema>, DirectoryError> {
        Ok(self.schema.clone())
    }
    async fn find_by_attribute(
        &self,
        attribute: &str,
        value: &AttrValue,
        _attributes: &[String],
    ) -> Result<Vec<DirectoryObject>, DirectoryError> {
        if attribute.eq_ignore_ascii_case("objectGUID") {
            let found = exo_writeback_core::guid::uuid_from_object_guid(value.as_bytes())
                .ok()
                .and_then(|g| self.objects.get(&g).cloned());
            return Ok(found.into_iter().collect());
        }
        if INDEXED.contains(&attribute.to_ascii_lowercase().as_str()) {
            return Ok(self
                .by_value
                .get(&key(attribute, value))
                .into_iter()
                .flatten()
                .filter_map(|g| self.objects.get(g).cloned())
                .collect());
        }
        Err(DirectoryError::new(format!(
            "the benchmark's in-memory directory has no index on {attribute}"
        )))
    }
    async fn read_by_guid(
        &self,
        guid: &Uuid,
        _attributes: &[String],
    ) -> Result<Option<DirectoryObject>, DirectoryError> {
        Ok(self.objects.get(guid).cloned())
    }
    async fn read_by_dn(
        &self,
        dn: &str,
        _attributes: &[String],
    ) -> Result<Option<DirectoryObject>, DirectoryError> {
        Ok(self
            .by_dn
            .get(&dn.to_ascii_lowercase())
            .and_then(|g| self.objects.get(g).cloned()))
    }
    async fn modify(&self, modify: &ObjectModify) -> Result<(), DirectoryError> {
        if !self.by_dn.contains_key(&modify.dn.to_ascii_lowercase()) {
            return Err(DirectoryError::new(format!("no such object {}", modify.dn)));
        }
        self.modifies.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
    async fn address_holders(
        &self,
        addresses: &[String],
    ) -> Result<Vec<(String, String)>, DirectoryError> {
        let mut out = Vec::new();
        for address in addresses {
            for (attr, value) in [
                ("proxyAddresses", format!("smtp:{address}")),
                ("mail", address.to_string()),
            ] {
                for g in self
                    .by_value
                    .get(&key(attr, &AttrValue::Text(value.clone())))
                    .into_iter()
                    .flatten()
                {
                    if let Some(o) = self.objects.get(g) {
                        out.push((value.clone(), o.dn.clone()));
                    }
                }
            }
        }
        Ok(out)
    }
    async fn scan_match_keys(
        &self,
        attributes: &[&str],
        on_object: &mut (dyn FnMut(DirectoryObject) + Send),
    ) -> Result<(), DirectoryError> {
        let every = attributes
            .iter()
            .any(|a| a.eq_ignore_ascii_case("objectGUID"));
        for o in self.objects.values() {
            let mut keys = Attributes::new();
            for a in attributes {
                let values = o.attributes.get(a);
                if !values.is_empty() {
                    keys.insert(a, values.to_vec());
                }
            }
            if every || keys.iter().next().is_some() {
                on_object(DirectoryObject {
                    dn: o.dn.clone(),
                    object_guid: o.object_guid,
                    attributes: keys,
                });
            }
        }
        Ok(())
    }
}

/// The lab schema, as the planner sees it on the lab DC.
fn schema() -> Schema {
    exo_writeback_core::schema::exchange_lab_schema()
}
