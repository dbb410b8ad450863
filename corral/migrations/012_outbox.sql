-- 012 outbox: events written in the same transaction as the change that caused them, delivered
-- later by a relay loop (claim with FOR UPDATE SKIP LOCKED, oldest first by uuid7 id).
-- project_id has no FK: an event about a project must still be delivered after its deletion.

CREATE TABLE outbox (
    id           UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    topic        TEXT NOT NULL,                         -- 'push', 'mr_merged', 'build_failed', ...
    payload      JSONB NOT NULL DEFAULT '{}',
    project_id   UUID,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    processed_at TIMESTAMPTZ
);
-- the relay's claim query reads only this small index
CREATE INDEX idx_outbox_unprocessed ON outbox(id) WHERE processed_at IS NULL;
CREATE INDEX idx_outbox_processed_at ON outbox(processed_at) WHERE processed_at IS NOT NULL;
