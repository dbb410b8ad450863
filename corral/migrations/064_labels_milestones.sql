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
