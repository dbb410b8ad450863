-- 044: log attributes as json instead of jsonb, chosen from measurements (tests/bench/bench_ingest.py with
-- PostgreSQL fsync, synchronous_commit and full_page_writes on; and binary COPY of the decoder's rows into
-- log_entries, 2 connections, 20k-row transactions, PostgreSQL CPU seconds per 100k rows, two runs each):
--   indexes of 040/043, attributes jsonb                           1.31 / 1.56
--   the same, attributes json                                      1.18 / 1.21
--   trace btree replaced by a BRIN bloom index (uuid_bloom_ops)    0.98 / 1.12
--   no trace index / BRIN only / no index at all                   1.03 / 1.06, 0.56 / 0.48, 0.63 / 0.65
-- PostgreSQL validates json text instead of building and sorting a jsonb tree for every row; #>> and
-- the API read both the same way (the last of duplicate keys wins in both). Spans keep jsonb.
-- The trace btree stays although random trace ids make it the dearest index (a descent per row, a
-- full-page image for every leaf first touched after a checkpoint): the BRIN bloom index saved ~0.2
-- CPU-s per 100k rows in the whole-pipeline bench (within its run-to-run noise) but a trace lookup then
-- reads every range summary of the hot tier (2M hot rows: p50 30 ms, p95 39 ms, vs well under 1 ms
-- for the btree) and grows linearly with it, and rows not summarized yet are read in full.

ALTER TABLE log_entries ALTER COLUMN attributes DROP DEFAULT;
ALTER TABLE log_entries ALTER COLUMN attributes TYPE json USING attributes::json;
ALTER TABLE log_entries ALTER COLUMN attributes SET DEFAULT '{}';
