-- 045: compaction of the cold tier retires the files it replaced instead of deleting them.
--
-- A compaction commit inserts the merged file(s) and sets retired_at on the files they replace in ONE
-- transaction: queries and lookups stop listing a retired file at once, but its row stays (so the
-- orphan sweep, which judges an unlisted object by its write time, never deletes it) until the file has
-- been retired longer than the orphan grace: a query that listed it a moment before can still read it.
ALTER TABLE observe_cold_files ADD COLUMN IF NOT EXISTS retired_at TIMESTAMPTZ;
CREATE INDEX IF NOT EXISTS idx_observe_cold_files_retired ON observe_cold_files (retired_at)
    WHERE retired_at IS NOT NULL;
