"""SQL migrations NNN_name.sql, applied in filename order by `corral migrate` (and at start-up).

Rules for authors (see corral.adapters.postgres.migrator):
- never edit a file that has landed on main: its SHA-256 is recorded when applied and a
  changed file stops every later run; put the change in a new file;
- number ranges: 001-019 foundation, 020-029 identity, 030-039 projects/git,
  040-049 observability, 050-059 secrets/notifications;
- each file runs in one transaction with its bookkeeping row: no BEGIN/COMMIT inside, and no
  statements that cannot run in a transaction (CREATE INDEX CONCURRENTLY, VACUUM);
- SQL must run on PostgreSQL 15 and newer (16 and 18 are exercised by the embedded wheels);
- ids come from the application (UUIDv7); ``DEFAULT gen_random_uuid()`` is only a fallback.
"""
