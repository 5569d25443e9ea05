//! Where the state lives and how its one writer is chosen, from `[state]`:
//!
//! - no `[state]` (the default): the embedded SQLite database in `sync.state_dir`; one writer
//!   through the state lock (`lock.rs`, a file lock);
//! - `[state] url = "postgres://…"`: a PostgreSQL database several agents share (issue 16).
//!   One agent leads (runs cycles) through the `leader` lease; whoever writes the state and AD
//!   holds the `writer` lease, whose epoch every write transaction checks and which the engine
//!   asks before each modify ([`State::write_fence`]). The others stand by and take over when
//!   the leader's lease lapses ([`State::lead`]). See `docs/ha.md`.
//!
//! The password comes from `state.password_file` or `state.password_env` and is never in the
//! URL, a log or `status` (the URL is shown without it).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use exo_writeback_engine::{Unfenced, WriteFence};
pub use exo_writeback_store_postgres::cluster::{AgentSeen, Cluster, Takeover};
pub use exo_writeback_store_postgres::lease::Holder;
use exo_writeback_store_postgres::lease::{Acquired, Identity, LeaseGuard, LeaseName, Leases};
use exo_writeback_store_postgres::{Fence, PgSettings, PgStore};
use exo_writeback_store_sqlite::{SqliteStore, Store, StoreError};
use serde::Deserialize;

use crate::config::{Config, load_secret};
use crate::error::AgentError;
use crate::lock::StateLock;

/// The `[state]` section: a PostgreSQL state shared by several agents.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateSettings {
    /// `postgres://user@host:port/database` — no password in it.
    pub url: String,
    /// The password, from a file (mode 0600) …
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// … or an environment variable.
    #[serde(default)]
    pub password_env: Option<String>,
    /// The CA of the server's certificate (PEM); default: the system's trust store.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// How long a lease outlives its holder's last renewal (default 15 s, 2 s … 10 min): a
    /// standby takes over within about this time after the leader dies.
    #[serde(default = "default_lease")]
    pub lease: jiff::SignedDuration,
}

fn default_lease() -> jiff::SignedDuration {
    jiff::SignedDuration::from_secs(15)
}

impl StateSettings {
    /// The limits serde cannot check.
    pub fn validate(&self) -> Result<(), String> {
        let lease = self.lease;
        if lease < jiff::SignedDuration::from_secs(2) || lease > jiff::SignedDuration::from_mins(10)
        {
            return Err(format!(
                "state.lease must be between 2s and 10m (it is {lease:#})"
            ));
        }
        Ok(())
    }

    /// The connection settings, the password loaded (`None` when neither source is set).
    pub fn pg_settings(&self, application_name: &str) -> Result<PgSettings, AgentError> {
        let password = match (&self.password_file, &self.password_env) {
            (None, None) => None,
            (file, env) => Some(load_secret(
                "state.password",
                file.as_deref(),
                env.as_deref(),
            )?),
        };
        let mut settings = PgSettings::new(self.url.clone(), password, self.ca_file.clone());
        settings.application_name = application_name.to_string();
        Ok(settings)
    }

    pub fn lease_time(&self) -> Duration {
        Duration::try_from(self.lease).unwrap_or(Duration::from_secs(15))
    }
}

/// The state of one configuration, for one process.
pub struct State {
    backend: Backend,
    /// What this process's PostgreSQL stores check (the writer lease's epoch).
    fence: Fence,
    leader: Mutex<Option<LeaseGuard>>,
}

enum Backend {
    Sqlite(PathBuf),
    Postgres {
        settings: PgSettings,
        leases: Arc<Leases>,
    },
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("location", &self.location())
            .finish_non_exhaustive()
    }
}

/// Held while this process writes the state (and AD); given back when dropped.
#[derive(Debug)]
pub enum WriterGuard {
    /// The SQLite state's file lock.
    File(StateLock),
    /// The PostgreSQL state's writer lease.
    Lease(LeaseGuard),
}

impl State {
    /// The state `config` names, for a process running `command` (`exo-writeback run`, …).
    /// The state directory (locks, the DC status, spilled plans, and the SQLite database) is
    /// created private (0700); an existing one open to others is restricted with a warning, or
    /// refused when not ours (`crate::files`).
    pub fn open(config: &Config, command: &str) -> Result<State, AgentError> {
        crate::files::private_state_dir(&config.sync.state_dir)?;
        match &config.state {
            None => Ok(State::sqlite(config.sync.state_dir.clone())),
            Some(shared) => State::postgres(shared, command),
        }
    }

