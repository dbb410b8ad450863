-- 062 agent sessions: the design's agent_sessions/agent_messages (005) grown into what the session runner needs:
-- limits and options, the agent's identity (delegations, token), results, a runner lease, numbered events.

ALTER TABLE agent_sessions
    ADD COLUMN requester_name     TEXT NOT NULL DEFAULT '',
    ADD COLUMN agent_user_name    TEXT,
    ADD COLUMN permissions        TEXT[] NOT NULL DEFAULT '{}',
    ADD COLUMN max_turns          INTEGER NOT NULL DEFAULT 50,
    ADD COLUMN max_cost_usd       DOUBLE PRECISION NOT NULL DEFAULT 5,
    ADD COLUMN timeout_seconds    INTEGER NOT NULL DEFAULT 3600,
    ADD COLUMN open_merge_request BOOLEAN NOT NULL DEFAULT TRUE,
    ADD COLUMN expires_at         TIMESTAMPTZ,
    ADD COLUMN started_at         TIMESTAMPTZ,
    ADD COLUMN turns              INTEGER,
    ADD COLUMN duration_ms        BIGINT,
    ADD COLUMN merge_request      INTEGER,
    ADD COLUMN error              TEXT,
    ADD COLUMN runs               INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN owner              TEXT,
    ADD COLUMN heartbeat_at       TIMESTAMPTZ,
    ADD COLUMN delegation_ids     UUID[] NOT NULL DEFAULT '{}',
    ADD COLUMN token_id           UUID,
    ADD COLUMN event_seq          BIGINT NOT NULL DEFAULT 0;   -- the last event number handed out

ALTER TABLE agent_sessions ALTER COLUMN cost_usd TYPE DOUBLE PRECISION;
CREATE INDEX idx_agent_sessions_project_created ON agent_sessions (project_id, created_at DESC, id DESC);
CREATE UNIQUE INDEX idx_agent_sessions_agent_user ON agent_sessions (agent_user_id) WHERE agent_user_id IS NOT NULL;
CREATE INDEX idx_agent_sessions_unfinished ON agent_sessions (status) WHERE status IN ('pending', 'running');

-- events: numbered per session from 1 (late viewers resume after a number); type says what the provider reported
ALTER TABLE agent_messages
    ADD COLUMN seq  BIGINT,
    ADD COLUMN type TEXT NOT NULL DEFAULT 'message';
UPDATE agent_messages m SET seq = n.rn
  FROM (SELECT id, row_number() OVER (PARTITION BY session_id ORDER BY created_at, id) AS rn FROM agent_messages) n
 WHERE m.id = n.id;
ALTER TABLE agent_messages ALTER COLUMN seq SET NOT NULL;
CREATE UNIQUE INDEX idx_agent_messages_session_seq ON agent_messages (session_id, seq);
UPDATE agent_sessions s SET event_seq = COALESCE((SELECT max(seq) FROM agent_messages m WHERE m.session_id = s.id), 0);
