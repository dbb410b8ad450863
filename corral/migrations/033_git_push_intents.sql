-- 033 pushes announced before git may move a ref (corral.core.git.recovery).
--
-- The receive-pack route writes an intent (committed) before git reads the ref update commands, and deletes
-- it in the transaction that records the push (event + audit). A process that dies between git moving the
-- refs and that transaction leaves the intent behind; recovery compares the refs with it and records what
-- moved, so an acknowledged or half-answered push never loses its event. Deleting the intent is the claim:
-- the push's own recording and a recovery never both record it.
CREATE TABLE git_push_intents (
    id          UUID PRIMARY KEY,
    project_id  UUID NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    actor_id    UUID NOT NULL,
    actor_name  TEXT NOT NULL,
    updates     JSONB NOT NULL,              -- [{"ref", "old", "new"}]
    bypassed    JSONB NOT NULL DEFAULT '[]', -- [{"rule", "reason"}]
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX git_push_intents_created ON git_push_intents (created_at);
