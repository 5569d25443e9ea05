//! `exo-writeback run` as a service: the scheduler and the HTTP service side by side.
//!
//! Start: the configuration is loaded (secret files made private), the cycle runner's lock is
//! taken, the API listens (and says where in `api.json`), then both sides are connected —
//! waiting out a quarantine — and only then is the agent ready (`/readyz`, systemd's
//! `READY=1`). SIGHUP reloads the configuration at the next pause between cycles: the new
//! file is checked whole — parsed, its tokens, webhooks, TLS files and both sides' settings
//! used — and taken only if all of it works; otherwise the running one stays and the refusal
//! is logged. SIGTERM stops after the current object; a cycle that does not finish within
//! `sync.stop_timeout` is abandoned (its write-ahead intents let the next start log what
//! reached AD), and requests in flight get a few seconds.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use exo_writeback_agent::AgentError;
use exo_writeback_agent::compose::{self, RealEngine};
use exo_writeback_agent::config::{ApiSettingsError, Config, NotifySettingsError, Webhook};
use exo_writeback_agent::lock::CycleRunnerLock;
use exo_writeback_agent::observe;
use exo_writeback_agent::scheduler::{Schedule, Scheduler, SystemClock, Turn};
use exo_writeback_agent::signals::{reload_on_hangup, stop_on_signals};
use exo_writeback_agent::state::State;
use jiff::Timestamp;

use crate::auth::Tokens;
use crate::metrics::Metrics;
use crate::server::{Server, ServerError};
use crate::state::{AppState, host_name};
use crate::webhook::{AgentLabel, Notifier};

pub mod credentials;
pub mod systemd;
mod turns;

