-- 047: the cold tier's lookup keys lose their foreign key to observe_cold_files. A rotation writes a
-- file's keys in the same transaction as the file's manifest row, and retention deletes both in one
-- transaction (PostgresHotArchive.expire), so the constraint guarded nothing the code does not; its
-- per-row check doubled the cost of writing the keys (76k keys: 1.19 s with it, 0.52 s without,
-- tests/bench/bench_rotation.py's dataset).
ALTER TABLE observe_cold_keys DROP CONSTRAINT IF EXISTS observe_cold_keys_file_id_fkey;
