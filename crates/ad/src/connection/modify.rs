//! Writes: modify (with permissive modify), and add/delete for tests and lab tooling.

use std::sync::atomic::Ordering;

use exo_writeback_core::directory::{AttrValue, Attributes, ModOp, ObjectModify};
use ldap3::Mod;
use ldap3::controls::RawControl;
use std::collections::HashSet;

use super::{AdConnection, PERMISSIVE_MODIFY_OID};
use crate::error::{AdError, insufficient_access_hint};

impl AdConnection {
    // ---- writes ----

    /// Apply one modify (all its changes in one request, so atomically) with the
    /// permissive-modify control.
    ///
    /// Sent once: a dropped connection is returned as [`AdError::ConnectionLost`] (the next
    /// operation reconnects), and the caller's one retry policy sends it again. That is safe:
    /// with permissive modify every change is idempotent (adding a present value or deleting
    /// an absent one succeeds; replace sets the same final values), so sending the same modify
    /// again yields the same object whether or not the first attempt reached the server.
    /// Except on Samba for a linked attribute (`member`): Samba 4.17 ignores the control there
    /// and refuses a present value added (68) or an absent one deleted (53), so the second
    /// send fails whole — nothing half-applied; the caller plans again from a fresh read
    /// (`crates/ad/tests/it/writes.rs`).
    pub async fn modify(&self, modify: &ObjectModify) -> Result<(), AdError> {
        let mut names: Vec<&str> = Vec::new();
        for c in &modify.changes {
            if !names.iter().any(|n| n.eq_ignore_ascii_case(&c.attribute)) {
                names.push(&c.attribute);
            }
        }
        let attrs = names.join(", ");
        let mut mods: Vec<Mod<Vec<u8>>> = Vec::new();
        for change in &modify.changes {
            let values: HashSet<Vec<u8>> = change
                .values
                .iter()
                .map(|v| v.as_bytes().to_vec())
                .collect();
            mods.push(match change.op {
                ModOp::Add if values.is_empty() => continue, // nothing to add
                ModOp::Add => Mod::Add(change.attribute.as_bytes().to_vec(), values),
                ModOp::Delete => Mod::Delete(change.attribute.as_bytes().to_vec(), values),
                ModOp::Replace => Mod::Replace(change.attribute.as_bytes().to_vec(), values),
            });
        }
        if mods.is_empty() {
            return Ok(());
        }
        let dn = modify.dn.as_str();
        let attrs = attrs.as_str();
        let result = self
            .run_once(|mut ldap| async move {
                self.counters.modifies.fetch_add(1, Ordering::Relaxed);
                ldap.with_timeout(self.timeout);
                ldap.with_controls(vec![RawControl {
                    ctype: PERMISSIVE_MODIFY_OID.to_string(),
                    crit: false,
                    val: None,
                }]);
                ldap.modify(dn, mods)
                    .await
                    .map_err(|e| self.op_error(e, "modifying", dn, attrs))
            })
            .await?;
        if result.rc != 0 {
            let mut error = self.result_error(result, "modifying", dn, attrs);
            if let AdError::InsufficientAccess { hint, .. } = &mut error {
                // An AdminSDHolder-protected object (adminCount=1) does not inherit the OU's
                // grants: say so. Best effort; adminCount is readable by Authenticated Users.
                if let Ok(Some(object)) = self.read_by_dn(dn, &["adminCount"]).await {
                    let admin_count =
                        object
                            .attributes
                            .get("adminCount")
                            .first()
                            .and_then(|v| match v {
                                AttrValue::Text(t) => Some(t.clone()),
                                AttrValue::Bytes(b) => String::from_utf8(b.clone()).ok(),
                            });
                    *hint = insufficient_access_hint(admin_count.as_deref(), true);
                }
            }
            return Err(error);
        }
        Ok(())
    }

    /// Create an object (used by tests and lab tooling; the writeback never creates objects).
    pub async fn add(&self, dn: &str, attributes: &Attributes) -> Result<(), AdError> {
        let attrs: Vec<(Vec<u8>, HashSet<Vec<u8>>)> = attributes
            .iter()
            .map(|(name, values)| {
                (
                    name.as_bytes().to_vec(),
                    values.iter().map(|v| v.as_bytes().to_vec()).collect(),
                )
            })
            .collect();
        let names = attributes
            .iter()
            .map(|(n, _)| n)
            .collect::<Vec<_>>()
            .join(", ");
        let (mut ldap, _) = self.handle().await?;
        ldap.with_timeout(self.timeout);
        let result = ldap
            .add(dn, attrs)
            .await
            .map_err(|e| self.op_error(e, "adding", dn, &names))?;
        if result.rc != 0 {
            return Err(self.result_error(result, "adding", dn, &names));
        }
        Ok(())
    }

    /// Delete an object (tests and lab tooling).
    pub async fn delete(&self, dn: &str) -> Result<(), AdError> {
        let (mut ldap, _) = self.handle().await?;
        ldap.with_timeout(self.timeout);
        let result = ldap
            .delete(dn)
            .await
            .map_err(|e| self.op_error(e, "deleting", dn, ""))?;
        if result.rc != 0 {
            return Err(self.result_error(result, "deleting", dn, ""));
        }
        Ok(())
    }
}
