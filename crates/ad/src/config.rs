//! The `[ad]` section of the configuration file.

use std::path::PathBuf;

use serde::Deserialize;

use crate::error::AdError;

/// How to reach and bind to a domain controller.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdConfig {
    /// `ldaps://host[:port]` (default), or `ldap://host[:port]` with `starttls = true`, or
    /// with `allow_insecure_ldap = true`.
    pub url: String,
    /// PEM file of the CA(s) that issued the DC's certificate; without it, the system store.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Upgrade an `ldap://` connection with StartTLS.
    #[serde(default)]
    pub starttls: bool,
    /// Allow plain, unencrypted `ldap://` (the password crosses the network in clear).
    #[serde(default)]
    pub allow_insecure_ldap: bool,
    /// Bind identity: a UPN (`svc@corp.example`), `DOMAIN\user` or a DN; with
    /// `auth = "kerberos"`, the Kerberos principal (`svc-writeback@CORP.EXAMPLE`, or a gMSA's
    /// `gmsa-writeback$@CORP.EXAMPLE`).
    pub bind_dn: String,
    /// `simple` (default: a password bind, over TLS) or `kerberos` (SASL GSSAPI; on plain
    /// `ldap://` the session is signed and sealed by Kerberos, so it works where the DC requires
    /// LDAP signing; on `ldaps://` the TLS channel is bound to the Kerberos authentication).
    #[serde(default)]
    pub auth: AuthMethod,
    /// Kerberos: the client keytab holding the principal's keys (`ktutil`, `samba-tool domain
    /// exportkeytab`, or a gMSA's keytab produced on Linux). Without it, the process's default
    /// credentials (`KRB5CCNAME`, `KRB5_CLIENT_KTNAME`).
    #[serde(default)]
    pub keytab: Option<PathBuf>,
    /// Kerberos: the DC host name of its `ldap/<host>` service principal. Default: the URL's
    /// host, or the rootDSE's dnsHostName when the URL names an IP address.
    #[serde(default)]
    pub spn_host: Option<String>,
    /// File holding the bind password (trailing newline ignored).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Environment variable holding the bind password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// Base DN; default: the rootDSE's defaultNamingContext.
    #[serde(default)]
    pub base_dn: Option<String>,
    /// Containers searched (subtree) for objects; default: the base DN.
    #[serde(default)]
    pub search_bases: Option<Vec<String>>,
    /// Connect and per-operation timeout, seconds.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Simple Paged Results page size, 1..=1000 (Windows AD refuses more).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// More DCs of the domain to try, in order, after `url`'s host (host names; same scheme,
    /// port and credentials as `url`).
    #[serde(default)]
    pub dcs: Vec<String>,
    /// Find the domain's DCs in DNS (the DC locator's SRV records), after `url`'s host and
    /// `dcs`.
    #[serde(default)]
    pub locate: bool,
    /// DCs of other domains of the forest, by domain DNS name
    /// (`domain_dcs."child.corp.example" = ["dc1.child.corp.example"]`), tried before DNS.
    #[serde(default)]
    pub domain_dcs: std::collections::BTreeMap<String, Vec<String>>,
    /// Global catalog servers (`host` or `host:port`; default port 3269 with TLS, else 3268),
    /// tried before DNS (`_gc._tcp.<forest root>`) and the DC in use when it is a GC.
    #[serde(default)]
    pub gc_servers: Vec<String>,
    /// The domain's DNS name for the DC locator; default: from `base_dn` (`DC=corp,DC=example`
    /// gives `corp.example`).
    #[serde(default)]
    pub domain: Option<String>,
    /// The AD site whose DCs are tried first (`_ldap._tcp.<site>._sites.dc._msdcs.<domain>`).
    #[serde(default)]
    pub site: Option<String>,
    /// The DNS server the locator asks (`"10.0.0.1"`, `"10.0.0.1:53"`); default: the system's.
    #[serde(default)]
    pub dns_server: Option<String>,
    /// TCP keepalive on every connection to a DC: first probe after this many idle seconds
    /// (0: off). Keeps the flow alive in firewalls and detects a peer that is gone.
    #[serde(default = "default_keepalive_secs")]
    pub keepalive_secs: u64,
    /// A connection unused for this long is closed and opened again before its next
    /// operation (0: never): below Windows' MaxConnIdleTime (900 s) and common firewall idle
    /// time-outs, so no request is sent into a connection that was silently dropped.
    #[serde(default = "default_idle_reconnect_secs")]
    pub idle_reconnect_secs: u64,
}

