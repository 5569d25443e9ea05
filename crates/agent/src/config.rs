//! The one configuration file (TOML). Every table rejects unknown keys; an error names the
//! key, the file and the line. Secrets come from a file or an environment variable and are
//! held as [`Secret`], so they never reach output, logs or errors.
//!
//! To add a section: add a field to [`Config`] — `Option<Section>` or `#[serde(default)]` —
//! whose type also has `#[serde(deny_unknown_fields)]`.

use std::path::{Path, PathBuf};

use exo_writeback_ad::AdConfig;
use exo_writeback_core::secret::Secret;
use exo_writeback_core::settings::SettingsError;
use serde::Deserialize;

mod service;

pub use service::{
    ApiSettings, ApiSettingsError, ApiToken, DEFAULT_LISTEN, EventKind, MIN_TOKEN_LEN,
    NotifySettings, NotifySettingsError, Role, TokenSettings, Webhook, WebhookFormat,
    WebhookSettings,
};

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[ad]`: the domain controller to write to.
    pub ad: AdConfig,
    /// `[exo]`: the Exchange Online tenant to read (required by the writeback commands).
    #[serde(default)]
    pub exo: Option<exo_writeback_exo::ExoConfig>,
    /// `[writeback]`: profiles, mappings, scope, matching and the change threshold.
    #[serde(default)]
    pub writeback: exo_writeback_core::settings::WritebackSettings,
    /// `[sync]`: where state lives and how often cycles run.
    #[serde(default)]
    pub sync: SyncSettings,
    /// `[api]`: the HTTP API and console the agent serves while it runs.
    #[serde(default)]
    pub api: ApiSettings,
    /// `[notify]`: webhooks.
    #[serde(default)]
    pub notify: NotifySettings,
    /// `[state]`: a PostgreSQL state shared by several agents (absent: SQLite in
    /// `sync.state_dir`).
    #[serde(default)]
    pub state: Option<crate::state::StateSettings>,
    /// `[writeback]` resolved at load time (deny-list checked, expressions parsed), so a
    /// mistake is reported with the file's name before anything connects.
    #[serde(skip)]
    resolved_writeback: Option<exo_writeback_core::settings::WritebackPlanSettings>,
}

/// The `[sync]` section. Durations are written like `"60s"`, `"5m"`, `"24h"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncSettings {
    /// Directory of the state database (default `/var/lib/exo-writeback`).
    pub state_dir: PathBuf,
    /// Time from the start of one cycle of `exo-writeback run` to the start of the next
    /// (default 60 s, at least 5 s); a cycle that takes longer is followed at once.
    pub interval: jiff::SignedDuration,
    /// Time between full reconciles of `exo-writeback run` (default 24 h).
    pub reconcile_interval: jiff::SignedDuration,
    /// How far before the watermark each delta cycle re-reads (default 5 min).
    pub overlap: jiff::SignedDuration,
    /// Days provisioning logs and the journal are kept (default 30).
    pub log_retention_days: u32,
    /// How long `run` may take to stop after SIGTERM (default 30 s): the current chunk is
    /// finished or, past this bound, abandoned — its write-ahead intents let the next start
    /// log what reached AD.
    pub stop_timeout: jiff::SignedDuration,
}

impl Default for SyncSettings {
    fn default() -> Self {
        SyncSettings {
            state_dir: PathBuf::from("/var/lib/exo-writeback"),
            interval: jiff::SignedDuration::from_secs(60),
            reconcile_interval: jiff::SignedDuration::from_hours(24),
            overlap: jiff::SignedDuration::from_mins(5),
            log_retention_days: 30,
            stop_timeout: jiff::SignedDuration::from_secs(30),
        }
    }
}

/// A `[sync]` value out of its limits.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SyncError {
    #[error("sync.interval must be at least 5s (it is {interval:#})")]
    IntervalTooShort { interval: jiff::SignedDuration },
    #[error("sync.reconcile_interval must be positive")]
    ReconcileIntervalNotPositive,
    #[error("sync.overlap must not be negative")]
    NegativeOverlap,
    #[error("sync.stop_timeout must be between 1s and 1h")]
    StopTimeout,
}

impl SyncSettings {
    /// Check the limits (interval ≥ 5 s, positive durations).
    pub fn validate(&self) -> Result<(), SyncError> {
        if self.interval < jiff::SignedDuration::from_secs(5) {
            return Err(SyncError::IntervalTooShort {
                interval: self.interval,
            });
        }
        if self.reconcile_interval <= jiff::SignedDuration::ZERO {
            return Err(SyncError::ReconcileIntervalNotPositive);
        }
        if self.overlap < jiff::SignedDuration::ZERO {
            return Err(SyncError::NegativeOverlap);
        }
        if self.stop_timeout < jiff::SignedDuration::from_secs(1)
            || self.stop_timeout > jiff::SignedDuration::from_hours(1)
        {
            return Err(SyncError::StopTimeout);
        }
        Ok(())
    }
}

