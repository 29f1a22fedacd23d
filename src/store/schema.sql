-- tocsin's durable state, schema version 2 (sqlite.rs migrates older databases).
--
-- Kept portable so a PostgreSQL backend is a translation: instants are INTEGER
-- milliseconds since the Unix epoch (UTC), structured values are TEXT holding JSON,
-- upserts are `INSERT ... ON CONFLICT (...) DO UPDATE`. The only SQLite-specific
-- piece is `events.id`, which SQLite fills from the rowid (PostgreSQL: an identity
-- column). Incident and page ids are allocated by the engine, never by the database.

CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS incidents (
    id          INTEGER PRIMARY KEY,
    source      TEXT NOT NULL,
    group_key   TEXT NOT NULL,
    title       TEXT NOT NULL,
    labels      TEXT NOT NULL,       -- JSON object
    created_at  INTEGER NOT NULL,
    policy_name TEXT NOT NULL,
    policy      TEXT NOT NULL,       -- JSON PolicySnapshot
    state       TEXT NOT NULL,       -- triggered | acknowledged | resolved
    updated_at  INTEGER NOT NULL,
    resolved_at INTEGER,
    acked_by    TEXT,
    acked_at    INTEGER,
    wake_at     INTEGER,
    escalation  TEXT NOT NULL        -- JSON Escalation
);
-- Restore reads open incidents by state and recently resolved ones by resolved_at.
CREATE INDEX IF NOT EXISTS incidents_state ON incidents (state, resolved_at);

CREATE TABLE IF NOT EXISTS alerts (
    incident_id   INTEGER NOT NULL,
    fingerprint   TEXT NOT NULL,
    status        TEXT NOT NULL,     -- firing | resolved
    starts_at     INTEGER NOT NULL,
    ends_at       INTEGER,
    labels        TEXT NOT NULL,     -- JSON object
    annotations   TEXT NOT NULL,     -- JSON object
    generator_url TEXT NOT NULL,
    received_at   INTEGER NOT NULL,
    PRIMARY KEY (incident_id, fingerprint)
) WITHOUT ROWID;                     -- one b-tree per alert instead of two (PostgreSQL: drop the clause)

CREATE TABLE IF NOT EXISTS events (
    id          INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    actor       TEXT NOT NULL,
    detail      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_incident ON events (incident_id);

CREATE TABLE IF NOT EXISTS pages (
    id          INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    step        INTEGER NOT NULL,
    cycle       INTEGER NOT NULL,
    target      TEXT NOT NULL,
    contact     TEXT,
    notifier    TEXT NOT NULL,
    method      INTEGER,
    to_addr     TEXT,
    topic       TEXT,
    late_by_ms  INTEGER,
    reason      TEXT NOT NULL,
    status      TEXT NOT NULL,       -- pending | delivered | failed
    attempts    INTEGER NOT NULL,
    error       TEXT,
    done_at     INTEGER
);
CREATE INDEX IF NOT EXISTS pages_incident ON pages (incident_id);
CREATE INDEX IF NOT EXISTS pages_status ON pages (status);
