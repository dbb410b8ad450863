-- Merge-request-only branch protection may name who bypasses it (like Gitea's push allowlist):
-- holders of project:admin when bypass_admins is set, and the users listed in push_allowlist.
ALTER TABLE branch_protections
    ADD COLUMN bypass_admins  BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN push_allowlist UUID[]  NOT NULL DEFAULT '{}';
