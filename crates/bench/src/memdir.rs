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
//! Its scans (`scan_match_keys`, `scan_addresses`) are the fake's, which copy a page of
//! objects at a time out of the directory, as AD's paged search hands them out (a scan that
//! copied every object first would hold a second directory at the peak, which the peak RSS
//! above the directory would count as the agent's).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use exo_sim::SimMailbox;
use exo_writeback_core::directory::{AttrValue, Attributes, DirectoryObject, ObjectModify};
use exo_writeback_core::drift::ChangeOrigin;
use exo_writeback_core::schema::Schema;
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

/// The directory `scale` gives the engine: [`FakeDirectory`] for every read; modifies
/// counted or applied ([`Modifies`]).
pub struct BenchDirectory {
    pub inner: FakeDirectory,
    pub mode: Modifies,
    /// Modifies accepted (counted or applied).
    pub modifies: Arc<AtomicUsize>,
}

impl BenchDirectory {
    pub fn new(inner: FakeDirectory, mode: Modifies) -> BenchDirectory {
        BenchDirectory {
            inner,
            mode,
            modifies: Arc::default(),
        }
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
        self.inner
            .scan_match_keys(present, attributes, on_object)
            .await
    }
    async fn scan_addresses(
        &self,
        on_object: &mut (dyn FnMut(DirectoryObject) + Send),
    ) -> Result<(), DirectoryError> {
        self.inner.scan_addresses(on_object).await
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
/// only (so every cloud-managed mailbox needs a write).
pub fn directory_of(mailboxes: impl Iterator<Item = SimMailbox>) -> FakeDirectory {
    let directory = FakeDirectory::new();
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
    }
    directory
}
