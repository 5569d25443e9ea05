//! Glue between the engine's ports and the real clients: Exchange Online ([`ExoSource`]) and
//! AD ([`AdDirectory`]); plus opening the store and building the engine from the config file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use exo_writeback_ad::{AdConnection, AdError};
use exo_writeback_core::directory::{AttrValue, DirectoryObject, ObjectModify};
use exo_writeback_core::mailbox::Mailbox;
use exo_writeback_core::provisioning::SourceIdentity;
use exo_writeback_core::schema::Schema;
use exo_writeback_core::settings::WritebackPlanSettings;
use exo_writeback_engine::{
    Directory, DirectoryError, Engine, EngineOptions, MailboxSource, MailboxStream, SourceError,
};
use exo_writeback_exo::{ExoClient, ExoError};
use exo_writeback_store_sqlite::{SqliteStore, Store};
use futures::StreamExt;
use uuid::Uuid;

use crate::config::Config;

/// `--config FILE`, shared by every writeback command.
#[derive(clap::Args, Debug, Clone)]
pub struct ConfigArg {
    /// The configuration file.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "/etc/exo-writeback/exo-writeback.toml"
    )]
    pub config: PathBuf,
}

/// Exchange Online as the engine's mailbox source. With `safelist_hashes` (the hybrid
/// profile is enabled) each mailbox's junk email configuration is read too, for the
/// msExch*Hash attributes (one extra request per mailbox); when that read fails the hashes
/// stay unknown, which leaves the AD attributes alone.
pub struct ExoSource {
    pub client: ExoClient,
    pub safelist_hashes: bool,
}

fn source_error(e: ExoError) -> SourceError {
    let record = match &e {
        ExoError::MalformedRecord {
            external_directory_object_id,
            primary_smtp_address,
            ..
        } => Some(SourceIdentity {
            external_directory_object_id: external_directory_object_id.clone(),
            primary_smtp_address: primary_smtp_address.clone(),
        }),
        _ => None,
    };
    SourceError {
        per_record: e.is_record_error(),
        message: e.to_string(),
        record,
    }
}

fn with_hashes(
    client: &ExoClient,
    safelist_hashes: bool,
    stream: exo_writeback_exo::ResultStream<Mailbox>,
) -> MailboxStream {
    if !safelist_hashes {
        return stream.map(|r| r.map_err(source_error)).boxed();
    }
    let client = client.clone();
    stream
        .then(move |r| {
            let client = client.clone();
            async move {
                let mut m = r.map_err(source_error)?;
                if let Err(e) = client.fill_safelist_hashes(&mut m).await {
                    tracing::warn!(mailbox = ?m.primary_smtp_address, error = %e, "cannot read the junk email configuration; the safelist hashes are left alone");
                }
                Ok(m)
            }
        })
        .boxed()
}

impl MailboxSource for ExoSource {
    fn all(&self) -> MailboxStream {
        with_hashes(
            &self.client,
            self.safelist_hashes,
            self.client.mailboxes(None),
        )
    }
    fn changed_since(
        &self,
        since: jiff::Timestamp,
        overlap: jiff::SignedDuration,
    ) -> MailboxStream {
        with_hashes(
            &self.client,
            self.safelist_hashes,
            self.client.changed_since(since, overlap),
        )
    }
    async fn get(&self, identity: &str) -> Result<Option<Mailbox>, SourceError> {
        let mut found = self
            .client
            .get_mailbox(identity)
            .await
            .map_err(source_error)?;
        if self.safelist_hashes
            && let Some(m) = found.as_mut()
            && let Err(e) = self.client.fill_safelist_hashes(m).await
        {
            tracing::warn!(identity, error = %e, "cannot read the junk email configuration; the safelist hashes are left alone");
        }
        Ok(found)
    }
}

/// AD as the engine's directory.
pub struct AdDirectory(pub AdConnection);

fn directory_error(e: AdError) -> DirectoryError {
    let ldap_code = match &e {
        AdError::Ldap { code, .. } | AdError::BindRefused { code, .. } => Some(*code),
        AdError::InsufficientAccess { .. } => Some(50),
        AdError::NoSuchObject { .. } => Some(32),
        _ => None,
    };
    let connection = matches!(
        e,
        AdError::Unreachable { .. } | AdError::ConnectionLost { .. } | AdError::Timeout { .. }
    );
    DirectoryError {
        message: e.to_string(),
        ldap_code,
        connection,
    }
}

fn refs(attrs: &[String]) -> Vec<&str> {
    attrs.iter().map(String::as_str).collect()
}