/// A configuration file could not be used. Each message is whole (the I/O error's text
/// included), so it reads the same however it is printed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {}: {io}", path.display())]
    Read { path: PathBuf, io: std::io::Error },
    #[error("{}{location}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        /// `:line:column` when known.
        location: String,
        message: String,
    },
    /// `[writeback]` that cannot be resolved (a configuration parsed, not loaded).
    #[error("[writeback]: {0}")]
    Writeback(SettingsError),
}

/// A secret (a password, a client secret) that cannot be loaded; `what` names the setting
/// (`ad.password`). Never carries the secret itself.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("set only one of {what}_file and {what}_env")]
    FileAndEnv { what: String },
    #[error("set {what}_file or {what}_env")]
    Missing { what: String },
    #[error("cannot read {what}_file {}: {io}", path.display())]
    Unreadable {
        what: String,
        path: PathBuf,
        io: std::io::Error,
    },
    #[error("{what}_env names the environment variable {var}, which is not set")]
    EnvNotSet { what: String, var: String },
    #[error("the environment variable {var} ({what}_env) is not valid UTF-8")]
    EnvNotUnicode { what: String, var: String },
    #[error("{what} is empty")]
    Empty { what: String },
    /// A secret file others may read, which this process cannot make private.
    #[error(transparent)]
    Exposed(#[from] crate::files::FileError),
}

impl Config {
    /// Read and parse a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|io| ConfigError::Read {
            path: path.to_path_buf(),
            io,
        })?;
        let mut config = Config::parse(&text, path)?;
        config.check(path)?;
        Ok(config)
    }

    /// The checks serde cannot make: `[sync]` limits, and `[writeback]` resolved (deny-list,
    /// custom mappings, expressions parsed with the position of an error).
    fn check(&mut self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            location: String::new(),
            message,
        };
        self.sync
            .validate()
            .map_err(|e| invalid(format!("[sync]: {e}")))?;
        self.api
            .validate()
            .map_err(|e| invalid(format!("[api]: {e}")))?;
        if let Some(state) = &self.state {
            state
                .validate()
                .map_err(|e| invalid(format!("[state]: {e}")))?;
        }
        // Every DN of [ad], each named (`check` then verifies that they exist on the DC).
        let dns = self.ad.base_dn.iter().map(|dn| ("ad.base_dn", dn)).chain(
            self.ad
                .search_bases
                .iter()
                .flatten()
                .map(|dn| ("ad.search_bases", dn)),
        );
        let bad: Vec<String> = dns
            .filter_map(|(key, dn)| {
                exo_writeback_core::ldap_text::Dn::parse(dn)
                    .err()
                    .map(|e| format!("{key}: {e}"))
            })
            .collect();
        if !bad.is_empty() {
            return Err(invalid(format!("[ad]: {}", bad.join("; "))));
        }
        let resolved = self
            .writeback
            .resolve()
            .map_err(|e| invalid(format!("[writeback]: {e}")))?;
        self.resolved_writeback = Some(resolved);
        Ok(())
    }

    /// The `[writeback]` settings as the planner uses them.
    pub fn writeback_plan(
        &self,
    ) -> Result<exo_writeback_core::settings::WritebackPlanSettings, ConfigError> {
        match &self.resolved_writeback {
            Some(resolved) => Ok(resolved.clone()),
            None => self.writeback.resolve().map_err(ConfigError::Writeback),
        }
    }

    /// Parse configuration text; `path` is used in error messages only.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e: toml::de::Error| {
            let location = e
                .span()
                .map(|span| {
                    let before = &text[..span.start.min(text.len())];
                    let line = before.matches('\n').count() + 1;
                    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                    format!(":{line}:{column}")
                })
                .unwrap_or_default();
            let message = e.message().trim();
            ConfigError::Invalid {
                path: path.to_path_buf(),
                location,
                message: format!("{message}{}", did_you_mean(message).unwrap_or_default()),
            }
        })
    }

    /// The AD bind password, from `ad.password_file` or `ad.password_env`.
    pub fn ad_password(&self) -> Result<Secret, SecretError> {
        // Kerberos binds with the keytab (or the default credentials): no password needed.
        if self.ad.auth == exo_writeback_ad::AuthMethod::Kerberos
            && self.ad.password_file.is_none()
            && self.ad.password_env.is_none()
        {
            return Ok(Secret::new(String::new()));
        }
        load_secret(
            "ad.password",
            self.ad.password_file.as_deref(),
            self.ad.password_env.as_deref(),
        )
    }
}