fn default_keepalive_secs() -> u64 {
    60
}

fn default_idle_reconnect_secs() -> u64 {
    600
}

fn default_timeout_secs() -> u64 {
    30
}

fn default_page_size() -> u32 {
    500
}

/// How the agent authenticates to AD.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMethod {
    /// LDAP simple bind with a password (TLS required unless `allow_insecure_ldap`).
    #[default]
    Simple,
    /// SASL GSSAPI with Kerberos (a keytab or the default credentials).
    Kerberos,
}

/// The transport security chosen by a valid configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Ldaps,
    StartTls,
    Plain,
}

impl AdConfig {
    /// Plain `ldap://` protected by Kerberos itself (SASL GSSAPI sign and seal), not by TLS.
    /// `check` and the logs should say "Kerberos-sealed LDAP", not "plain LDAP".
    pub fn is_sealed(&self) -> bool {
        self.auth == AuthMethod::Kerberos
            && !self.starttls
            && self
                .url
                .get(..7)
                .is_some_and(|s| s.eq_ignore_ascii_case("ldap://"))
    }

    /// A configuration with the defaults for everything but the URL and bind identity.
    pub fn new(url: impl Into<String>, bind_dn: impl Into<String>) -> Self {
        AdConfig {
            url: url.into(),
            ca_file: None,
            starttls: false,
            allow_insecure_ldap: false,
            bind_dn: bind_dn.into(),
            auth: AuthMethod::Simple,
            keytab: None,
            spn_host: None,
            password_file: None,
            password_env: None,
            base_dn: None,
            search_bases: None,
            timeout_secs: default_timeout_secs(),
            page_size: default_page_size(),
            dcs: Vec::new(),
            domain_dcs: Default::default(),
            gc_servers: Vec::new(),
            locate: false,
            domain: None,
            site: None,
            dns_server: None,
            keepalive_secs: default_keepalive_secs(),
            idle_reconnect_secs: default_idle_reconnect_secs(),
        }
    }

    /// The domain's DNS name: `domain`, else the `DC=` components of `base_dn`.
    pub fn domain_name(&self) -> Option<String> {
        if let Some(domain) = &self.domain {
            return Some(domain.trim_end_matches('.').to_ascii_lowercase());
        }
        self.base_dn.as_deref().and_then(dns_name_of_nc)
    }

