//! The DC's change counter (Microsoft Learn, "Polling for Changes Using the USNChanged
//! Attribute"): a mark — the DC's identity and its `highestCommittedUSN` — and, later, on the
//! same DC, which of some objects changed since (`uSNChanged` above the mark).
//!
//! The identity is the DC's NTDS Settings object (rootDSE `dsServiceName`) and that object's
//! `invocationId`, which a DC restored from backup changes (its USNs may then repeat). Each
//! request reads it again on the same LDAP session as the search it guards, so a reconnect to
//! another DC — or to a restored one — between the mark and the check is seen, never mixed.

use exo_writeback_core::guid::uuid_from_object_guid;
use ldap3::Ldap;
use ldap3::controls::RawControl;
use uuid::Uuid;

use super::{AdConnection, SearchScope};
use crate::error::AdError;
use crate::forest_directory::{GUIDS_PER_SEARCH, any_object_guid_filter};
use crate::wire::{RawEntry, parse_entry};

/// The Show Deleted control: a deleted object (a tombstone, whose `uSNChanged` its deletion
/// raised) is found too.
pub const SHOW_DELETED_OID: &str = "1.2.840.113556.1.4.417";

/// A DC's change mark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsnMark {
    /// The DC's NTDS Settings object and its invocationId.
    pub dc: DcIdentity,
    /// Its `highestCommittedUSN` when the mark was read.
    pub usn: u64,
    /// The LDAP session it was read on: the times the domain's connection moved to another DC
    /// and the connects of the connection then in use. A scan is only known to have read every
    /// page from the mark's DC when its session is the same after it: a reconnect (to a name
    /// that resolves to several DCs) or a failover and back would mix another DC's objects,
    /// whose changes this DC's counter does not order. Not part of what a check compares
    /// (`dc`): a check may run on a later session to the same DC.
    pub session: (usize, u64),
}

/// Which DC, and which incarnation of its database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DcIdentity {
    pub ds_service_name: String,
    pub invocation_id: Uuid,
}

impl std::fmt::Display for DcIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (invocationId {})",
            self.ds_service_name, self.invocation_id
        )
    }
}

fn first<'a>(entry: &'a RawEntry, name: &str) -> Option<&'a [u8]> {
    entry
        .attributes
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .and_then(|(_, vs)| vs.first())
        .map(Vec::as_slice)
}

impl AdConnection {
    /// The DC's change mark, read on one LDAP session: the rootDSE's `dsServiceName` and
    /// `highestCommittedUSN`, then the NTDS Settings object's `invocationId` (readable by
    /// authenticated users in AD's default configuration partition rights; an account that
    /// may not read it gets an error, and the engine reads every object fresh).
    pub async fn usn_mark(&self) -> Result<UsnMark, AdError> {
        self.run_once(|ldap| self.mark_on(ldap)).await
    }

    async fn mark_on(&self, ldap: Ldap) -> Result<UsnMark, AdError> {
        const OP: &str = "reading the change mark (highestCommittedUSN)";
        let attrs = [
            "dsServiceName".to_string(),
            "highestCommittedUSN".to_string(),
        ];
        let (root, _) = self
            .search_once(
                ldap.clone(),
                "",
                SearchScope::Base,
                "(objectClass=*)",
                &attrs,
                None,
            )
            .await?;
        let root = root
            .into_iter()
            .next()
            .ok_or_else(|| self.protocol(OP, "no rootDSE entry".into()))?;
        let text = |name: &str| first(&root, name).map(|v| String::from_utf8_lossy(v).into_owned());
        let ds_service_name = text("dsServiceName")
            .ok_or_else(|| self.protocol(OP, "the rootDSE has no dsServiceName".into()))?;
        let usn = text("highestCommittedUSN")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .ok_or_else(|| self.protocol(OP, "the rootDSE has no highestCommittedUSN".into()))?;
        let (ntds, _) = self
            .search_once(
                ldap,
                &ds_service_name,
                SearchScope::Base,
                "(objectClass=*)",
                &["invocationId".to_string()],
                None,
            )
            .await?;
        let invocation_id = ntds
            .first()
            .and_then(|e| first(e, "invocationId"))
            .and_then(|v| uuid_from_object_guid(v).ok())
            .ok_or_else(|| {
                self.protocol(
                    OP,
                    format!("cannot read invocationId of {ds_service_name} (the bind account may not read it)"),
                )
            })?;
        Ok(UsnMark {
            session: (0, self.stats().connects),
            dc: DcIdentity {
                ds_service_name,
                invocation_id,
            },
            usn,
        })
    }

