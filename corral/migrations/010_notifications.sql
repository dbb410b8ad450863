-- 010 notifications: in-app notifications and delivery state of the other channels.

CREATE TABLE notifications (
    id                UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id           UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    notification_type TEXT NOT NULL,                    -- 'build_failed', 'mr_created', 'alert_firing', ...
    subject           TEXT NOT NULL,
    body              TEXT,
    channel           TEXT NOT NULL DEFAULT 'in_app'
                      CHECK (channel IN ('in_app','email','webhook')),
    status            TEXT NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending','sent','read','failed')),
    ref_type          TEXT,                             -- 'pipeline', 'mr', 'session', 'alert'
    ref_id            UUID,                             -- id of the entity (polymorphic: no FK)
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_notifications_user_status ON notifications(user_id, status);
CREATE INDEX idx_notifications_user_created ON notifications(user_id, created_at DESC);