impl Directory for AdDirectory {
    async fn schema(&self) -> Result<Arc<Schema>, DirectoryError> {
        self.0.schema().await.map_err(directory_error)
    }
    async fn refresh_schema(&self) -> Result<Arc<Schema>, DirectoryError> {
        self.0.refresh_schema().await.map_err(directory_error)
    }
    async fn find_by_attribute(
        &self,
        attribute: &str,
        value: &AttrValue,
        attributes: &[String],
    ) -> Result<Vec<DirectoryObject>, DirectoryError> {
        self.0
            .find_by_attribute(attribute, value, &refs(attributes))
            .await
            .map_err(directory_error)
    }
    async fn read_by_guid(
        &self,
        guid: &Uuid,
        attributes: &[String],
    ) -> Result<Option<DirectoryObject>, DirectoryError> {
        self.0
            .read_by_guid(guid, &refs(attributes))
            .await
            .map_err(directory_error)
    }
    async fn read_by_dn(
        &self,
        dn: &str,
        attributes: &[String],
    ) -> Result<Option<DirectoryObject>, DirectoryError> {
        self.0
            .read_by_dn(dn, &refs(attributes))
            .await
            .map_err(directory_error)
    }
    async fn modify(&self, modify: &ObjectModify) -> Result<(), DirectoryError> {
        self.0.modify(modify).await.map_err(directory_error)
    }
    async fn address_holders(
        &self,
        addresses: &[String],
    ) -> Result<Vec<(String, String)>, DirectoryError> {
        let attrs = ["proxyAddresses", "mail"];
        // One search per ADDRESS_CHUNK addresses: (|(proxyAddresses=smtp:a)(mail=a)(…)…), every
        // value escaped by find_any; a mailbox with thousands of aliases never sends one huge
        // filter (servers bound request sizes and drop the connection beyond them).
        // proxyAddresses and mail compare case-insensitively in AD; the server's answer decides
        // who holds what, the comparison below only says which of the asked values an object
        // holds.
        const ADDRESS_CHUNK: usize = 100;
        let mut out = Vec::new();
        for chunk in addresses.chunks(ADDRESS_CHUNK) {
            let mut equalities = Vec::new();
            for address in chunk {
                equalities.push(("proxyAddresses", AttrValue::Text(format!("smtp:{address}"))));
                equalities.push(("mail", AttrValue::Text(address.clone())));
            }
            let found = self
                .0
                .find_any(&equalities, &attrs)
                .await
                .map_err(directory_error)?;
            for object in found {
                let held = |attribute: &str| -> std::collections::HashSet<String> {
                    object
                        .attributes
                        .get(attribute)
                        .iter()
                        .filter_map(|v| v.as_text())
                        .map(str::to_lowercase)
                        .collect()
                };
                let (proxies, mails) = (held("proxyAddresses"), held("mail"));
                let mut named = false;
                for (attribute, value) in &equalities {
                    let AttrValue::Text(value) = value else {
                        continue;
                    };
                    let set = if *attribute == "mail" {
                        &mails
                    } else {
                        &proxies
                    };
                    if set.contains(&value.to_lowercase()) {
                        out.push((value.clone(), object.dn.clone()));
                        named = true;
                    }
                }
                if !named {
                    // The server matched by a comparison this side does not reproduce (Unicode
                    // case folding): count the object as holding every asked address of the
                    // chunk rather than miss a conflict.
                    out.extend(
                        chunk
                            .iter()
                            .map(|a| (format!("smtp:{a}"), object.dn.clone())),
                    );
                }
            }
        }
        Ok(out)
    }
    async fn scan_match_keys(
        &self,
        attributes: &[&str],
        on_object: &mut (dyn FnMut(DirectoryObject) + Send),
    ) -> Result<(), DirectoryError> {
        self.0
            .scan_present(attributes, |page| {
                page.into_iter().for_each(&mut *on_object);
                Ok(())
            })
            .await
            .map_err(directory_error)
    }
}

pub type RealEngine = Engine<ExoSource, AdDirectory, SqliteStore>;

/// Load the configuration file and check the parts the writeback needs.
pub fn load_config(path: &Path) -> anyhow::Result<Config> {
    Ok(Config::load(path)?)
}

/// The resolved writeback settings (deny-list and expressions checked).
pub fn plan_settings(config: &Config) -> anyhow::Result<WritebackPlanSettings> {
    config.writeback_plan()
}

/// Open (and create) the state database in `sync.state_dir`.
pub fn open_store(config: &Config) -> anyhow::Result<SqliteStore> {
    let dir = &config.sync.state_dir;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create sync.state_dir {}", dir.display()))?;
    Ok(SqliteStore::open_in(dir)?)
}

