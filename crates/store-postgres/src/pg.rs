//! The PostgreSQL backend of [`exo_writeback_store::Store`]: the connection (opened again
//! after the server restarts), cached statements, reads, fenced write transactions and
//! migrations; each role of the store is implemented in its own module.
//!
//! Layout: as the SQLite backend's — BIGINT time columns are nanoseconds since the Unix epoch
//! (ordering and filtering only), the exact values live in each row's JSON text, TEXT time
//! columns are RFC 3339 — so both backends behave alike, down to the order of ties.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use exo_writeback_store::{Result, StoreError};
use postgres::types::ToSql;
use postgres::{Client, GenericClient, Row, Statement, Transaction};

use crate::connect::{Connector, PgSettings, PgSettingsError, blocking};
use crate::error::E;
use crate::fence::{Fence, check_fence};
use crate::migrations::{MIGRATIONS, SCHEMA_VERSION};

/// The PostgreSQL state store: one connection, reopened when the server restarts.
pub struct PgStore {
    pub(crate) connector: Arc<Connector>,
    pub(crate) conn: RefCell<Option<Conn>>,
    pub(crate) fence: Fence,
    /// Rows deleted per transaction by a retention purge.
    pub(crate) purge_chunk: i64,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("url", &self.connector.label)
            .finish_non_exhaustive()
    }
}

/// Every role of the store (each in its own module).
impl exo_writeback_store::Store for PgStore {}

pub(crate) struct Conn {
    client: Client,
    stmts: HashMap<String, Statement>,
}

/// A client (or transaction) with the connection's prepared statements.
pub(crate) struct Db<'a, C> {
    c: &'a mut C,
    stmts: &'a mut HashMap<String, Statement>,
}

pub(crate) type Params<'a> = [&'a (dyn ToSql + Sync)];

impl<'a, C> Db<'a, C> {
    pub(crate) fn new(c: &'a mut C, stmts: &'a mut HashMap<String, Statement>) -> Self {
        Db { c, stmts }
    }
}

impl Conn {
    pub(crate) fn parts(&mut self) -> (&mut Client, &mut HashMap<String, Statement>) {
        (&mut self.client, &mut self.stmts)
    }
}

impl<C: GenericClient> Db<'_, C> {
    fn st(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(s) = self.stmts.get(sql) {
            return Ok(s.clone());
        }
        let s = self.c.prepare(sql)?;
        self.stmts.insert(sql.to_string(), s.clone());
        Ok(s)
    }

    pub(crate) fn execute(&mut self, sql: &str, params: &Params<'_>) -> Result<u64, E> {
        let st = self.st(sql)?;
        Ok(self.c.execute(&st, params)?)
    }

    pub(crate) fn query(&mut self, sql: &str, params: &Params<'_>) -> Result<Vec<Row>, E> {
        let st = self.st(sql)?;
        Ok(self.c.query(&st, params)?)
    }

    pub(crate) fn query_opt(&mut self, sql: &str, params: &Params<'_>) -> Result<Option<Row>, E> {
        let st = self.st(sql)?;
        Ok(self.c.query_opt(&st, params)?)
    }

    pub(crate) fn query_one(&mut self, sql: &str, params: &Params<'_>) -> Result<Row, E> {
        let st = self.st(sql)?;
        Ok(self.c.query_one(&st, params)?)
    }

    /// Runs statements without parameters (DDL).
    pub(crate) fn batch(&mut self, sql: &str) -> Result<(), E> {
        Ok(self.c.batch_execute(sql)?)
    }
}

/// Advisory lock key under which migrations run (one process migrates at a time).
const MIGRATION_LOCK: i64 = 0x6578_6f77_625f_6d67;

impl PgStore {
    /// Connects (TLS verified) and migrates the database to the current schema. A database
    /// of a newer exo-writeback is refused ([`StoreError::NewerSchema`]). Every write checks
    /// `fence` (see [`Fence`]).
    pub fn open(settings: &PgSettings, fence: Fence) -> Result<PgStore> {
        let store = PgStore::connect(settings, fence)?;
        store.migrate(SCHEMA_VERSION)?;
        Ok(store)
    }

    /// Opens and migrates only up to `version` (for tests of migrations).
    #[doc(hidden)]
    pub fn open_at_schema_version(settings: &PgSettings, version: i64) -> Result<PgStore> {
        let store = PgStore::connect(settings, Fence::unenforced())?;
        store.migrate(version.min(SCHEMA_VERSION))?;
        Ok(store)
    }