    /// Check the values that serde cannot, and derive the transport.
    pub fn validate(&self) -> Result<Transport, AdError> {
        let invalid = |problem: String| Err(AdError::InvalidConfig { problem });
        if !(1..=1000).contains(&self.page_size) {
            return invalid(format!(
                "ad.page_size = {} is out of range: it must be 1..=1000 (Windows AD refuses larger pages)",
                self.page_size
            ));
        }
        if self.timeout_secs == 0 {
            return invalid("ad.timeout_secs must be at least 1".into());
        }
        if self.bind_dn.trim().is_empty() {
            return invalid("ad.bind_dn is empty".into());
        }
        let kerberos = self.auth == AuthMethod::Kerberos;
        match (&self.password_file, &self.password_env) {
            (Some(_), _) | (_, Some(_)) if kerberos => {
                return invalid(
                    "ad.auth = \"kerberos\" takes no password: remove ad.password_file / ad.password_env (the keys come from ad.keytab)".into(),
                );
            }
            _ if kerberos => {}
            (Some(_), Some(_)) => {
                return invalid(
                    "set exactly one of ad.password_file and ad.password_env, not both".into(),
                );
            }
            (None, None) => {
                return invalid("set one of ad.password_file or ad.password_env".into());
            }
            _ => {}
        }
        if !kerberos && (self.keytab.is_some() || self.spn_host.is_some()) {
            return invalid(
                "ad.keytab and ad.spn_host are for ad.auth = \"kerberos\"; set it, or remove them"
                    .into(),
            );
        }
        if kerberos && !self.bind_dn.contains('@') {
            return invalid(format!(
                "ad.bind_dn = {:?}: with ad.auth = \"kerberos\" it is the Kerberos principal, name@REALM",
                self.bind_dn
            ));
        }
        if let Some(base) = &self.base_dn
            && let Err(e) = exo_writeback_core::ldap_text::Dn::parse(base)
        {
            return invalid(format!("ad.base_dn: {e}"));
        }
        for base in self.search_bases.iter().flatten() {
            if let Err(e) = exo_writeback_core::ldap_text::Dn::parse(base) {
                return invalid(format!("ad.search_bases: {e}"));
            }
        }
        let scheme = self
            .url
            .split_once("://")
            .map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("ldaps") => {
                if self.starttls {
                    return invalid(
                        "ad.starttls = true needs an ldap:// URL (ldaps:// is already TLS)".into(),
                    );
                }
                Ok(Transport::Ldaps)
            }
            Some("ldap") if self.starttls => Ok(Transport::StartTls),
            // Kerberos signs and seals the session itself (the SASL GSSAPI security layer, RFC
            // 4752 with confidentiality): nothing crosses the network in clear, and a DC that
            // requires LDAP signing accepts it. The LDAP library's SASL decoder is patched for
            // this (vendor/ldap3/PATCH.md): unpatched, it dropped messages sharing one frame.
            Some("ldap") if kerberos => Ok(Transport::Plain),
            Some("ldap") if self.allow_insecure_ldap => Ok(Transport::Plain),
            Some("ldap") => Err(AdError::InsecureRefused {
                url: self.url.clone(),
            }),
            _ => invalid(format!(
                "ad.url {:?} must start with ldaps:// (or ldap:// with starttls)",
                self.url
            )),
        }
    }
}

