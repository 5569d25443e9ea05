//! Active Directory as the engine's directory, over the `ad` client's [`ForestDirectory`]:
//! objects searched below the search bases, each base on a DC of its own domain; an object
//! read by objectGUID found forest-wide (through the global catalog when the forest has
//! several domains) and read and written on a writable DC of **its own** domain, never a
//! read-only one; one DC per domain for as long as it answers (affinity), the next one when it
//! fails — said in the log and recorded for `status` ([`crate::dc_status`]). The
//! duplicate-address guard looks in the whole forest.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::schema_cache::SchemaCache;
use exo_writeback_ad::forest_directory::ForestDirectory;
use exo_writeback_ad::{AdError, UsnMark};
use exo_writeback_core::directory::{AttrValue, DirectoryObject, ObjectModify};
use exo_writeback_core::drift::{ChangeOrigin, parse_repl_attr_metadata};
use exo_writeback_core::schema::Schema;
use exo_writeback_engine::{
    ChangeMark, Directory, DirectoryError, DirectoryErrorKind, ScanScope, UnreadableAttribute,
};
use uuid::Uuid;

/// AD as the engine's directory.
pub struct AdDirectory {
    forest: ForestDirectory,
    /// Where the DCs in use are recorded for `status` (`sync.state_dir`), if anywhere.
    state_dir: Option<PathBuf>,
    /// The failovers and connections already recorded (`usize::MAX`: nothing yet).
    recorded: AtomicUsize,
    /// The DCs whose change marks were read, by the name the engine's marks give them.
    marks: std::sync::Mutex<HashMap<String, UsnMark>>,
    /// Where each schema read under a new `schemaInfo` is kept for the next process, if
    /// anywhere.
    schema_cache: Option<SchemaCache>,
}

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
        AdError::Unreachable { .. }
            | AdError::ConnectionLost { .. }
            | AdError::Timeout { .. }
            | AdError::NoDomainController { .. }
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

impl AdDirectory {
    /// The directory over `forest`; the DCs in use are recorded in `state_dir` (now, and
    /// after every failover).
    pub async fn new(forest: ForestDirectory, state_dir: Option<PathBuf>) -> AdDirectory {
        let directory = AdDirectory {
            forest,
            state_dir,
            recorded: AtomicUsize::new(usize::MAX),
            marks: std::sync::Mutex::default(),
            schema_cache: None,
        };
        directory.note_dcs().await;
        directory
    }

    /// The same directory, keeping each schema it reads under a new `schemaInfo` in `cache`.
    pub fn with_schema_cache(self, cache: SchemaCache) -> AdDirectory {
        AdDirectory {
            schema_cache: Some(cache),
            ..self
        }
    }

    /// `schema`, after keeping it for the next process when it is new.
    fn kept(&self, schema: Result<Arc<Schema>, AdError>) -> Result<Arc<Schema>, AdError> {
        if let (Ok(schema), Some(cache)) = (&schema, &self.schema_cache) {
            cache.keep(schema);
        }
        schema
    }

    pub fn forest(&self) -> &ForestDirectory {
        &self.forest
    }

    /// Records the DCs in use when a connection moved, or another domain's connection was
    /// opened, since the last record.
    async fn note_dcs(&self) {
        let Some(dir) = &self.state_dir else {
            return;
        };
        let n = self.forest.failover_count().await * 1024 + self.forest.connections().await;
        if self.recorded.swap(n, Ordering::SeqCst) != n {
            crate::dc_status::write(dir, &self.forest.status().await);
        }
    }

    /// `result`, after recording a failover it may have caused.
    async fn noted<T>(&self, result: Result<T, AdError>) -> Result<T, DirectoryError> {
        self.note_dcs().await;
        result.map_err(directory_error)
    }
}

