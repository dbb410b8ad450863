-- 003 projects: projects, issues, comments, webhooks; project FKs of 001/002.

CREATE TABLE projects (
    id                UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id          UUID NOT NULL REFERENCES users(id) ON DELETE RESTRICT,
    name              TEXT NOT NULL,                    -- slug: my-todo-app
    display_name      TEXT,
    description       TEXT,
    visibility        TEXT NOT NULL DEFAULT 'private' CHECK (visibility IN ('private','internal','public')),
    default_branch    TEXT NOT NULL DEFAULT 'main',
    repo_path         TEXT,                             -- path to the bare repository on disk
    is_active         BOOLEAN NOT NULL DEFAULT true,
    next_issue_number INTEGER NOT NULL DEFAULT 0,       -- atomic counters for issue / MR numbers
    next_mr_number    INTEGER NOT NULL DEFAULT 0,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (owner_id, name)
);
CREATE TRIGGER trg_projects_updated_at BEFORE UPDATE ON projects
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- forward references of 001_identity and 002_rbac
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_project_id_fkey
    FOREIGN KEY (project_id) REFERENCES projects(id) ON DELETE CASCADE;
ALTER TABLE user_roles ADD CONSTRAINT user_roles_project_id_fkey
    FOREIGN KEY (project_id) REFERENCES projects(id) ON DELETE CASCADE;
ALTER TABLE delegations ADD CONSTRAINT delegations_project_id_fkey
    FOREIGN KEY (project_id) REFERENCES projects(id) ON DELETE CASCADE;

CREATE TABLE issues (
    id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id  UUID NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    number      INTEGER NOT NULL,                       -- project-scoped, from projects.next_issue_number
    author_id   UUID NOT NULL REFERENCES users(id),
    title       TEXT NOT NULL,
    body        TEXT,
    status      TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open','closed')),
    labels      TEXT[] NOT NULL DEFAULT '{}',
    assignee_id UUID REFERENCES users(id),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (project_id, number)
);
CREATE TRIGGER trg_issues_updated_at BEFORE UPDATE ON issues
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- comments on an issue or a merge request (mr_id FK added in 004_git)
CREATE TABLE comments (
    id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id  UUID NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    issue_id    UUID REFERENCES issues(id) ON DELETE CASCADE,
    mr_id       UUID,
    author_id   UUID NOT NULL REFERENCES users(id),
    body        TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (issue_id IS NOT NULL OR mr_id IS NOT NULL)
);
CREATE TRIGGER trg_comments_updated_at BEFORE UPDATE ON comments
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE INDEX idx_comments_issue ON comments(issue_id, created_at) WHERE issue_id IS NOT NULL;
CREATE INDEX idx_comments_mr ON comments(mr_id, created_at) WHERE mr_id IS NOT NULL;

CREATE TABLE webhooks (
    id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id  UUID NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    url         TEXT NOT NULL,
    events      TEXT[] NOT NULL DEFAULT '{}',           -- {'push','mr','issue','build','deploy'}
    secret      TEXT,                                   -- HMAC secret for payload signatures
    active      BOOLEAN NOT NULL DEFAULT true,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_webhooks_project ON webhooks(project_id);