    /// Of `guids`, those whose object below `base` (the naming context: an object moved out of
    /// the search scope is still found) changed since `mark` — modified, moved or deleted
    /// (Show Deleted) — with `(&(uSNChanged>=mark+1)(|(objectGUID=…)…))`, 100 at a time. Each
    /// search goes on one LDAP session with a fresh read of the DC's identity, and fails when
    /// that is not the mark's ([`AdError::Protocol`]).
    pub async fn changed_since(
        &self,
        mark: &UsnMark,
        base: &str,
        guids: &[Uuid],
    ) -> Result<Vec<Uuid>, AdError> {
        let mut changed = Vec::new();
        for chunk in guids.chunks(GUIDS_PER_SEARCH) {
            let found = self
                .run_once(|ldap| self.changed_on(ldap, mark, base, chunk))
                .await?;
            changed.extend(found);
        }
        Ok(changed)
    }

    async fn changed_on(
        &self,
        ldap: Ldap,
        mark: &UsnMark,
        base: &str,
        guids: &[Uuid],
    ) -> Result<Vec<Uuid>, AdError> {
        const OP: &str = "searching for objects changed since the change mark";
        // A number, not a value from outside: nothing to escape; the GUIDs are escaped.
        let filter = format!(
            "(&(uSNChanged>={}){})",
            mark.usn.saturating_add(1),
            any_object_guid_filter(guids)?
        );
        let (now, entries) = futures::join!(
            self.mark_on(ldap.clone()),
            self.search_deleted_too(ldap, base, &filter)
        );
        let now = now?;
        if now.dc != mark.dc {
            return Err(self.protocol(
                OP,
                format!(
                    "the change mark is of {}, this connection is served by {}: USNs of one DC mean nothing on another",
                    mark.dc, now.dc
                ),
            ));
        }
        let mut out = Vec::new();
        for entry in entries? {
            let guid = first(&entry, "objectGUID")
                .and_then(|v| uuid_from_object_guid(v).ok())
                .ok_or_else(|| {
                    self.protocol(OP, format!("{} came without its objectGUID", entry.dn))
                })?;
            out.push(guid);
        }
        Ok(out)
    }

    /// One subtree search of `base` with the Show Deleted control, objectGUIDs only.
    async fn search_deleted_too(
        &self,
        mut ldap: Ldap,
        base: &str,
        filter: &str,
    ) -> Result<Vec<RawEntry>, AdError> {
        const OP: &str = "searching for objects changed since the change mark";
        ldap.with_timeout(self.timeout);
        ldap.with_controls(vec![RawControl {
            ctype: SHOW_DELETED_OID.to_string(),
            crit: true,
            val: None,
        }]);
        self.note_search_request();
        let ldap3::SearchResult(entries, result) = ldap
            .search(
                base,
                SearchScope::Subtree.into(),
                filter,
                vec!["objectGUID"],
            )
            .await
            .map_err(|e| self.op_error(e, OP, base, ""))?;
        if result.rc != 0 {
            return Err(self.result_error(result, OP, base, "objectGUID"));
        }
        entries
            .into_iter()
            .filter(|e| !e.is_ref() && !e.is_intermediate())
            .map(|e| parse_entry(e.0).map_err(|p| self.protocol(OP, p)))
            .collect()
    }
}