impl Directory for AdDirectory {
    async fn schema(&self) -> Result<Arc<Schema>, DirectoryError> {
        let r = self.kept(self.forest.schema().await);
        self.noted(r).await
    }
    async fn refresh_schema(&self) -> Result<Arc<Schema>, DirectoryError> {
        let r = self.kept(self.forest.refresh_schema().await);
        self.noted(r).await
    }
    async fn find_by_attribute(
        &self,
        attribute: &str,
        value: &AttrValue,
        attributes: &[String],
    ) -> Result<Vec<DirectoryObject>, DirectoryError> {
        let r = self
            .forest
            .find_by_attribute(attribute, value, &refs(attributes))
            .await;
        self.noted(r).await
    }
    async fn read_by_guid(
        &self,
        guid: &Uuid,
        attributes: &[String],
    ) -> Result<Option<DirectoryObject>, DirectoryError> {
        let r = self.forest.read_by_guid(guid, &refs(attributes)).await;
        self.noted(r).await
    }
    async fn read_by_dn(
        &self,
        dn: &str,
        attributes: &[String],
    ) -> Result<Option<DirectoryObject>, DirectoryError> {
        let r = self.forest.read_by_dn(dn, &refs(attributes)).await;
        self.noted(r).await
    }
    async fn read_by_guids(
        &self,
        guids: &[Uuid],
        attributes: &[String],
    ) -> Result<Vec<DirectoryObject>, DirectoryError> {
        let r = self.forest.read_by_guids(guids, &refs(attributes)).await;
        self.noted(r).await
    }
    async fn scan_addresses(
        &self,
        on_object: &mut (dyn FnMut(DirectoryObject) + Send),
    ) -> Result<(), DirectoryError> {
        let r = self
            .forest
            .scan_addresses(&mut |page| {
                page.into_iter().for_each(&mut *on_object);
                Ok(())
            })
            .await;
        self.noted(r).await
    }
    async fn modify(&self, modify: &ObjectModify) -> Result<(), DirectoryError> {
        let _gate = crate::test_pause::one_at_a_time().await;
        let r = self.forest.modify(modify).await;
        self.noted(r).await?;
        crate::test_pause::after_modify().await;
        Ok(())
    }
    async fn address_holders(
        &self,
        addresses: &[String],
    ) -> Result<Vec<(String, String)>, DirectoryError> {
        let r = crate::address_guard::holders(&self.forest, addresses).await;
        self.noted(r).await
    }
    async fn unreadable_attributes(
        &self,
        attributes: &[String],
        samples: &[Uuid],
    ) -> Result<Vec<UnreadableAttribute>, DirectoryError> {
        let r = crate::read_rights::probe_forest(&self.forest, attributes, samples).await;
        let rights = self.noted(r).await?;
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
        present: &[&str],
        attributes: &[String],
        on_object: &mut (dyn FnMut(DirectoryObject) + Send),
    ) -> Result<ScanScope, DirectoryError> {
        let r = self
            .forest
            .scan_search_scope(present, &refs(attributes), &mut |page| {
                page.into_iter().for_each(&mut *on_object);
                Ok(())
            })
            .await;
        let forest = self.noted(r).await?;
        Ok(if forest {
            ScanScope::Forest
        } else {
            ScanScope::SearchBases
        })
    }
    async fn change_mark(&self) -> Result<Option<ChangeMark>, DirectoryError> {
        let r = self.forest.usn_mark().await;
        let Some(mark) = self.noted(r).await? else {
            return Ok(None);
        };
        // The session in the name: a mark read after a reconnect or a failover (and back) is
        // another mark, so the engine's check after its scan (the same name before and after)
        // also proves that every page came over one session to this DC.
        let (failovers, connects) = mark.session;
        let dc = format!("{} on session {failovers}.{connects}", mark.dc);
        if let Ok(mut marks) = self.marks.lock() {
            // Only the newest is asked for (a cycle's marks are read one after another); an
            // older one missing makes a check fail, and the engine reads fresh.
            marks.retain(|name, _| name == &dc);
            marks.insert(dc.clone(), mark.clone());
        }
        Ok(Some(ChangeMark { dc, usn: mark.usn }))
    }
    async fn changed_since(
        &self,
        mark: &ChangeMark,
        guids: &[Uuid],
    ) -> Result<Vec<Uuid>, DirectoryError> {
        // The mark as the forest read it: its DC's identity is checked on each search.
        let Some(usn) = self
            .marks
            .lock()
            .ok()
            .and_then(|m| m.get(&mark.dc).cloned())
        else {
            return Err(DirectoryError::new(format!(
                "no change mark of {} was read on this connection",
                mark.dc
            )));
        };
        let usn = UsnMark {
            usn: mark.usn,
            ..usn
        };
        let r = self.forest.changed_since(&usn, guids).await;
        self.noted(r).await
    }
    async fn attribute_origins(
        &self,
        dn: &str,
        attributes: &[String],
    ) -> Result<Vec<ChangeOrigin>, DirectoryError> {
        // A constructed attribute (MS-ADTS): one XML value per attribute of the object. Samba
        // does not construct it; the answer is then empty and the drift says so.
        const META: &str = "msDS-ReplAttributeMetaData";
        let r = self.forest.read_by_dn(dn, &[META]).await;
        let Some(object) = self.noted(r).await? else {
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
