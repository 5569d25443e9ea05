//! What kind of DC a connection reached: read-only or writable, global catalog or not.
//!
//! A read-only DC (RODC) answers reads and refers every write to a writable DC (LDAP referral,
//! 10). Windows marks an RODC two ways: its rootDSE lists the capability
//! `1.2.840.113556.1.4.1920` (LDAP_CAP_ACTIVE_DIRECTORY_PARTIAL_SECRETS_OID, MS-ADTS
//! 3.1.1.3.4.3), and the `msDS-isRODC` attribute of its NTDS Settings object (the rootDSE's
//! `dsServiceName`) is TRUE (a constructed attribute, MS-ADA2 msDS-isRODC). Samba 4.17's RODC
//! announces only the second, so both are checked.

use crate::connection::{AdConnection, SearchScope};
use crate::error::AdError;

/// LDAP_CAP_ACTIVE_DIRECTORY_PARTIAL_SECRETS_OID: the DC is read-only.
pub const RODC_CAPABILITY: &str = "1.2.840.113556.1.4.1920";

/// What the agent knows about the DC a connection reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DcInfo {
    /// The DC's dnsHostName (else the URL's host).
    pub host: String,
    /// Read-only: never written to.
    pub read_only: bool,
    /// Why it is taken as read-only (or None when writable).
    pub read_only_evidence: Option<&'static str>,
    /// The DC serves the global catalog.
    pub global_catalog: bool,
    /// The DC's domain (its defaultNamingContext).
    pub domain_nc: Option<String>,
    /// The forest root domain's naming context.
    pub forest_root_nc: Option<String>,
}

/// Read-only by the capability or by `msDS-isRODC`; the evidence, for the log.
pub fn read_only(capabilities: &[String], is_rodc: Option<bool>) -> Option<&'static str> {
    if capabilities.iter().any(|c| c == RODC_CAPABILITY) {
        return Some("its rootDSE lists capability 1.2.840.113556.1.4.1920 (partial secrets)");
    }
    if is_rodc == Some(true) {
        return Some("msDS-isRODC is TRUE on its NTDS Settings object");
    }
    None
}

impl AdConnection {
    /// Reads what kind of DC this is (the rootDSE read at connect, and `msDS-isRODC` of its
    /// NTDS Settings object).
    pub async fn dc_info(&self) -> Result<DcInfo, AdError> {
        let root = self.root_dse();
        let is_rodc = match &root.ds_service_name {
            Some(dn) => self.read_is_rodc(dn).await,
            None => None,
        };
        let evidence = read_only(&root.supported_capabilities, is_rodc);
        Ok(DcInfo {
            host: root
                .dns_host_name
                .clone()
                .unwrap_or_else(|| crate::connection::host_of(&self.config().url)),
            read_only: evidence.is_some(),
            read_only_evidence: evidence,
            global_catalog: root.global_catalog_ready,
            domain_nc: root.default_naming_context.clone(),
            forest_root_nc: root.root_domain_naming_context.clone(),
        })
    }

    async fn read_is_rodc(&self, ntds_settings: &str) -> Option<bool> {
        let attrs = vec!["msDS-isRODC".to_string()];
        match self
            .raw_search(ntds_settings, SearchScope::Base, "(objectClass=*)", &attrs)
            .await
        {
            Ok(entries) => entries
                .into_iter()
                .flat_map(|e| e.attributes)
                .find(|(name, _)| name.eq_ignore_ascii_case("msDS-isRODC"))
                .and_then(|(_, values)| values.into_iter().next())
                .map(|v| v.eq_ignore_ascii_case(b"TRUE")),
            Err(e) => {
                tracing::warn!(dn = ntds_settings, error = %e, "cannot read msDS-isRODC of the DC's NTDS Settings; judging by its capabilities only");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn either_mark_makes_a_dc_read_only() {
        let caps = vec!["1.2.840.113556.1.4.800".to_string()];
        assert_eq!(read_only(&caps, Some(false)), None);
        assert_eq!(read_only(&caps, None), None);
        assert!(read_only(&caps, Some(true)).is_some_and(|e| e.contains("msDS-isRODC")));
        let windows_rodc = vec![caps[0].clone(), RODC_CAPABILITY.to_string()];
        assert!(read_only(&windows_rodc, None).is_some_and(|e| e.contains("1920")));
    }
}