    /// The PostgreSQL state `settings` name, for a process running `command`, whatever the
    /// configuration's own `[state]` says (`exo-writeback state migrate --to …`).
    pub fn postgres(settings: &StateSettings, command: &str) -> Result<State, AgentError> {
        let pg = settings.pg_settings(command)?;
        let fence = Fence::enforced();
        let leases = Leases::new(
            &pg,
            Identity::this_process(command),
            settings.lease_time(),
            fence.clone(),
        )?;
        Ok(State {
            backend: Backend::Postgres {
                settings: pg,
                leases: Arc::new(leases),
            },
            fence,
            leader: Mutex::new(None),
        })
    }

    /// A PostgreSQL store on the state, its writes fenced like [`State::store`]'s (an error
    /// on a SQLite state).
    pub fn pg_store(&self) -> Result<PgStore, AgentError> {
        match &self.backend {
            Backend::Sqlite(dir) => Err(StoreError::Invalid {
                path: dir.clone(),
                message: "this state is SQLite, not PostgreSQL".into(),
            }
            .into()),
            Backend::Postgres { settings, .. } => Ok(PgStore::open(settings, self.fence.clone())?),
        }
    }

    /// The SQLite state in `dir`.
    pub fn sqlite(dir: PathBuf) -> State {
        State {
            backend: Backend::Sqlite(dir),
            fence: Fence::unenforced(),
            leader: Mutex::new(None),
        }
    }