/// Connect to both sides and build the engine.
pub async fn engine(config: &Config) -> anyhow::Result<RealEngine> {
    let settings = plan_settings(config)?;
    let exo_config = config
        .exo
        .as_ref()
        .context("the configuration has no [exo] section: the writeback needs an Exchange Online tenant to read")?;
    let exo = ExoClient::from_config(exo_config)?;
    let password = config.ad_password()?;
    let ad = AdConnection::connect(&config.ad, password).await?;
    let store = open_store(config)?;
    let safelist_hashes = settings
        .profiles
        .contains(&exo_writeback_core::profile::Profile::Hybrid);
    Ok(Engine::new(
        ExoSource {
            client: exo,
            safelist_hashes,
        },
        AdDirectory(ad),
        store,
        settings,
        EngineOptions {
            overlap: config.sync.overlap,
            // Plans of huge cycles wait beside the state, on the disk sized for it.
            spill_dir: Some(config.sync.state_dir.clone()),
            ..EngineOptions::default()
        },
    ))
}

/// The engine for the cycle runners (`sync`, `run`): holds the state directory's cycle lock
/// (one cycle runner at a time) and marks cycles left `Running` by a stopped agent as
/// `Interrupted`. Keep the returned lock alive while cycles run.
pub async fn agent_engine(config: &Config) -> anyhow::Result<(RealEngine, std::fs::File)> {
    let dir = &config.sync.state_dir;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create sync.state_dir {}", dir.display()))?;
    let path = dir.join("cycle.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open the cycle lock {}", path.display()))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another exo-writeback sync or run is running cycles on {} (lock {}); wait for it or stop it first",
            dir.display(),
            path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("cannot lock {}", path.display()));
        }
    }
    // A quarantined job refuses cycles until its next retry (before connecting: a wrong
    // password is not tried again, and the back-off does not grow, until then).
    {
        let store = open_store(config)?;
        if let Err((reason, next_retry)) =
            exo_writeback_engine::quarantine::check(&store.job_state()?, jiff::Timestamp::now())
        {
            return Err(
                exo_writeback_engine::EngineError::Quarantined { reason, next_retry }.into(),
            );
        }
    }
    let mut engine = match engine(config).await {
        Ok(engine) => engine,
        Err(e) => {
            // Cannot bind or reach the DC: a cycle that failed as a whole (quarantine cause).
            if let Some(ad) = e.downcast_ref::<AdError>().filter(|ad| {
                matches!(
                    ad,
                    AdError::Unreachable { .. }
                        | AdError::InvalidCredentials { .. }
                        | AdError::AccountUnusable { .. }
                        | AdError::BindRefused { .. }
                        | AdError::Tls { .. }
                        | AdError::ConnectionLost { .. }
                        | AdError::Timeout { .. }
                )
            }) {
                let mut store = open_store(config)?;
                exo_writeback_engine::quarantine::record_failed_start(
                    &mut store,
                    &ad.to_string(),
                    jiff::Timestamp::now(),
                )?;
            }
            return Err(e);
        }
    };
    let interrupted = engine
        .store
        .interrupt_running_cycles(jiff::Timestamp::now())?;
    if interrupted > 0 {
        tracing::warn!(
            interrupted,
            "found cycles still marked running: the agent stopped in the middle; the next cycle resumes from the watermark"
        );
    }
    Ok((engine, lock))
}

/// Whether stdout is a terminal (tables and progress bars for people).
pub fn interactive() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
}

/// Print rows as an aligned table with a header.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                let pad = widths[i].saturating_sub(cell.chars().count());
                out.push_str(cell);
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row.clone());
    }
}

/// Attach a progress display to a cycle: a spinner on a terminal, log lines otherwise.
pub fn attach_progress(engine: &mut RealEngine) {
    use exo_writeback_engine::Progress;
    if interactive() {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        engine.on_progress(move |p| match p {
            Progress::Imported(n) => bar.set_message(format!("imported {n} mailboxes")),
            Progress::Writing { done, total } => {
                bar.set_message(format!("writing {done}/{total} objects"));
                if done == total {
                    bar.finish_and_clear();
                }
            }
        });
    } else {
        engine.on_progress(|p| match p {
            Progress::Imported(n) => tracing::info!(imported = n, "importing"),
            Progress::Writing { done, total } => tracing::info!(done, total, "writing"),
        });
    }
}

/// Listen for SIGTERM and Ctrl-C; set the engine's cancel flag when one arrives.
pub fn cancel_on_signals(engine: &RealEngine) {
    let flag = engine.cancel_flag();
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(t) => t,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot listen for SIGTERM");
                        let _ = tokio::signal::ctrl_c().await;
                        flag.store(true, std::sync::atomic::Ordering::SeqCst);
                        return;
                    }
                };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::warn!(
            "stopping: finishing the current object; the watermark will not pass unfinished work"
        );
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
    });
}

/// The store's retention purge, per `sync.log_retention_days`.
pub fn purge_old_logs(store: &mut SqliteStore, days: u32) {
    let cutoff = jiff::Timestamp::now()
        .checked_sub(jiff::SignedDuration::from_hours(i64::from(days) * 24))
        .unwrap_or(jiff::Timestamp::MIN);
    if let Err(e) = store.purge_older_than(cutoff) {
        tracing::warn!(error = %e, "purging old provisioning logs failed");
    }
}
