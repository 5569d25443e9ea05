//! In-memory doubles of the ports, for the engine's unit tests and for the crates that drive an
//! engine without real services (the agent's scheduler tests, the benchmark's scale runs) — behind
//! the `testing` feature. The real adapters are tested end to end against a lab DC and exo-sim.
//!
//! [`FakeDirectory`] keeps AD's comparison rules (Unicode-string values case-insensitively,
//! binary values exactly) and indexes every value, so a lookup costs what an indexed AD search
//! costs, not a scan: the benchmark runs it with hundreds of thousands of objects.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use exo_writeback_core::directory::{AttrValue, Attributes, DirectoryObject, ModOp, ObjectModify};
use exo_writeback_core::schema::Schema;
use uuid::Uuid;

mod fixtures;
mod hooked;
mod source;

pub use fixtures::{Users, mailbox, users};
pub use hooked::{Hook, Hooked};
pub use source::FakeSource;

use crate::ports::{Directory, DirectoryError, UnreadableAttribute};

/// A value as AD compares it: the attribute (case-insensitive), and a Unicode string folded to
/// lower case or a binary value as it is.
type ValueKey = (String, bool, Vec<u8>);

fn value_key(attribute: &str, value: &AttrValue) -> ValueKey {
    match value {
        AttrValue::Text(t) => (
            attribute.to_ascii_lowercase(),
            true,
            t.to_lowercase().into_bytes(),
        ),
        AttrValue::Bytes(b) => (attribute.to_ascii_lowercase(), false, b.clone()),
    }
}

/// The objects, by objectGUID, with their indexes, and the change counter: each insert
/// (creation, a modify, a setter, a move) and each deletion gives the object the next USN, as
/// AD's `uSNChanged` (a deleted object keeps its last one, as a tombstone does).
#[derive(Default)]
struct Objects {
    by_guid: BTreeMap<Uuid, DirectoryObject>,
    by_dn: HashMap<String, Uuid>,
    by_value: HashMap<ValueKey, BTreeSet<Uuid>>,
    usn: u64,
    usn_changed: HashMap<Uuid, u64>,
}

impl Objects {
    fn keys(obj: &DirectoryObject) -> Vec<ValueKey> {
        obj.attributes
            .iter()
            .flat_map(|(name, values)| values.iter().map(move |v| value_key(name, v)))
            .collect()
    }

    fn remove(&mut self, guid: &Uuid) -> Option<DirectoryObject> {
        let old = self.by_guid.remove(guid)?;
        self.by_dn.remove(&old.dn.to_lowercase());
        for key in Self::keys(&old) {
            if let Some(set) = self.by_value.get_mut(&key) {
                set.remove(guid);
                if set.is_empty() {
                    self.by_value.remove(&key);
                }
            }
        }
        Some(old)
    }

    /// The next USN, to `guid`.
    fn changed(&mut self, guid: Uuid) {
        self.usn += 1;
        self.usn_changed.insert(guid, self.usn);
    }

    fn insert(&mut self, obj: DirectoryObject) {
        self.remove(&obj.object_guid);
        self.changed(obj.object_guid);
        self.by_dn.insert(obj.dn.to_lowercase(), obj.object_guid);
        for key in Self::keys(&obj) {
            self.by_value
                .entry(key)
                .or_default()
                .insert(obj.object_guid);
        }
        self.by_guid.insert(obj.object_guid, obj);
    }

    /// The objects holding `value` in `attribute`, in objectGUID order.
    fn holding(&self, attribute: &str, value: &AttrValue) -> Vec<&DirectoryObject> {
        self.by_value
            .get(&value_key(attribute, value))
            .into_iter()
            .flatten()
            .filter_map(|g| self.by_guid.get(g))
            .collect()
    }
}

