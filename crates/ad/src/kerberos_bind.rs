//! The SASL GSSAPI bind of [`AdConnection`]: the DC's service principal, the credential from the
//! keytab, and errors that say what to fix.

use ldap3::{Ldap, LdapResult, Scope};

use crate::connection::AdConnection;
use crate::error::AdError;
use crate::kerberos::initiator_credential;

impl AdConnection {
    /// Bind `ldap` with Kerberos as the configured principal.
    pub(crate) async fn kerberos_bind(&self, ldap: &mut Ldap) -> Result<LdapResult, AdError> {
        let host = self.spn_host(ldap).await?;
        let principal = self.config().bind_dn.clone();
        let keytab = self.config().keytab.clone();
        let cred = tokio::task::spawn_blocking(move || {
            initiator_credential(&principal, keytab.as_deref())
        })
        .await
        .map_err(|e| self.kerberos_error(format!("the credential task failed: {e}")))?
        .map_err(|e| self.kerberos_error(e.0))?;
        ldap.with_timeout(self.timeout())
            .sasl_gssapi_cred_bind(cred, &host)
            .await
            .map_err(|e| match e {
                ldap3::LdapError::GssapiOperationError(problem) => {
                    self.kerberos_error(format!("{problem} (service principal ldap/{host})"))
                }
                other => self.op_error(other, "binding as", &self.config().bind_dn, ""),
            })
    }

    /// The host of the DC's `ldap/<host>` principal: `ad.spn_host`, the URL's host name, or —
    /// when the URL names an address — the dnsHostName the DC announces in its rootDSE (read
    /// anonymously before the bind; Kerberos' mutual authentication then proves the DC holds
    /// that principal's key).
    async fn spn_host(&self, ldap: &mut Ldap) -> Result<String, AdError> {
        if let Some(host) = &self.config().spn_host {
            return Ok(host.clone());
        }
        let host = crate::connection::host_of(&self.config().url);
        if host.parse::<std::net::IpAddr>().is_err() {
            return Ok(host);
        }
        let (entries, _) = ldap
            .with_timeout(self.timeout())
            .search("", Scope::Base, "(objectClass=*)", vec!["dnsHostName"])
            .await
            .map_err(|e| self.op_error(e, "reading the rootDSE of", "", ""))?
            .success()
            .map_err(|e| self.op_error(e, "reading the rootDSE of", "", ""))?;
        entries
            .into_iter()
            .filter_map(|e| {
                let entry = ldap3::SearchEntry::construct(e);
                entry.attrs.get("dnsHostName").and_then(|v| v.first().cloned())
            })
            .next()
            .ok_or_else(|| {
                self.kerberos_error(format!(
                    "{host} is an address and its rootDSE names no dnsHostName: set ad.spn_host to the DC's host name"
                ))
            })
    }

    pub(crate) fn kerberos_error(&self, problem: String) -> AdError {
        AdError::Kerberos {
            principal: self.config().bind_dn.clone(),
            problem,
        }
    }
}
