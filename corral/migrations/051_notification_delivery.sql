-- 051 notification delivery: dedupe keys, retry state, targets, and per-user preferences.

ALTER TABLE notifications
    ADD COLUMN project_id      UUID,                    -- no FK: a notification outlives its project
    ADD COLUMN event_id        UUID,                    -- the outbox event it came from
    ADD COLUMN dedupe_key      TEXT,
    ADD COLUMN target          TEXT,                    -- email address or webhook URL, fixed when planned
    ADD COLUMN html_body       TEXT,
    ADD COLUMN payload         JSONB NOT NULL DEFAULT '{}',
    ADD COLUMN attempts        INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN next_attempt_at TIMESTAMPTZ,
    ADD COLUMN last_error      TEXT,
    ADD COLUMN sent_at         TIMESTAMPTZ,
    ADD COLUMN read_at         TIMESTAMPTZ;
-- a redelivered outbox event notifies nobody twice on the same channel
CREATE UNIQUE INDEX idx_notifications_dedupe ON notifications(user_id, channel, dedupe_key)
    WHERE dedupe_key IS NOT NULL;
-- the dispatcher's claim query
CREATE INDEX idx_notifications_due ON notifications(next_attempt_at) WHERE status = 'pending';
-- the per-user rate limit counts recent notifications per channel
CREATE INDEX idx_notifications_user_channel_created ON notifications(user_id, channel, created_at);

CREATE TABLE notification_preferences (
    user_id     UUID PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    events      JSONB NOT NULL DEFAULT '{}',            -- event type -> ["in_app","email","webhook"]
    webhook_url TEXT,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
