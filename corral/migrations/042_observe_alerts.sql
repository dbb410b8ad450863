-- 042 alerts: evaluator state on the design's alert_rules, project and rule name on events.

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
