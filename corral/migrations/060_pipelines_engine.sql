-- 060 pipelines engine: numbered runs with Woodpecker's events and statuses, workflows (the unit a replica
-- leases, with a heartbeat), steps with their DAG edges and log object, per-project run numbers.

ALTER TABLE pipelines DROP CONSTRAINT IF EXISTS pipelines_trigger_check;
ALTER TABLE pipelines DROP CONSTRAINT IF EXISTS pipelines_status_check;
ALTER TABLE pipelines DROP COLUMN IF EXISTS trigger;
ALTER TABLE pipelines
    ADD COLUMN number            INTEGER,
    ADD COLUMN event             TEXT NOT NULL DEFAULT 'manual'
        CHECK (event IN ('push','tag','pull_request','pull_request_closed','cron','manual')),
    ADD COLUMN branch            TEXT NOT NULL DEFAULT '',
    ADD COLUMN commit_message    TEXT NOT NULL DEFAULT '',
    ADD COLUMN commit_author     TEXT NOT NULL DEFAULT '',
    ADD COLUMN pull_request      INTEGER,
    ADD COLUMN parent_number     INTEGER,
    ADD COLUMN triggered_by_name TEXT NOT NULL DEFAULT '',
    ADD COLUMN variables         JSONB NOT NULL DEFAULT '{}',
    ADD COLUMN definition        JSONB NOT NULL DEFAULT '{}',  -- the files and trigger context it is planned from
    ADD COLUMN errors            TEXT[] NOT NULL DEFAULT '{}',
    ADD COLUMN trigger_key       TEXT UNIQUE,                   -- one pipeline per outbox event
    ADD COLUMN cancel_requested  BOOLEAN NOT NULL DEFAULT false,
    ADD CONSTRAINT pipelines_status_check CHECK (status IN
        ('pending','running','success','failure','killed','skipped','error','blocked','declined'));
ALTER TABLE pipelines ALTER COLUMN commit_sha SET DEFAULT '';
UPDATE pipelines SET number = sub.n
  FROM (SELECT id, row_number() OVER (PARTITION BY project_id ORDER BY created_at, id) AS n FROM pipelines) sub
 WHERE pipelines.id = sub.id AND pipelines.number IS NULL;
ALTER TABLE pipelines ALTER COLUMN number SET NOT NULL;
CREATE UNIQUE INDEX uq_pipelines_project_number ON pipelines(project_id, number);

CREATE TABLE pipeline_counters (
    project_id  UUID PRIMARY KEY REFERENCES projects(id) ON DELETE CASCADE,
    last_number INTEGER NOT NULL
);
INSERT INTO pipeline_counters (project_id, last_number)
     SELECT project_id, max(number) FROM pipelines GROUP BY project_id;

CREATE TABLE pipeline_workflows (
    id                UUID PRIMARY KEY,
    pipeline_id       UUID NOT NULL REFERENCES pipelines(id) ON DELETE CASCADE,
    project_id        UUID NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    position          INTEGER NOT NULL,
    name              TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN
        ('pending','running','success','failure','killed','skipped','error','blocked','declined')),
    depends_on        TEXT[] NOT NULL DEFAULT '{}',
    runs_on           TEXT[] NOT NULL DEFAULT '{success}',
    workspace_key     TEXT NOT NULL DEFAULT '',
    workspace_deleted BOOLEAN NOT NULL DEFAULT true,
    reuse_workspace   BOOLEAN NOT NULL DEFAULT false,
    lease_owner       TEXT,
    heartbeat_at      TIMESTAMPTZ,
    started_at        TIMESTAMPTZ,
    finished_at       TIMESTAMPTZ,
    error             TEXT NOT NULL DEFAULT '',
    UNIQUE (pipeline_id, position)
);
-- the queue: pending workflows (claimed FOR UPDATE SKIP LOCKED) and running ones (lease expiry sweep)
CREATE INDEX idx_pipeline_workflows_pending ON pipeline_workflows(pipeline_id) WHERE status = 'pending';
CREATE INDEX idx_pipeline_workflows_running ON pipeline_workflows(heartbeat_at) WHERE status = 'running';

ALTER TABLE pipeline_steps DROP CONSTRAINT IF EXISTS pipeline_steps_status_check;
ALTER TABLE pipeline_steps ALTER COLUMN image SET DEFAULT '';
ALTER TABLE pipeline_steps
    ADD COLUMN workflow_id UUID REFERENCES pipeline_workflows(id) ON DELETE CASCADE,
    ADD COLUMN kind        TEXT NOT NULL DEFAULT 'step' CHECK (kind IN ('clone','service','step')),
    ADD COLUMN depends_on  TEXT[] NOT NULL DEFAULT '{}',
    ADD COLUMN detached    BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN started_at  TIMESTAMPTZ,
    ADD COLUMN finished_at TIMESTAMPTZ,
    ADD COLUMN error       TEXT NOT NULL DEFAULT '',
    ADD CONSTRAINT pipeline_steps_status_check CHECK (status IN
        ('pending','running','success','failure','killed','skipped','error','blocked','declined'));
CREATE INDEX idx_pipeline_steps_workflow ON pipeline_steps(workflow_id, step_order);
