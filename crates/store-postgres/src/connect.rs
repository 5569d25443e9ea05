//! Connecting to PostgreSQL: the settings (URL, password, CA), TLS always on and verified, and
//! running the blocking client from anywhere (on a thread of its own inside an async runtime).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use exo_writeback_core::secret::Secret;
use exo_writeback_store::StoreError;
use postgres::config::SslMode;
use rustls::ClientConfig;
use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio_postgres_rustls::MakeRustlsConnect;

/// How to reach the state database.
#[derive(Debug, Clone)]
pub struct PgSettings {
    /// `postgres://user@host:port/database` (no password in it: [`PgSettings::password`]).
    pub url: String,
    pub password: Option<Secret>,
    /// The CA that issued the server's certificate (PEM); `None`: the system's trust store.
    pub ca_file: Option<PathBuf>,
    /// Shown in `pg_stat_activity` (`exo-writeback run`, …).
    pub application_name: String,
    pub connect_timeout: Duration,
}

impl PgSettings {
    pub fn new(url: impl Into<String>, password: Option<Secret>, ca_file: Option<PathBuf>) -> Self {
        PgSettings {
            url: url.into(),
            password,
            ca_file,
            application_name: "exo-writeback".into(),
            connect_timeout: Duration::from_secs(5),
        }
    }

    /// The URL as errors and status show it (no password).
    pub fn label(&self) -> PathBuf {
        PathBuf::from(redact(&self.url))
    }
}

/// Why the settings cannot be used (before anything connects).
#[derive(Debug, thiserror::Error)]
pub enum PgSettingsError {
    #[error("state.url {url} is not a PostgreSQL URL: {reason}")]
    BadUrl { url: String, reason: String },
    #[error(
        "state.url carries a password: put it in state.password_file or state.password_env \
         instead, so it never appears in the configuration, a log or `status`"
    )]
    PasswordInUrl,
    #[error(
        "state.url {url} asks for sslmode={mode}: the state database is always reached over TLS \
         with its certificate verified (remove sslmode, or set state.ca_file for a private CA)"
    )]
    PlainRefused { url: String, mode: String },
    #[error("state.url {url} names no host")]
    NoHost { url: String },
    #[error("cannot read state.ca_file {}: {reason}", path.display())]
    CaFile { path: PathBuf, reason: String },
    #[error("TLS set-up for the state database failed: {0}")]
    Tls(String),
}

/// `postgres://user:secret@host/db` → `postgres://user@host/db`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}@{host}{tail}")
        }
        None => url.to_string(),
    }
}

/// Parsed settings, ready to open connections.
pub(crate) struct Connector {
    config: postgres::Config,
    tls: MakeRustlsConnect,
    pub(crate) label: PathBuf,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

impl Connector {
    pub(crate) fn new(settings: &PgSettings) -> Result<Arc<Connector>, PgSettingsError> {
        let url = redact(&settings.url);
        if !(settings.url.starts_with("postgres://") || settings.url.starts_with("postgresql://")) {
            return Err(PgSettingsError::BadUrl {
                url,
                reason: "it must start with postgres://".into(),
            });
        }
        if let Some(mode) = ssl_mode_asked(&settings.url)
            && matches!(mode.as_str(), "disable" | "allow" | "prefer")
        {
            return Err(PgSettingsError::PlainRefused { url, mode });
        }
        // TLS is always required and verified (host name included): sslmode=require,
        // verify-ca and verify-full all mean that here; the client knows only `require`.
        let mut config =
            postgres::Config::from_str(&without_ssl_mode(&settings.url)).map_err(|e| {
                PgSettingsError::BadUrl {
                    url: url.clone(),
                    reason: e.to_string(),
                }
            })?;
        if config.get_password().is_some() {
            return Err(PgSettingsError::PasswordInUrl);
        }
        if config.get_hosts().is_empty() {
            return Err(PgSettingsError::NoHost { url });
        }
        if let Some(p) = &settings.password {
            config.password(p.expose());
        }
        config
            .ssl_mode(SslMode::Require)
            .application_name(&settings.application_name)
            .connect_timeout(settings.connect_timeout)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(10))
            .keepalives_interval(Duration::from_secs(2))
            .keepalives_retries(3)
            .tcp_user_timeout(Duration::from_secs(15))
            // A statement never waits long for a row lock (the lease's, another writer's).
            .options("-c lock_timeout=15s -c idle_in_transaction_session_timeout=60s");
        let tls = tls_config(settings.ca_file.as_deref())?;
        Ok(Arc::new(Connector {
            config,
            tls: MakeRustlsConnect::new(tls),
            label: PathBuf::from(url),
        }))
    }

