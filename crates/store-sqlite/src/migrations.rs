//! Versioned schema migrations. Migration `n` (1-based) is `MIGRATIONS[n - 1]`; the version
//! reached is kept in SQLite's `PRAGMA user_version`, set in the same transaction as the
//! migration, so a crash mid-migration leaves the previous version intact.
//!
//! Rules: never edit a released migration; add a new one at the end.

/// One migration: SQL, or SQL followed by a step in Rust (for values SQL cannot compute).
#[derive(Clone, Copy)]
pub enum Migration {
    /// Statements run in the migration's transaction.
    Sql(&'static str),
    /// Statements, then the function, in the migration's transaction.
    SqlThen(
        &'static str,
        fn(&rusqlite::Transaction<'_>) -> rusqlite::Result<()>,
    ),
}

impl std::fmt::Debug for Migration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Migration::Sql(sql) | Migration::SqlThen(sql, _) => f.write_str(sql),
        }
    }
}

use Migration::{Sql, SqlThen};

/// The migrations, in order.
pub const MIGRATIONS: &[Migration] = &[
    // 1: the state of the job, cycles, logs, journal, joins, escrow, staged changes.
    Sql(r#"
    CREATE TABLE job (
        id         INTEGER PRIMARY KEY CHECK (id = 1),
        state      TEXT NOT NULL,
        watermark  TEXT
    );
    INSERT INTO job (id, state, watermark) VALUES (1, '"NotRun"', NULL);

    CREATE TABLE cycles (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        kind         TEXT NOT NULL,
        started_at   TEXT NOT NULL,
        finished_at  TEXT,
        counts       TEXT NOT NULL,
        status       TEXT NOT NULL
    );

    CREATE TABLE log_entries (
        seq        INTEGER PRIMARY KEY AUTOINCREMENT,
        id         TEXT NOT NULL UNIQUE,
        cycle      INTEGER NOT NULL REFERENCES cycles (id),
        time       INTEGER NOT NULL,
        status     TEXT NOT NULL CHECK (status IN ('success', 'skipped', 'failure', 'warning')),
        source_id  TEXT,
        smtp       TEXT,
        dn         TEXT,
        guid       TEXT,
        entry      TEXT NOT NULL
    );

    CREATE TABLE journal (
        seq          INTEGER PRIMARY KEY AUTOINCREMENT,
        cycle        INTEGER NOT NULL REFERENCES cycles (id),
        log_entry    TEXT NOT NULL,
        time         INTEGER NOT NULL,
        object_guid  TEXT NOT NULL,
        dn           TEXT NOT NULL,
        attribute    TEXT NOT NULL CHECK (attribute <> ''),
        record       TEXT NOT NULL
    );

    CREATE TABLE joins (
        cloud_id     TEXT PRIMARY KEY,
        object_guid  TEXT NOT NULL,
        dn           TEXT NOT NULL,
        updated_at   TEXT NOT NULL
    );

    CREATE TABLE escrow (
        cloud_id    TEXT PRIMARY KEY,
        next_retry  INTEGER NOT NULL,
        entry       TEXT NOT NULL
    );

    CREATE TABLE staged_cycles (
        cycle      INTEGER PRIMARY KEY REFERENCES cycles (id),
        staged_at  TEXT NOT NULL,
        decision   TEXT NOT NULL
    );

    CREATE TABLE staged_plans (
        cycle     INTEGER NOT NULL REFERENCES staged_cycles (cycle) ON DELETE CASCADE,
        seq       INTEGER NOT NULL,
        cloud_id  TEXT NOT NULL,
        plan      TEXT NOT NULL,
        PRIMARY KEY (cycle, seq)
    );
    "#),
    // 2: indexes for log queries (identity, cycle, time), journal look-ups for undo and
    // escrow due-time scans.
    Sql(r#"
    CREATE INDEX log_entries_cycle ON log_entries (cycle);
    CREATE INDEX log_entries_time ON log_entries (time);
    CREATE INDEX log_entries_source_id ON log_entries (source_id);
    CREATE INDEX log_entries_smtp ON log_entries (smtp);
    CREATE INDEX log_entries_dn ON log_entries (dn);
    CREATE INDEX log_entries_guid ON log_entries (guid);
    CREATE INDEX journal_cycle ON journal (cycle);
    CREATE INDEX journal_guid ON journal (object_guid);
    CREATE INDEX journal_dn ON journal (dn);
    CREATE INDEX journal_time ON journal (time);
    CREATE INDEX escrow_next_retry ON escrow (next_retry);
    "#),
    // 3: `exo-writeback logs --status failure` on a large log: newest failures without scanning
    // every success.
    Sql(r#"
    CREATE INDEX log_entries_status_time ON log_entries (status, time);
    "#),
    // 4: write-ahead intents. A batch's planned modifies are recorded (one transaction) before
    // the first of them is sent, and deleted in the transaction that records their outcomes;
    // rows left by a killed process are reconciled by the next cycle (see `WriteIntent`).
    Sql(r#"
    CREATE TABLE intents (
        seq          INTEGER PRIMARY KEY AUTOINCREMENT,
        id           TEXT NOT NULL UNIQUE,
        cycle        INTEGER NOT NULL REFERENCES cycles (id),
        cloud_id     TEXT NOT NULL,
        object_guid  TEXT NOT NULL,
        dn           TEXT NOT NULL,
        intent       TEXT NOT NULL
    );
    "#),
    // 5: an administrator's decisions and a quieter log (issue 18). Log entries may have the
    // status `held`; they keep the UserPrincipalName (`logs --identity <UPN>`) and whether the
    // object was already in sync (hidden from the default listing, filled in here for the rows
    // already stored). SQLite cannot change a CHECK constraint, so the table is rebuilt with
    // its rows and their sequence numbers. Pinned attributes (undo, reject) and a pause.
    Sql(r#"
    CREATE TABLE log_entries_v5 (
        seq        INTEGER PRIMARY KEY AUTOINCREMENT,
        id         TEXT NOT NULL UNIQUE,
        cycle      INTEGER NOT NULL REFERENCES cycles (id),
        time       INTEGER NOT NULL,
        status     TEXT NOT NULL
                   CHECK (status IN ('success', 'skipped', 'failure', 'warning', 'held')),
        source_id  TEXT,
        smtp       TEXT,
        upn        TEXT,
        dn         TEXT,
        guid       TEXT,
        in_sync    INTEGER NOT NULL DEFAULT 0 CHECK (in_sync IN (0, 1)),
        entry      TEXT NOT NULL
    );
    INSERT INTO log_entries_v5
        (seq, id, cycle, time, status, source_id, smtp, upn, dn, guid, in_sync, entry)
    SELECT seq, id, cycle, time, status, source_id, smtp, NULL, dn, guid,
           CASE WHEN status = 'success' AND json_extract(entry, '$.action') = 'Other'
                THEN 1 ELSE 0 END,
           entry
    FROM log_entries;
    DROP TABLE log_entries;
    ALTER TABLE log_entries_v5 RENAME TO log_entries;
    CREATE INDEX log_entries_cycle ON log_entries (cycle);
    CREATE INDEX log_entries_time ON log_entries (time);
    CREATE INDEX log_entries_source_id ON log_entries (source_id);
    CREATE INDEX log_entries_smtp ON log_entries (smtp);
    CREATE INDEX log_entries_upn ON log_entries (upn);
    CREATE INDEX log_entries_dn ON log_entries (dn);
    CREATE INDEX log_entries_guid ON log_entries (guid);
    CREATE INDEX log_entries_status_time ON log_entries (status, time);

    CREATE TABLE pins (
        object_guid  TEXT NOT NULL,
        attribute    TEXT NOT NULL,
        pin          TEXT NOT NULL,
        PRIMARY KEY (object_guid, attribute)
    );

    ALTER TABLE job ADD COLUMN pause TEXT;
    "#),
    // 6: a lean log (issue 15). The five identity indexes of `log_entries` and the two of
    // `journal` took random keys: past the page cache every insert dirtied a page of each, the
    // bulk of the ≈ 117 KB written per object at 1M. Identities now go, hashed, into
    // `identity_keys` in sorted bulk merges (see `keys.rs`); a journal is found through one
    // key per outcome and the outcome's `log_entry` (log entry ids are now time-ordered
    // UUIDv7, so that index appends).
    SqlThen(
        r#"
    DROP INDEX log_entries_source_id;
    DROP INDEX log_entries_smtp;
    DROP INDEX log_entries_upn;
    DROP INDEX log_entries_dn;
    DROP INDEX log_entries_guid;
    DROP INDEX journal_guid;
    DROP INDEX journal_dn;
    CREATE INDEX journal_log_entry ON journal (log_entry);
    CREATE TABLE identity_keys (
        h     INTEGER NOT NULL,
        kind  INTEGER NOT NULL,
        seq   INTEGER NOT NULL,
        PRIMARY KEY (h, kind, seq)
    ) WITHOUT ROWID;
    CREATE TABLE identity_keys_new (
        h     INTEGER NOT NULL,
        kind  INTEGER NOT NULL,
        seq   INTEGER NOT NULL
    );
    "#,
        crate::keys::rebuild,
    ),
    // 7: joins appended, merged in bulk (issue 15). The key of `joins` is the cloud id, a
    // random value: an upsert per object dirtied a random page of its index in every
    // transaction of outcomes (6.9 KB written per object of 13.1). A cycle appends its join
    // changes here (a NULL objectGUID removes the join) and they are merged into `joins`,
    // sorted, in bulk (see `joins.rs`). A log entry's modified values are stored once, in the
    // journal, where they are the same (`modified_in_journal`, see `modified.rs`; NULL: the
    // entry holds its values, as every entry written before).
    Sql(r#"
    ALTER TABLE log_entries ADD COLUMN modified_in_journal TEXT;
    CREATE TABLE joins_new (
        cloud_id     TEXT NOT NULL,
        object_guid  TEXT,
        dn           TEXT,
        updated_at   TEXT
    );
    "#),
    // 8: write-ahead intents one row per batch, the journal one row per modify (issue 15).
    // One row per intent left most of each leaf page empty: 3.9 KB of WAL per object for an
    // intent of 1.8 KB; a batch's JSON now fills overflow pages (see `intents.rs`). A journal
    // row per attribute repeated its columns and index entries per record; the records of one
    // modify now share a row, `records` counts them (1 in every row before, see `records.rs`).
    SqlThen(
        r#"
    ALTER TABLE journal ADD COLUMN records INTEGER NOT NULL DEFAULT 1;
    CREATE TABLE intent_batches (
        seq      INTEGER PRIMARY KEY,
        cycle    INTEGER NOT NULL REFERENCES cycles (id),
        ids      BLOB NOT NULL,
        intents  BLOB NOT NULL
    );
    "#,
        crate::intents::migrate,
    ),
    // 9: in-sync log entries stored compactly (issue 15). What the in-sync entries of a cycle
    // share (action, status, reason, the steps' statuses, the scoping and export texts) is
    // stored once per cycle in `log_shapes`; such an entry's row names its shape's hash in
    // `shape` and keeps only the object's own part in `entry` (see `compact.rs`). NULL: the
    // entry is whole, as every entry written before.
    Sql(r#"
    ALTER TABLE log_entries ADD COLUMN shape INTEGER;
    CREATE TABLE log_shapes (
        cycle  INTEGER NOT NULL,
        h      INTEGER NOT NULL,
        text   TEXT NOT NULL,
        PRIMARY KEY (cycle, h)
    ) WITHOUT ROWID;
    "#),
    // 10: the AD schema kept between processes (`schema_cache.rs`): each `sync` is a process of
    // its own, and read the whole schema from the DC; it is read again only when the schema NC
    // head's schemaInfo differs from the one kept here. One row; a cache, not copied.
    Sql(r#"
    CREATE TABLE schema_cache (
        id           INTEGER PRIMARY KEY CHECK (id = 1),
        schema_info  BLOB NOT NULL,
        attributes   TEXT NOT NULL
    );
    "#),
    // 11: a journal's identity keys wait apart from the log entries' (`keys.rs`): a cycle
    // looks up the journal of each object it plans a change for, and that look-up scanned
    // every unmerged key, the keys of the log entries the cycle recorded meanwhile too. The
    // journal keys waiting in `identity_keys_new` are merged.
    SqlThen(
        r#"
    CREATE TABLE journal_keys_new (
        h    INTEGER NOT NULL,
        seq  INTEGER NOT NULL
    );
    "#,
        crate::keys::migrate_journal_keys_apart,
    ),
];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;
