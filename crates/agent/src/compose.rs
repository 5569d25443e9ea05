//! The composition root: the configuration file turned into an engine over the real
//! Exchange Online and AD clients and the state (`[state]`: SQLite by default, or a PostgreSQL
//! database several agents share) — for a command that only reads, for one that writes
//! (behind the state lock or the writer lease), and for the agent's cycles.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use exo_writeback_ad::AdError;
use exo_writeback_ad::forest_directory::ForestDirectory;
use exo_writeback_core::mailbox::RecipientKind;
use exo_writeback_core::profile::Profile;
use exo_writeback_core::provisioning::JobState;
use exo_writeback_core::settings::WritebackPlanSettings;
use exo_writeback_engine::{Engine, EngineError, EngineOptions};
use exo_writeback_exo::ExoClient;
use exo_writeback_store_sqlite::prelude::*;
use jiff::Timestamp;

use crate::ad::AdDirectory;
use crate::config::Config;
use crate::error::AgentError;
use crate::exo::ExoSource;
use crate::observe::Observed;
use crate::scheduler::{Clock, interrupt_stale_cycles};
use crate::schema_cache::SchemaCache;
use crate::state::{State, WriteLock, WriterGuard};

/// The engine over Exchange Online, AD (its operations reported to the installed observer,
/// `crate::observe`) and the state (SQLite, or PostgreSQL shared by several agents).
pub type RealEngine = Engine<ExoSource, Observed<AdDirectory>, Box<dyn Store>>;

/// Load the configuration file and check the parts the writeback needs.
/// Every secret file it names is made private (fixed with a warning when ours, refused
/// otherwise: `crate::files`).
pub fn load_config(path: &Path) -> Result<Config, AgentError> {
    let config = Config::load(path)?;
    config.secure_secret_files()?;
    Ok(config)
}

/// The resolved writeback settings (deny-list and expressions checked).
pub fn plan_settings(config: &Config) -> Result<WritebackPlanSettings, AgentError> {
    Ok(config.writeback_plan()?)
}

/// Open (and create) the state `config` names, to read it: on PostgreSQL its writes are
/// refused (they need the writer lease: [`WriteLock`]).
pub fn open_store(config: &Config) -> Result<Box<dyn Store>, AgentError> {
    State::open(config, "exo-writeback")?.store()
}

/// Connect to both sides and build the engine. For commands that write nothing (`preview`,
/// `provision --dry-run`); one that writes takes the state lock first ([`writing_engine`]).
pub async fn engine(config: &Config) -> Result<RealEngine, AgentError> {
    engine_on(config, &State::open(config, "exo-writeback")?).await
}

/// The engine over `state`: its store, and its fence before each modify (the running agent's
/// state, for an engine built anew on a reload).
pub async fn engine_on(config: &Config, state: &State) -> Result<RealEngine, AgentError> {
    let settings = plan_settings(config)?;
    let exo_config = config.exo.as_ref().ok_or(AgentError::NoExo)?;
    let exo = ExoClient::from_config(exo_config)?;
    if let Some(observer) = crate::observe::exo_observer() {
        exo.set_observer(observer);
    }
    let ad = directory_on(config, state).await?;
    let store = state.store()?;
    let safelist_hashes = settings.profiles.contains(&Profile::Hybrid);
    let mut engine = Engine::new(
        ExoSource {
            client: exo,
            safelist_hashes,
            recipient_kinds: settings
                .profiles
                .iter()
                .map(|p| p.kind())
                .filter(|k| *k != RecipientKind::Mailbox)
                .collect(),
        },
        Observed::new(ad),
        store,
        settings,
        EngineOptions {
            overlap: config.sync.overlap,
            // Plans of huge cycles wait beside the state, on the disk sized for it.
            spill_dir: Some(config.sync.state_dir.clone()),
            ..EngineOptions::default()
        },
    );
    engine.set_operator(crate::admin::operator());
    engine.set_fence(state.write_fence());
    Ok(engine)
}

