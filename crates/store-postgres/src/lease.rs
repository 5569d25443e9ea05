//! Leases on a shared state: one writer at a time, with fencing.
//!
//! Two rows of the table `leases`, each with a holder, an expiry (the database's clock) and an
//! epoch incremented by every acquisition:
//!
//! - `leader`: the agent (`exo-writeback run`) that runs cycles; the others stand by and take
//!   it over when it lapses. Every change of leader is recorded in `takeovers`, with why.
//! - `writer`: whoever writes the state and AD now — a cycle of the leader, `approve`, `undo`,
//!   `provision`, `restart` … — taken and given back like the SQLite backend's state lock. Its
//!   epoch is the fence every write transaction checks ([`Fence`]).
//!
//! A process renews the leases it holds from a thread of its own (every quarter of the lease
//! time), on a connection of its own; a lease it cannot renew lapses. Each held lease also
//! keeps a local deadline — the instant the renewal was sent plus the lease time, earlier
//! than the expiry the database computed — that a writer looks at before each modify
//! ([`Leases::may_write`]), so a process frozen past its lease and woken up stops before it
//! sends anything, even before its renewal has told it that another agent took over.
//!
//! Why a lease row and not a session advisory lock: `docs/ha.md` and `ARCHITECTURE.md`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use exo_writeback_store::{Result, StoreError};
use jiff::Timestamp;
use postgres::Client;
use uuid::Uuid;

use crate::cluster::describe_takeover;
use crate::connect::{Connector, PgSettings, blocking};
use crate::error::E;
use crate::fence::{Fence, FenceToken};
use crate::pg::{PgStore, get};

mod renew;

/// Which lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseName {
    /// The agent that runs cycles.
    Leader,
    /// Who writes the state and AD now.
    Writer,
}

impl LeaseName {
    pub fn as_str(self) -> &'static str {
        match self {
            LeaseName::Leader => "leader",
            LeaseName::Writer => "writer",
        }
    }
}

/// Who this process is, as the other agents and `status` see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Unique per process.
    pub id: Uuid,
    pub host: String,
    pub pid: u32,
    /// `exo-writeback run`, `exo-writeback approve 7`, …
    pub command: String,
}

impl Identity {
    /// This process, running `command`.
    pub fn this_process(command: impl Into<String>) -> Identity {
        Identity {
            id: Uuid::new_v4(),
            host: host_name(),
            pid: std::process::id(),
            command: command.into(),
        }
    }
}

/// The machine's host name (Linux: the kernel's), for `status`.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "an unnamed host".into())
}

