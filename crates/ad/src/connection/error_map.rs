//! LDAP and TLS failures turned into errors that say what to fix.

use ldap3::{LdapError, LdapResult};

use super::{AdConnection, host_of};
use crate::error::{
    AdError, SIGNING_REQUIRED_HINT, ad_bind_subcode, ad_bind_subcode_problem,
    insufficient_access_hint, result_code_name,
};

impl AdConnection {
    // ---- error mapping ----

    pub(super) fn connect_error(&self, e: LdapError) -> AdError {
        let address = self.config.url.clone();
        let timeout_secs = self.config.timeout_secs;
        match e {
            LdapError::Timeout { .. } => AdError::Unreachable {
                address,
                timeout_secs,
                reason: "no connection within the timeout".into(),
            },
            LdapError::Rustls { source } => self.tls_error(&source),
            LdapError::Io { source } => {
                if let Some(tls) = source
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                {
                    return self.tls_error(tls);
                }
                AdError::Unreachable {
                    address,
                    timeout_secs,
                    reason: source.to_string(),
                }
            }
            LdapError::LdapResult { result } => AdError::Tls {
                address,
                reason: format!(
                    "StartTLS refused: LDAP result {} ({}): {}",
                    result.rc,
                    result_code_name(result.rc),
                    result.text
                ),
            },
            LdapError::DNSName { source } => AdError::InvalidConfig {
                problem: format!("ad.url host is not a valid TLS server name: {source}"),
            },
            LdapError::UrlParsing { source } => AdError::InvalidConfig {
                problem: format!("ad.url {:?}: {source}", self.config.url),
            },
            other => AdError::Unreachable {
                address,
                timeout_secs,
                reason: other.to_string(),
            },
        }
    }

    fn tls_error(&self, e: &rustls::Error) -> AdError {
        use rustls::CertificateError as C;
        let address = self.config.url.clone();
        let ca_hint = match &self.config.ca_file {
            Some(path) => format!(
                "ad.ca_file ({}) must hold the CA that issued the DC's certificate",
                path.display()
            ),
            None => "the system trust store does not trust it: set ad.ca_file to the PEM file of the CA that issued the DC's certificate".to_string(),
        };
        let host = host_of(&self.config.url);
        let (problem, hint) = match e {
            rustls::Error::InvalidCertificate(cert) => match cert {
                C::UnknownIssuer => (
                    "unknown issuer (the certificate chain does not lead to a trusted CA)".to_string(),
                    ca_hint,
                ),
                C::NotValidForName | C::NotValidForNameContext { .. } => (
                    format!("name mismatch: the certificate is not valid for {host:?}"),
                    "connect by a name or address that the certificate's subjectAltName lists (ad.url), or reissue the DC certificate; ad.ca_file does not change this".to_string(),
                ),
                C::Expired | C::ExpiredContext { .. } => (
                    "the certificate has expired".to_string(),
                    "renew the DC's certificate".to_string(),
                ),
                C::NotValidYet | C::NotValidYetContext { .. } => (
                    "the certificate is not valid yet".to_string(),
                    "check the clocks of this host and the DC".to_string(),
                ),
                C::BadSignature | C::BadEncoding => (
                    format!("{cert:?}"),
                    ca_hint,
                ),
                other => (format!("{other:?}"), ca_hint),
            },
            other => {
                return AdError::Tls {
                    address,
                    reason: other.to_string(),
                };
            }
        };
        AdError::Certificate {
            address,
            problem,
            hint,
        }
    }

    pub(super) fn bind_error(&self, result: LdapResult) -> AdError {
        let bind_identity = self.config.bind_dn.clone();
        let diagnostic = result.text.clone();
        if result.rc == 49 {
            let sub = ad_bind_subcode(&diagnostic);
            if let Some(problem) = sub.as_deref().and_then(ad_bind_subcode_problem) {
                return AdError::AccountUnusable {
                    bind_identity,
                    problem,
                    diagnostic,
                };
            }
            return AdError::InvalidCredentials {
                bind_identity,
                diagnostic,
            };
        }
        let signing = result.rc == 8 || diagnostic.starts_with("00002028");
        AdError::BindRefused {
            bind_identity,
            code: result.rc,
            code_name: result_code_name(result.rc),
            diagnostic,
            hint: if signing { SIGNING_REQUIRED_HINT } else { "" },
        }
    }

    pub(crate) fn op_error(
        &self,
        e: LdapError,
        operation: &'static str,
        dn: &str,
        attrs: &str,
    ) -> AdError {
        let address = self.config.url.clone();
        match e {
            LdapError::OpSend { .. }
            | LdapError::ResultRecv { .. }
            | LdapError::IdScrubSend { .. }
            | LdapError::MiscSend { .. }
            | LdapError::EndOfStream
            | LdapError::Io { .. } => AdError::ConnectionLost {
                address,
                operation,
                reason: e.to_string(),
            },
            LdapError::Timeout { .. } => AdError::Timeout {
                address,
                operation,
                timeout_secs: self.config.timeout_secs,
            },
            LdapError::LdapResult { result } => self.result_error(result, operation, dn, attrs),
            other => AdError::Protocol {
                address,
                operation,
                problem: other.to_string(),
            },
        }
    }

    pub(super) fn result_error(
        &self,
        result: LdapResult,
        operation: &'static str,
        dn: &str,
        attrs: &str,
    ) -> AdError {
        match result.rc {
            32 => AdError::NoSuchObject { dn: dn.to_string() },
            10 => {
                let url = result
                    .refs
                    .first()
                    .cloned()
                    .or_else(|| referral_in_text(&result.text))
                    .unwrap_or_default();
                let target = crate::referral::parse_referral(&url);
                let (same_object, meaning) = crate::referral::explain(dn, operation, &target);
                AdError::Referral {
                    operation,
                    dn: dn.to_string(),
                    url,
                    same_object,
                    meaning,
                }
            }
            50 => {
                let writing = operation.starts_with("modify");
                AdError::InsufficientAccess {
                    operation,
                    dn: dn.to_string(),
                    attributes: attrs.to_string(),
                    hint: insufficient_access_hint(None, writing),
                    diagnostic: result.text,
                }
            }
            code => AdError::Ldap {
                operation,
                dn: dn.to_string(),
                code,
                code_name: result_code_name(code),
                diagnostic: result.text,
            },
        }
    }

    pub(super) fn protocol(&self, operation: &'static str, problem: String) -> AdError {
        AdError::Protocol {
            address: self.config.url.clone(),
            operation,
            problem,
        }
    }
}

/// An LDAP URL in a diagnostic text (Samba and Windows also put the referral there:
/// `0000202B: RefErr: … ldap://dc1.corp.example/…`).
fn referral_in_text(text: &str) -> Option<String> {
    let at = text.find("ldap://").or_else(|| text.find("ldaps://"))?;
    Some(
        text[at..]
            .split(|c: char| c.is_whitespace())
            .next()
            .unwrap_or("")
            .trim_end_matches(['\0', ',', ';'])
            .to_string(),
    )
}
