-- Old names of renamed projects (like Gitea's repo_redirect): requests for owner/old-name are redirected
-- to the project's current name. A project created or renamed to a name drops that name's redirect.
CREATE TABLE project_redirects (
    owner_id   UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    project_id UUID NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (owner_id, name)
);
CREATE INDEX project_redirects_project ON project_redirects (project_id);
