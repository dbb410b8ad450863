-- 054 case-insensitive names (like Gitea): "alice" and "ALICE" are one user, alice/demo and alice/Demo one
-- project; lookups ignore case (the stores compare lower(name)). Names are ASCII, so lower() is the same
-- in every collation.
--
-- Existing duplicates cannot be merged automatically (they are different accounts or repositories): the
-- migration stops and names them; rename one of each pair (PATCH /api/v1/users/{name} or the project),
-- then start again. Old-name redirects that collide are only hints, so the newest one of each name is kept.
DO $$
DECLARE
    dups TEXT;
BEGIN
    SELECT string_agg(names, '; ') INTO dups FROM (
        SELECT string_agg(name, ', ' ORDER BY name) AS names FROM users GROUP BY lower(name) HAVING count(*) > 1
    ) d;
    IF dups IS NOT NULL THEN
        RAISE EXCEPTION 'user names that differ only in case must be renamed before this upgrade: %', dups
            USING HINT = 'rename all but one user of each group, then run corral migrate again';
    END IF;
    SELECT string_agg(names, '; ') INTO dups FROM (
        SELECT string_agg(u.name || '/' || p.name, ', ' ORDER BY p.name) AS names
        FROM projects p JOIN users u ON u.id = p.owner_id
        GROUP BY p.owner_id, lower(p.name) HAVING count(*) > 1
    ) d;
    IF dups IS NOT NULL THEN
        RAISE EXCEPTION 'project names that differ only in case must be renamed before this upgrade: %', dups
            USING HINT = 'rename all but one project of each group, then run corral migrate again';
    END IF;
END
$$;

DELETE FROM project_redirects r
WHERE EXISTS (
    SELECT 1 FROM project_redirects newer
    WHERE newer.owner_id = r.owner_id AND lower(newer.name) = lower(r.name)
      AND (newer.created_at, newer.name) > (r.created_at, r.name)
);

CREATE UNIQUE INDEX users_name_lower ON users (lower(name));
CREATE UNIQUE INDEX projects_owner_name_lower ON projects (owner_id, lower(name));
CREATE UNIQUE INDEX project_redirects_owner_name_lower ON project_redirects (owner_id, lower(name));
