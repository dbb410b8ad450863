-- 065 releases: a tag with a title, markdown notes, draft / pre-release flags, and assets kept in the object store.
CREATE TABLE releases (
    id           UUID PRIMARY KEY,
    project_id   UUID NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    tag          TEXT NOT NULL,
    target       TEXT NOT NULL,                -- the commit the tag named when the release was made
    title        TEXT NOT NULL,
    notes        TEXT NOT NULL DEFAULT '',     -- markdown, rendered by the UI
    draft        BOOLEAN NOT NULL DEFAULT FALSE,
    prerelease   BOOLEAN NOT NULL DEFAULT FALSE,
    author_id    UUID,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at TIMESTAMPTZ                   -- NULL while a draft
);
CREATE UNIQUE INDEX uq_releases_project_tag ON releases(project_id, tag);
CREATE INDEX idx_releases_project_created ON releases(project_id, created_at DESC, id DESC);

CREATE TABLE release_assets (
    id           UUID PRIMARY KEY,
    release_id   UUID NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    size         BIGINT NOT NULL,
    content_type TEXT NOT NULL,
    object_key   TEXT NOT NULL,
    uploader_id  UUID,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (release_id, name)
);
