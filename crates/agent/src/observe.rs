//! What the agent's edges report for metrics: every LDAP operation with its latency and error
//! kind (a decorator over the engine's [`Directory`], [`Observed`]) and every Exchange Online
//! request and throttling wait (the client's own observer). A process that serves metrics
//! installs one [`Observer`] at start ([`install`]); every engine the agent composes after that
//! reports to it. Without one, nothing is measured and nothing changes.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use exo_writeback_core::directory::{AttrValue, DirectoryObject, ObjectModify};
use exo_writeback_core::drift::ChangeOrigin;
use exo_writeback_core::schema::Schema;
use exo_writeback_engine::{
    ChangeMark, Directory, DirectoryError, DirectoryErrorKind, ScanScope, UnreadableAttribute,
};
pub use exo_writeback_exo::ExoEvent;
use uuid::Uuid;

/// Hears the edges' events (from any task; keep it quick).
pub trait Observer: Send + Sync {
    /// One LDAP operation (`search`, `read`, `modify`, `schema`, `scan`) ended; `error` is
    /// the engine's kind of the failure (`unreachable`, `schema`, `refused`).
    fn ldap(&self, operation: &'static str, elapsed: Duration, error: Option<&'static str>);
    /// One Exchange Online event.
    fn exo(&self, event: &ExoEvent);
}

static OBSERVER: OnceLock<Arc<dyn Observer>> = OnceLock::new();

/// Installs the process's observer (once; a second is ignored and `false` returned).
pub fn install(observer: Arc<dyn Observer>) -> bool {
    OBSERVER.set(observer).is_ok()
}

/// The installed observer, if any.
pub fn observer() -> Option<Arc<dyn Observer>> {
    OBSERVER.get().cloned()
}

/// The client's observer over the installed one (`None` without one).
pub fn exo_observer() -> Option<exo_writeback_exo::ExoObserver> {
    let o = observer()?;
    Some(Arc::new(move |e: &ExoEvent| o.exo(e)))
}

/// A directory whose every operation is reported to the installed observer.
pub struct Observed<D> {
    pub inner: D,
    observer: Option<Arc<dyn Observer>>,
}

impl<D> Observed<D> {
    /// `inner`, reporting to the observer installed now (if any).
    pub fn new(inner: D) -> Observed<D> {
        Observed {
            inner,
            observer: observer(),
        }
    }

    fn note<T>(
        &self,
        operation: &'static str,
        started: Instant,
        result: &Result<T, DirectoryError>,
    ) {
        if let Some(o) = &self.observer {
            let error = result.as_ref().err().map(|e| match e.kind {
                DirectoryErrorKind::Unreachable => "unreachable",
                DirectoryErrorKind::Schema => "schema",
                DirectoryErrorKind::Refused => "refused",
            });
            o.ldap(operation, started.elapsed(), error);
        }
    }
}

impl<D: Directory> Directory for Observed<D> {
    async fn schema(&self) -> Result<Arc<Schema>, DirectoryError> {
        // Cached after the first read: not a request worth timing.
        self.inner.schema().await
    }

    async fn refresh_schema(&self) -> Result<Arc<Schema>, DirectoryError> {
        let t = Instant::now();
        let r = self.inner.refresh_schema().await;
        self.note("schema", t, &r);
        r
    }

    async fn find_by_attribute(
        &self,
        attribute: &str,
        value: &AttrValue,
        attributes: &[String],
    ) -> Result<Vec<DirectoryObject>, DirectoryError> {
        let t = Instant::now();
        let r = self
            .inner
            .find_by_attribute(attribute, value, attributes)
            .await;
        self.note("search", t, &r);
        r
    }

    async fn read_by_guid(
        &self,
        guid: &Uuid,
        attributes: &[String],
    ) -> Result<Option<DirectoryObject>, DirectoryError> {
        let t = Instant::now();
        let r = self.inner.read_by_guid(guid, attributes).await;
        self.note("read", t, &r);
        r
    }