    fn connect(settings: &PgSettings, fence: Fence) -> Result<PgStore> {
        let connector = Connector::new(settings).map_err(|e| settings_error(settings, e))?;
        let client = connector.connect()?;
        Ok(PgStore {
            connector,
            conn: RefCell::new(Some(Conn {
                client,
                stmts: HashMap::new(),
            })),
            fence,
            purge_chunk: 5_000,
        })
    }

    /// The database, as errors show it (no password).
    pub fn path(&self) -> &Path {
        &self.connector.label
    }

    /// The fence this store's writes check.
    pub fn fence(&self) -> &Fence {
        &self.fence
    }

    /// The schema version of the database (0: none yet).
    pub fn schema_version(&self) -> Result<i64> {
        self.read("read schema version", schema_version)
    }

    fn migrate(&self, target: i64) -> Result<()> {
        let found = self.schema_version()?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                path: self.path().to_path_buf(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        if found >= target {
            return Ok(());
        }
        self.with_conn("apply migration", |conn| {
            let Conn { client, stmts } = conn;
            let mut tx = client.transaction()?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
            let mut db = Db {
                c: &mut tx,
                stmts: &mut HashMap::new(),
            };
            // Another process may have migrated while we waited for the lock.
            let now = schema_version(&mut db)?;
            for version in (now + 1)..=target {
                let index = usize::try_from(version - 1).unwrap_or(usize::MAX);
                let Some(sql) = MIGRATIONS.get(index) else {
                    break;
                };
                db.batch(sql)?;
                db.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, now())",
                    &[&version],
                )?;
            }
            tx.commit()?;
            // DDL may have changed what cached statements return.
            stmts.clear();
            Ok(())
        })
    }

    /// The connection slot, for an operation that drives the client on a thread of its own.
    pub(crate) fn conn_slot(&self) -> std::cell::RefMut<'_, Option<Conn>> {
        self.conn.borrow_mut()
    }

    /// Runs `f` on the connection, connecting first if there is none.
    fn with_conn<T: Send>(
        &self,
        op: &'static str,
        f: impl FnOnce(&mut Conn) -> Result<T, E> + Send,
    ) -> Result<T> {
        let mut guard = self.conn.borrow_mut();
        let slot: &mut Option<Conn> = &mut guard;
        let connector = &self.connector;
        blocking(move || {
            let conn = ensure(slot, connector)?;
            match f(conn) {
                Ok(v) => Ok(v),
                Err(e) => {
                    if e.lost_connection() {
                        *slot = None;
                    }
                    Err(e.into_store(&connector.label, op))
                }
            }
        })
    }

    /// A read: sent again once on a new connection when the server went away (it restarted).
    pub(crate) fn read<T: Send>(
        &self,
        op: &'static str,
        f: impl Fn(&mut Db<'_, Client>) -> Result<T, E> + Send + Sync,
    ) -> Result<T> {
        let mut guard = self.conn.borrow_mut();
        let slot: &mut Option<Conn> = &mut guard;
        let connector = &self.connector;
        blocking(move || {
            let mut attempt = 0;
            loop {
                attempt += 1;
                let conn = ensure(slot, connector)?;
                let result = f(&mut Db {
                    c: &mut conn.client,
                    stmts: &mut conn.stmts,
                });
                match result {
                    Ok(v) => return Ok(v),
                    Err(e) if e.lost_connection() => {
                        *slot = None;
                        if attempt >= 2 {
                            return Err(e.into_store(&connector.label, op));
                        }
                    }
                    Err(e) => return Err(e.into_store(&connector.label, op)),
                }
            }
        })
    }

    /// A write: one transaction that first checks the fence (this process still holds the
    /// writer lease: a fenced writer stores nothing). When the connection turns out to be gone
    /// before anything was sent, it is opened again once; an error later is returned (whether
    /// a commit cut short was applied cannot be known; the operation is not repeated).
    pub(crate) fn write<T: Send>(
        &self,
        op: &'static str,
        f: impl FnOnce(&mut Db<'_, Transaction<'_>>) -> Result<T, E> + Send,
    ) -> Result<T> {
        let token = self.fence.token(self.path(), op)?;
        let mut guard = self.conn.borrow_mut();
        let slot: &mut Option<Conn> = &mut guard;
        let connector = &self.connector;
        let label = connector.label.clone();
        blocking(move || {
            let mut f = Some(f);
            let mut attempt = 0;
            loop {
                attempt += 1;
                let step = {
                    let conn = ensure(slot, connector)?;
                    let Conn { client, stmts } = conn;
                    match client.transaction() {
                        Err(e) => Step::Failed(E::Pg(e), true),
                        Ok(mut tx) => {
                            let mut db = Db { c: &mut tx, stmts };
                            let checked = match &token {
                                Some(t) => check_fence(&mut db, t, &label, op),
                                None => Ok(()),
                            };
                            match (checked, f.take()) {
                                (Err(e), _) => Step::Failed(e, true),
                                (Ok(()), None) => Step::Failed(
                                    E::Store(StoreError::Invalid {
                                        path: label.clone(),
                                        message: format!("{op}: sent twice"),
                                    }),
                                    false,
                                ),
                                (Ok(()), Some(f)) => match f(&mut db) {
                                    Err(e) => Step::Failed(e, false),
                                    Ok(v) => match tx.commit() {
                                        Ok(()) => Step::Done(v),
                                        Err(e) => Step::Failed(E::Pg(e), false),
                                    },
                                },
                            }
                        }
                    }
                };
                match step {
                    Step::Done(v) => return Ok(v),
                    Step::Failed(e, before_anything) => {
                        let lost = e.lost_connection();
                        if lost {
                            *slot = None;
                        }
                        if lost && before_anything && attempt < 2 {
                            continue;
                        }
                        return Err(e.into_store(&label, op));
                    }
                }
            }
        })
    }

    /// Runs `DELETE … WHERE seq IN (SELECT … LIMIT $2)` with `$1 = key` until it deletes
    /// nothing, each chunk its own transaction; returns the rows deleted.
    pub(crate) fn purge_in_chunks(
        &self,
        sql: &'static str,
        key: i64,
        op: &'static str,
    ) -> Result<u64> {
        let chunk = self.purge_chunk;
        let mut total = 0;
        loop {
            let n = self.write(op, |db| db.execute(sql, &[&key, &chunk]))?;
            total += n;
            if n == 0 {
                return Ok(total);
            }
        }
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // The client blocks while it closes: not on an async runtime's thread.
        if let Some(conn) = self.conn.get_mut().take() {
            blocking(move || drop(conn));
        }
    }
}

