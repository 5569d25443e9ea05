//! The sections of a running service: `[api]` (the HTTP listener, its TLS and its tokens) and
//! `[notify]` (webhooks). Secrets — tokens, webhook URLs, which carry their key — come from
//! files (or, for webhooks, an environment variable), are made private like every secret file
//! (`crate::files`), and are held as [`Secret`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use exo_writeback_core::secret::Secret;
use serde::{Deserialize, Serialize};

use super::{SecretError, load_secret};

/// Where the agent listens by default: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8910";

/// The shortest token accepted (characters): 32 hex characters are 128 random bits.
pub const MIN_TOKEN_LEN: usize = 32;

/// The `[api]` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSettings {
    /// The address the agent serves HTTP on while it runs (default `127.0.0.1:8910`; port 0
    /// takes a free port, which the agent writes into `<state_dir>/api.json`).
    pub listen: SocketAddr,
    /// TLS certificate chain (PEM); required, with the key, to listen beyond loopback.
    pub tls_cert_file: Option<PathBuf>,
    /// TLS private key (PEM) of `tls_cert_file`; a secret file.
    pub tls_key_file: Option<PathBuf>,
    /// Bearer tokens, one file each, with a role. Without any, only `/healthz`, `/readyz` and
    /// the console's static files answer: authentication cannot be turned off.
    pub tokens: Vec<TokenSettings>,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            listen: DEFAULT_LISTEN
                .parse()
                .unwrap_or_else(|_| SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 8910))),
            tls_cert_file: None,
            tls_key_file: None,
            tokens: Vec::new(),
        }
    }
}

/// One `[[api.tokens]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    /// Who holds it (named in the log and in the journal of what it did; never the token).
    pub name: String,
    pub role: Role,
    /// The file holding the token (one line; at least 32 characters).
    pub file: PathBuf,
}

/// What a token may do. An operator may do everything a reader may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Status, cycles, provisioning logs, held changes, escrow, preview, metrics: they hold
    /// personal data, so they are never anonymous.
    Reader,
    /// Everything a reader may, and provision, approve, undo, restart, pause and resume.
    Operator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Operator => "operator",
        }
    }
}

/// A token loaded from its file.
#[derive(Debug, Clone)]
pub struct ApiToken {
    pub name: String,
    pub role: Role,
    pub secret: Secret,
}

/// An `[api]` setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ApiSettingsError {
    #[error(
        "api.listen {listen} is beyond loopback: set api.tls_cert_file and api.tls_key_file (the API carries tokens and personal data; it is never served in clear text beyond this machine)"
    )]
    ClearTextBeyondLoopback { listen: SocketAddr },
    #[error("set both api.tls_cert_file and api.tls_key_file, or neither")]
    HalfTls,
    #[error("api.tokens: a token needs a name")]
    UnnamedToken,
    #[error("api.tokens: the name {name:?} is used twice")]
    DuplicateToken { name: String },
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(
        "api.tokens {name:?}: the token in {} is {len} characters; use at least {MIN_TOKEN_LEN} random ones (e.g. `openssl rand -hex 32`)",
        file.display()
    )]
    ShortToken {
        name: String,
        file: PathBuf,
        len: usize,
    },
    #[error("api.tokens {name:?} and {other:?} hold the same token; give each its own")]
    SameToken { name: String, other: String },
}

