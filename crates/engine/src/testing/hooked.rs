//! The fake directory with a test's hook in front of it: the fault-injecting directories of
//! the engine's tests and the benchmark's counting directory forward every call to
//! [`FakeDirectory`] through one [`Hooked`] instead of each repeating the whole port.

use std::ops::Deref;
use std::sync::Arc;

use exo_writeback_core::directory::{AttrValue, DirectoryObject, ObjectModify};
use exo_writeback_core::drift::ChangeOrigin;
use exo_writeback_core::schema::Schema;
use uuid::Uuid;

use super::FakeDirectory;
use crate::ports::{Directory, DirectoryError, ScanScope, UnreadableAttribute};

/// What a test changes of the fake directory.
#[allow(async_fn_in_trait)]
pub trait Hook {
    /// Before each read and search of objects (not the schema, the readable attributes or the
    /// change origins): an error answers the call instead.
    fn before_read(&self) -> Result<(), DirectoryError> {
        Ok(())
    }
    /// Before a refresh of the schema.
    async fn before_schema(&self) {}
    /// Before a probe of the attributes the account may read.
    async fn before_rights(&self) {}
    /// Before a scan of the search scope (after `before_read`).
    async fn before_scan(&self) {}
    /// After a scan of the search scope handed over its last object, before it returns.
    async fn after_scan(&self) {}
    /// Before a read of objects by their objectGUIDs (`read_by_guids`), after `before_read`.
    async fn before_read_by_guids(&self) {}
    /// Before a search for the holders of addresses, after `before_read`.
    async fn before_address_holders(&self) {}
    /// A modify, instead of the fake's: `inner` applies it (by default, as it is).
    async fn modify(
        &self,
        inner: &FakeDirectory,
        modify: &ObjectModify,
    ) -> Result<(), DirectoryError> {
        inner.modify(modify).await
    }
}

/// [`FakeDirectory`] behind `hook`; the hook's fields are reached through it (`Deref`).
#[derive(Clone)]
pub struct Hooked<H> {
    pub inner: FakeDirectory,
    pub hook: H,
}

impl<H> Deref for Hooked<H> {
    type Target = H;
    fn deref(&self) -> &H {
        &self.hook
    }
}

impl<H: Hook> Directory for Hooked<H> {
    async fn schema(&self) -> Result<Arc<Schema>, DirectoryError> {
        self.inner.schema().await
    }
    async fn refresh_schema(&self) -> Result<Arc<Schema>, DirectoryError> {
        self.hook.before_schema().await;
        self.inner.refresh_schema().await
    }
    async fn find_by_attribute(
        &self,
        attribute: &str,
        value: &AttrValue,
        attributes: &[String],
    ) -> Result<Vec<DirectoryObject>, DirectoryError> {
        self.hook.before_read()?;
        self.inner
            .find_by_attribute(attribute, value, attributes)
            .await
    }
    async fn read_by_guid(
        &self,
        guid: &Uuid,
        attributes: &[String],
    ) -> Result<Option<DirectoryObject>, DirectoryError> {
        self.hook.before_read()?;
        self.inner.read_by_guid(guid, attributes).await
    }
    async fn read_by_dn(
        &self,
        dn: &str,
        attributes: &[String],
    ) -> Result<Option<DirectoryObject>, DirectoryError> {
        self.hook.before_read()?;
        self.inner.read_by_dn(dn, attributes).await
    }
    async fn read_by_guids(
        &self,
        guids: &[Uuid],
        attributes: &[String],
    ) -> Result<Vec<DirectoryObject>, DirectoryError> {
        self.hook.before_read()?;
        self.hook.before_read_by_guids().await;
        self.inner.read_by_guids(guids, attributes).await
    }
    async fn modify(&self, modify: &ObjectModify) -> Result<(), DirectoryError> {
        self.hook.modify(&self.inner, modify).await
    }
    async fn address_holders(
        &self,
        addresses: &[String],
    ) -> Result<Vec<(String, String)>, DirectoryError> {
        self.hook.before_read()?;
        self.hook.before_address_holders().await;
        self.inner.address_holders(addresses).await
    }
    async fn unreadable_attributes(
        &self,
        attributes: &[String],
    ) -> Result<Vec<UnreadableAttribute>, DirectoryError> {
        self.hook.before_rights().await;
        self.inner.unreadable_attributes(attributes).await
    }
    async fn scan_match_keys(
        &self,
        present: &[&str],
        attributes: &[String],
        on_object: &mut (dyn FnMut(DirectoryObject) + Send),
    ) -> Result<ScanScope, DirectoryError> {
        self.hook.before_read()?;
        self.hook.before_scan().await;
        let scanned = self
            .inner
            .scan_match_keys(present, attributes, on_object)
            .await;
        self.hook.after_scan().await;
        scanned
    }
    async fn scan_addresses(
        &self,
        on_object: &mut (dyn FnMut(DirectoryObject) + Send),
    ) -> Result<(), DirectoryError> {
        self.hook.before_read()?;
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
