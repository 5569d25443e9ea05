//! The in-memory LDAP target of `scale`: the engine's own test directory
//! (`exo_writeback_engine::testing::FakeDirectory`, every value indexed as AD indexes its
//! searched attributes, so a lookup costs an indexed search, not a scan), holding one user
//! object per directory-synchronised mailbox of the emulator's generator (matched by
//! objectGUID, as the DC would).
//!
//! [`BenchDirectory`] serves it to the engine in one of two modes ([`Modifies`]): `count`
//! (the default) checks that each modify's DN exists and counts it without changing the
//! directory, so the process's memory growth during the cycle is the agent's own (how the
//! 2026-12-02 figures were taken); `apply` applies and indexes every written value, as the
//! fake does for the engine's tests, so the directory grows with the cycle.
//!
//! Its scans (`scan_match_keys`, `scan_addresses`) hand the objects out a page of
//! [`SCAN_PAGE`] at a time, as AD's paged search does; the fake's own scan clones every object
//! before the first is handed out (a second copy of the directory at the peak, which the peak
//! RSS above the directory counted as the agent's).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use exo_sim::SimMailbox;
use exo_writeback_core::directory::{AttrValue, Attributes, DirectoryObject, ObjectModify};
use exo_writeback_core::drift::ChangeOrigin;
use exo_writeback_core::schema::Schema;
use exo_writeback_engine::address_index::AddressIndex;
use exo_writeback_engine::ports::{Directory, DirectoryError, ScanScope, UnreadableAttribute};
use exo_writeback_engine::testing::FakeDirectory;
use uuid::Uuid;

/// What the bench directory does with a modify.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Modifies {
    /// Check the DN exists and count it; the directory stays as built.
    Count,
    /// Apply it (the directory grows by the written values).
    Apply,
}

/// Objects per page of a scan (AD's default MaxPageSize).
pub const SCAN_PAGE: usize = 1000;

/// The directory `scale` gives the engine: [`FakeDirectory`] for every read; modifies
/// counted or applied ([`Modifies`]); scans paged.
pub struct BenchDirectory {
    pub inner: FakeDirectory,
    pub mode: Modifies,
    /// Modifies accepted (counted or applied).
    pub modifies: Arc<AtomicUsize>,
    /// Every object, in the order scans return them.
    guids: Vec<Uuid>,
}

impl BenchDirectory {
    /// `guids`: the objects of `inner` (as [`directory_of`] returns them).
    pub fn new(inner: FakeDirectory, guids: Vec<Uuid>, mode: Modifies) -> BenchDirectory {
        BenchDirectory {
            inner,
            mode,
            modifies: Arc::default(),
            guids,
        }
    }

