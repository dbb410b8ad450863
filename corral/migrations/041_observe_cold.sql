-- 041 observability cold tier: the manifest of Parquet files and the trace/session lookup index.
--
-- A rotation writes one object with a deterministic key, then records it here and deletes the
-- hot rows in ONE transaction: a crash before that commit leaves the hot rows (the next run
-- rewrites the same key), a crash after it leaves nothing to redo. Queries read only files
-- listed here, so an orphan object from an interrupted run is never read twice.

CREATE TABLE observe_cold_files (
    id          UUID PRIMARY KEY,
    signal      TEXT NOT NULL CHECK (signal IN ('logs', 'spans', 'points')),
    day         DATE NOT NULL,
    project_id  UUID,
    key         TEXT NOT NULL UNIQUE,
    rows        INTEGER NOT NULL,
    min_ts      TIMESTAMPTZ NOT NULL,
    max_ts      TIMESTAMPTZ NOT NULL,
    bytes       BIGINT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_observe_cold_files_window ON observe_cold_files (signal, day, project_id);

-- Which files hold a given trace id or session id (so a lookup never scans every file).
CREATE TABLE observe_cold_keys (
    kind     TEXT NOT NULL,                       -- 't' trace id, 's' session id
    value    TEXT NOT NULL,
    file_id  UUID NOT NULL REFERENCES observe_cold_files(id) ON DELETE CASCADE
);
CREATE INDEX idx_observe_cold_keys_value ON observe_cold_keys (value, kind);
CREATE INDEX idx_observe_cold_keys_file ON observe_cold_keys (file_id);
