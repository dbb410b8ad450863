-- 061 the continuous deployer (corral.core.deploy): ops repositories, desired and observed state of each
-- environment, its history and promotions. 007's design tables (ops_repos, deployments, deployment_history)
-- stay as the design lists them; nothing writes them (their CHECKs fix three environments and no observed
-- state), the deployer's state lives in these deploy_* tables.

CREATE TABLE deploy_ops_repos (
    id                UUID PRIMARY KEY,
    name              TEXT NOT NULL UNIQUE,
    project_id        UUID REFERENCES projects(id) ON DELETE CASCADE,  -- a Corral project ...
    url               TEXT,                                            -- ... or an outside git URL
    credential_secret TEXT,                                            -- global secret holding url's token
    branch            TEXT NOT NULL,
    path              TEXT NOT NULL DEFAULT '',
    sync_interval_s   INTEGER NOT NULL DEFAULT 60,
    created_at        TIMESTAMPTZ NOT NULL,
    CHECK ((project_id IS NULL) <> (url IS NULL))
);

CREATE TABLE deploy_deployments (
    id               UUID PRIMARY KEY,
    project_id       UUID NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    environment      TEXT NOT NULL,
    ops_repo_id      UUID NOT NULL REFERENCES deploy_ops_repos(id),
    app_path         TEXT NOT NULL,
    image_ref        TEXT NOT NULL,
    namespace        TEXT NOT NULL,
    values_override  JSONB NOT NULL DEFAULT '{}',
    prune            BOOLEAN NOT NULL DEFAULT false,
    self_heal        BOOLEAN NOT NULL DEFAULT false,
    auto_rollback    BOOLEAN NOT NULL DEFAULT false,
    desired_revision INTEGER NOT NULL,
    updated_by       UUID,
    updated_by_name  TEXT,
    history_id       UUID,
    -- observed state (the reconciler's)
    cluster          TEXT NOT NULL,
    applied_revision INTEGER,
    applied_commit   TEXT,
    sync             TEXT NOT NULL CHECK (sync IN ('Synced', 'OutOfSync', 'Unknown')),
    health           TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'syncing', 'healthy', 'degraded', 'failed')),
    last_error       TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ,
    inventory        JSONB NOT NULL DEFAULT '[]',
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    UNIQUE (project_id, environment)
);
CREATE INDEX deploy_deployments_created ON deploy_deployments (created_at, id);

CREATE TABLE deploy_history (
    id              UUID PRIMARY KEY,
    deployment_id   UUID NOT NULL REFERENCES deploy_deployments(id) ON DELETE CASCADE,
    revision        INTEGER NOT NULL,
    image_ref       TEXT NOT NULL,
    values_override JSONB NOT NULL DEFAULT '{}',
    by_id           UUID,
    by_name         TEXT,
    at              TIMESTAMPTZ NOT NULL,
    result          TEXT NOT NULL CHECK (result IN ('pending', 'healthy', 'failed', 'superseded')),
    reason          TEXT NOT NULL
);
CREATE INDEX deploy_history_deployment ON deploy_history (deployment_id, revision DESC);

CREATE TABLE deploy_promotions (
    id                UUID PRIMARY KEY,
    project_id        UUID NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    from_environment  TEXT NOT NULL,
    to_environment    TEXT NOT NULL,
    image_ref         TEXT NOT NULL,
    requested_by      UUID NOT NULL,
    requested_by_name TEXT NOT NULL,
    requested_at      TIMESTAMPTZ NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('pending_approval', 'applied')),
    approved_by       UUID,
    approved_by_name  TEXT,
    decided_at        TIMESTAMPTZ
);
CREATE INDEX deploy_promotions_project ON deploy_promotions (project_id, requested_at DESC);
