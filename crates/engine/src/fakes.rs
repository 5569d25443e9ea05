//! In-memory fakes of the ports for fast unit tests (the real adapters are tested end to end
//! against a lab DC and exo-sim in the CLI's integration tests).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use exo_writeback_core::directory::{AttrValue, Attributes, DirectoryObject, ModOp, ObjectModify};
use exo_writeback_core::mailbox::Mailbox;
use exo_writeback_core::schema::Schema;
use futures::StreamExt;
use uuid::Uuid;

use crate::ports::{Directory, DirectoryError, MailboxSource, MailboxStream, SourceError};

/// Mailboxes held in memory; cloned handles share them.
#[derive(Clone, Default)]
pub struct FakeSource {
    pub mailboxes: Arc<Mutex<Vec<Mailbox>>>,
    /// When set, streams end with a fatal error after this many mailboxes.
    pub fail_after: Arc<Mutex<Option<usize>>>,
    /// Records that cannot be read (per-record errors): every stream starts with them, and
    /// `get` of their ExternalDirectoryObjectId answers with them.
    pub unreadable: Arc<Mutex<Vec<SourceError>>>,
    /// Streams opened (`all` and `changed_since`).
    pub streams: Arc<AtomicUsize>,
}

impl FakeSource {
    pub fn set(&self, m: Mailbox) {
        let mut all = self.mailboxes.lock().expect("lock");
        match all
            .iter_mut()
            .find(|x| x.external_directory_object_id == m.external_directory_object_id)
        {
            Some(slot) => *slot = m,
            None => all.push(m),
        }
    }
}

impl MailboxSource for FakeSource {
    fn all(&self) -> MailboxStream {
        self.streams.fetch_add(1, Ordering::SeqCst);
        let all = self.mailboxes.lock().expect("lock").clone();
        let mut items: Vec<Result<Mailbox, SourceError>> = self
            .unreadable
            .lock()
            .expect("lock")
            .iter()
            .cloned()
            .map(Err)
            .collect();
        items.extend(all.into_iter().map(Ok));
        if let Some(n) = *self.fail_after.lock().expect("lock") {
            items.truncate(n);
            items.push(Err(SourceError {
                message: "connection reset".into(),
                per_record: false,
                record: None,
            }));
        }
        futures::stream::iter(items).boxed()
    }
    fn changed_since(
        &self,
        since: jiff::Timestamp,
        overlap: jiff::SignedDuration,
    ) -> MailboxStream {
        self.streams.fetch_add(1, Ordering::SeqCst);
        let from = since.checked_sub(overlap).unwrap_or(jiff::Timestamp::MIN);
        let all = self.mailboxes.lock().expect("lock").clone();
        let unreadable: Vec<Result<Mailbox, SourceError>> = self
            .unreadable
            .lock()
            .expect("lock")
            .iter()
            .cloned()
            .map(Err)
            .collect();
        futures::stream::iter(
            unreadable.into_iter().chain(
                all.into_iter()
                    .filter(move |m| m.when_changed_utc.is_some_and(|t| t >= from))
                    .map(Ok),
            ),
        )
        .boxed()
    }
    async fn get(&self, identity: &str) -> Result<Option<Mailbox>, SourceError> {
        if let Some(e) = self.unreadable.lock().expect("lock").iter().find(|e| {
            e.record
                .as_ref()
                .and_then(|r| r.external_directory_object_id.as_deref())
                == Some(identity)
        }) {
            return Err(e.clone());
        }
        let all = self.mailboxes.lock().expect("lock");
        Ok(all
            .iter()
            .find(|m| {
                m.external_directory_object_id.as_deref() == Some(identity)
                    || m.primary_smtp_address
                        .as_deref()
                        .is_some_and(|p| p.eq_ignore_ascii_case(identity))
                    || m.user_principal_name
                        .as_deref()
                        .is_some_and(|p| p.eq_ignore_ascii_case(identity))
            })
            .cloned())
    }
}

/// A directory in memory with the lab's Exchange schema; modifies are applied with
/// permissive-modify semantics. `fail_dns` makes modifies of those DNs fail with a result code.
#[derive(Clone)]
pub struct FakeDirectory {
    pub objects: Arc<Mutex<BTreeMap<Uuid, DirectoryObject>>>,
    pub schema: Arc<Schema>,
    pub fail_dns: Arc<Mutex<BTreeMap<String, u32>>>,
    pub modifies: Arc<Mutex<Vec<ObjectModify>>>,
    /// `find_by_attribute` calls (match searches per mailbox).
    pub searches: Arc<AtomicUsize>,
    /// `scan_match_keys` calls.
    pub scans: Arc<AtomicUsize>,
    /// When set, `scan_match_keys` fails (as a directory that cannot list its keys).
    pub no_scan: Arc<Mutex<bool>>,
}

pub fn lab_schema() -> Schema {
    exo_writeback_core::schema::exchange_lab_schema()
}