impl Config {
    /// Every secret file the configuration names, each with its setting: the AD password,
    /// the Exchange Online client secret or private key, API tokens and TLS key, webhook URLs.
    pub fn secret_files(&self) -> Vec<(&'static str, &Path)> {
        let mut files: Vec<(&'static str, &Path)> = Vec::new();
        if let Some(f) = &self.ad.password_file {
            files.push(("ad.password_file", f));
        }
        if let Some(exo) = &self.exo {
            if let Some(f) = &exo.client_secret_file {
                files.push(("exo.client_secret_file", f));
            }
            if let Some(f) = &exo.private_key_file {
                files.push(("exo.private_key_file", f));
            }
        }
        files.extend(self.api.secret_files());
        files.extend(self.notify.secret_files());
        files
    }

    /// Makes every secret file private (`crate::files`): fixed with a warning when this
    /// process owns it, refused otherwise.
    pub fn secure_secret_files(&self) -> Result<(), crate::files::FileError> {
        for (what, path) in self.secret_files() {
            crate::files::private_secret_file(what, path)?;
        }
        Ok(())
    }
}

/// For serde's "unknown field `x`, expected one of `a`, `b`" (and "unknown variant …"), the
/// expected name closest to the unknown one: ` (did you mean `a`?)`.
fn did_you_mean(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("unknown variant `"))?;
    let (unknown, expected) = rest.split_once('`')?;
    let candidates = expected.split('`').skip(1).step_by(2);
    exo_writeback_expr::closest(unknown, candidates).map(|s| format!(" (did you mean `{s}`?)"))
}