/// The open connection, after connecting if there is none (or it was closed).
pub(crate) fn ensure<'a>(
    slot: &'a mut Option<Conn>,
    connector: &Connector,
) -> Result<&'a mut Conn> {
    if slot.as_ref().is_some_and(|c| c.client.is_closed()) {
        *slot = None;
    }
    if slot.is_none() {
        *slot = Some(Conn {
            client: connector.connect()?,
            stmts: HashMap::new(),
        });
    }
    slot.as_mut().ok_or_else(|| StoreError::Unavailable {
        path: connector.label.clone(),
        op: "connect",
        detail: "no connection".into(),
    })
}

/// How one try of a write transaction ended; `Failed(_, true)`: before anything was sent.
enum Step<T> {
    Done(T),
    Failed(E, bool),
}

fn schema_version<C: GenericClient>(db: &mut Db<'_, C>) -> Result<i64, E> {
    let exists: bool = db
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_tables
                            WHERE schemaname = current_schema() AND tablename = 'schema_migrations')",
            &[],
        )?
        .get(0);
    if !exists {
        db.batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version     BIGINT PRIMARY KEY,
                 applied_at  TIMESTAMPTZ NOT NULL
             )",
        )?;
        return Ok(0);
    }
    let v: Option<i64> = db
        .query_one("SELECT max(version) FROM schema_migrations", &[])?
        .get(0);
    Ok(v.unwrap_or(0))
}

fn settings_error(settings: &PgSettings, e: PgSettingsError) -> StoreError {
    StoreError::Invalid {
        path: settings.label(),
        message: e.to_string(),
    }
}

/// Column `i` of a row (a type mismatch is an error, never a panic).
pub(crate) fn get<'a, T: postgres::types::FromSql<'a>>(row: &'a Row, i: usize) -> Result<T, E> {
    row.try_get(i).map_err(E::Pg)
}

/// Column 0 of every row.
pub(crate) fn column<T: for<'a> postgres::types::FromSql<'a>>(rows: &[Row]) -> Result<Vec<T>, E> {
    rows.iter().map(|r| get(r, 0)).collect()
}