impl FakeDirectory {
    pub fn new() -> Self {
        FakeDirectory {
            objects: Arc::default(),
            schema: Arc::new(lab_schema()),
            fail_dns: Arc::default(),
            modifies: Arc::default(),
            searches: Arc::default(),
            scans: Arc::default(),
            no_scan: Arc::default(),
        }
    }
    pub fn add_user(&self, cn: &str, edoid: &str, attrs: &[(&str, &[&str])]) -> Uuid {
        let guid = Uuid::new_v4();
        let mut a = Attributes::new();
        a.insert(
            "msDS-ExternalDirectoryObjectId",
            vec![AttrValue::Text(format!("User_{edoid}"))],
        );
        for (name, values) in attrs {
            a.insert(
                name,
                values
                    .iter()
                    .map(|v| AttrValue::Text(v.to_string()))
                    .collect(),
            );
        }
        self.objects.lock().expect("lock").insert(
            guid,
            DirectoryObject {
                dn: format!("CN={cn},OU=Mailboxes,DC=lab,DC=test"),
                object_guid: guid,
                attributes: a,
            },
        );
        guid
    }
    pub fn get(&self, guid: &Uuid) -> DirectoryObject {
        self.objects.lock().expect("lock")[guid].clone()
    }
    pub fn values(&self, guid: &Uuid, attr: &str) -> Vec<String> {
        self.get(guid)
            .attributes
            .get(attr)
            .iter()
            .filter_map(|v| v.as_text().map(String::from))
            .collect()
    }
    fn project(obj: &DirectoryObject, _attrs: &[String]) -> DirectoryObject {
        obj.clone()
    }
}

impl Directory for FakeDirectory {
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
        attrs: &[String],
    ) -> Result<Vec<DirectoryObject>, DirectoryError> {
        self.searches.fetch_add(1, Ordering::SeqCst);
        let objects = self.objects.lock().expect("lock");
        Ok(objects
            .values()
            .filter(|o| {
                if attribute.eq_ignore_ascii_case("objectGUID") {
                    return value.as_bytes()
                        == exo_writeback_core::guid::object_guid_bytes(&o.object_guid);
                }
                // Unicode-string attributes compare case-insensitively in AD.
                o.attributes
                    .get(attribute)
                    .iter()
                    .any(|v| match (v, value) {
                        (AttrValue::Text(a), AttrValue::Text(b)) => {
                            a.to_lowercase() == b.to_lowercase()
                        }
                        _ => v == value,
                    })
            })
            .map(|o| Self::project(o, attrs))
            .collect())
    }
    async fn read_by_guid(
        &self,
        guid: &Uuid,
        attrs: &[String],
    ) -> Result<Option<DirectoryObject>, DirectoryError> {
        Ok(self
            .objects
            .lock()
            .expect("lock")
            .get(guid)
            .map(|o| Self::project(o, attrs)))
    }
    async fn read_by_dn(
        &self,
        dn: &str,
        attrs: &[String],
    ) -> Result<Option<DirectoryObject>, DirectoryError> {
        Ok(self
            .objects
            .lock()
            .expect("lock")
            .values()
            .find(|o| o.dn.eq_ignore_ascii_case(dn))
            .map(|o| Self::project(o, attrs)))
    }
    async fn modify(&self, modify: &ObjectModify) -> Result<(), DirectoryError> {
        if let Some(code) = self.fail_dns.lock().expect("lock").get(&modify.dn) {
            return Err(DirectoryError::new(format!(
                "modifying {} failed: LDAP result {code}",
                modify.dn
            )));
        }
        let mut objects = self.objects.lock().expect("lock");
        let Some(obj) = objects.values_mut().find(|o| o.dn == modify.dn) else {
            return Err(DirectoryError {
                result: Some("LDAP result 32".into()),
                ..DirectoryError::new(format!("no such object {}", modify.dn))
            });
        };
        for c in &modify.changes {
            let mut values = obj.attributes.get(&c.attribute).to_vec();
            match c.op {
                ModOp::Replace => values = c.values.clone(),
                ModOp::Delete if c.values.is_empty() => values.clear(),
                ModOp::Delete => values.retain(|v| !c.values.contains(v)),
                ModOp::Add => {
                    for v in &c.values {
                        if !values.contains(v) {
                            values.push(v.clone());
                        }
                    }
                }
            }
            obj.attributes.insert(&c.attribute, values);
        }
        self.modifies.lock().expect("lock").push(modify.clone());
        Ok(())
    }
    async fn address_holders(
        &self,
        addresses: &[String],
    ) -> Result<Vec<(String, String)>, DirectoryError> {
        let want: Vec<String> = addresses
            .iter()
            .map(|a| format!("smtp:{}", a.to_lowercase()))
            .collect();
        let objects = self.objects.lock().expect("lock");
        Ok(objects
            .values()
            .flat_map(|o| {
                o.attributes
                    .get("proxyAddresses")
                    .iter()
                    .filter_map(|v| v.as_text())
                    .filter(|v| want.contains(&v.to_lowercase()))
                    .map(|v| (v.to_string(), o.dn.clone()))
                    .collect::<Vec<_>>()
            })
            .collect())
    }
    async fn scan_match_keys(
        &self,
        attributes: &[&str],
        on_object: &mut (dyn FnMut(DirectoryObject) + Send),
    ) -> Result<(), DirectoryError> {
        if *self.no_scan.lock().expect("lock") {
            return Err(DirectoryError::new("scan refused"));
        }
        self.scans.fetch_add(1, Ordering::SeqCst);
        let objects: Vec<DirectoryObject> = self
            .objects
            .lock()
            .expect("lock")
            .values()
            .cloned()
            .collect();
        for o in objects {
            let every = attributes
                .iter()
                .any(|a| a.eq_ignore_ascii_case("objectGUID"));
            if every || attributes.iter().any(|a| !o.attributes.get(a).is_empty()) {
                let mut keys = exo_writeback_core::directory::Attributes::new();
                for a in attributes {
                    let values = o.attributes.get(a);
                    if !values.is_empty() {
                        keys.insert(a, values.to_vec());
                    }
                }
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