/// AD as the engine's directory, with the schema kept in `state`: the one an earlier process
/// kept is adopted before the first cycle (its refresh reads the schema again only when the
/// DC's `schemaInfo` differs), and a schema read under a new `schemaInfo` is kept
/// (`crate::schema_cache`).
pub async fn directory_on(config: &Config, state: &State) -> Result<AdDirectory, AgentError> {
    let password = config.ad_password()?;
    let forest = ForestDirectory::open(&config.ad, password).await?;
    let cache = SchemaCache::new(state.store()?);
    if let Some(schema) = cache.load() {
        forest.adopt_schema(schema).await;
    }
    Ok(
        AdDirectory::new(forest, Some(config.sync.state_dir.clone()))
            .await
            .with_schema_cache(cache),
    )
}

/// The engine of a command that writes (`approve`, `undo`, `provision`): the state lock (or,
/// on PostgreSQL, the writer lease) is taken first (waiting for a running cycle, saying so),
/// then cycles a stopped process left running are marked interrupted, then both sides are
/// connected. Keep the lock while writing.
pub async fn writing_engine(
    config: &Config,
    holder: &str,
) -> Result<(RealEngine, WriteLock), AgentError> {
    let lock = WriteLock::acquire(config, holder).await?;
    let mut engine = engine_on(config, lock.state()).await?;
    interrupt_stale_cycles(&mut engine, Timestamp::now())?;
    Ok((engine, lock))
}

/// The engine of a cycle runner (`sync`, `run`) on `state`, built while the caller holds the
/// right to write it (`_writer`).
/// A quarantined job refuses cycles until its next retry — before connecting: a wrong password
/// is not tried again, and the back-off does not grow, until then. A start that cannot bind or
/// reach the DC is a cycle that failed as a whole (a quarantine cause).
pub async fn cycle_engine(
    config: &Config,
    state: &State,
    _writer: &WriterGuard,
) -> Result<RealEngine, AgentError> {
    {
        let store = state.store()?;
        if let Err((reason, next_retry)) =
            exo_writeback_engine::quarantine::check(&store.job_state()?, Timestamp::now())
        {
            return Err(EngineError::Quarantined { reason, next_retry }.into());
        }
    }
    match engine_on(config, state).await {
        Ok(engine) => Ok(engine),
        Err(AgentError::Ad(ad)) if is_failed_start(&ad) => {
            let mut store = state.store()?;
            exo_writeback_engine::quarantine::record_failed_start(
                &mut store,
                &ad.to_string(),
                Timestamp::now(),
            )?;
            Err(AgentError::Ad(ad))
        }
        Err(e) => Err(e),
    }
}

/// The agent's engine (`run`) on `state`: on a shared state, once this agent leads (a standby
/// waits here); then built like [`cycle_engine`]; while the job is quarantined the agent waits
/// for each next retry instead of giving up. `None` when asked to stop meanwhile.
pub async fn start_agent(
    config: &Config,
    state: &State,
    clock: &impl Clock,
    stop: &AtomicBool,
) -> Result<Option<RealEngine>, AgentError> {
    loop {
        if state.lead(stop).await? {
            return Ok(None);
        }
        let lock = state.writer("exo-writeback run").await?;
        let error = match cycle_engine(config, state, &lock).await {
            Ok(engine) => return Ok(Some(engine)),
            Err(e) => e,
        };
        drop(lock);
        let JobState::Quarantine { next_retry, .. } = state.store()?.job_state()? else {
            return Err(error);
        };
        tracing::error!(error = %error, %next_retry, "the agent cannot start a cycle; waiting for the quarantine's next retry");
        if clock.sleep_until(next_retry, stop).await {
            return Ok(None);
        }
    }
}

/// Cannot bind or reach the DC, or TLS with it fails (its certificate rejected — expired,
/// another name, an issuer the trust store does not know — or the handshake): the cycle failed
/// as a whole. Mistakes in the configuration file (a missing CA file, plain LDAP not allowed)
/// are not: they fail before any connection.
fn is_failed_start(e: &AdError) -> bool {
    matches!(
        e,
        AdError::Unreachable { .. }
            | AdError::InvalidCredentials { .. }
            | AdError::AccountUnusable { .. }
            | AdError::BindRefused { .. }
            | AdError::Certificate { .. }
            | AdError::Tls { .. }
            | AdError::ConnectionLost { .. }
            | AdError::Timeout { .. }
            | AdError::NoDomainController { .. }
    )
}
