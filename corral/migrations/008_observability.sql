-- 008 observability: the hot tier (traces, spans, logs, metrics) and alerts, in the design's shape.
--
-- The observability work reshapes the hot tables (time partitioning, lean indexes, cold tier) in
-- its own later migration (040-049); no other table references traces, spans, log_entries or
-- metric_samples, so they can be replaced freely.
-- Deviation from the design: the correlation foreign keys say what happens on delete (the design
-- left NO ACTION, which would make deleting a project or user fail once telemetry exists):
-- telemetry of a deleted project goes with it, a deleted user or session is set to NULL.

CREATE TABLE traces (
    id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    trace_id    TEXT NOT NULL UNIQUE,                   -- W3C trace id (32 hex chars)
    project_id  UUID REFERENCES projects(id) ON DELETE CASCADE,
    session_id  UUID REFERENCES agent_sessions(id) ON DELETE SET NULL,
    user_id     UUID REFERENCES users(id) ON DELETE SET NULL,
    root_span   TEXT NOT NULL,                          -- name of the root span
    service     TEXT NOT NULL,                          -- originating service / agent
    status      TEXT NOT NULL DEFAULT 'ok' CHECK (status IN ('ok','error','unset')),
    duration_ms INTEGER,
    started_at  TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE spans (
    id             UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    trace_id       TEXT NOT NULL,                       -- traces.trace_id; no FK: spans may arrive first
    span_id        TEXT NOT NULL UNIQUE,                -- 16 hex chars
    parent_span_id TEXT,                                -- NULL for the root span
    name           TEXT NOT NULL,                       -- 'tool_call:bash', 'http:POST /api/apps'
    service        TEXT NOT NULL,
    kind           TEXT NOT NULL DEFAULT 'internal'
                   CHECK (kind IN ('internal','server','client','producer','consumer')),
    status         TEXT NOT NULL DEFAULT 'ok' CHECK (status IN ('ok','error','unset')),
    attributes     JSONB,
    events         JSONB,                               -- span events (exceptions, annotations)
    duration_ms    INTEGER,
    started_at     TIMESTAMPTZ NOT NULL,
    finished_at    TIMESTAMPTZ
);
CREATE INDEX idx_spans_trace ON spans(trace_id);

-- structured log entries (hot storage; older rows rotate to the cold tier)
CREATE TABLE log_entries (
    id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    timestamp   TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- correlation envelope
    trace_id    TEXT,
    span_id     TEXT,
    project_id  UUID REFERENCES projects(id) ON DELETE CASCADE,
    session_id  UUID REFERENCES agent_sessions(id) ON DELETE SET NULL,
    user_id     UUID REFERENCES users(id) ON DELETE SET NULL,
    -- content
    service     TEXT NOT NULL,                          -- 'platform', 'agent-session-xyz', 'pipeline-abc'
    level       TEXT NOT NULL DEFAULT 'info'
                CHECK (level IN ('trace','debug','info','warn','error','fatal')),
    message     TEXT NOT NULL,
    attributes  JSONB,
    -- source
    namespace   TEXT,
    pod         TEXT,
    container   TEXT
);
CREATE INDEX idx_log_ts ON log_entries(timestamp DESC);
CREATE INDEX idx_log_project ON log_entries(project_id, timestamp DESC);
CREATE INDEX idx_log_session ON log_entries(session_id, timestamp DESC);
CREATE INDEX idx_log_trace ON log_entries(trace_id);
CREATE INDEX idx_log_level ON log_entries(level, timestamp DESC);

-- metric series catalog
CREATE TABLE metric_series (
    id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name        TEXT NOT NULL,                          -- 'http_requests_total', ...
    labels      JSONB NOT NULL DEFAULT '{}',
    metric_type TEXT NOT NULL DEFAULT 'gauge'
                CHECK (metric_type IN ('gauge','counter','histogram','summary')),
    unit        TEXT,
    project_id  UUID REFERENCES projects(id) ON DELETE CASCADE,   -- NULL = platform-level metric
    last_value  DOUBLE PRECISION,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (name, labels)
);
CREATE TRIGGER trg_metric_series_updated_at BEFORE UPDATE ON metric_series
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- metric samples (hot buffer; flushed to the cold tier)
CREATE TABLE metric_samples (
    series_id   UUID NOT NULL REFERENCES metric_series(id) ON DELETE CASCADE,
    timestamp   TIMESTAMPTZ NOT NULL,
    value       DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (series_id, timestamp)
);

-- threshold rules evaluated against metrics / logs
CREATE TABLE alert_rules (
    id              UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name            TEXT NOT NULL,
    description     TEXT,
    query           TEXT NOT NULL,                      -- metric query expression or log filter
    condition       TEXT NOT NULL,                      -- 'gt', 'lt', 'eq', 'absent'
    threshold       DOUBLE PRECISION,
    for_seconds     INTEGER NOT NULL DEFAULT 60,        -- how long the condition must hold
    severity        TEXT NOT NULL DEFAULT 'warning'
                    CHECK (severity IN ('info','warning','critical')),
    notify_channels TEXT[] NOT NULL DEFAULT '{}',       -- {'email','webhook','in_app'}
    project_id      UUID REFERENCES projects(id) ON DELETE CASCADE,  -- NULL = platform-wide
    enabled         BOOLEAN NOT NULL DEFAULT true,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE alert_events (
    id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    rule_id     UUID NOT NULL REFERENCES alert_rules(id) ON DELETE CASCADE,
    status      TEXT NOT NULL CHECK (status IN ('firing','resolved')),
    value       DOUBLE PRECISION,
    message     TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    resolved_at TIMESTAMPTZ
);
CREATE INDEX idx_alert_events_status ON alert_events(status, created_at DESC);
CREATE INDEX idx_alert_events_rule ON alert_events(rule_id, created_at DESC);
