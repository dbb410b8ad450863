-- 055 the ref moves recorded as push events lately (corral.core.git.recovery).
--
-- A push cut off by a crash before git moved a ref leaves its intent (033); the client retries and the retry is
-- recorded. Without a memory of that record the recovery would later find the ref moved as the abandoned intent
-- asked and record the same move a second time. Every recorded move is kept here for a while (the recovery
-- forgets rows older than a week); a recovery records only the moves that no row since the intent's time
-- covers, and a push does not record a move a recovery recorded since it announced itself. Both read and write
-- under a per-project transaction advisory lock, so the two never both record one move.
CREATE TABLE git_ref_moves (
    seq          BIGSERIAL PRIMARY KEY,
    project_id   UUID NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    ref          TEXT NOT NULL,
    old          TEXT NOT NULL,
    new          TEXT NOT NULL,
    recorded_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX git_ref_moves_project_ref ON git_ref_moves (project_id, ref, recorded_at);
CREATE INDEX git_ref_moves_recorded ON git_ref_moves (recorded_at);
