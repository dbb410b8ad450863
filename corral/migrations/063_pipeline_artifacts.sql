-- 063 pipeline artifacts and schedules: the artifacts table of 006 gains the project, the step and a unique name
-- per pipeline (one object per uploaded file); cron schedules per project (pipeline_schedules), fired once per
-- due time (the pipeline's trigger_key is cron:<schedule>:<due time>).

DELETE FROM artifacts;  -- 006's table was never written
ALTER TABLE artifacts
    ADD COLUMN project_id UUID NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    ADD COLUMN step       TEXT NOT NULL DEFAULT '',
    ALTER COLUMN size_bytes SET NOT NULL,
    ADD CONSTRAINT uq_artifacts_pipeline_name UNIQUE (pipeline_id, name);
CREATE INDEX idx_artifacts_expires ON artifacts(expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE pipeline_schedules (
    id              UUID PRIMARY KEY,
    project_id      UUID NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    cron            TEXT NOT NULL,
    branch          TEXT NOT NULL,
    variables       JSONB NOT NULL DEFAULT '{}',
    created_by      UUID REFERENCES users(id) ON DELETE SET NULL,
    created_by_name TEXT NOT NULL DEFAULT '',
    created_at      TIMESTAMPTZ NOT NULL,
    next_run_at     TIMESTAMPTZ NOT NULL,
    last_run_at     TIMESTAMPTZ,
    UNIQUE (project_id, name)
);
CREATE INDEX idx_pipeline_schedules_due ON pipeline_schedules(next_run_at);

-- workspaces kept after a workflow ended (failed ones, for a restart from a step) are deleted after a retention
CREATE INDEX idx_pipeline_workflows_kept ON pipeline_workflows(finished_at) WHERE NOT workspace_deleted;

-- results: the pipelines of a commit (commit status, required checks); branch protection's required checks
CREATE INDEX idx_pipelines_commit ON pipelines(project_id, commit_sha);
ALTER TABLE branch_protections ADD COLUMN required_checks TEXT[] NOT NULL DEFAULT '{}';
