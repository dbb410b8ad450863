-- 002 RBAC: roles, permissions, role bindings (global or per project), delegations.

CREATE TABLE roles (
    id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name        TEXT NOT NULL UNIQUE,                   -- 'admin', 'developer', 'ops', 'viewer', 'agent'
    description TEXT,
    is_system   BOOLEAN NOT NULL DEFAULT false,         -- system roles can't be deleted
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE permissions (
    id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name        TEXT NOT NULL UNIQUE,                   -- 'project:read', 'deploy:promote', ...
    resource    TEXT NOT NULL,                          -- 'project', 'agent', 'deploy', 'observe', 'admin', 'secret'
    action      TEXT NOT NULL,                          -- 'read', 'write', 'run', 'promote', 'delete', 'delegate'
    description TEXT
);

CREATE TABLE role_permissions (
    role_id       UUID NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    permission_id UUID NOT NULL REFERENCES permissions(id) ON DELETE CASCADE,
    PRIMARY KEY (role_id, permission_id)
);

-- user <-> role binding; project_id NULL = global. NULLS NOT DISTINCT (PostgreSQL 15+) so a
-- global binding cannot be duplicated either (plain UNIQUE treats NULLs as distinct).
CREATE TABLE user_roles (
    id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role_id     UUID NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    project_id  UUID,                                   -- NULL = global; FK added in 003_projects
    granted_by  UUID REFERENCES users(id),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT user_roles_user_id_role_id_project_id_key UNIQUE NULLS NOT DISTINCT (user_id, role_id, project_id)
);
CREATE INDEX idx_user_roles_user ON user_roles(user_id);

-- delegation: a user/agent grants one of their own permissions to another user/agent.
-- "the delegator must hold the permission" is enforced by the application (depends on role
-- resolution). The design's UNIQUE (delegator, delegate, permission, project) is kept only for
-- live (unrevoked) rows, NULL project included, so a revoked delegation can be granted again.
CREATE TABLE delegations (
    id            UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    delegator_id  UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,   -- who grants
    delegate_id   UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,   -- who receives (may be an agent)
    permission_id UUID NOT NULL REFERENCES permissions(id) ON DELETE CASCADE,
    project_id    UUID,                                 -- NULL = global; FK added in 003_projects
    expires_at    TIMESTAMPTZ,                          -- optional TTL
    reason        TEXT,                                 -- "monitoring shift 2025-02-19"
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at    TIMESTAMPTZ
);
CREATE UNIQUE INDEX idx_delegations_live ON delegations (delegator_id, delegate_id, permission_id, project_id)
    NULLS NOT DISTINCT WHERE revoked_at IS NULL;
CREATE INDEX idx_delegations_delegate ON delegations(delegate_id);
CREATE INDEX idx_delegations_delegator ON delegations(delegator_id);
