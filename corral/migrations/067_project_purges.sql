-- 067 project purges: what a deleted project kept outside PostgreSQL (object-store prefixes, executor workspaces,
-- its bare repository), recorded in the transaction that deletes it and deleted by the purge job until done.
CREATE TABLE project_purges (
    project_id      UUID PRIMARY KEY,          -- no reference: the project row is gone
    project_name    TEXT NOT NULL,             -- owner/name when deleted (logs)
    repo_path       TEXT NOT NULL,
    prefixes        TEXT[] NOT NULL DEFAULT '{}',
    workspaces      TEXT[] NOT NULL DEFAULT '{}',
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),  -- a claimed row: the end of the claim's lease
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT
);
CREATE INDEX idx_project_purges_due ON project_purges (next_attempt_at);