/// Why the agent could not run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Agent(#[from] AgentError),
    #[error("[api]: {0}")]
    Api(#[from] ApiSettingsError),
    #[error("[notify]: {0}")]
    Notify(#[from] NotifySettingsError),
    #[error(transparent)]
    Server(#[from] ServerError),
}

/// How long requests in flight may finish when the agent stops.
const REQUEST_GRACE: Duration = Duration::from_secs(5);

/// What the caller (the CLI) adds: `on_turn` hears each turn (to print it), `on_engine` sees
/// each engine built (to attach a progress display).
pub async fn run(
    config_path: &Path,
    mut on_turn: impl FnMut(Turn<'_>),
    on_engine: impl Fn(&mut RealEngine),
) -> Result<(), DaemonError> {
    let mut config = compose::load_config(config_path)?;
    let stop = stop_on_signals();
    let hangup = reload_on_hangup();
    let state_dir = config.sync.state_dir.clone();
    let _runner = CycleRunnerLock::acquire_as(&state_dir, "exo-writeback run")?;
    // SQLite in the state directory, or PostgreSQL shared by several agents (one leads).
    let shared = Arc::new(State::open(&config, "exo-writeback run")?);
    let tokens = Tokens::new(&config.api.load_tokens()?);
    if tokens.is_empty() {
        tracing::warn!(
            "[api] names no token: the API and console answer only /healthz and /readyz"
        );
    }
    let metrics = Arc::new(Metrics::new());
    observe::install(metrics.clone());
    let notifier = Notifier::start(
        config.notify.load_webhooks()?,
        metrics.clone(),
        AgentLabel {
            host: host_name(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
    );
    let state = Arc::new(AppState::new(
        config.clone(),
        tokens,
        metrics,
        notifier.clone(),
        stop.clone(),
    ));
    state.set_shared(shared.clone());
    let server = Server::start(state.clone(), &config.api, &state_dir).await?;
    tracing::info!(url = %server.endpoint().url, "serving the API and the console");
    systemd::status("starting: connecting to AD and Exchange Online");
    let _watchdog = systemd::watchdog();
    credentials::announce(&config, &notifier, Timestamp::now());

    // On a shared state a standby waits here until it leads.
    let Some(mut engine) = compose::start_agent(&config, &shared, &SystemClock, &stop).await?
    else {
        shared.step_down().await;
        server.stop(REQUEST_GRACE).await;
        return Ok(());
    };
    engine.set_cancel_flag(stop.clone());
    on_engine(&mut engine);
    state.set_ready(true);
    systemd::ready("running");
    let reads = compose::open_store(&config).ok();
    let mut last_announce = Timestamp::now();

    let outcome = loop {
        // The loop's own stop: SIGTERM, or SIGHUP (reload at the next pause).
        let pause = Arc::new(AtomicBool::new(false));
        let watcher = tokio::spawn(watch(stop.clone(), hangup.clone(), pause.clone()));
        let scheduler = Scheduler {
            clock: SystemClock,
            schedule: Schedule::of(&config.sync),
            state: shared.clone(),
            stop: pause,
        };
        let turns = scheduler.run(&mut engine, |turn| {
            turns::react(&state, reads.as_deref(), &turn);
            on_turn(turn);
        });
        let finished = bounded(turns, &stop, config.sync.stop_timeout.unsigned_abs()).await;
        watcher.abort();
        match finished {
            None => {
                tracing::warn!(
                    stop_timeout = %config.sync.stop_timeout,
                    "the current cycle did not stop in time: abandoned; its write-ahead intents let the next start log what reached AD"
                );
                break Ok(());
            }
            Some(Err(e)) => break Err(e),
            Some(Ok(())) if stop.load(Ordering::SeqCst) => break Ok(()),
            Some(Ok(())) => {}
        }
        if Timestamp::now().duration_since(last_announce) >= jiff::SignedDuration::from_hours(24) {
            credentials::announce(&config, &notifier, Timestamp::now());
            last_announce = Timestamp::now();
        }
        systemd::reloading();
        match prepare(config_path, &config, &shared).await {
            Ok(next) => {
                if next.config.api.listen != config.api.listen {
                    tracing::warn!(
                        running = %config.api.listen,
                        new = %next.config.api.listen,
                        "api.listen changed: it takes effect when the agent restarts"
                    );
                }
                if let Err(e) = server.reload_tls(&next.config.api).await {
                    tracing::error!(error = %e, "kept the running TLS certificate");
                }
                state.reload(next.config.clone(), next.tokens);
                notifier.reload(next.webhooks);
                engine = next.engine;
                engine.set_cancel_flag(stop.clone());
                on_engine(&mut engine);
                config = next.config;
                tracing::info!(file = %config_path.display(), "reloaded the configuration");
            }
            Err(e) => {
                tracing::error!(file = %config_path.display(), error = %e, "refused the changed configuration; the running one stays");
            }
        }
        systemd::ready("running");
    };
    shared.step_down().await;
    systemd::stopping();
    state.set_ready(false);
    server.stop(REQUEST_GRACE).await;
    outcome.map_err(DaemonError::Agent)
}

/// Sets `pause` on SIGTERM (the stop flag) or SIGHUP.
async fn watch(stop: Arc<AtomicBool>, hangup: Arc<tokio::sync::Notify>, pause: Arc<AtomicBool>) {
    loop {
        tokio::select! {
            _ = hangup.notified() => break,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
            }
        }
    }
    pause.store(true, Ordering::SeqCst);
}

/// Runs `work` to its end, or — once `stop` is set — for at most `bound` more (`None`: it
/// was abandoned).
async fn bounded<T>(
    work: impl Future<Output = T>,
    stop: &AtomicBool,
    bound: Duration,
) -> Option<T> {
    tokio::pin!(work);
    loop {
        tokio::select! {
            done = &mut work => return Some(done),
            _ = tokio::time::sleep(Duration::from_millis(100)) => {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
            }
        }
    }
    tokio::time::timeout(bound, work).await.ok()
}

/// A changed configuration, checked whole.
struct Prepared {
    config: Config,
    tokens: Tokens,
    webhooks: Vec<Webhook>,
    engine: RealEngine,
}

/// Everything of the changed file, used: parsed, secret files private and read, TLS files
/// loaded, both sides connected.
async fn prepare(path: &Path, running: &Config, shared: &State) -> Result<Prepared, String> {
    let config = compose::load_config(path).map_err(|e| e.to_string())?;
    if config.sync.state_dir != running.sync.state_dir {
        return Err(format!(
            "sync.state_dir cannot change while the agent runs (it is {}); restart the agent",
            running.sync.state_dir.display()
        ));
    }
    if config.state != running.state {
        return Err("[state] cannot change while the agent runs; restart the agent".into());
    }
    let tokens = Tokens::new(
        &config
            .api
            .load_tokens()
            .map_err(|e| format!("[api]: {e}"))?,
    );
    let webhooks = config
        .notify
        .load_webhooks()
        .map_err(|e| format!("[notify]: {e}"))?;
    if let (Some(cert), Some(key)) = (&config.api.tls_cert_file, &config.api.tls_key_file) {
        crate::server::tls_config(cert, key).map_err(|e| e.to_string())?;
    }
    let engine = compose::engine_on(&config, shared)
        .await
        .map_err(|e| format!("cannot use it: {e}"))?;
    Ok(Prepared {
        config,
        tokens,
        webhooks,
        engine,
    })
}
