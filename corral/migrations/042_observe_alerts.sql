-- 042 alerts: evaluator state on the design's alert_rules, project and rule name on events.

CREATE TABLE IF NOT EXISTS alert_rules (
    id              UUID PRIMARY KEY,
    name            TEXT NOT NULL,
    description     TEXT,
    query           TEXT NOT NULL,
    condition       TEXT NOT NULL,
    threshold       DOUBLE PRECISION,
    for_seconds     INTEGER NOT NULL DEFAULT 60,
    severity        TEXT NOT NULL DEFAULT 'warning' CHECK (severity IN ('info','warning','critical')),
    notify_channels TEXT[] NOT NULL DEFAULT '{}',
    project_id      UUID,
    enabled         BOOLEAN NOT NULL DEFAULT true,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS alert_events (
    id          UUID PRIMARY KEY,
    rule_id     UUID NOT NULL REFERENCES alert_rules(id) ON DELETE CASCADE,
    status      TEXT NOT NULL CHECK (status IN ('firing','resolved')),
    value       DOUBLE PRECISION,
    message     TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    resolved_at TIMESTAMPTZ
);

ALTER TABLE alert_rules
    ADD COLUMN IF NOT EXISTS created_by UUID,
    ADD COLUMN IF NOT EXISTS pending_since TIMESTAMPTZ,        -- condition true since (for_seconds)
    ADD COLUMN IF NOT EXISTS firing_event_id UUID,            -- the open 'firing' event, if any
    ADD COLUMN IF NOT EXISTS updated_at TIMESTAMPTZ NOT NULL DEFAULT now();
ALTER TABLE alert_rules DROP CONSTRAINT IF EXISTS alert_rules_condition_check;
ALTER TABLE alert_rules ADD CONSTRAINT alert_rules_condition_check CHECK (condition IN ('gt','lt','eq','absent'));
ALTER TABLE alert_events ADD COLUMN IF NOT EXISTS project_id UUID;
CREATE INDEX IF NOT EXISTS idx_alert_rules_project ON alert_rules (project_id);
CREATE INDEX IF NOT EXISTS idx_alert_events_project ON alert_events (project_id, created_at DESC);