    async fn read_by_dn(
        &self,
        dn: &str,
        attributes: &[String],
    ) -> Result<Option<DirectoryObject>, DirectoryError> {
        let t = Instant::now();
        let r = self.inner.read_by_dn(dn, attributes).await;
        self.note("read", t, &r);
        r
    }

    async fn modify(&self, modify: &ObjectModify) -> Result<(), DirectoryError> {
        let t = Instant::now();
        let r = self.inner.modify(modify).await;
        self.note("modify", t, &r);
        r
    }

    async fn address_holders(
        &self,
        addresses: &[String],
    ) -> Result<Vec<(String, String)>, DirectoryError> {
        let t = Instant::now();
        let r = self.inner.address_holders(addresses).await;
        self.note("search", t, &r);
        r
    }

    async fn unreadable_attributes(
        &self,
        attributes: &[String],
        samples: &[Uuid],
    ) -> Result<Vec<UnreadableAttribute>, DirectoryError> {
        let t = Instant::now();
        let r = self.inner.unreadable_attributes(attributes, samples).await;
        self.note("read_rights", t, &r);
        r
    }

    async fn read_by_guids(
        &self,
        guids: &[Uuid],
        attributes: &[String],
    ) -> Result<Vec<DirectoryObject>, DirectoryError> {
        let t = Instant::now();
        let r = self.inner.read_by_guids(guids, attributes).await;
        self.note("read", t, &r);
        r
    }

    async fn change_mark(&self) -> Result<Option<ChangeMark>, DirectoryError> {
        let t = Instant::now();
        let r = self.inner.change_mark().await;
        self.note("change_mark", t, &r);
        r
    }

    async fn changed_since(
        &self,
        mark: &ChangeMark,
        guids: &[Uuid],
    ) -> Result<Vec<Uuid>, DirectoryError> {
        let t = Instant::now();
        let r = self.inner.changed_since(mark, guids).await;
        self.note("changed_since", t, &r);
        r
    }

    async fn scan_addresses(
        &self,
        on_object: &mut (dyn FnMut(DirectoryObject) + Send),
    ) -> Result<(), DirectoryError> {
        let t = Instant::now();
        let r = self.inner.scan_addresses(on_object).await;
        self.note("scan", t, &r);
        r
    }

    async fn scan_match_keys(
        &self,
        present: &[&str],
        attributes: &[String],
        on_object: &mut (dyn FnMut(DirectoryObject) + Send),
    ) -> Result<ScanScope, DirectoryError> {
        let t = Instant::now();
        let r = self
            .inner
            .scan_match_keys(present, attributes, on_object)
            .await;
        self.note("scan", t, &r);
        r
    }

    async fn attribute_origins(
        &self,
        dn: &str,
        attributes: &[String],
    ) -> Result<Vec<ChangeOrigin>, DirectoryError> {
        let t = Instant::now();
        let r = self.inner.attribute_origins(dn, attributes).await;
        self.note("read", t, &r);
        r
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use exo_writeback_engine::testing::FakeDirectory;

    use super::*;

    #[derive(Default)]
    struct Heard(Mutex<Vec<(&'static str, Option<&'static str>)>>);

    impl Observer for Heard {
        fn ldap(&self, operation: &'static str, _: Duration, error: Option<&'static str>) {
            self.0.lock().expect("lock").push((operation, error));
        }
        fn exo(&self, _: &ExoEvent) {}
    }

    #[tokio::test]
    async fn every_directory_operation_is_reported_with_its_error_kind() {
        let heard = Arc::new(Heard::default());
        let dir = Observed {
            inner: FakeDirectory::new(),
            observer: Some(heard.clone()),
        };
        let _ = dir.read_by_dn("CN=nobody,DC=x", &[]).await;
        let _ = dir
            .modify(&ObjectModify {
                dn: "CN=nobody,DC=x".into(),
                changes: vec![],
            })
            .await;
        let seen = heard.0.lock().expect("lock").clone();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert_eq!(seen[0], ("read", None));
        assert_eq!(seen[1].0, "modify");
        assert!(
            seen[1].1.is_some(),
            "a modify of a missing object fails: {seen:?}"
        );
    }
}