    /// A new connection (TLS, certificate and host name verified).
    pub(crate) fn connect(&self) -> Result<postgres::Client, StoreError> {
        let config = self.config.clone();
        let tls = self.tls.clone();
        blocking(move || config.connect(tls))
            .map_err(|e| crate::error::classify(&self.label, "connect", e))
    }
}

/// The `sslmode` a URL asks for, if any.
fn ssl_mode_asked(url: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == "sslmode").then(|| v.to_ascii_lowercase())
    })
}

/// The URL without its `sslmode` parameter.
fn without_ssl_mode(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_string();
    };
    let rest: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.starts_with("sslmode="))
        .collect();
    if rest.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", rest.join("&"))
    }
}

fn tls_config(ca_file: Option<&Path>) -> Result<ClientConfig, PgSettingsError> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let ca_error = |reason: String| PgSettingsError::CaFile {
                path: path.to_path_buf(),
                reason,
            };
            let certs = CertificateDer::pem_file_iter(path).map_err(|e| ca_error(e.to_string()))?;
            for cert in certs {
                let cert = cert.map_err(|e| ca_error(e.to_string()))?;
                roots
                    .add(cert)
                    .map_err(|e| ca_error(format!("not a usable CA certificate: {e}")))?;
            }
            if roots.is_empty() {
                return Err(ca_error("no certificate in the file".into()));
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            for e in &native.errors {
                tracing::warn!(error = %e, "problem loading the system certificate store");
            }
            let (added, _ignored) = roots.add_parsable_certificates(native.certs);
            if added == 0 {
                tracing::warn!("the system certificate store is empty; set state.ca_file");
            }
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| PgSettingsError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Runs a blocking call of the PostgreSQL client. The client drives its own small runtime,
/// which cannot start on a thread that already drives one: inside an async runtime the call
/// runs on a thread of its own (the caller's thread waits, as it would for SQLite's disk).
pub(crate) fn blocking<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_password_when_shown() {
        let cases = [
            (
                "postgres://exo:s3cret@db:5432/state",
                "postgres://exo@db:5432/state",
            ),
            ("postgres://exo@db/state", "postgres://exo@db/state"),
            (
                "postgres://db/state?sslmode=verify-full",
                "postgres://db/state?sslmode=verify-full",
            ),
            ("postgresql://a:b@h", "postgresql://a@h"),
        ];
        for (url, shown) in cases {
            assert_eq!(redact(url), shown, "{url}");
        }
    }

    #[test]
    fn settings_refuse_a_password_in_the_url_plain_connections_and_other_schemes() {
        let settings = |url: &str| PgSettings::new(url, None, None);
        let err = Connector::new(&settings("postgres://exo:hunter2@db/state")).unwrap_err();
        assert!(matches!(err, PgSettingsError::PasswordInUrl), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        for mode in ["disable", "prefer", "allow"] {
            let err = Connector::new(&settings(&format!(
                "postgres://exo@db/state?sslmode={mode}"
            )))
            .unwrap_err();
            assert!(err.to_string().contains("always reached over TLS"), "{err}");
        }
        let err = Connector::new(&settings("mysql://exo@db/state")).unwrap_err();
        assert!(err.to_string().contains("postgres://"), "{err}");
        Connector::new(&settings("postgres://exo@db/state?sslmode=verify-full")).expect("fine");
        let err = Connector::new(&PgSettings::new(
            "postgres://exo@db/state",
            None,
            Some(PathBuf::from("/nonexistent/ca.pem")),
        ))
        .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }
}