    /// Every object holding one of `attributes` (`objectGUID`: every object), with those
    /// attributes, a page at a time (what the fake's scan returns, without its copy of all).
    /// Every object holding one of `present` (`objectGUID`: every object), with `attributes`,
    /// a page of objects at a time.
    async fn scan(
        &self,
        present: &[&str],
        attributes: &[&str],
        on_object: &mut (dyn FnMut(DirectoryObject) + Send),
    ) -> Result<(), DirectoryError> {
        let every = present.iter().any(|a| a.eq_ignore_ascii_case("objectGUID"));
        let mut wanted: Vec<String> = attributes.iter().map(|a| a.to_string()).collect();
        wanted.extend(present.iter().map(|a| a.to_string()));
        for page in self.guids.chunks(SCAN_PAGE) {
            for o in self.inner.read_by_guids(page, &wanted).await? {
                let holds = present.iter().any(|a| !o.attributes.get(a).is_empty());
                if !every && !holds {
                    continue;
                }
                let mut read = Attributes::new();
                for a in attributes {
                    let values = o.attributes.get(a);
                    if !values.is_empty() {
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
        Ok(())
    }
}

impl Directory for BenchDirectory {
    async fn schema(&self) -> Result<Arc<Schema>, DirectoryError> {
        self.inner.schema().await
    }
    async fn refresh_schema(&self) -> Result<Arc<Schema>, DirectoryError> {
        self.inner.refresh_schema().await
    }
    async fn find_by_attribute(
        &self,
        attribute: &str,
        value: &AttrValue,
        attributes: &[String],
    ) -> Result<Vec<DirectoryObject>, DirectoryError> {
        self.inner
            .find_by_attribute(attribute, value, attributes)
            .await
    }
    async fn read_by_guid(
        &self,
        guid: &Uuid,
        attributes: &[String],
    ) -> Result<Option<DirectoryObject>, DirectoryError> {
        self.inner.read_by_guid(guid, attributes).await
    }
    async fn read_by_dn(
        &self,
        dn: &str,
        attributes: &[String],
    ) -> Result<Option<DirectoryObject>, DirectoryError> {
        self.inner.read_by_dn(dn, attributes).await
    }
    async fn read_by_guids(
        &self,
        guids: &[Uuid],
        attributes: &[String],
    ) -> Result<Vec<DirectoryObject>, DirectoryError> {
        self.inner.read_by_guids(guids, attributes).await
    }
    async fn modify(&self, modify: &ObjectModify) -> Result<(), DirectoryError> {
        match self.mode {
            Modifies::Apply => self.inner.modify(modify).await?,
            Modifies::Count => {
                // As the DC: a modify of an object that does not exist fails (noSuchObject).
                if self.inner.read_by_dn(&modify.dn, &[]).await?.is_none() {
                    return Err(DirectoryError {
                        result: Some("LDAP result 32".into()),
                        ..DirectoryError::new(format!("no such object {}", modify.dn))
                    });
                }
            }
        }
        self.modifies.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
    async fn address_holders(
        &self,
        addresses: &[String],
    ) -> Result<Vec<(String, String)>, DirectoryError> {
        self.inner.address_holders(addresses).await
    }
    async fn unreadable_attributes(
        &self,
        attributes: &[String],
    ) -> Result<Vec<UnreadableAttribute>, DirectoryError> {
        self.inner.unreadable_attributes(attributes).await
    }
    async fn scan_match_keys(
        &self,
        present: &[&str],
        attributes: &[String],
        on_object: &mut (dyn FnMut(DirectoryObject) + Send),
    ) -> Result<ScanScope, DirectoryError> {
        let attributes: Vec<&str> = attributes.iter().map(String::as_str).collect();
        self.scan(present, &attributes, on_object).await?;
        // The bench directory's search scope is its whole forest.
        Ok(ScanScope::Forest)
    }
    async fn scan_addresses(
        &self,
        on_object: &mut (dyn FnMut(DirectoryObject) + Send),
    ) -> Result<(), DirectoryError> {
        // The fake's search scope is its whole forest.
        self.scan(
            &AddressIndex::ATTRIBUTES,
            &AddressIndex::ATTRIBUTES,
            on_object,
        )
        .await
    }
    async fn attribute_origins(
        &self,
        dn: &str,
        attributes: &[String],
    ) -> Result<Vec<ChangeOrigin>, DirectoryError> {
        self.inner.attribute_origins(dn, attributes).await
    }
}

/// The object AD holds for each dir-synced mailbox, before writeback: the primary address
/// only (so every cloud-managed mailbox needs a write); with the objects' GUIDs.
pub fn directory_of(mailboxes: impl Iterator<Item = SimMailbox>) -> (FakeDirectory, Vec<Uuid>) {
    let directory = FakeDirectory::new();
    let mut guids = Vec::new();
    directory.forget_modifies();
    for m in mailboxes {
        let Ok(guid) = exo_writeback_core::guid::uuid_from_immutable_id(&m.immutable_id) else {
            continue;
        };
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
        directory.insert(DirectoryObject {
            dn: format!("CN={},OU=Mailboxes,DC=lab,DC=example,DC=test", m.alias),
            object_guid: guid,
            attributes: a,
        });
        guids.push(guid);
    }
    (directory, guids)
}