/// The holder of a lease, as the database has it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Holder {
    pub host: String,
    pub pid: u32,
    pub command: String,
    pub since: Timestamp,
    pub expires_at: Timestamp,
    pub epoch: i64,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` on {} (pid {}) since {}",
            self.command, self.host, self.pid, self.since
        )
    }
}

/// A lease this process holds.
#[derive(Debug)]
pub struct HeldLease {
    pub name: LeaseName,
    pub epoch: i64,
    /// When it was acquired (the database's clock).
    pub since: Timestamp,
    /// The local instant before which it is surely still ours.
    deadline: Mutex<Instant>,
    /// The database said another holder has it (a renewal found it taken).
    lost: AtomicBool,
}

impl HeldLease {
    /// Whether this process may still act on the lease: not taken by another, and renewed
    /// recently enough that it cannot have lapsed.
    pub fn is_valid(&self) -> bool {
        !self.lost.load(Ordering::SeqCst) && Instant::now() < self.deadline()
    }

    /// Whether a renewal found the lease taken by another holder.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    fn deadline(&self) -> Instant {
        *self.deadline.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What an attempt to take a lease came to.
#[derive(Debug)]
pub enum Acquired {
    Held(LeaseGuard),
    /// Another process holds it (and it has not lapsed).
    Busy(Holder),
}

/// The leases of one process on one shared state.
pub struct Leases {
    inner: Arc<Inner>,
}

struct Inner {
    connector: Arc<Connector>,
    identity: Identity,
    ttl: Duration,
    fence: Fence,
    /// For acquisitions, releases and views (the renewer has its own).
    conn: Mutex<Option<Client>>,
    held: Mutex<Vec<Arc<HeldLease>>>,
    registered: AtomicBool,
    renewer_started: AtomicBool,
    stop: AtomicBool,
}

impl std::fmt::Debug for Leases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leases")
            .field("identity", &self.inner.identity)
            .field("ttl", &self.inner.ttl)
            .finish_non_exhaustive()
    }
}

/// Held until dropped: then the lease is given back (best effort; otherwise it lapses).
pub struct LeaseGuard {
    inner: Arc<Inner>,
    held: Arc<HeldLease>,
}

impl std::fmt::Debug for LeaseGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseGuard")
            .field("held", &self.held)
            .finish()
    }
}

impl LeaseGuard {
    pub fn lease(&self) -> &Arc<HeldLease> {
        &self.held
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        let inner = self.inner.clone();
        let held = self.held.clone();
        inner.forget(&held);
        if let Err(e) = blocking(|| inner.release(&held)) {
            tracing::warn!(lease = held.name.as_str(), error = %e, "could not give the lease back; it lapses by itself");
        }
    }
}

impl Leases {
    /// The leases of this process (`identity`) on the state `settings` names, each held for
    /// `ttl` past its last renewal. `fence` is the one this process's stores check: it carries
    /// the writer lease's epoch while this process holds it.
    pub fn new(
        settings: &PgSettings,
        identity: Identity,
        ttl: Duration,
        fence: Fence,
    ) -> Result<Leases> {
        // Opening a store migrates the schema (the lease tables included).
        drop(PgStore::open(settings, Fence::unenforced())?);
        let connector = Connector::new(settings).map_err(|e| StoreError::Invalid {
            path: settings.label(),
            message: e.to_string(),
        })?;
        Ok(Leases {
            inner: Arc::new(Inner {
                connector,
                identity,
                ttl,
                fence,
                conn: Mutex::new(None),
                held: Mutex::new(Vec::new()),
                registered: AtomicBool::new(false),
                renewer_started: AtomicBool::new(false),
                stop: AtomicBool::new(false),
            }),
        })
    }

    pub fn identity(&self) -> &Identity {
        &self.inner.identity
    }

    pub fn ttl(&self) -> Duration {
        self.inner.ttl
    }

    pub fn fence(&self) -> &Fence {
        &self.inner.fence
    }

    /// Takes the lease if it is free or has lapsed (blocking; a few milliseconds).
    pub fn try_acquire(&self, name: LeaseName) -> Result<Acquired> {
        let inner = &self.inner;
        let taken = blocking(|| inner.with_client("take the lease", |c| inner.take(c, name)))?;
        match taken {
            Err(holder) => Ok(Acquired::Busy(holder)),
            Ok(held) => {
                if name == LeaseName::Writer {
                    inner.fence.set(Some(FenceToken {
                        holder: inner.identity.id,
                        epoch: held.epoch,
                    }));
                }
                inner
                    .held
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(held.clone());
                self.start_renewer();
                Ok(Acquired::Held(LeaseGuard {
                    inner: inner.clone(),
                    held,
                }))
            }
        }
    }

    /// Announces this process among the agents of the state (`status` lists them; a standby
    /// is an agent that does not lead). Kept fresh by the renewer; removed by
    /// [`Leases::deregister`] or, once it stops renewing, left out of `status`.
    pub fn register(&self) -> Result<()> {
        let inner = &self.inner;
        let id = inner.identity.id;
        let (host, pid, command) = (
            inner.identity.host.clone(),
            pid_param(inner.identity.pid),
            inner.identity.command.clone(),
        );
        blocking(|| {
            inner.with_client("register the agent", |c| {
                c.execute(
                    "INSERT INTO agents (id, host, pid, command, started_at, seen_at)
                     VALUES ($1, $2, $3, $4, clock_timestamp(), clock_timestamp())
                     ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at",
                    &[&id, &host, &pid, &command],
                )?;
                // Agents gone for a day are forgotten.
                c.execute(
                    "DELETE FROM agents WHERE seen_at < clock_timestamp() - interval '1 day'",
                    &[],
                )?;
                Ok(())
            })
        })?;
        inner.registered.store(true, Ordering::SeqCst);
        self.start_renewer();
        Ok(())
    }

    /// Removes this process from the agents of the state (a clean stop).
    pub fn deregister(&self) {
        let inner = &self.inner;
        inner.registered.store(false, Ordering::SeqCst);
        let id = inner.identity.id;
        let _ = blocking(|| {
            inner.with_client("deregister the agent", |c| {
                c.execute("DELETE FROM agents WHERE id = $1", &[&id])?;
                Ok(())
            })
        });
    }

    /// Whether this process may send a modify now: it holds the writer lease, no renewal found
    /// it taken, and its local deadline has not passed. `Err` says why not.
    pub fn may_write(&self) -> std::result::Result<(), String> {
        let held = self
            .inner
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(writer) = held.iter().find(|h| h.name == LeaseName::Writer) else {
            return Err("this agent does not hold the writer lease".into());
        };
        if writer.is_lost() {
            return Err(format!(
                "the writer lease (epoch {}) was taken over by another agent",
                writer.epoch
            ));
        }
        if Instant::now() >= writer.deadline() {
            return Err(format!(
                "the writer lease (epoch {}) was not renewed in time (the database did not \
                 answer, or this agent was paused); it may have lapsed",
                writer.epoch
            ));
        }
        Ok(())
    }

    /// The state of the cluster (who leads, the standbys, the last takeover).
    pub fn cluster(&self) -> Result<crate::cluster::Cluster> {
        let inner = &self.inner;
        let ttl = inner.ttl;
        blocking(|| inner.with_client("read the cluster", |c| crate::cluster::read(c, ttl)))
    }

    /// Stops renewing the leases this process holds: they lapse after one lease time (as
    /// when the process freezes). Not undone.
    pub fn stop_renewing(&self) {
        self.inner.stop.store(true, Ordering::SeqCst);
    }

    fn start_renewer(&self) {
        if self.inner.renewer_started.swap(true, Ordering::SeqCst) {
            return;
        }
        let inner = self.inner.clone();
        let spawned = std::thread::Builder::new()
            .name("lease-renewer".into())
            .spawn(move || inner.renew_loop());
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the lease renewer; the leases lapse after one lease time");
        }
    }
}

impl Drop for Leases {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::SeqCst);
        if let Some(c) = self
            .inner
            .conn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            blocking(move || drop(c));
        }
    }
}

impl Inner {
    /// Runs `f` on this process's lease connection (opened again when it broke). Call inside
    /// [`blocking`].
    fn with_client<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&mut Client) -> std::result::Result<T, E>,
    ) -> Result<T> {
        let mut slot = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.as_ref().is_some_and(Client::is_closed) {
            *slot = None;
        }
        let client = match slot.as_mut() {
            Some(c) => c,
            None => slot.insert(self.connector.connect()?),
        };
        match f(client) {
            Ok(v) => Ok(v),
            Err(e) => {
                if e.lost_connection() {
                    *slot = None;
                }
                Err(e.into_store(&self.connector.label, op))
            }
        }
    }

    /// One transaction: the lease row locked; taken when free, lapsed or ours; a change of
    /// leader recorded with its reason.
    fn take(
        &self,
        c: &mut Client,
        name: LeaseName,
    ) -> std::result::Result<std::result::Result<Arc<HeldLease>, Holder>, E> {
        let me = &self.identity;
        let sent = Instant::now();
        let mut tx = c.transaction()?;
        let row = tx.query_one(
            "SELECT holder, epoch, expires_at, since, host, pid, command, released_at,
                    coalesce(expires_at <= clock_timestamp(), true), clock_timestamp()
             FROM leases WHERE name = $1 FOR UPDATE",
            &[&name.as_str()],
        )?;
        let holder: Option<Uuid> = get(&row, 0)?;
        let epoch: i64 = get(&row, 1)?;
        let expires_at: Option<Timestamp> = get(&row, 2)?;
        let since: Option<Timestamp> = get(&row, 3)?;
        let host: Option<String> = get(&row, 4)?;
        let pid: Option<i32> = get(&row, 5)?;
        let command: Option<String> = get(&row, 6)?;
        let released_at: Option<Timestamp> = get(&row, 7)?;
        let lapsed: bool = get(&row, 8)?;
        let now: Timestamp = get(&row, 9)?;
        if let Some(other) = holder
            && other != me.id
            && !lapsed
        {
            return Ok(Err(Holder {
                host: host.unwrap_or_default(),
                pid: pid.map_or(0, |p| u32::try_from(p).unwrap_or(0)),
                command: command.unwrap_or_default(),
                since: since.unwrap_or(now),
                expires_at: expires_at.unwrap_or(now),
                epoch,
            }));
        }
        let ttl = self.ttl.as_secs_f64();
        let row = tx.query_one(
            "UPDATE leases SET holder = $2, epoch = epoch + 1,
                    expires_at = clock_timestamp() + make_interval(secs => $3),
                    since = clock_timestamp(), host = $4, pid = $5, command = $6,
                    released_at = NULL
             WHERE name = $1 RETURNING epoch, since",
            &[
                &name.as_str(),
                &me.id,
                &ttl,
                &me.host,
                &pid_param(me.pid),
                &me.command,
            ],
        )?;
        let new_epoch: i64 = get(&row, 0)?;
        let new_since: Timestamp = get(&row, 1)?;
        if name == LeaseName::Leader && holder != Some(me.id) {
            let reason = describe_takeover(
                holder.is_some() || released_at.is_some(),
                host.as_deref(),
                pid,
                command.as_deref(),
                released_at,
                expires_at,
                now,
            );
            tx.execute(
                "INSERT INTO takeovers
                   (lease, epoch, at, holder, host, pid, command, previous_host, previous_pid, reason)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                &[
                    &name.as_str(),
                    &new_epoch,
                    &new_since,
                    &me.id,
                    &me.host,
                    &pid_param(me.pid),
                    &me.command,
                    &host,
                    &pid,
                    &reason,
                ],
            )?;
            tracing::info!(epoch = new_epoch, "{reason}; this agent leads now");
        }
        tx.commit()?;
        Ok(Ok(Arc::new(HeldLease {
            name,
            epoch: new_epoch,
            since: new_since,
            deadline: Mutex::new(sent + self.ttl),
            lost: AtomicBool::new(false),
        })))
    }

    /// Gives a lease back (keeps who held it, for the next holder's takeover reason).
    fn release(&self, held: &HeldLease) -> Result<()> {
        let id = self.identity.id;
        self.with_client("give the lease back", |c| {
            c.execute(
                "UPDATE leases SET holder = NULL, expires_at = NULL, released_at = clock_timestamp()
                 WHERE name = $1 AND holder = $2 AND epoch = $3",
                &[&held.name.as_str(), &id, &held.epoch],
            )?;
            Ok(())
        })
    }

    /// No longer renewed; the fence no longer carries it.
    fn forget(&self, held: &Arc<HeldLease>) {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|h| !Arc::ptr_eq(h, held));
        if held.name == LeaseName::Writer
            && self.fence.current().is_some_and(|t| t.epoch == held.epoch)
        {
            self.fence.set(None);
        }
    }
}

fn pid_param(pid: u32) -> i32 {
    i32::try_from(pid).unwrap_or(i32::MAX)
}
