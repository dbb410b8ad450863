-- 030 projects/git: archive flag, merge commit, list indexes, branch protection, webhook delivery log.

ALTER TABLE projects ADD COLUMN archived BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE merge_requests ADD COLUMN merge_commit_sha TEXT;

CREATE INDEX idx_issues_project_number ON issues(project_id, number DESC);
CREATE INDEX idx_issues_project_status ON issues(project_id, status, number DESC);
CREATE INDEX idx_issues_labels ON issues USING GIN (labels);
CREATE INDEX idx_merge_requests_project_status ON merge_requests(project_id, status, number DESC);

CREATE TABLE branch_protections (
    id                    UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id            UUID NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    pattern               TEXT NOT NULL,                 -- branch name or glob ('release/*')
    allow_force_push      BOOLEAN NOT NULL DEFAULT false,
    allow_deletion        BOOLEAN NOT NULL DEFAULT false,
    require_merge_request BOOLEAN NOT NULL DEFAULT false, -- direct pushes refused
    required_approvals    INTEGER NOT NULL DEFAULT 0 CHECK (required_approvals BETWEEN 0 AND 20),
    created_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (project_id, pattern)
);

-- one row per (event, webhook): the delivery queue and its log
CREATE TABLE webhook_deliveries (
    id               UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    webhook_id       UUID NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    project_id       UUID NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    event            TEXT NOT NULL,
    payload          JSONB NOT NULL,
    status           TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending','delivered','failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ,
    status_code      INTEGER,
    duration_ms      INTEGER,
    response_excerpt TEXT,
    error            TEXT,
    delivered_at     TIMESTAMPTZ,
    redelivery_of    UUID,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_webhook_deliveries_due ON webhook_deliveries(next_attempt_at) WHERE status = 'pending';
CREATE INDEX idx_webhook_deliveries_hook ON webhook_deliveries(webhook_id, id DESC);
