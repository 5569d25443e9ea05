//! What every request handler shares: the configuration (replaced on reload), the tokens, a
//! read connection to the state, the metrics, the notifier, and this agent's description.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use exo_writeback_agent::compose::{self, RealEngine};
use exo_writeback_agent::config::{Config, EventKind};
use exo_writeback_store_sqlite::Store;
use jiff::{SignedDuration, Timestamp};

use crate::auth::Tokens;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::model::status::Agent;
use crate::webhook::{Event, Notifier};

/// The shared state of the HTTP service.
pub struct AppState {
    config: RwLock<Arc<Config>>,
    tokens: RwLock<Tokens>,
    /// The connection requests read the state with (opened on first use).
    reads: Mutex<Option<Box<dyn Store>>>,
    pub metrics: Arc<Metrics>,
    pub notifier: Notifier,
    /// This agent: version, pid, host, start, URL.
    agent: RwLock<Agent>,
    ready: AtomicBool,
    /// The process's stop flag (SIGTERM): operations stop with it, as cycles do.
    pub stop: Arc<AtomicBool>,
    /// The agent's state (its cluster, on PostgreSQL), once opened.
    shared: OnceLock<Arc<exo_writeback_agent::state::State>>,
}

impl AppState {
    pub fn new(
        config: Config,
        tokens: Tokens,
        metrics: Arc<Metrics>,
        notifier: Notifier,
        stop: Arc<AtomicBool>,
    ) -> AppState {
        AppState {
            config: RwLock::new(Arc::new(config)),
            tokens: RwLock::new(tokens),
            reads: Mutex::new(None),
            metrics,
            notifier,
            agent: RwLock::new(Agent {
                version: env!("CARGO_PKG_VERSION").to_string(),
                pid: std::process::id(),
                host: host_name(),
                started_at: Timestamp::now().to_string(),
                url: String::new(),
                ready: false,
            }),
            ready: AtomicBool::new(false),
            stop,
            shared: OnceLock::new(),
        }
    }

    pub fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .map(|c| c.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    pub fn tokens(&self) -> Tokens {
        self.tokens
            .read()
            .map(|t| t.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Takes a reloaded configuration and its tokens (already validated).
    pub fn reload(&self, config: Config, tokens: Tokens) {
        if let Ok(mut c) = self.config.write() {
            *c = Arc::new(config);
        }
        if let Ok(mut t) = self.tokens.write() {
            *t = tokens;
        }
    }

    pub fn set_url(&self, url: String) {
        if let Ok(mut a) = self.agent.write() {
            a.url = url;
        }
    }

    /// The agent's state, whose cluster `status` shows.
    pub fn set_shared(&self, shared: Arc<exo_writeback_agent::state::State>) {
        let _ = self.shared.set(shared);
    }

    /// The agents sharing the state (`None` on SQLite, or before the state is open).
    pub async fn cluster(&self) -> Result<Option<exo_writeback_agent::state::Cluster>, ApiError> {
        let Some(shared) = self.shared.get().cloned() else {
            return Ok(None);
        };
        tokio::task::spawn_blocking(move || shared.cluster())
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::from)
    }

    /// The agent has started its loop: `/readyz` answers 200.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    pub fn agent(&self) -> Agent {
        let mut a = self
            .agent
            .read()
            .map(|a| a.clone())
            .unwrap_or_else(|p| p.into_inner().clone());
        a.ready = self.is_ready();
        a
    }

    /// A security event for the webhooks (at most one per 10 minutes).
    pub fn security_event(&self, summary: String) {
        self.notifier.send(
            Event::new(EventKind::Security, "warning", summary)
                .keyed("security:api", SignedDuration::from_mins(10)),
        );
    }

    /// Runs `f` over the read connection, off the async threads.
    pub async fn read<T, F>(self: &Arc<Self>, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store, &Config) -> Result<T, ApiError> + Send + 'static,
    {
        let state = self.clone();
        tokio::task::spawn_blocking(move || {
            let config = state.config();
            let mut reads = state.reads.lock().unwrap_or_else(|p| p.into_inner());
            if reads.is_none() {
                *reads = Some(compose::open_store(&config)?);
            }
            match reads.as_ref() {
                Some(store) => f(store.as_ref(), &config),
                None => Err(ApiError::internal("the state is not open")),
            }
        })
        .await
        .map_err(ApiError::internal)?
    }
}

/// Runs an operation of the engine on a thread of its own, with its own runtime: the engine's
/// futures hold the state's connection, which is not shared between threads, so they are not
/// run on the server's tasks. The caller waits without blocking the server.
pub async fn on_own_thread<T, F, Fut>(f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, ApiError>>,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("exo-writeback-operation".into())
        .spawn(move || {
            let result = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(f()),
                Err(e) => Err(ApiError::internal(format!("cannot start a runtime: {e}"))),
            };
            let _ = tx.send(result);
        })
        .map_err(|e| ApiError::internal(format!("cannot start a thread: {e}")))?;
    rx.await
        .map_err(|_| ApiError::internal("the operation's thread ended without an answer"))?
}

/// Runs `f` over an engine that writes — behind the state lock, like every writer, waiting
/// for a running cycle — on a thread of its own. `holder` names the operation in the lock
/// file; the engine stops with the process.
/// `who` is recorded as the operator of what the engine does.
pub async fn writing<T, F, Fut>(
    state: &Arc<AppState>,
    who: String,
    holder: String,
    f: F,
) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(RealEngine) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, ApiError>>,
{
    let config = state.config();
    let stop = state.stop.clone();
    on_own_thread(move || async move {
        let (mut engine, _lock) = compose::writing_engine(&config, &holder).await?;
        engine.set_cancel_flag(stop);
        engine.set_operator(who);
        f(engine).await
    })
    .await
}

/// Runs `f` over an engine that only reads (no state lock), on a thread of its own.
pub async fn reading<T, F, Fut>(state: &Arc<AppState>, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(RealEngine) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, ApiError>>,
{
    let config = state.config();
    on_own_thread(move || async move { f(compose::engine(&config).await?).await }).await
}

/// This machine's name (for the status and webhooks).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