/// A directory in memory with the lab's Exchange schema; modifies are applied with
/// permissive-modify semantics. Cloned handles share the objects. `fail_dns` makes modifies of
/// those DNs fail with a result code.
#[derive(Clone)]
pub struct FakeDirectory {
    objects: Arc<Mutex<Objects>>,
    pub schema: Arc<Schema>,
    pub fail_dns: Arc<Mutex<BTreeMap<String, u32>>>,
    /// The modifies applied, in order (kept unless [`FakeDirectory::forget_modifies`]).
    pub modifies: Arc<Mutex<Vec<ObjectModify>>>,
    /// Modifies applied, counted.
    pub applied: Arc<AtomicUsize>,
    keep_modifies: Arc<AtomicBool>,
    /// `find_by_attribute` calls (match searches per mailbox).
    pub searches: Arc<AtomicUsize>,
    /// `scan_match_keys` calls.
    pub scans: Arc<AtomicUsize>,
    /// Objects read by objectGUID (`read_by_guid`, `read_by_guids`).
    pub reads: Arc<AtomicUsize>,
    /// Address scans served (`scan_addresses`).
    pub address_scans: Arc<AtomicUsize>,
    /// Attributes the account "may not read": left out of every answer, as AD does, and
    /// reported by `unreadable_attributes`.
    pub unreadable: Arc<Mutex<Vec<String>>>,
    /// The samples each `unreadable_attributes` call was given, in order.
    pub probes: Arc<Mutex<Vec<Vec<Uuid>>>>,
    /// When set, `scan_match_keys` fails (as a directory that cannot list its keys).
    pub no_scan: Arc<Mutex<bool>>,
    /// The DC serving the directory, as its change marks name it: a test moves it to another
    /// DC by changing it. `None`: the directory keeps no change mark.
    pub dc: Arc<Mutex<Option<String>>>,
    /// `changed_since` calls, and the objectGUIDs they asked about.
    pub change_checks: Arc<AtomicUsize>,
    pub checked: Arc<AtomicUsize>,
}

pub fn lab_schema() -> Schema {
    exo_writeback_core::schema::exchange_lab_schema()
}

impl Default for FakeDirectory {
    fn default() -> Self {
        FakeDirectory::new()
    }
}

impl FakeDirectory {
    pub fn new() -> Self {
        FakeDirectory {
            objects: Arc::default(),
            schema: Arc::new(lab_schema()),
            fail_dns: Arc::default(),
            modifies: Arc::default(),
            applied: Arc::default(),
            keep_modifies: Arc::new(AtomicBool::new(true)),
            searches: Arc::default(),
            scans: Arc::default(),
            reads: Arc::default(),
            address_scans: Arc::default(),
            no_scan: Arc::default(),
            unreadable: Arc::default(),
            probes: Arc::default(),
            dc: Arc::new(Mutex::new(Some("fake-dc".into()))),
            change_checks: Arc::default(),
            checked: Arc::default(),
        }
    }

    /// `obj` as the account sees it: without the attributes it may not read.
    fn visible(&self, mut obj: DirectoryObject) -> DirectoryObject {
        for a in self.unreadable.lock().expect("lock").iter() {
            obj.attributes.insert(a, Vec::new());
        }
        obj
    }

