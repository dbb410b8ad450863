-- 040 observability hot tier: the design's telemetry tables reshaped for ingest throughput.
--
-- Measured on the 2-core reference machine (notes/LIMITS.md): COPY into a table with a random
-- uuid PK and 5 btree indexes runs at ~47k rows/s, with no index at ~138k rows/s. So:
--   * time-partitioned by day (cheap retention: rotation empties a day, then the partition is dropped);
--   * no primary key: ids are application-made, time-ordered 64-bit integers that only break
--     ties for cursor pagination (a retried OTLP request may store a record twice, as every
--     OTLP backend does);
--   * trace ids as uuid (16 bytes, binary compare) instead of 32-char text;
--   * BRIN on time, plus btrees only for what the query API needs to be fast:
--     trace id, session id (partial: most rows have none) and project + time (newest first);
--   * no foreign keys: telemetry may name projects/sessions Corral does not know (yet), and a
--     per-row FK check would cost more than the insert;
--   * no trigram index for full text (it halves ingest throughput); full-text search scans
--     inside the project/time window, the cold tier keeps everything older.
-- The design's `traces` summary table (008) is left as it is and not filled: a trace is the set of its
-- spans, and keeping a per-trace row current would cost an upsert per batch.

DROP TABLE IF EXISTS log_entries CASCADE;
DROP TABLE IF EXISTS spans CASCADE;
DROP TABLE IF EXISTS metric_samples CASCADE;
DROP TABLE IF EXISTS metric_series CASCADE;

CREATE TABLE log_entries (
    id          BIGINT      NOT NULL,
    ts          TIMESTAMPTZ NOT NULL,
    trace_id    UUID,
    span_id     TEXT,
    project_id  UUID,
    session_id  TEXT,
    user_id     UUID,
    service     TEXT        NOT NULL,
    level       TEXT        NOT NULL,
    message     TEXT        NOT NULL,
    attributes  JSONB       NOT NULL DEFAULT '{}'
) PARTITION BY RANGE (ts);
CREATE INDEX idx_log_entries_ts ON log_entries USING brin (ts) WITH (pages_per_range = 32);
CREATE INDEX idx_log_entries_trace ON log_entries (trace_id) WHERE trace_id IS NOT NULL;
CREATE INDEX idx_log_entries_session ON log_entries (session_id, ts) WHERE session_id IS NOT NULL;
CREATE INDEX idx_log_entries_project ON log_entries (project_id, ts);

CREATE TABLE spans (
    id             BIGINT      NOT NULL,
    ts             TIMESTAMPTZ NOT NULL,            -- start time
    trace_id       UUID        NOT NULL,
    span_id        TEXT        NOT NULL,
    parent_span_id TEXT,
    project_id     UUID,
    session_id     TEXT,
    user_id        UUID,
    service        TEXT        NOT NULL,
    name           TEXT        NOT NULL,
    kind           TEXT        NOT NULL DEFAULT 'internal',
    status         TEXT        NOT NULL DEFAULT 'unset',
    duration_ms    DOUBLE PRECISION NOT NULL DEFAULT 0,
    attributes     JSONB       NOT NULL DEFAULT '{}',
    events         JSONB       NOT NULL DEFAULT '[]'
) PARTITION BY RANGE (ts);
CREATE INDEX idx_spans_ts ON spans USING brin (ts) WITH (pages_per_range = 32);
CREATE INDEX idx_spans_trace ON spans (trace_id);
CREATE INDEX idx_spans_session ON spans (session_id, ts) WHERE session_id IS NOT NULL;

-- The series catalog: ids are derived from (project, service, session, name, labels) by the
-- receiver, so ingest never looks a series up.
CREATE TABLE metric_series (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL,
    labels      JSONB NOT NULL DEFAULT '{}',
    metric_type TEXT NOT NULL DEFAULT 'gauge' CHECK (metric_type IN ('gauge','counter','histogram','summary')),
    unit        TEXT,
    project_id  UUID,
    service     TEXT NOT NULL,
    session_id  TEXT,
    user_id     UUID,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_metric_series_name ON metric_series (name, project_id);

CREATE TABLE metric_samples (
    series_id   UUID        NOT NULL,
    ts          TIMESTAMPTZ NOT NULL,
    value       DOUBLE PRECISION NOT NULL,
    project_id  UUID,
    trace_id    UUID,                               -- from the point's first exemplar
    span_id     TEXT
) PARTITION BY RANGE (ts);
CREATE INDEX idx_metric_samples_series ON metric_samples (series_id, ts);

-- Day partitions (plus a default one for timestamps far in the past or future).
CREATE FUNCTION observe_ensure_partitions(first_day DATE, last_day DATE) RETURNS INTEGER
LANGUAGE plpgsql AS $$
DECLARE
    t TEXT;
    d DATE;
    made INTEGER := 0;
BEGIN
    FOREACH t IN ARRAY ARRAY['log_entries', 'spans', 'metric_samples'] LOOP
        IF to_regclass(t || '_default') IS NULL THEN
            EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT', t || '_default', t);
        END IF;
        d := first_day;
        WHILE d <= last_day LOOP
            IF to_regclass(t || '_p' || to_char(d, 'YYYYMMDD')) IS NULL THEN
                BEGIN
                    EXECUTE format(
                        'CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                        t || '_p' || to_char(d, 'YYYYMMDD'), t,
                        (d::timestamp AT TIME ZONE 'UTC'), ((d + 1)::timestamp AT TIME ZONE 'UTC'));
                    made := made + 1;
                EXCEPTION WHEN others THEN
                    -- rows for that day already sit in the default partition (or another
                    -- process made it first): leave them there, queries read both.
                    NULL;
                END;
            END IF;
            d := d + 1;
        END LOOP;
    END LOOP;
    RETURN made;
END;
$$;

SELECT observe_ensure_partitions(current_date - 2, current_date + 3);
