"""The migration runner against a real PostgreSQL: fresh apply, idempotence, edited files,
failing files, concurrent runners."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from corral.adapters.postgres.migrator import (
    Migration,
    MigrationError,
    apply_migrations,
    load_migrations,
    migration_status,
)
from corral.adapters.postgres.pool import connect

pytestmark = pytest.mark.integration

SCHEMA_DUMP = """
SELECT 'column' AS kind, table_name || '.' || column_name || ' ' || data_type
       || ' ' || is_nullable || ' ' || coalesce(column_default, '') AS what
FROM information_schema.columns WHERE table_schema = 'public'
UNION ALL
SELECT 'index', indexdef FROM pg_indexes WHERE schemaname = 'public'
UNION ALL
SELECT 'constraint', conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)
FROM pg_constraint WHERE connamespace = 'public'::regnamespace
UNION ALL
SELECT 'trigger', tgrelid::regclass::text || ' ' || tgname FROM pg_trigger WHERE NOT tgisinternal
UNION ALL
SELECT 'migration', name || ' ' || checksum || ' ' || applied_at::text FROM schema_migrations
ORDER BY 1, 2
"""


async def _dump(conn: asyncpg.Connection) -> list[tuple[str, str]]:
    return [(r["kind"], r["what"]) for r in await conn.fetch(SCHEMA_DUMP)]


async def _tables(conn: asyncpg.Connection) -> set[str]:
    rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {r["tablename"] for r in rows}


async def test_fresh_database_gets_every_migration_and_table(pg_dsn: str) -> None:
    conn = await connect(pg_dsn)
    try:
        applied = await apply_migrations(conn)
        assert applied == [m.name for m in load_migrations()]
        tables = await _tables(conn)
        assert {"schema_migrations", "users", "projects", "audit_log", "outbox", "log_entries"} <= tables
        assert len(tables) >= 34  # 32 design tables + outbox + schema_migrations
        states = await migration_status(conn)
        assert {s.state for s in states} == {"applied"}
    finally:
        await conn.close()


async def test_second_run_changes_nothing(pg_dsn: str) -> None:
    conn = await connect(pg_dsn)
    try:
        await apply_migrations(conn)
        before = await _dump(conn)
        assert await apply_migrations(conn) == []
        assert await _dump(conn) == before
    finally:
        await conn.close()


async def test_edited_applied_migration_stops_the_run_before_anything_else(pg_dsn: str) -> None:
    conn = await connect(pg_dsn)
    try:
        await apply_migrations(conn)
        await conn.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE name = '003_projects.sql'")
        probe = Migration.from_text("999_probe.sql", "CREATE TABLE probe (x int);")
        with pytest.raises(MigrationError, match=r"003_projects\.sql was changed after it was applied"):
            await apply_migrations(conn, [*load_migrations(), probe])
        assert "probe" not in await _tables(conn)
        states = {s.name: s.state for s in await migration_status(conn, [*load_migrations(), probe])}
        assert states["003_projects.sql"] == "changed"
        assert states["999_probe.sql"] == "pending"
        # the lock was released: another runner is not blocked forever
        assert await conn.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == 0
    finally:
        await conn.close()


async def test_failing_migration_is_rolled_back_and_named(pg_dsn: str) -> None:
    good = Migration.from_text("001_good.sql", "CREATE TABLE good (x int);")
    bad = Migration.from_text("002_bad.sql", "CREATE TABLE half (x int);\nSELECT no_such_column FROM good;")
    after = Migration.from_text("003_after.sql", "CREATE TABLE after_bad (x int);")
    conn = await connect(pg_dsn)
    try:
        with pytest.raises(MigrationError, match=r"002_bad\.sql failed"):
            await apply_migrations(conn, [good, bad, after])
        assert {"good"} <= await _tables(conn)
        assert not {"half", "after_bad"} & await _tables(conn)
        names = [r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")]
        assert names == ["001_good.sql"]
    finally:
        await conn.close()


async def test_migrations_unknown_to_this_version_are_reported_not_fatal(pg_dsn: str) -> None:
    conn = await connect(pg_dsn)
    try:
        await apply_migrations(conn)
        await conn.execute("INSERT INTO schema_migrations (name, checksum) VALUES ('998_newer.sql', 'x')")
        assert await apply_migrations(conn) == []
        states = {s.name: s.state for s in await migration_status(conn)}
        assert states["998_newer.sql"] == "unknown"
    finally:
        await conn.close()


async def test_concurrent_runners_apply_each_file_exactly_once(pg_dsn: str) -> None:
    conns = [await connect(pg_dsn) for _ in range(3)]
    try:
        results = await asyncio.gather(*(apply_migrations(c) for c in conns))
        everything = [name for result in results for name in result]
        assert sorted(everything) == [m.name for m in load_migrations()]
        count = await conns[0].fetchval("SELECT count(*) FROM schema_migrations")
        assert count == len(load_migrations())
    finally:
        for c in conns:
            await c.close()


async def test_status_of_a_fresh_database_is_all_pending_and_creates_nothing(pg_dsn: str) -> None:
    conn = await connect(pg_dsn)
    try:
        states = await migration_status(conn)
        assert [s.state for s in states] == ["pending"] * len(load_migrations())
        assert await _tables(conn) == set()
    finally:
        await conn.close()