impl ApiSettings {
    /// The checks serde cannot make: TLS beyond loopback, both TLS files, unique names.
    pub fn validate(&self) -> Result<(), ApiSettingsError> {
        match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(_), None) | (None, Some(_)) => return Err(ApiSettingsError::HalfTls),
            (None, None) if !self.listen.ip().is_loopback() => {
                return Err(ApiSettingsError::ClearTextBeyondLoopback {
                    listen: self.listen,
                });
            }
            _ => {}
        }
        let mut names = std::collections::BTreeSet::new();
        for t in &self.tokens {
            if t.name.trim().is_empty() {
                return Err(ApiSettingsError::UnnamedToken);
            }
            if !names.insert(t.name.as_str()) {
                return Err(ApiSettingsError::DuplicateToken {
                    name: t.name.clone(),
                });
            }
        }
        Ok(())
    }

    /// Whether the API is served over TLS.
    pub fn tls(&self) -> bool {
        self.tls_cert_file.is_some()
    }

    /// Every token, read from its file (made private first).
    pub fn load_tokens(&self) -> Result<Vec<ApiToken>, ApiSettingsError> {
        let mut tokens: Vec<ApiToken> = Vec::new();
        for t in &self.tokens {
            let secret = load_secret("api.tokens.file", Some(&t.file), None)?;
            let len = secret.expose().chars().count();
            if len < MIN_TOKEN_LEN {
                return Err(ApiSettingsError::ShortToken {
                    name: t.name.clone(),
                    file: t.file.clone(),
                    len,
                });
            }
            if let Some(other) = tokens.iter().find(|o| o.secret.expose() == secret.expose()) {
                return Err(ApiSettingsError::SameToken {
                    name: t.name.clone(),
                    other: other.name.clone(),
                });
            }
            tokens.push(ApiToken {
                name: t.name.clone(),
                role: t.role,
                secret,
            });
        }
        Ok(tokens)
    }

    /// The secret files of this section, each named by its setting.
    pub fn secret_files(&self) -> Vec<(&'static str, &Path)> {
        let mut files: Vec<(&'static str, &Path)> = self
            .tokens
            .iter()
            .map(|t| ("api.tokens.file", t.file.as_path()))
            .collect();
        if let Some(key) = &self.tls_key_file {
            files.push(("api.tls_key_file", key));
        }
        files
    }
}

/// The `[notify]` section: webhooks for sites without Prometheus.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifySettings {
    pub webhooks: Vec<WebhookSettings>,
    /// A credential (the Exchange Online certificate, the API's TLS certificate) expiring
    /// within this many days is announced (default 30).
    pub credential_expiry_days: u32,
}

impl Default for NotifySettings {
    fn default() -> Self {
        NotifySettings {
            webhooks: Vec::new(),
            credential_expiry_days: 30,
        }
    }
}

/// One `[[notify.webhooks]]` entry. The URL is a secret (Teams and Slack put the key in it):
/// it comes from `url_file` or `url_env`, never from this file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// Named in the log (never the URL).
    pub name: String,
    pub url_file: Option<PathBuf>,
    pub url_env: Option<String>,
    /// The body's shape (default `generic`).
    #[serde(default)]
    pub format: WebhookFormat,
    /// The events sent (default: all).
    #[serde(default = "EventKind::all")]
    pub events: Vec<EventKind>,
}

/// The body a webhook receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// `{"event", "severity", "summary", "details", "time", "agent"}`.
    #[default]
    Generic,
    /// A Teams incoming webhook's MessageCard.
    Teams,
    /// A Slack incoming webhook's `{"text", "blocks"}`.
    Slack,
}

/// What is announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The job went into quarantine.
    Quarantine,
    /// A cycle is held by the change threshold, waiting for approval.
    Held,
    /// A credential expires soon.
    CredentialExpiry,
    /// A security event (e.g. a spoofed match key, refused authentication).
    Security,
}

impl EventKind {
    pub fn all() -> Vec<EventKind> {
        vec![
            EventKind::Quarantine,
            EventKind::Held,
            EventKind::CredentialExpiry,
            EventKind::Security,
        ]
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Quarantine => "quarantine",
            EventKind::Held => "held",
            EventKind::CredentialExpiry => "credential_expiry",
            EventKind::Security => "security",
        }
    }
}

/// A webhook with its URL loaded.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub name: String,
    pub url: Secret,
    pub format: WebhookFormat,
    pub events: Vec<EventKind>,
}

/// A `[notify]` setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum NotifySettingsError {
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("notify.webhooks {name:?}: the URL is not an https:// URL (http:// only to loopback)")]
    BadUrl { name: String },
}