/// The DNS name of a domain naming context: the values of its `DC=` RDNs, dot-separated
/// (`DC=corp,DC=example` → `corp.example`); None when it has none.
pub fn dns_name_of_nc(nc: &str) -> Option<String> {
    let dn = exo_writeback_core::ldap_text::Dn::parse(nc).ok()?;
    let labels: Vec<String> = dn
        .rdns
        .iter()
        .filter_map(|rdn| {
            let ava = rdn.avas.first()?;
            match &ava.value {
                exo_writeback_core::ldap_text::DnValue::Text(label)
                    if ava.attribute.eq_ignore_ascii_case("dc") =>
                {
                    Some(label.to_ascii_lowercase())
                }
                _ => None,
            }
        })
        .collect();
    (!labels.is_empty()).then(|| labels.join("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml_text: &str) -> Result<AdConfig, String> {
        toml::from_str::<AdConfig>(toml_text).map_err(|e| e.to_string())
    }

    const BASE: &str = "bind_dn = \"svc@lab.test\"\npassword_env = \"PW\"\n";

    #[test]
    fn defaults() {
        let c = config(&format!("url = \"ldaps://dc\"\n{BASE}")).unwrap();
        assert_eq!(c.page_size, 500);
        assert_eq!(c.timeout_secs, 30);
        assert_eq!(c.validate().unwrap(), Transport::Ldaps);
    }

    #[test]
    fn validation_cases() {
        let cases: &[(&str, Result<Transport, &str>)] = &[
            (
                "url = \"ldap://dc\"\nstarttls = true",
                Ok(Transport::StartTls),
            ),
            (
                "url = \"ldap://dc\"\nallow_insecure_ldap = true",
                Ok(Transport::Plain),
            ),
            ("url = \"ldap://dc\"", Err("allow_insecure_ldap")),
            (
                "url = \"ldaps://dc\"\nstarttls = true",
                Err("needs an ldap:// URL"),
            ),
            ("url = \"http://dc\"", Err("must start with ldaps://")),
            ("url = \"ldaps://dc\"\npage_size = 0", Err("1..=1000")),
            ("url = \"ldaps://dc\"\npage_size = 1001", Err("1..=1000")),
            (
                "url = \"ldaps://dc\"\npage_size = 1000",
                Ok(Transport::Ldaps),
            ),
            (
                "url = \"ldaps://dc\"\ntimeout_secs = 0",
                Err("timeout_secs"),
            ),
            (
                "url = \"ldaps://dc\"\nbase_dn = \"DC=a,,DC=b\"",
                Err("ad.base_dn"),
            ),
            (
                "url = \"ldaps://dc\"\npassword_file = \"/x\"",
                Err("not both"),
            ),
        ];
        for (extra, want) in cases {
            let c = config(&format!("{extra}\n{BASE}")).unwrap();
            match (c.validate(), want) {
                (Ok(got), Ok(want)) => assert_eq!(&got, want, "{extra}"),
                (Err(e), Err(part)) => {
                    assert!(e.to_string().contains(part), "{extra}: {e}")
                }
                (got, want) => panic!("{extra}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn kerberos_takes_a_principal_and_no_password_and_tls() {
        let kerberos = "url = \"ldaps://dc1.corp.example\"\nauth = \"kerberos\"\n";
        let c = config(&format!(
            "{kerberos}bind_dn = \"svc@CORP.EXAMPLE\"\nkeytab = \"/etc/svc.keytab\""
        ))
        .unwrap();
        assert_eq!(c.auth, AuthMethod::Kerberos);
        assert_eq!(c.validate().unwrap(), Transport::Ldaps);
        let sealed =
            config("url = \"ldap://dc1\"\nauth = \"kerberos\"\nbind_dn = \"svc@CORP.EXAMPLE\"")
                .unwrap();
        assert_eq!(
            sealed.validate().unwrap(),
            Transport::Plain,
            "Kerberos seals plain LDAP itself: no allow_insecure_ldap needed"
        );
        assert!(sealed.is_sealed() && !c.is_sealed());
        for (extra, part) in [
            (
                "bind_dn = \"svc@CORP.EXAMPLE\"\npassword_env = \"PW\"",
                "takes no password",
            ),
            ("bind_dn = \"CN=svc,DC=corp\"", "name@REALM"),
        ] {
            let err = config(&format!("{kerberos}{extra}"))
                .unwrap()
                .validate()
                .unwrap_err()
                .to_string();
            assert!(err.contains(part), "{extra}: {err}");
        }
        let err = config(&format!("url = \"ldaps://dc\"\nkeytab = \"/k\"\n{BASE}"))
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("ad.auth = \"kerberos\""), "{err}");
        let err = config("url = \"ldaps://dc\"\nauth = \"ntlm\"\nbind_dn = \"x\"").unwrap_err();
        assert!(err.contains("ntlm"), "{err}");
    }

    #[test]
    fn no_password_source_is_an_error() {
        let c = config("url = \"ldaps://dc\"\nbind_dn = \"x\"").unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("one of"));
    }

    #[test]
    fn unknown_key_is_named() {
        let err = config(&format!(
            "url = \"ldaps://dc\"\nbind_pasword = \"x\"\n{BASE}"
        ))
        .unwrap_err();
        assert!(err.contains("bind_pasword"), "{err}");
    }
}
