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
use crate::ports::{ChangeMark, Directory, DirectoryError, ScanScope, UnreadableAttribute};

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
    /// The objectGUIDs a read by objectGUID asks for — all of one `read_by_guids` request
    /// (`together`), or the one of a `read_by_guid` — after `before_read`: an error answers
    /// the call instead.
    fn reading_guids(&self, _guids: &[Uuid], _together: bool) -> Result<(), DirectoryError> {
        Ok(())
    }
    /// Before a check of what changed since the scan's change mark (`changed_since`), after
    /// `before_read`.
    async fn before_changed_since(&self) {}
    /// Before a search for the holders of addresses, after `before_read`.
    async fn before_address_holders(&self) {}
    /// When the fake (or the hook's `modify`) starts serving a call, and when it stops: around
    /// each call of the port, and around a scan's pages but not the caller's handling of each
    /// object (the caller's work is not the directory's). The fake serves every call
    /// synchronously, on the calling thread, within one poll (a hook's `modify` that waits
    /// spans polls). The benchmark measures the directory's CPU time with them.
    fn enter(&self) {}
    fn leave(&self) {}
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

/// `H::leave` when dropped: a call ends however it returns.
struct Serving<'a, H: Hook>(&'a H);

impl<'a, H: Hook> Serving<'a, H> {
    fn start(hook: &'a H) -> Self {
        hook.enter();
        Serving(hook)
    }
}

impl<H: Hook> Drop for Serving<'_, H> {
    fn drop(&mut self) {
        self.0.leave();
    }
}

impl<H> Deref for Hooked<H> {
    type Target = H;
    fn deref(&self) -> &H {
        &self.hook
    }
}

impl<H: Hook + Sync> Directory for Hooked<H> {
    async fn schema(&self) -> Result<Arc<Schema>, DirectoryError> {
        let _serving = Serving::start(&self.hook);
        self.inner.schema().await
    }
    async fn refresh_schema(&self) -> Result<Arc<Schema>, DirectoryError> {
        self.hook.before_schema().await;
        let _serving = Serving::start(&self.hook);
        self.inner.refresh_schema().await
    }
    async fn find_by_attribute(
        &self,
        attribute: &str,
        value: &AttrValue,
        attributes: &[String],
    ) -> Result<Vec<DirectoryObject>, DirectoryError> {
        let _serving = Serving::start(&self.hook);
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
        let _serving = Serving::start(&self.hook);
        self.hook.before_read()?;
        self.hook.reading_guids(std::slice::from_ref(guid), false)?;
        self.inner.read_by_guid(guid, attributes).await
    }
    async fn read_by_dn(
        &self,
        dn: &str,
        attributes: &[String],
    ) -> Result<Option<DirectoryObject>, DirectoryError> {
        let _serving = Serving::start(&self.hook);
        self.hook.before_read()?;
        self.inner.read_by_dn(dn, attributes).await
    }
    async fn read_by_guids(
        &self,
        guids: &[Uuid],
        attributes: &[String],
    ) -> Result<Vec<DirectoryObject>, DirectoryError> {
        self.hook.before_read()?;
        self.hook.reading_guids(guids, true)?;
        self.hook.before_read_by_guids().await;
        let _serving = Serving::start(&self.hook);
        self.inner.read_by_guids(guids, attributes).await
    }
    async fn modify(&self, modify: &ObjectModify) -> Result<(), DirectoryError> {
        let _serving = Serving::start(&self.hook);
        self.hook.modify(&self.inner, modify).await
    }
    async fn address_holders(
        &self,
        addresses: &[String],
    ) -> Result<Vec<(String, String)>, DirectoryError> {
        self.hook.before_read()?;
        self.hook.before_address_holders().await;
        let _serving = Serving::start(&self.hook);
        self.inner.address_holders(addresses).await
    }
    async fn unreadable_attributes(
        &self,
        attributes: &[String],
        samples: &[Uuid],
    ) -> Result<Vec<UnreadableAttribute>, DirectoryError> {
        self.hook.before_rights().await;
        let _serving = Serving::start(&self.hook);
        self.inner.unreadable_attributes(attributes, samples).await
    }
    async fn scan_match_keys(
        &self,
        present: &[&str],
        attributes: &[String],
        on_object: &mut (dyn FnMut(DirectoryObject) + Send),
    ) -> Result<ScanScope, DirectoryError> {
        self.hook.before_read()?;
        self.hook.before_scan().await;
        let hook = &self.hook;
        let mut on_object = |o: DirectoryObject| {
            hook.leave();
            on_object(o);
            hook.enter();
        };
        let scanned = {
            let _serving = Serving::start(&self.hook);
            self.inner
                .scan_match_keys(present, attributes, &mut on_object)
                .await
        };
        self.hook.after_scan().await;
        scanned
    }
    async fn scan_addresses(
        &self,
        on_object: &mut (dyn FnMut(DirectoryObject) + Send),
    ) -> Result<(), DirectoryError> {
        let _serving = Serving::start(&self.hook);
        self.hook.before_read()?;
        let hook = &self.hook;
        let mut on_object = |o: DirectoryObject| {
            hook.leave();
            on_object(o);
            hook.enter();
        };
        self.inner.scan_addresses(&mut on_object).await
    }
    async fn change_mark(&self) -> Result<Option<ChangeMark>, DirectoryError> {
        let _serving = Serving::start(&self.hook);
        self.inner.change_mark().await
    }
    async fn changed_since(
        &self,
        mark: &ChangeMark,
        guids: &[Uuid],
    ) -> Result<Vec<Uuid>, DirectoryError> {
        self.hook.before_read()?;
        self.hook.before_changed_since().await;
        let _serving = Serving::start(&self.hook);
        self.inner.changed_since(mark, guids).await
    }
    async fn attribute_origins(
        &self,
        dn: &str,
        attributes: &[String],
    ) -> Result<Vec<ChangeOrigin>, DirectoryError> {
        let _serving = Serving::start(&self.hook);
        self.inner.attribute_origins(dn, attributes).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use exo_writeback_core::directory::Attributes;

    use super::*;

    /// Records when the directory serves and when the caller handles an object.
    #[derive(Default)]
    struct Trace(Mutex<Vec<&'static str>>);

    impl Trace {
        fn push(&self, event: &'static str) {
            self.0.lock().expect("lock").push(event);
        }
    }

    impl Hook for Trace {
        fn enter(&self) {
            self.push("enter");
        }
        fn leave(&self) {
            self.push("leave");
        }
    }

    #[tokio::test]
    async fn the_directory_serves_between_enter_and_leave_and_the_callers_work_is_outside() {
        let inner = FakeDirectory::new();
        for cn in ["a", "b"] {
            inner.add(cn, Attributes::new());
        }
        let dir = Hooked {
            inner,
            hook: Trace::default(),
        };
        let trace = &dir.hook;
        let mut on_object = |_: DirectoryObject| trace.push("caller");
        dir.scan_match_keys(&["objectGUID"], &[], &mut on_object)
            .await
            .expect("scan");
        dir.read_by_guid(&Uuid::new_v4(), &[]).await.expect("read");
        assert_eq!(
            *dir.hook.0.lock().expect("lock"),
            [
                "enter", "leave", "caller", "enter", "leave", "caller", "enter",
                "leave", // scan
                "enter", "leave", // read
            ]
        );
    }
}