/// Load a secret from exactly one of a file (trailing newline removed; a warning when group
/// or others may read it) or an environment variable. `what` names the setting in errors.
pub fn load_secret(
    what: &str,
    file: Option<&Path>,
    env: Option<&str>,
) -> Result<Secret, SecretError> {
    let value = match (file, env) {
        (Some(_), Some(_)) => {
            return Err(SecretError::FileAndEnv {
                what: what.to_string(),
            });
        }
        (None, None) => {
            return Err(SecretError::Missing {
                what: what.to_string(),
            });
        }
        (Some(path), None) => {
            crate::files::private_secret_file(&format!("{what}_file"), path)?;
            let text = std::fs::read_to_string(path).map_err(|io| SecretError::Unreadable {
                what: what.to_string(),
                path: path.to_path_buf(),
                io,
            })?;
            text.trim_end_matches(['\r', '\n']).to_string()
        }
        (None, Some(var)) => match std::env::var(var) {
            Ok(v) => v,
            Err(std::env::VarError::NotPresent) => {
                return Err(SecretError::EnvNotSet {
                    what: what.to_string(),
                    var: var.to_string(),
                });
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(SecretError::EnvNotUnicode {
                    what: what.to_string(),
                    var: var.to_string(),
                });
            }
        },
    };
    if value.is_empty() {
        return Err(SecretError::Empty {
            what: what.to_string(),
        });
    }
    Ok(Secret::new(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    const AD: &str = "[ad]\nurl = \"ldaps://127.0.0.9\"\nbind_dn = \"a@b\"\npassword_env = \"X\"\n";

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text, Path::new("/etc/exo-writeback.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn kerberos_needs_no_password_a_simple_bind_does() {
        let no_password = AD.replace("password_env = \"X\"\n", "");
        let kerberos = format!("{no_password}auth = \"kerberos\"\nkeytab = \"/etc/svc.keytab\"\n");
        let c = parse(&kerberos).unwrap();
        assert!(c.ad_password().is_ok(), "the keytab is the credential");
        let simple = parse(&no_password).unwrap();
        assert!(matches!(
            simple.ad_password(),
            Err(SecretError::Missing { .. })
        ));
    }

    #[test]
    fn minimal_config_parses() {
        let c = parse(AD).unwrap();
        assert_eq!(c.ad.url, "ldaps://127.0.0.9");
        assert_eq!(c.ad.page_size, 500);
    }

    #[test]
    fn unknown_keys_name_key_file_and_line() {
        let cases = [
            (format!("{AD}colour = 1\n"), "colour", ":5:"),
            (format!("{AD}[nonsense]\nx = 1\n"), "nonsense", ":5:"),
            (AD.replace("bind_dn", "bind_db"), "bind_db", ":1:"),
        ];
        for (text, key, line) in cases {
            let err = parse(&text).unwrap_err();
            assert!(err.contains(key), "{err}");
            assert!(err.contains("/etc/exo-writeback.toml"), "{err}");
            assert!(err.contains(line), "{line} in {err}");
        }
    }

    #[test]
    fn misspelt_keys_and_variants_get_a_suggestion() {
        let cases = [
            (
                AD.replace("bind_dn", "bind_db"),
                "(did you mean `bind_dn`?)",
            ),
            (
                format!("{AD}[sync]\nintervall = \"5s\"\n"),
                "(did you mean `interval`?)",
            ),
            (
                format!("{AD}[writeback]\nprofiles = [\"hybird\"]\n"),
                "(did you mean `hybrid`?)",
            ),
        ];
        for (text, hint) in cases {
            let err = parse(&text).unwrap_err();
            assert!(err.contains(hint), "{hint} in {err}");
        }
        let err = parse(&format!("{AD}colour = 1\n")).unwrap_err();
        assert!(!err.contains("did you mean"), "{err}");
    }

    #[test]
    fn every_malformed_dn_of_ad_is_named_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            format!(
                "{AD}base_dn = \"DC=corp,,DC=example\"\n\
                 search_bases = [\"OU=Staff,DC=corp\", \"OU=A,=x\", \"OU=B,DC\"]\n"
            ),
        )
        .unwrap();
        let err = Config::load(&path).unwrap_err().to_string();
        for needle in [
            "ad.base_dn: DN \"DC=corp,,DC=example\"",
            "\"OU=A,=x\"",
            "\"OU=B,DC\"",
        ] {
            assert!(err.contains(needle), "{needle} in {err}");
        }
        assert!(!err.contains("OU=Staff"), "{err}");
    }

    #[test]
    fn an_inline_password_is_rejected_without_echoing_it() {
        let err = parse(&format!("{AD}password = \"hunter2-inline\"\n")).unwrap_err();
        assert!(err.contains("password"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn missing_section_and_bad_types_are_errors() {
        assert!(parse("").unwrap_err().contains("ad"));
        let err = parse(&AD.replace("\"a@b\"", "5")).unwrap_err();
        assert!(err.contains(":3:"), "{err}");
    }

    /// The texts the CLI prints for a setting it cannot use (`check` and every command).
    #[test]
    fn setting_errors_keep_their_texts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, format!("{AD}[sync]\ninterval = \"2s\"\n")).unwrap();
        assert_eq!(
            Config::load(&path).unwrap_err().to_string(),
            format!(
                "{}: [sync]: sync.interval must be at least 5s (it is 2s)",
                path.display()
            )
        );
        for (sync, text) in [
            (
                "reconcile_interval = \"0s\"",
                "sync.reconcile_interval must be positive",
            ),
            ("overlap = \"-1s\"", "sync.overlap must not be negative"),
        ] {
            std::fs::write(&path, format!("{AD}[sync]\n{sync}\n")).unwrap();
            let err = Config::load(&path).unwrap_err().to_string();
            assert_eq!(err, format!("{}: [sync]: {text}", path.display()));
        }

        let file = dir.path().join("pw");
        let cases = [
            (
                load_secret("ad.password", Some(&file), Some("X")),
                "set only one of ad.password_file and ad.password_env".to_string(),
            ),
            (
                load_secret("ad.password", None, None),
                "set ad.password_file or ad.password_env".to_string(),
            ),
            (
                load_secret("ad.password", Some(&file), None),
                format!(
                    "cannot read ad.password_file {}: No such file or directory (os error 2)",
                    file.display()
                ),
            ),
            (
                load_secret("ad.password", None, Some("EXO_WB_TEST_SURELY_UNSET")),
                "ad.password_env names the environment variable EXO_WB_TEST_SURELY_UNSET, which is not set"
                    .to_string(),
            ),
        ];
        for (result, text) in cases {
            assert_eq!(format!("{:#}", result.unwrap_err()), text);
        }

        let unresolved = Config::parse(
            &format!("{AD}[writeback]\nprofiles = []\n"),
            Path::new("/etc/exo-writeback.toml"),
        )
        .unwrap();
        let err = unresolved.writeback_plan().unwrap_err();
        assert!(format!("{err:#}").starts_with("[writeback]: "), "{err:#}");
    }

    #[test]
    fn secrets_from_file_and_env_never_print() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret-value\n").unwrap();
        let s = load_secret("ad.password", Some(&file), None).unwrap();
        assert_eq!(s.expose(), "s3cret-value");
        assert!(!format!("{s:?}").contains("s3cret"));

        let missing = load_secret("ad.password", None, Some("EXO_WB_TEST_SURELY_UNSET"))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("EXO_WB_TEST_SURELY_UNSET"), "{missing}");

        std::fs::write(&file, "\n").unwrap();
        let empty = load_secret("ad.password", Some(&file), None).unwrap_err();
        assert!(empty.to_string().contains("empty"));

        let gone = load_secret("ad.password", Some(&dir.path().join("nope")), None)
            .unwrap_err()
            .to_string();
        assert!(gone.contains("nope"), "{gone}");
    }
}
