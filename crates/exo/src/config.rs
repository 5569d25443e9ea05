//! The `[exo]` configuration section and its validated, ready-to-use form.

use std::path::PathBuf;
use std::time::Duration;

use exo_writeback_core::secret::Secret;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::certificate::{CertificateInfo, CertificateProblem};
pub use crate::endpoints::{
    Cloud, INITIAL_DOMAIN_SUFFIXES, SYSTEM_MAILBOX, TenantName, default_anchor_mailbox,
    is_loopback, parse_base, validate_tenant,
};
use crate::retry::RetryPolicy;

/// The `[exo]` section of the configuration file, as written by the administrator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExoConfig {
    /// Tenant ID (GUID) or initial domain (`contoso.onmicrosoft.com`); a custom domain is
    /// refused (it cannot anchor app-only requests).
    pub tenant: String,
    /// Application (client) ID of the app registration with Exchange.ManageAsApp.
    pub client_id: String,
    /// File holding the client secret (first line, surrounding whitespace trimmed).
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// Environment variable holding the client secret.
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// PEM certificate registered on the app (certificate authentication).
    #[serde(default)]
    pub certificate_file: Option<PathBuf>,
    /// PEM private key (PKCS#1 or PKCS#8, RSA) matching `certificate_file`.
    #[serde(default)]
    pub private_key_file: Option<PathBuf>,
    /// How the client assertion is signed: `ps256` (PS256 with the SHA-256 thumbprint in
    /// `x5t#S256`, what MSAL sends today) or `rs256` (RS256 with the SHA-1 thumbprint in
    /// `x5t`, what older MSAL versions send).
    #[serde(default)]
    pub certificate_assertion: CertificateAssertion,
    /// Which Microsoft cloud the tenant lives in; selects login and API hosts.
    #[serde(default)]
    pub cloud: Cloud,
    /// Overrides the cloud's login host (e.g. the emulator's URL).
    #[serde(default)]
    pub login_base: Option<String>,
    /// Overrides the cloud's Exchange Online API host.
    #[serde(default)]
    pub api_base: Option<String>,
    /// Allow `http://` bases (only for the emulator on loopback).
    #[serde(default)]
    pub allow_insecure_http: bool,
    /// Records per page (`Prefer: odata.maxpagesize=N`).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// `X-AnchorMailbox` value; default `APP:SystemMailbox{bb558c35-…}@<tenant ID>`, or
    /// `UPN:SystemMailbox{bb558c35-…}@<initial domain>` (see [`default_anchor_mailbox`]).
    #[serde(default)]
    pub anchor_mailbox: Option<String>,
    /// How long one request may wait for Exchange Online's answer, in seconds (default 960,
    /// the module's). A request that times out is sent once more at most.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Tries per request (first try included) for throttling, 5xx and network errors.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Seconds one request may spend waiting out throttling (429 with `Retry-After`) before
    /// 429s count as failed tries; 0 counts every 429.
    #[serde(default = "default_throttle_budget_secs")]
    pub throttle_budget_secs: u64,
}

fn default_page_size() -> u32 {
    1000
}
/// The ExchangeOnlineManagement module's HTTP timeout: "16 minutes, 1 minute more than server
/// timeout so we don't timeout before the server" (`$DefaultHTTPTimeout = 960` in the script
/// the module generates). A filtered Get-Mailbox of a large tenant can take minutes before
/// its first page.
pub const DEFAULT_TIMEOUT_SECS: u64 = 960;

fn default_timeout_secs() -> u64 {
    DEFAULT_TIMEOUT_SECS
}
fn default_max_attempts() -> u32 {
    5
}
fn default_throttle_budget_secs() -> u64 {
    600
}

