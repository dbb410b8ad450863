-- 064 labels and milestones as objects per project, and line comments on merge request diffs.

-- a line comment names the file, the 1-based line, the side (new: the file at commit_sha; old: at the merge
-- base) and keeps the line's text then, to tell when a later head changed that line (outdated)
ALTER TABLE comments
    ADD COLUMN path         TEXT,
    ADD COLUMN line         INTEGER CHECK (line IS NULL OR line > 0),
    ADD COLUMN side         TEXT CHECK (side IS NULL OR side IN ('old', 'new')),
    ADD COLUMN commit_sha   TEXT,
    ADD COLUMN line_content TEXT,
    ADD CONSTRAINT comments_line_anchor CHECK ((path IS NULL) = (line IS NULL) AND (path IS NULL OR mr_id IS NOT NULL));

-- labels per project (names unique ignoring case); issues and merge requests keep the names they carry (renaming
-- or deleting a label rewrites them), so the free-text labels of older issues become label objects here
CREATE TABLE labels (
    id          UUID PRIMARY KEY,
    project_id  UUID NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    color       TEXT NOT NULL DEFAULT '#cccccc',
    description TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX uq_labels_project_name ON labels(project_id, lower(name));
-- one object per name ignoring case (the first spelling in collation order wins; issues are rewritten to it)
INSERT INTO labels (id, project_id, name)
SELECT gen_random_uuid(), project_id, min(name)
  FROM (SELECT DISTINCT project_id, unnest(labels) AS name FROM issues) AS used
 GROUP BY project_id, lower(name);
UPDATE issues i SET labels = ARRAY(
    SELECT DISTINCT l.name FROM unnest(i.labels) AS u(name)
      JOIN labels l ON l.project_id = i.project_id AND lower(l.name) = lower(u.name))
 WHERE cardinality(i.labels) > 0;

CREATE TABLE milestones (
    id          UUID PRIMARY KEY,
    project_id  UUID NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    title       TEXT NOT NULL,
    description TEXT,
    due_on      DATE,
    state       TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'closed')),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    closed_at   TIMESTAMPTZ
);
CREATE UNIQUE INDEX uq_milestones_project_title ON milestones(project_id, lower(title));

ALTER TABLE issues ADD COLUMN milestone_id UUID REFERENCES milestones(id) ON DELETE SET NULL;
CREATE INDEX idx_issues_milestone ON issues(milestone_id) WHERE milestone_id IS NOT NULL;
ALTER TABLE merge_requests
    ADD COLUMN labels       TEXT[] NOT NULL DEFAULT '{}',
    ADD COLUMN milestone_id UUID REFERENCES milestones(id) ON DELETE SET NULL,
    ADD COLUMN assignee_ids UUID[] NOT NULL DEFAULT '{}',
    ADD COLUMN reviewer_ids UUID[] NOT NULL DEFAULT '{}';
CREATE INDEX idx_merge_requests_milestone ON merge_requests(milestone_id) WHERE milestone_id IS NOT NULL;
