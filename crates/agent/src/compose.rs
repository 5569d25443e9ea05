//! The composition root: the configuration file turned into an engine over the real
//! Exchange Online and AD clients and the SQLite store.

use std::path::Path;

use anyhow::Context;
use exo_writeback_ad::{AdConnection, AdError};
use exo_writeback_core::settings::WritebackPlanSettings;
use exo_writeback_engine::{Engine, EngineOptions};
use exo_writeback_exo::ExoClient;
use exo_writeback_store_sqlite::SqliteStore;
use exo_writeback_store_sqlite::prelude::*;

use crate::ad::AdDirectory;
use crate::config::Config;
use crate::exo::ExoSource;

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
