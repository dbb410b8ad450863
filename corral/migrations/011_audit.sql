-- 011 audit: append-only record of every mutation, written in the mutation's transaction.
--
-- Deviation from the design: project_id has no foreign key. Audit rows are immutable and must
-- keep naming the project after it is deleted (with the design's ON DELETE SET NULL the
-- 'project.delete' row itself would lose its project). actor_id has no FK for the same reason.

CREATE TABLE audit_log (
    id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    actor_id    UUID NOT NULL,                          -- user or agent (no FK: audit rows are immutable)
    actor_name  TEXT NOT NULL,                          -- denormalised: survives the user's deletion
    action      TEXT NOT NULL,                          -- 'user.create', 'project.delete', 'secret.read'
    resource    TEXT NOT NULL,                          -- 'user', 'project', 'secret', 'delegation'
    resource_id UUID,
    project_id  UUID,                                   -- no FK, see above
    detail      JSONB,                                  -- extra context; never a secret
    ip_addr     INET,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- listing is newest first by (created_at, id); each filter has an index leading with it
CREATE INDEX idx_audit_created ON audit_log(created_at DESC, id DESC);
CREATE INDEX idx_audit_actor ON audit_log(actor_id, created_at DESC);
CREATE INDEX idx_audit_actor_name ON audit_log(actor_name, created_at DESC, id DESC);
CREATE INDEX idx_audit_action ON audit_log(action, created_at DESC, id DESC);
CREATE INDEX idx_audit_resource ON audit_log(resource, resource_id, created_at DESC);
CREATE INDEX idx_audit_project ON audit_log(project_id, created_at DESC, id DESC) WHERE project_id IS NOT NULL;