    fn objects(&self) -> MutexGuard<'_, Objects> {
        self.objects.lock().expect("lock")
    }

    /// Count modifies without keeping them (large runs).
    pub fn forget_modifies(&self) {
        self.keep_modifies.store(false, Ordering::SeqCst);
    }

    /// A synced user `CN=<cn>,OU=Mailboxes,DC=lab,DC=test` whose
    /// msDS-ExternalDirectoryObjectId is `User_<edoid>`, holding `attrs` too.
    pub fn add_user(&self, cn: &str, edoid: &str, attrs: &[(&str, &[&str])]) -> Uuid {
        let mut a = Attributes::new();
        a.insert(
            "msDS-ExternalDirectoryObjectId",
            vec![AttrValue::Text(format!("User_{edoid}"))],
        );
        // The UPN directory sync gave the mailbox ([`mailbox`]): the witness a match by the
        // key alone needs.
        a.insert(
            "userPrincipalName",
            vec![AttrValue::Text(format!("{cn}@contoso.com"))],
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
        self.add(cn, a)
    }

    /// An object `CN=<cn>,OU=Mailboxes,DC=lab,DC=test` with these attributes (a new
    /// objectGUID).
    pub fn add(&self, cn: &str, attributes: Attributes) -> Uuid {
        let guid = Uuid::new_v4();
        self.insert(DirectoryObject {
            dn: format!("CN={cn},OU=Mailboxes,DC=lab,DC=test"),
            object_guid: guid,
            attributes,
        });
        guid
    }

    /// Whether an object has this DN (as a DC's base lookup, without copying the object).
    pub fn holds_dn(&self, dn: &str) -> bool {
        self.objects().by_dn.contains_key(&dn.to_lowercase())
    }

    /// Adds or replaces an object.
    pub fn insert(&self, obj: DirectoryObject) {
        self.objects().insert(obj);
    }

    /// Sets one attribute of an object by hand (an administrator's edit, not a modify).
    pub fn set(&self, guid: &Uuid, attribute: &str, values: Vec<AttrValue>) {
        let mut objects = self.objects();
        if let Some(mut obj) = objects.by_guid.get(guid).cloned() {
            obj.attributes.insert(attribute, values);
            objects.insert(obj);
        }
    }

    /// Deletes an object.
    pub fn remove(&self, guid: &Uuid) {
        let mut objects = self.objects();
        if objects.remove(guid).is_some() {
            objects.changed(*guid);
        }
    }

    /// Moves an object to `dn` (a rename or a move out of the search scope: a change).
    pub fn move_to(&self, guid: &Uuid, dn: &str) {
        let mut objects = self.objects();
        if let Some(mut obj) = objects.by_guid.get(guid).cloned() {
            obj.dn = dn.to_string();
            objects.insert(obj);
        }
    }

    pub fn len(&self) -> usize {
        self.objects().by_guid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, guid: &Uuid) -> DirectoryObject {
        self.objects().by_guid[guid].clone()
    }

    pub fn values(&self, guid: &Uuid, attr: &str) -> Vec<String> {
        self.get(guid)
            .attributes
            .get(attr)
            .iter()
            .filter_map(|v| v.as_text().map(String::from))
            .collect()
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
        _attrs: &[String],
    ) -> Result<Vec<DirectoryObject>, DirectoryError> {
        self.searches.fetch_add(1, Ordering::SeqCst);
        let objects = self.objects();
        if attribute.eq_ignore_ascii_case("objectGUID") {
            let found = exo_writeback_core::guid::uuid_from_object_guid(value.as_bytes())
                .ok()
                .and_then(|g| objects.by_guid.get(&g).cloned());
            return Ok(found.into_iter().collect());
        }
        Ok(objects
            .holding(attribute, value)
            .into_iter()
            .map(|o| self.visible(o.clone()))
            .collect())
    }
    async fn read_by_guid(
        &self,
        guid: &Uuid,
        _attrs: &[String],
    ) -> Result<Option<DirectoryObject>, DirectoryError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        let found = self.objects().by_guid.get(guid).cloned();
        Ok(found.map(|o| self.visible(o)))
    }
    async fn read_by_dn(
        &self,
        dn: &str,
        _attrs: &[String],
    ) -> Result<Option<DirectoryObject>, DirectoryError> {
        let found = {
            let objects = self.objects();
            objects
                .by_dn
                .get(&dn.to_lowercase())
                .and_then(|g| objects.by_guid.get(g))
                .cloned()
        };
        Ok(found.map(|o| self.visible(o)))
    }
    async fn unreadable_attributes(
        &self,
        attributes: &[String],
        samples: &[Uuid],
    ) -> Result<Vec<UnreadableAttribute>, DirectoryError> {
        self.probes.lock().expect("lock").push(samples.to_vec());
        let hidden = self.unreadable.lock().expect("lock").clone();
        Ok(attributes
            .iter()
            .filter(|a| hidden.iter().any(|h| h.eq_ignore_ascii_case(a)))
            .map(|a| UnreadableAttribute {
                attribute: a.clone(),
                message: format!("the account may not read {a}"),
            })
            .collect())
    }
    async fn modify(&self, modify: &ObjectModify) -> Result<(), DirectoryError> {
        if let Some(code) = self.fail_dns.lock().expect("lock").get(&modify.dn) {
            return Err(DirectoryError::new(format!(
                "modifying {} failed: LDAP result {code}",
                modify.dn
            )));
        }
        let mut objects = self.objects();
        let Some(mut obj) = objects
            .by_dn
            .get(&modify.dn.to_lowercase())
            .and_then(|g| objects.by_guid.get(g))
            .cloned()
        else {
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
        objects.insert(obj);
        self.applied.fetch_add(1, Ordering::SeqCst);
        if self.keep_modifies.load(Ordering::SeqCst) {
            self.modifies.lock().expect("lock").push(modify.clone());
        }
        Ok(())
    }
    async fn address_holders(
        &self,
        addresses: &[String],
    ) -> Result<Vec<(String, String)>, DirectoryError> {
        let objects = self.objects();
        let mut wanted = Vec::new();
        let mut holders = BTreeSet::new();
        for address in addresses {
            // A whole proxy value (`X500:…`) is looked up in proxyAddresses only.
            let lookups = if address.contains(':') {
                vec![("proxyAddresses", address.clone())]
            } else {
                vec![
                    ("proxyAddresses", format!("smtp:{address}")),
                    ("mail", address.clone()),
                ]
            };
            for (attribute, value) in lookups {
                let value = AttrValue::Text(value);
                holders.extend(
                    objects
                        .holding(attribute, &value)
                        .iter()
                        .map(|o| o.object_guid),
                );
                wanted.push(value_key(attribute, &value));
            }
        }
        let mut out = Vec::new();
        for guid in holders {
            let Some(o) = objects.by_guid.get(&guid) else {
                continue;
            };
            for attribute in ["proxyAddresses", "mail"] {
                for v in o.attributes.get(attribute) {
                    if let Some(text) = v.as_text()
                        && wanted.contains(&value_key(attribute, v))
                    {
                        out.push((text.to_string(), o.dn.clone()));
                    }
                }
            }
        }
        Ok(out)
    }
    async fn change_mark(&self) -> Result<Option<crate::ChangeMark>, DirectoryError> {
        let dc = self.dc.lock().expect("lock").clone();
        Ok(dc.map(|dc| crate::ChangeMark {
            dc,
            usn: self.objects().usn,
        }))
    }
    async fn changed_since(
        &self,
        mark: &crate::ChangeMark,
        guids: &[Uuid],
    ) -> Result<Vec<Uuid>, DirectoryError> {
        self.change_checks.fetch_add(1, Ordering::SeqCst);
        self.checked.fetch_add(guids.len(), Ordering::SeqCst);
        let dc = self.dc.lock().expect("lock").clone();
        if dc.as_deref() != Some(mark.dc.as_str()) {
            return Err(DirectoryError::new(format!(
                "the change mark is of {}, the directory is served by {}",
                mark.dc,
                dc.as_deref().unwrap_or("a DC without change marks")
            )));
        }
        let objects = self.objects();
        Ok(guids
            .iter()
            .filter(|g| objects.usn_changed.get(g).is_some_and(|&u| u > mark.usn))
            .copied()
            .collect())
    }
    /// The fake keeps no replication metadata (as Samba): origins are unknown.
    async fn attribute_origins(
        &self,
        _dn: &str,
        _attributes: &[String],
    ) -> Result<Vec<exo_writeback_core::drift::ChangeOrigin>, DirectoryError> {
        Ok(Vec::new())
    }
    async fn scan_addresses(
        &self,
        on_object: &mut (dyn FnMut(DirectoryObject) + Send),
    ) -> Result<(), DirectoryError> {
        // The fake's search scope is its whole forest.
        self.address_scans.fetch_add(1, Ordering::SeqCst);
        let attributes = crate::address_index::AddressIndex::ATTRIBUTES;
        self.scan(&attributes, &attributes, on_object)
    }
    async fn scan_match_keys(
        &self,
        present: &[&str],
        attributes: &[String],
        on_object: &mut (dyn FnMut(DirectoryObject) + Send),
    ) -> Result<crate::ScanScope, DirectoryError> {
        self.scans.fetch_add(1, Ordering::SeqCst);
        let attributes: Vec<&str> = attributes.iter().map(String::as_str).collect();
        self.scan(present, &attributes, on_object)?;
        // The fake's search scope is its whole forest.
        Ok(crate::ScanScope::Forest)
    }
}