    /// Whether several agents may share this state (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Postgres { .. })
    }

    /// Where the state lives, as messages show it (a URL without its password).
    pub fn location(&self) -> String {
        match &self.backend {
            Backend::Sqlite(dir) => dir.display().to_string(),
            Backend::Postgres { settings, .. } => settings.label().display().to_string(),
        }
    }

    /// A store on the state. On PostgreSQL its writes are refused unless this process holds
    /// the writer lease ([`State::writer`]).
    pub fn store(&self) -> Result<Box<dyn Store>, AgentError> {
        match &self.backend {
            Backend::Sqlite(dir) => {
                crate::files::private_state_dir(dir)?;
                Ok(Box::new(SqliteStore::open_in(dir)?))
            }
            Backend::Postgres { settings, .. } => {
                Ok(Box::new(PgStore::open(settings, self.fence.clone())?))
            }
        }
    }

    /// What the engine asks before each modify: on PostgreSQL, whether this process still
    /// surely holds the writer lease.
    pub fn write_fence(&self) -> Arc<dyn WriteFence> {
        match &self.backend {
            Backend::Sqlite(_) => Arc::new(Unfenced),
            Backend::Postgres { leases, .. } => Arc::new(LeaseFence(leases.clone())),
        }
    }

    /// The right to write the state and AD, waiting for the process that has it (a warning
    /// says who and why this one waits). `holder` names this command for the others.
    pub async fn writer(&self, holder: &str) -> Result<WriterGuard, AgentError> {
        let leases = match &self.backend {
            Backend::Sqlite(dir) => {
                return Ok(WriterGuard::File(StateLock::acquire(dir, holder).await?));
            }
            Backend::Postgres { leases, .. } => leases,
        };
        let mut announced = false;
        loop {
            match try_acquire(leases, LeaseName::Writer).await? {
                Acquired::Held(guard) => return Ok(WriterGuard::Lease(guard)),
                Acquired::Busy(other) if !announced => {
                    tracing::warn!(
                        "waiting for the writer lease of {}: {other} is writing to this state; {holder} goes on when it is done",
                        self.location()
                    );
                    announced = true;
                }
                Acquired::Busy(_) => {}
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Returns once this process leads (runs cycles), `true` when asked to stop first. SQLite:
    /// at once (its cycle runner lock makes one). PostgreSQL: the leader lease, kept while it
    /// stays valid; while another agent leads, this one stands by (and says so once) and takes
    /// over when that agent's lease lapses. The database unreachable: standing by, saying so.
    pub async fn lead(&self, stop: &AtomicBool) -> Result<bool, AgentError> {
        let Backend::Postgres { leases, .. } = &self.backend else {
            return Ok(false);
        };
        let lost = {
            let mut leader = self.leader.lock().unwrap_or_else(PoisonError::into_inner);
            match leader.as_ref() {
                Some(guard) if guard.lease().is_valid() => return Ok(false),
                Some(_) => leader.take(),
                None => None,
            }
        };
        if let Some(guard) = lost {
            tracing::error!(
                epoch = guard.lease().epoch,
                "this agent lost the leadership (its lease lapsed or was taken over); it stands by"
            );
            drop_blocking(guard).await;
        }
        let registered = leases.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || registered.register())
            .await
            .map_err(join_error)?
        {
            tracing::warn!(error = %e, "cannot announce this agent in the state database");
        }
        let mut said = String::new();
        loop {
            if stop.load(Ordering::SeqCst) {
                return Ok(true);
            }
            let say = match try_acquire(leases, LeaseName::Leader).await {
                Ok(Acquired::Held(guard)) => {
                    tracing::info!(
                        epoch = guard.lease().epoch,
                        state = %self.location(),
                        "this agent leads: it runs the cycles"
                    );
                    *self.leader.lock().unwrap_or_else(PoisonError::into_inner) = Some(guard);
                    return Ok(false);
                }
                Ok(Acquired::Busy(other)) => format!(
                    "standing by: {other} leads; this agent takes over when its lease lapses"
                ),
                Err(e) => format!(
                    "standing by: the state database cannot be reached, so no agent writes ({e})"
                ),
            };
            if say != said {
                tracing::info!("{say}");
                said = say;
            }
            let wait = (leases.ttl() / 4).clamp(Duration::from_millis(100), Duration::from_secs(2));
            let until = std::time::Instant::now() + wait;
            while std::time::Instant::now() < until {
                if stop.load(Ordering::SeqCst) {
                    return Ok(true);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// Gives up leading and leaves the cluster (a clean stop).
    pub async fn step_down(&self) {
        let guard = self
            .leader
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(guard) = guard {
            drop_blocking(guard).await;
        }
        if let Backend::Postgres { leases, .. } = &self.backend {
            let leases = leases.clone();
            let _ = tokio::task::spawn_blocking(move || leases.deregister()).await;
        }
    }

    /// The agents sharing the state (PostgreSQL only).
    pub fn cluster(&self) -> Result<Option<Cluster>, AgentError> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(None),
            Backend::Postgres { leases, .. } => Ok(Some(leases.cluster()?)),
        }
    }
}

/// The engine's fence over this process's writer lease.
struct LeaseFence(Arc<Leases>);

impl WriteFence for LeaseFence {
    fn may_write(&self) -> Result<(), String> {
        self.0.may_write()
    }
}

async fn try_acquire(leases: &Arc<Leases>, name: LeaseName) -> Result<Acquired, AgentError> {
    let leases = leases.clone();
    Ok(
        tokio::task::spawn_blocking(move || leases.try_acquire(name))
            .await
            .map_err(join_error)??,
    )
}

/// Gives a lease back off the async threads (a round trip to the database).
async fn drop_blocking(guard: LeaseGuard) {
    let _ = tokio::task::spawn_blocking(move || drop(guard)).await;
}

fn join_error(e: tokio::task::JoinError) -> AgentError {
    AgentError::Lock {
        path: PathBuf::from("the lease task"),
        source: std::io::Error::other(e.to_string()),
    }
}

/// The right to write a state, held as long as it lives — with the state it is on (a lease is
/// renewed only while its state is open).
#[derive(Debug)]
pub struct WriteLock {
    guard: WriterGuard,
    state: State,
}

impl WriteLock {
    /// Takes the right to write `config`'s state for `holder` (`exo-writeback approve 7`, …),
    /// waiting for the command or agent that writes now.
    pub async fn acquire(config: &Config, holder: &str) -> Result<WriteLock, AgentError> {
        let state = State::open(config, holder)?;
        let guard = state.writer(holder).await?;
        Ok(WriteLock { guard, state })
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn guard(&self) -> &WriterGuard {
        &self.guard
    }

    /// A store on the state, its writes allowed while this lock lives.
    pub fn store(&self) -> Result<Box<dyn Store>, AgentError> {
        self.state.store()
    }
}
