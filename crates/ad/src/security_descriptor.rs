//! Reading what the access check of an attribute needs: an object's DACL (the SD flags control,
//! MS-ADTS 3.1.1.3.4.1.11: without it, AD returns nTSecurityDescriptor only to a caller that
//! may read the SACL too, and leaves it out for everyone else) and one sample object of a
//! search base (a size limit of one).

use ldap3::controls::RawControl;
use ldap3::{Scope, SearchEntry, SearchOptions};

use crate::connection::AdConnection;
use crate::error::AdError;

/// LDAP_SERVER_SD_FLAGS_OID.
pub const SD_FLAGS_OID: &str = "1.2.840.113556.1.4.801";
/// The control's value: `SEQUENCE { INTEGER 4 }`, DACL_SECURITY_INFORMATION only.
const DACL_ONLY: [u8; 5] = [0x30, 0x03, 0x02, 0x01, 0x04];

impl AdConnection {
    /// The self-relative security descriptor of the object at `dn`, with its DACL only; `None`
    /// when AD returns none (the account may not read it: Read Control).
    pub async fn read_dacl(&self, dn: &str) -> Result<Option<Vec<u8>>, AdError> {
        const OP: &str = "reading the security descriptor of";
        self.run(|mut ldap| async move {
            ldap.with_timeout(self.timeout());
            ldap.with_controls(vec![RawControl {
                ctype: SD_FLAGS_OID.to_string(),
                crit: true,
                val: Some(DACL_ONLY.to_vec()),
            }]);
            let ldap3::SearchResult(entries, result) = ldap
                .search(
                    dn,
                    Scope::Base,
                    "(objectClass=*)",
                    vec!["nTSecurityDescriptor"],
                )
                .await
                .map_err(|e| self.op_error(e, OP, dn, "nTSecurityDescriptor"))?;
            if result.rc != 0 {
                return Err(self.result_error(result, OP, dn, "nTSecurityDescriptor"));
            }
            Ok(entries.into_iter().next().and_then(|e| {
                let mut entry = SearchEntry::construct(e);
                entry
                    .bin_attrs
                    .remove("nTSecurityDescriptor")
                    .or_else(|| {
                        entry
                            .attrs
                            .remove("nTSecurityDescriptor")
                            .map(|v| v.into_iter().map(String::into_bytes).collect())
                    })
                    .and_then(|mut v| v.pop())
            }))
        })
        .await
    }

    /// The DN of one object below `base` matching `filter` (a size limit of one), or `None`.
    /// `filter` must be escaped by the caller.
    pub async fn find_one(&self, base: &str, filter: &str) -> Result<Option<String>, AdError> {
        const OP: &str = "searching";
        self.run(|mut ldap| async move {
            ldap.with_timeout(self.timeout());
            ldap.with_search_options(SearchOptions::new().sizelimit(1));
            let ldap3::SearchResult(entries, result) = ldap
                .search(base, Scope::Subtree, filter, vec!["1.1"])
                .await
                .map_err(|e| self.op_error(e, OP, base, ""))?;
            // 4: sizeLimitExceeded — the one entry asked for came back.
            if result.rc != 0 && result.rc != 4 {
                return Err(self.result_error(result, OP, base, ""));
            }
            Ok(entries
                .into_iter()
                .map(SearchEntry::construct)
                .find(|e| !e.dn.is_empty())
                .map(|e| e.dn))
        })
        .await
    }
}