/// The two signature/thumbprint pairs MSAL sends in a certificate's client assertion
/// (msal-node `ClientAssertion.ts`); any other pair is refused by Entra ID (AADSTS700027).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CertificateAssertion {
    /// PS256 (RSA-PSS, SHA-256) with `x5t#S256`: Microsoft's current certificate-credentials
    /// page and MSAL's `fromCertificateWithSha256Thumbprint`.
    #[default]
    Ps256,
    /// RS256 (PKCS#1 v1.5, SHA-256) with `x5t` (SHA-1): the page's earlier revisions and
    /// MSAL's older `fromCertificate`.
    Rs256,
}

/// How the agent proves its identity to Entra ID.
#[derive(Clone, Debug)]
pub enum Credentials {
    ClientSecret(Secret),
    /// PEM certificate and its RSA private key (the key is a secret).
    Certificate {
        certificate_pem: String,
        private_key_pem: Secret,
    },
}

/// Everything the client needs, validated. Build it with [`ExoConfig::settings`] or directly
/// (tests, the emulator).
#[derive(Clone, Debug)]
pub struct ExoSettings {
    pub tenant: String,
    pub client_id: String,
    pub credentials: Credentials,
    /// `{login_base}/{tenant}/oauth2/v2.0/token` is the token endpoint.
    pub login_base: Url,
    /// `{api_base}/adminapi/beta/{tenant}/InvokeCommand` is the API endpoint.
    pub api_base: Url,
    pub scope: String,
    /// How a certificate's client assertion is signed (unused with a client secret).
    pub assertion: CertificateAssertion,
    pub page_size: u32,
    pub anchor_mailbox: String,
    pub timeout: Duration,
    pub retry: RetryPolicy,
    /// The client certificate's details (certificate credentials only), checked when the
    /// settings were made.
    pub certificate: Option<CertificateInfo>,
    /// The file it was read from.
    pub certificate_file: Option<PathBuf>,
}

impl ExoSettings {
    /// What the administrator should know at `now` although nothing fails yet: a certificate
    /// that expires within [`crate::certificate::EXPIRY_WARNING_DAYS`] days.
    pub fn warnings(&self, now: jiff::Timestamp) -> Vec<String> {
        let Some(info) = &self.certificate else {
            return Vec::new();
        };
        let file = self
            .certificate_file
            .as_ref()
            .map(|p| format!("{} ", p.display()))
            .unwrap_or_default();
        info.expiry_warning(now)
            .map(|w| format!("[exo] certificate_file: {file}{w}"))
            .into_iter()
            .collect()
    }
}