impl FakeDirectory {
    /// Every object holding one of `present` (`objectGUID`: every object), with `attributes`
    /// (those the account may read), a page of [`SCAN_PAGE`] objects at a time as AD's paged
    /// search: only a page is copied out of the directory at once.
    fn scan(
        &self,
        present: &[&str],
        attributes: &[&str],
        on_object: &mut (dyn FnMut(DirectoryObject) + Send),
    ) -> Result<(), DirectoryError> {
        if *self.no_scan.lock().expect("lock") {
            return Err(DirectoryError::new("scan refused"));
        }
        let unreadable = self.unreadable.lock().expect("lock").clone();
        let every = present.iter().any(|a| a.eq_ignore_ascii_case("objectGUID"));
        let mut after: Option<Uuid> = None;
        loop {
            let page: Vec<DirectoryObject> = {
                let objects = self.objects();
                let rest = match after {
                    None => objects.by_guid.range(..),
                    Some(last) => objects
                        .by_guid
                        .range((std::ops::Bound::Excluded(last), std::ops::Bound::Unbounded)),
                };
                rest.take(SCAN_PAGE).map(|(_, o)| o.clone()).collect()
            };
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = Some(last.object_guid);
            for o in page {
                self.scan_one(o, present, attributes, every, &unreadable, on_object);
            }
        }
    }

    /// One object of [`FakeDirectory::scan`]'s page, handed out when it holds a `present`
    /// attribute (or `every`), with the readable ones of `attributes`.
    fn scan_one(
        &self,
        o: DirectoryObject,
        present: &[&str],
        attributes: &[&str],
        every: bool,
        unreadable: &[String],
        on_object: &mut (dyn FnMut(DirectoryObject) + Send),
    ) {
        let holds = present.iter().any(|a| !o.attributes.get(a).is_empty());
        if !every && !holds {
            return;
        }
        let mut read = Attributes::new();
        for a in attributes {
            let values = o.attributes.get(a);
            if !values.is_empty() && !unreadable.iter().any(|u| u.eq_ignore_ascii_case(a)) {
                read.insert(a, values.to_vec());
            }
        }
        on_object(DirectoryObject {
            dn: o.dn,
            object_guid: o.object_guid,
            attributes: read,
        });
    }
}

/// Objects per page of [`FakeDirectory`]'s scans (AD's default MaxPageSize).
pub const SCAN_PAGE: usize = 1000;