impl NotifySettings {
    /// Every webhook with its URL read (files made private first).
    pub fn load_webhooks(&self) -> Result<Vec<Webhook>, NotifySettingsError> {
        self.webhooks
            .iter()
            .map(|w| {
                let what = format!("notify.webhooks.{}.url", w.name);
                let url = load_secret(&what, w.url_file.as_deref(), w.url_env.as_deref())?;
                if !acceptable_url(url.expose()) {
                    return Err(NotifySettingsError::BadUrl {
                        name: w.name.clone(),
                    });
                }
                Ok(Webhook {
                    name: w.name.clone(),
                    url,
                    format: w.format,
                    events: w.events.clone(),
                })
            })
            .collect()
    }

    pub fn secret_files(&self) -> Vec<(&'static str, &Path)> {
        self.webhooks
            .iter()
            .filter_map(|w| w.url_file.as_deref())
            .map(|f| ("notify.webhooks.url_file", f))
            .collect()
    }
}

/// https:// anywhere; http:// to a loopback host only (a local relay, the tests).
fn acceptable_url(url: &str) -> bool {
    if url.starts_with("https://") {
        return true;
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    let host = match host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(text: &str) -> ApiSettings {
        toml::from_str(text).expect("parse")
    }

    #[test]
    fn the_default_listens_on_loopback_without_tls() {
        let a = ApiSettings::default();
        assert_eq!(a.listen.to_string(), DEFAULT_LISTEN);
        a.validate().expect("valid");
    }

    #[test]
    fn clear_text_beyond_loopback_is_refused_and_no_setting_turns_authentication_off() {
        let err = api("listen = \"0.0.0.0:8910\"").validate().unwrap_err();
        assert!(err.to_string().contains("tls_cert_file"), "{err}");
        api("listen = \"0.0.0.0:8910\"\ntls_cert_file = \"/c\"\ntls_key_file = \"/k\"")
            .validate()
            .expect("with TLS");
        assert!(matches!(
            api("tls_cert_file = \"/c\"").validate(),
            Err(ApiSettingsError::HalfTls)
        ));
        for off in [
            "auth = false",
            "anonymous = true",
            "authentication = \"none\"",
        ] {
            assert!(toml::from_str::<ApiSettings>(off).is_err(), "{off}");
        }
    }

    #[test]
    fn tokens_are_long_distinct_and_named_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = |name: &str, token: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, format!("{token}\n")).expect("write");
            p
        };
        let long = "a".repeat(40);
        let a = file("a", &long);
        let b = file("b", &long);
        let short = file("short", "tiny");
        let entry = |name: &str, p: &Path| TokenSettings {
            name: name.into(),
            role: Role::Reader,
            file: p.to_path_buf(),
        };
        let mut s = ApiSettings {
            tokens: vec![entry("one", &a)],
            ..ApiSettings::default()
        };
        let loaded = s.load_tokens().expect("load");
        assert_eq!(loaded[0].secret.expose(), long);
        s.tokens.push(entry("two", &b));
        assert!(matches!(
            s.load_tokens(),
            Err(ApiSettingsError::SameToken { .. })
        ));
        s.tokens = vec![entry("s", &short)];
        let err = s.load_tokens().unwrap_err().to_string();
        assert!(
            err.contains("4 characters") && !err.contains("tiny"),
            "{err}"
        );
        s.tokens = vec![entry("x", &a), entry("x", &short)];
        assert!(matches!(
            s.validate(),
            Err(ApiSettingsError::DuplicateToken { .. })
        ));
    }

    #[test]
    fn webhook_urls_are_https_or_loopback() {
        for ok in [
            "https://example.webhook.office.com/x",
            "http://127.0.0.1:9000/hook",
            "http://localhost/hook",
            "http://[::1]:80/h",
        ] {
            assert!(acceptable_url(ok), "{ok}");
        }
        for bad in [
            "http://hooks.slack.com/x",
            "ftp://x",
            "http://127.0.0.1.evil/x",
        ] {
            assert!(!acceptable_url(bad), "{bad}");
        }
    }
}