/// The configuration cannot be used; the message says which key to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("[exo] {key}: {problem}")]
    Invalid { key: &'static str, problem: String },
    #[error("[exo] {key}: cannot read {path}: {source}")]
    Unreadable {
        key: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

pub(crate) fn invalid(key: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        problem: problem.into(),
    }
}

impl ExoConfig {
    /// Validates the section and loads the credential from its file or environment variable.
    pub fn settings(&self) -> Result<ExoSettings, ConfigError> {
        self.settings_with_env(|name| std::env::var(name).ok())
    }

    /// As [`ExoConfig::settings`], with the environment supplied (for tests).
    pub fn settings_with_env(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<ExoSettings, ConfigError> {
        validate_tenant(&self.tenant)?;
        if TenantName::of(&self.tenant) == TenantName::CustomDomain {
            return Err(invalid(
                "tenant",
                format!(
                    "{:?} is a custom domain. Exchange Online routes an app's requests to the tenant's system mailbox, which only the tenant ID or the initial domain finds; with a custom domain every result page after the first fails (\"Expired or Invalid pagination request\"). Set tenant to the tenant ID (a GUID: Microsoft Entra admin center, Overview, Tenant ID) or to the initial domain (contoso.onmicrosoft.com; Microsoft 365 admin center, Settings, Domains)",
                    self.tenant
                ),
            ));
        }
        if self.client_id.trim().is_empty() {
            return Err(invalid("client_id", "must not be empty"));
        }
        if !(1..=1000).contains(&self.page_size) {
            return Err(invalid(
                "page_size",
                format!("{} is out of range 1..=1000", self.page_size),
            ));
        }
        if self.max_attempts == 0 || self.max_attempts > 20 {
            return Err(invalid(
                "max_attempts",
                format!("{} is out of range 1..=20", self.max_attempts),
            ));
        }
        if self.throttle_budget_secs > 86_400 {
            return Err(invalid(
                "throttle_budget_secs",
                format!("{} is out of range 0..=86400", self.throttle_budget_secs),
            ));
        }
        if self.timeout_secs == 0 {
            return Err(invalid("timeout_secs", "must be at least 1"));
        }
        let (credentials, certificate) = self.credentials(env, jiff::Timestamp::now())?;
        let login_base = parse_base(
            "login_base",
            self.login_base
                .as_deref()
                .unwrap_or(self.cloud.login_base()),
            self.allow_insecure_http,
        )?;
        let api_base = parse_base(
            "api_base",
            self.api_base.as_deref().unwrap_or(self.cloud.api_base()),
            self.allow_insecure_http,
        )?;
        let anchor_mailbox = match &self.anchor_mailbox {
            Some(a) if a.contains(':') => a.clone(),
            Some(a) => format!("UPN:{a}"),
            None => default_anchor_mailbox(&self.tenant),
        };
        Ok(ExoSettings {
            tenant: self.tenant.clone(),
            client_id: self.client_id.trim().to_owned(),
            credentials,
            login_base,
            api_base,
            scope: self.cloud.scope(),
            assertion: self.certificate_assertion,
            page_size: self.page_size,
            anchor_mailbox,
            timeout: Duration::from_secs(self.timeout_secs),
            retry: RetryPolicy {
                max_attempts: self.max_attempts,
                throttle_budget: Duration::from_secs(self.throttle_budget_secs),
                ..RetryPolicy::default()
            },
            certificate,
            certificate_file: self.certificate_file.clone(),
        })
    }

    fn credentials(
        &self,
        env: impl Fn(&str) -> Option<String>,
        now: jiff::Timestamp,
    ) -> Result<(Credentials, Option<CertificateInfo>), ConfigError> {
        let chosen = [
            self.client_secret_file.is_some(),
            self.client_secret_env.is_some(),
            self.certificate_file.is_some() || self.private_key_file.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if chosen != 1 {
            return Err(invalid(
                "client_secret_file",
                "set exactly one of client_secret_file, client_secret_env, or certificate_file + private_key_file",
            ));
        }
        if let Some(path) = &self.client_secret_file {
            let text = read("client_secret_file", path)?;
            let secret = text.lines().next().unwrap_or("").trim().to_owned();
            if secret.is_empty() {
                return Err(invalid(
                    "client_secret_file",
                    format!("{} is empty", path.display()),
                ));
            }
            return Ok((Credentials::ClientSecret(Secret::new(secret)), None));
        }
        if let Some(name) = &self.client_secret_env {
            let value = env(name).unwrap_or_default();
            let secret = value.trim();
            if secret.is_empty() {
                return Err(invalid(
                    "client_secret_env",
                    format!("environment variable {name} is not set or empty"),
                ));
            }
            return Ok((Credentials::ClientSecret(Secret::new(secret)), None));
        }
        let (Some(cert), Some(key)) = (&self.certificate_file, &self.private_key_file) else {
            return Err(invalid(
                "certificate_file",
                "certificate authentication needs both certificate_file and private_key_file",
            ));
        };
        let certificate_pem = read("certificate_file", cert)?;
        crate::token::certificate_der(&certificate_pem)
            .map_err(|e| invalid("certificate_file", format!("{}: {e}", cert.display())))?;
        let private_key_pem = Secret::new(read("private_key_file", key)?);
        // Checked here, at start-up and by `check`, rather than learnt from Entra ID's
        // AADSTS700027 at the first token request.
        let info = crate::certificate::inspect(&certificate_pem, &private_key_pem).map_err(
            |p| match p {
                CertificateProblem::Certificate(m) => {
                    invalid("certificate_file", format!("{}: {m}", cert.display()))
                }
                CertificateProblem::Key(m) => {
                    invalid("private_key_file", format!("{}: {m}", key.display()))
                }
                CertificateProblem::KeyMismatch => invalid(
                    "private_key_file",
                    format!(
                        "{} does not belong to the certificate {} (their public keys differ); give the key the certificate was made with",
                        key.display(),
                        cert.display()
                    ),
                ),
            },
        )?;
        if let Some(problem) = info.validity_problem(now) {
            return Err(invalid(
                "certificate_file",
                format!("{} {problem}", cert.display()),
            ));
        }
        jsonwebtoken::EncodingKey::from_rsa_pem(private_key_pem.expose().as_bytes()).map_err(
            |_| {
                invalid(
                    "private_key_file",
                    format!("{} is not a PEM RSA private key", key.display()),
                )
            },
        )?;
        Ok((
            Credentials::Certificate {
                certificate_pem,
                private_key_pem,
            },
            Some(info),
        ))
    }
}

fn read(key: &'static str, path: &PathBuf) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Unreadable {
        key,
        path: path.clone(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(extra: &str) -> String {
        format!(
            "tenant = \"contoso.onmicrosoft.com\"\nclient_id = \"app\"\nclient_secret_env = \"EXO_SECRET\"\n{extra}"
        )
    }

    fn settings(toml_text: &str) -> Result<ExoSettings, ConfigError> {
        let cfg: ExoConfig = toml::from_str(toml_text).expect("toml parses");
        cfg.settings_with_env(|n| (n == "EXO_SECRET").then(|| "s3cr3t-value".to_owned()))
    }

    #[test]
    fn defaults_are_worldwide_with_the_module_anchor() {
        let s = settings(&base("")).expect("valid");
        assert_eq!(s.login_base.as_str(), "https://login.microsoftonline.com/");
        assert_eq!(s.api_base.as_str(), "https://outlook.office365.com/");
        assert_eq!(s.scope, "https://outlook.office365.com/.default");
        assert_eq!(s.page_size, 1000);
        assert_eq!(
            s.anchor_mailbox,
            "UPN:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@contoso.onmicrosoft.com"
        );
        assert_eq!(s.retry.max_attempts, 5);
    }

    #[test]
    fn cloud_presets() {
        // (cloud key, login host, API host = scope resource); sources in PROTOCOL.md §1.
        let table = [
            (
                "worldwide",
                "https://login.microsoftonline.com/",
                "https://outlook.office365.com/",
            ),
            (
                "gcc",
                "https://login.microsoftonline.com/",
                "https://outlook.office365.com/",
            ),
            (
                "gcc-high",
                "https://login.microsoftonline.us/",
                "https://outlook.office365.us/",
            ),
            (
                "dod",
                "https://login.microsoftonline.us/",
                "https://outlook-dod.office365.us/",
            ),
            (
                "china",
                "https://login.partner.microsoftonline.cn/",
                "https://partner.outlook.cn/",
            ),
        ];
        for (cloud, login, api) in table {
            let s = settings(&base(&format!("cloud = \"{cloud}\""))).expect("valid");
            assert_eq!(s.login_base.as_str(), login, "{cloud}");
            assert_eq!(s.api_base.as_str(), api, "{cloud}");
            assert_eq!(s.scope, format!("{api}.default"), "{cloud}");
        }
    }

    #[test]
    fn plain_http_is_refused_unless_allowed() {
        let err = settings(&base("api_base = \"http://127.0.0.1:9\""))
            .expect_err("http refused")
            .to_string();
        assert!(
            err.contains("api_base") && err.contains("allow_insecure_http"),
            "{err}"
        );
        let ok = settings(&base(
            "api_base = \"http://127.0.0.1:9\"\nlogin_base = \"http://127.0.0.1:9\"\nallow_insecure_http = true",
        ))
        .expect("allowed");
        assert_eq!(ok.api_base.as_str(), "http://127.0.0.1:9/");
        for (host, allowed) in [
            ("127.0.0.1:9", true),
            ("127.1.2.3", true),
            ("[::1]:9", true),
            ("localhost:9", true),
            ("LOCALHOST", true),
            ("10.0.0.1", false),
            ("[::ffff:10.0.0.1]", false),
            ("exo.example.com", false),
            ("localhost.example.com", false),
            ("127.0.0.1.nip.io", false),
        ] {
            let text = base(&format!(
                "api_base = \"http://{host}\"\nlogin_base = \"https://login.example\"\nallow_insecure_http = true"
            ));
            match settings(&text) {
                Ok(_) => assert!(allowed, "{host} allowed"),
                Err(e) => {
                    assert!(!allowed, "{host}: {e}");
                    assert!(e.to_string().contains("not a loopback address"), "{e}");
                }
            }
        }
    }

    #[test]
    fn the_anchor_follows_how_the_tenant_is_named() {
        let guid = "4B8C18BD-2F9F-4227-AF55-9F1061CF9C32";
        let cases = [
            (
                guid,
                Some(
                    "APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@4b8c18bd-2f9f-4227-af55-9f1061cf9c32",
                ),
            ),
            (
                "contoso.onmicrosoft.com",
                Some(
                    "UPN:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@contoso.onmicrosoft.com",
                ),
            ),
            (
                "agency.onmicrosoft.us",
                Some(
                    "UPN:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@agency.onmicrosoft.us",
                ),
            ),
            (
                "contoso.partner.onmschina.cn",
                Some(
                    "UPN:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@contoso.partner.onmschina.cn",
                ),
            ),
            ("contoso.com", None),
            ("onmicrosoft.com", None),
            ("mail.contoso.onmicrosoft.com.evil.example", None),
        ];
        for (tenant, anchor) in cases {
            let text = format!(
                "tenant = \"{tenant}\"\nclient_id = \"app\"\nclient_secret_env = \"EXO_SECRET\""
            );
            match (settings(&text), anchor) {
                (Ok(s), Some(a)) => assert_eq!(s.anchor_mailbox, a, "{tenant}"),
                (Err(e), None) => assert!(e.to_string().contains("custom domain"), "{tenant}: {e}"),
                (other, _) => panic!("{tenant}: {other:?}"),
            }
        }
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let r: Result<ExoConfig, _> = toml::from_str(&base("colud = \"dod\""));
        assert!(r.is_err());
    }

    #[test]
    fn credentials_must_be_exactly_one() {
        let two = "tenant = \"contoso.onmicrosoft.com\"\nclient_id = \"a\"\nclient_secret_env = \"X\"\ncertificate_file = \"/c\"\nprivate_key_file = \"/k\"";
        assert!(settings(two).is_err());
        let none = "tenant = \"contoso.onmicrosoft.com\"\nclient_id = \"a\"";
        assert!(settings(none).is_err());
    }

    #[test]
    fn secret_from_file_is_trimmed_and_never_printed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secret");
        std::fs::write(&path, "  file-secret-xyz \n").expect("write");
        let text = format!(
            "tenant = \"contoso.onmicrosoft.com\"\nclient_id = \"a\"\nclient_secret_file = {:?}",
            path.display().to_string()
        );
        let s = settings(&text).expect("valid");
        match &s.credentials {
            Credentials::ClientSecret(sec) => assert_eq!(sec.expose(), "file-secret-xyz"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(!format!("{s:?}").contains("file-secret-xyz"));
    }

    #[test]
    fn missing_env_secret_names_the_variable() {
        let cfg: ExoConfig = toml::from_str(&base("")).expect("toml");
        let err = cfg.settings_with_env(|_| None).expect_err("missing");
        assert!(err.to_string().contains("EXO_SECRET"), "{err}");
    }
}
