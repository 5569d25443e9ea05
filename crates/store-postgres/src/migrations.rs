//! Versioned schema migrations. Migration `n` (1-based) is `MIGRATIONS[n - 1]`; each applied
//! version is a row of `schema_migrations`, inserted in the migration's transaction (under an
//! advisory lock: agents starting together migrate once), so a failed migration leaves the
//! previous version intact.
//!
//! Rules: never edit a released migration; add a new one at the end.

/// The migrations, in order.
pub const MIGRATIONS: &[&str] = &[
    // 1: the state, as the SQLite backend's schema version 5 holds it. Text keys compare
    // byte-wise (`COLLATE "C"`), as SQLite does, whatever the database's collation: paging
    // and listings come out in the same order on both backends.
    r#"
    CREATE TABLE job (
        id         INTEGER PRIMARY KEY CHECK (id = 1),
        state      TEXT NOT NULL,
        watermark  TEXT,
        pause      TEXT
    );
    INSERT INTO job (id, state, watermark, pause) VALUES (1, '"NotRun"', NULL, NULL);

    CREATE TABLE cycles (
        id           BIGSERIAL PRIMARY KEY,
        kind         TEXT NOT NULL,
        started_at   TEXT NOT NULL,
        finished_at  TEXT,
        counts       TEXT NOT NULL,
        status       TEXT NOT NULL
    );

    CREATE TABLE log_entries (
        seq        BIGSERIAL PRIMARY KEY,
        id         TEXT NOT NULL UNIQUE,
        cycle      BIGINT NOT NULL REFERENCES cycles (id),
        time       BIGINT NOT NULL,
        status     TEXT NOT NULL
                   CHECK (status IN ('success', 'skipped', 'failure', 'warning', 'held')),
        source_id  TEXT,
        smtp       TEXT,
        upn        TEXT,
        dn         TEXT,
        guid       TEXT,
        in_sync    BOOLEAN NOT NULL DEFAULT false,
        entry      TEXT NOT NULL
    );
    CREATE INDEX log_entries_cycle ON log_entries (cycle);
    CREATE INDEX log_entries_time ON log_entries (time);
    CREATE INDEX log_entries_source_id ON log_entries (source_id);
    CREATE INDEX log_entries_smtp ON log_entries (smtp);
    CREATE INDEX log_entries_upn ON log_entries (upn);
    CREATE INDEX log_entries_dn ON log_entries (dn);
    CREATE INDEX log_entries_guid ON log_entries (guid);
    CREATE INDEX log_entries_status_time ON log_entries (status, time);

    CREATE TABLE journal (
        seq          BIGSERIAL PRIMARY KEY,
        cycle        BIGINT NOT NULL REFERENCES cycles (id),
        log_entry    TEXT NOT NULL,
        time         BIGINT NOT NULL,
        object_guid  TEXT NOT NULL,
        dn           TEXT NOT NULL,
        attribute    TEXT NOT NULL CHECK (attribute <> ''),
        record       TEXT NOT NULL
    );
    CREATE INDEX journal_cycle ON journal (cycle);
    CREATE INDEX journal_guid ON journal (object_guid);
    CREATE INDEX journal_dn ON journal (dn);
    CREATE INDEX journal_time ON journal (time);

    CREATE TABLE joins (
        cloud_id     TEXT COLLATE "C" PRIMARY KEY,
        object_guid  TEXT NOT NULL,
        dn           TEXT NOT NULL,
        updated_at   TEXT NOT NULL
    );

    CREATE TABLE escrow (
        cloud_id    TEXT COLLATE "C" PRIMARY KEY,
        next_retry  BIGINT NOT NULL,
        entry       TEXT NOT NULL
    );
    CREATE INDEX escrow_next_retry ON escrow (next_retry);

    CREATE TABLE staged_cycles (
        cycle      BIGINT PRIMARY KEY REFERENCES cycles (id),
        staged_at  TEXT NOT NULL,
        decision   TEXT NOT NULL
    );

    CREATE TABLE staged_plans (
        cycle     BIGINT NOT NULL REFERENCES staged_cycles (cycle) ON DELETE CASCADE,
        seq       BIGINT NOT NULL,
        cloud_id  TEXT NOT NULL,
        plan      TEXT NOT NULL,
        PRIMARY KEY (cycle, seq)
    );

    CREATE TABLE intents (
        seq          BIGSERIAL PRIMARY KEY,
        id           TEXT NOT NULL UNIQUE,
        cycle        BIGINT NOT NULL REFERENCES cycles (id),
        cloud_id     TEXT NOT NULL,
        object_guid  TEXT NOT NULL,
        dn           TEXT NOT NULL,
        intent       TEXT NOT NULL
    );

    CREATE TABLE pins (
        object_guid  TEXT COLLATE "C" NOT NULL,
        attribute    TEXT COLLATE "C" NOT NULL,
        pin          TEXT NOT NULL,
        PRIMARY KEY (object_guid, attribute)
    );
    "#,
    // 2: several agents on one state. `leases`: `leader` (which agent runs cycles) and `writer`
    // (who writes the state and AD now: a cycle, approve, undo …); each acquisition increments
    // the row's epoch, the fence every write checks. Times are the database's clock, so agents
    // on servers whose clocks differ agree on when a lease lapses. `agents`: every running
    // agent, seen at each renewal (the standbys `status` lists). `takeovers`: each change of
    // leader, and why.
    r#"
    CREATE TABLE leases (
        name         TEXT PRIMARY KEY CHECK (name IN ('leader', 'writer')),
        holder       UUID,
        epoch        BIGINT NOT NULL DEFAULT 0,
        expires_at   TIMESTAMPTZ,
        since        TIMESTAMPTZ,
        host         TEXT,
        pid          INTEGER,
        command      TEXT,
        released_at  TIMESTAMPTZ
    );
    INSERT INTO leases (name) VALUES ('leader'), ('writer');

    CREATE TABLE agents (
        id          UUID PRIMARY KEY,
        host        TEXT NOT NULL,
        pid         INTEGER NOT NULL,
        command     TEXT NOT NULL,
        started_at  TIMESTAMPTZ NOT NULL,
        seen_at     TIMESTAMPTZ NOT NULL
    );

    CREATE TABLE takeovers (
        seq            BIGSERIAL PRIMARY KEY,
        lease          TEXT NOT NULL,
        epoch          BIGINT NOT NULL,
        at             TIMESTAMPTZ NOT NULL,
        holder         UUID NOT NULL,
        host           TEXT NOT NULL,
        pid            INTEGER NOT NULL,
        command        TEXT NOT NULL,
        previous_host  TEXT,
        previous_pid   INTEGER,
        reason         TEXT NOT NULL
    );
    "#,
    // 3: the AD schema kept between processes (`schema_cache.rs`): read again only when the
    // schema NC head's schemaInfo differs from the one kept here. One row; a cache, not copied.
    r#"
    CREATE TABLE schema_cache (
        id           SMALLINT PRIMARY KEY CHECK (id = 1),
        schema_info  BYTEA NOT NULL,
        attributes   TEXT NOT NULL
    );
    "#,
];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;
