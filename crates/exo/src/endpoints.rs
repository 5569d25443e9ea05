//! Where requests go: the Microsoft cloud's hosts, how the tenant is named in URLs, and the
//! routing anchor derived from that name (PROTOCOL.md §1 "Cloud presets", §2 "Routing
//! anchor").

use serde::{Deserialize, Serialize};
use url::Url;

use crate::config::{ConfigError, invalid};

/// Microsoft clouds with their own login and Exchange Online hosts (PROTOCOL.md §1, "Cloud
/// presets", with the sources of each value).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cloud {
    /// Microsoft 365 worldwide, and GCC (which uses the worldwide hosts).
    #[default]
    #[serde(alias = "gcc")]
    Worldwide,
    GccHigh,
    Dod,
    China,
}

impl Cloud {
    /// Entra ID (Azure AD) authority host.
    pub fn login_base(self) -> &'static str {
        match self {
            Cloud::Worldwide => "https://login.microsoftonline.com",
            Cloud::GccHigh | Cloud::Dod => "https://login.microsoftonline.us",
            Cloud::China => "https://login.partner.microsoftonline.cn",
        }
    }
    /// Exchange Online host serving `/adminapi/beta/{tenant}/InvokeCommand`, which is also the
    /// token's resource. DoD is `outlook-dod.office365.us` (ScubaGear, CSS-Exchange);
    /// `webmail.apps.mil` is its legacy remote PowerShell URI, not the REST resource.
    pub fn api_base(self) -> &'static str {
        match self {
            Cloud::Worldwide => "https://outlook.office365.com",
            Cloud::GccHigh => "https://outlook.office365.us",
            Cloud::Dod => "https://outlook-dod.office365.us",
            Cloud::China => "https://partner.outlook.cn",
        }
    }
    /// OAuth scope: the Exchange Online resource of this cloud plus `/.default`.
    pub fn scope(self) -> String {
        format!("{}/.default", self.api_base())
    }
}

/// Checks that `tenant` is safe to put in a URL path (GUID or domain name).
pub fn validate_tenant(tenant: &str) -> Result<(), ConfigError> {
    let ok = !tenant.is_empty()
        && tenant.len() <= 255
        && !tenant.starts_with('.')
        && !tenant.contains("..")
        && tenant
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "tenant",
            format!("{tenant:?} is not a tenant ID or domain (letters, digits, '.' and '-' only)"),
        ))
    }
}

/// Whether a URL's host is a loopback address written as such (`127.0.0.0/8`, `::1`,
/// `localhost`). A name is not resolved: what it resolves to can change.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => {
            d.eq_ignore_ascii_case("localhost") || d.eq_ignore_ascii_case("localhost.")
        }
        None => false,
    }
}

/// Parses a base URL and enforces `https`; plain `http` only to loopback, when insecure HTTP
/// is allowed.
pub fn parse_base(
    key: &'static str,
    value: &str,
    allow_insecure_http: bool,
) -> Result<Url, ConfigError> {
    let url =
        Url::parse(value).map_err(|e| invalid(key, format!("{value:?} is not a URL ({e})")))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_insecure_http && is_loopback(&url) => {}
        "http" if allow_insecure_http => {
            return Err(invalid(
                key,
                format!(
                    "{value} uses plain http to {}, which is not a loopback address; the client secret and the tokens would cross the network unencrypted. allow_insecure_http allows plain http only to 127.0.0.0/8, ::1 or localhost (a local emulator); use https",
                    url.host_str().unwrap_or("?")
                ),
            ));
        }
        "http" => {
            return Err(invalid(
                key,
                format!(
                    "{value} uses plain http; tokens would travel unencrypted. Use https, or set allow_insecure_http = true for a local emulator on a loopback address"
                ),
            ));
        }
        other => {
            return Err(invalid(
                key,
                format!("unsupported scheme {other:?} in {value}"),
            ));
        }
    }
    if url.host_str().is_none() {
        return Err(invalid(key, format!("{value} has no host")));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(
            key,
            format!("{value} must not carry a query or fragment"),
        ));
    }
    Ok(url)
}

/// The organization's system mailbox that app-only requests are anchored to (capture A2;
/// CIPP-API `New-ExoRequest.ps1`; GreyCorbel/ExoHelper `New-ExoConnection.ps1`).
pub const SYSTEM_MAILBOX: &str = "SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}";

/// Domain suffixes of a tenant's initial (Microsoft-managed) domain: worldwide and GCC, GCC High
/// and DoD, 21Vianet.
pub const INITIAL_DOMAIN_SUFFIXES: [&str; 3] =
    [".onmicrosoft.com", ".onmicrosoft.us", ".onmschina.cn"];

/// How the `tenant` key names the tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantName {
    /// The tenant ID (a GUID).
    Id,
    /// The initial `*.onmicrosoft.com` (`.us`, `.onmschina.cn`) domain.
    InitialDomain,
    /// Any other domain: a custom (vanity) domain.
    CustomDomain,
}

impl TenantName {
    pub fn of(tenant: &str) -> TenantName {
        if uuid::Uuid::parse_str(tenant).is_ok() {
            return TenantName::Id;
        }
        let lower = tenant.to_ascii_lowercase();
        if INITIAL_DOMAIN_SUFFIXES
            .iter()
            .any(|s| lower.ends_with(s) && lower.len() > s.len())
        {
            TenantName::InitialDomain
        } else {
            TenantName::CustomDomain
        }
    }
}

/// The `X-AnchorMailbox` sent on every request: `APP:SystemMailbox{bb558c35-…}@<tenant ID>` for
/// a tenant ID (CIPP-API, ExoHelper), `UPN:SystemMailbox{bb558c35-…}@<initial domain>` for the
/// initial domain (what the module sends, capture A2; cisagov/ScubaGear). A custom domain
/// finds no system mailbox (the settings refuse it); this gives the UPN form for it.
pub fn default_anchor_mailbox(tenant: &str) -> String {
    match TenantName::of(tenant) {
        TenantName::Id => format!("APP:{SYSTEM_MAILBOX}@{}", tenant.to_ascii_lowercase()),
        _ => format!("UPN:{SYSTEM_MAILBOX}@{tenant}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_must_be_path_safe() {
        for bad in ["", "a/b", "x?y", "../t", "..", "t t"] {
            assert!(validate_tenant(bad).is_err(), "{bad:?}");
        }
        for good in [
            "contoso.onmicrosoft.com",
            "4b8c18bd-2f9f-4227-af55-9f1061cf9c32",
        ] {
            assert!(validate_tenant(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn tenant_names() {
        for (t, want) in [
            ("4b8c18bd-2f9f-4227-af55-9f1061cf9c32", TenantName::Id),
            ("contoso.onmicrosoft.com", TenantName::InitialDomain),
            ("Agency.OnMicrosoft.US", TenantName::InitialDomain),
            ("contoso.partner.onmschina.cn", TenantName::InitialDomain),
            ("contoso.com", TenantName::CustomDomain),
            ("onmicrosoft.com", TenantName::CustomDomain),
        ] {
            assert_eq!(TenantName::of(t), want, "{t}");
        }
    }
}
