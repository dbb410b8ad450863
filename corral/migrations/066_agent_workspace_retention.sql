-- 066 agent workspace retention: a finished session's workspace is kept for a resume, then deleted by a sweep
-- (CORRAL_AGENT_WORKSPACE_RETENTION_HOURS); a session whose workspace is gone cannot be resumed.

ALTER TABLE agent_sessions ADD COLUMN workspace_deleted_at TIMESTAMPTZ;
CREATE INDEX idx_agent_sessions_workspace_kept ON agent_sessions (finished_at)
    WHERE workspace_deleted_at IS NULL AND finished_at IS NOT NULL;
