"""The rotation side of the hot tier and the cold-tier manifest, in PostgreSQL."""

from __future__ import annotations

import uuid
from concurrent.futures import Executor
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg

from corral.adapters.postgres.observe.window import TABLES, PostgresHotWindow, day_of, open_window
from corral.core.observe.ports import ColdFile

__all__ = ["FILE_COLS", "PostgresHotArchive", "cold_file"]

_PARTITIONS = (
    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
    "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = $1"
)
FILE_COLS = "id, signal, day, project_id, key, rows, min_ts, max_ts, bytes"


def cold_file(r: Any) -> ColdFile:
    return ColdFile(
        id=r[0], signal=r[1], day=r[2], project_id=r[3], key=r[4], rows=r[5], min_ts=r[6], max_ts=r[7], bytes=r[8]
    )


class PostgresHotArchive:
    """HotArchive + ColdManifest."""

    def __init__(self, pool: asyncpg.Pool, executor: Executor | None = None) -> None:
        self._pool = pool
        self._executor = executor  # parses and splits the windows' rows (pyarrow releases the GIL)

    async def old_days(self, signal: str, older_than: datetime) -> list[date]:
        table = TABLES[signal]
        days: set[date] = set()
        async with self._pool.acquire() as conn:
            for (name,) in await conn.fetch(_PARTITIONS, table):
                if name == f"{table}_default":
                    rows = await conn.fetch(
                        f'SELECT DISTINCT (ts AT TIME ZONE \'UTC\')::date FROM "{name}" WHERE ts < $1', older_than
                    )
                    days.update(r[0] for r in rows)
                elif (
                    name[-9:-8] == "p"
                    and name[-8:].isdigit()
                    and day_of(name) <= older_than.date()
                    and await conn.fetchval(f'SELECT EXISTS (SELECT 1 FROM "{name}" WHERE ts < $1)', older_than)
                ):
                    days.add(day_of(name))
        return sorted(days)

    async def window(
        self, signal: str, start: datetime, end: datetime, max_rows: int | None
    ) -> PostgresHotWindow | None:
        return await open_window(self._pool, self._executor, signal, start, end, max_rows)

    async def drop_empty_partitions(self, older_than: datetime) -> int:
        dropped = 0
        async with self._pool.acquire() as conn:
            for table in TABLES.values():
                for (name,) in await conn.fetch(_PARTITIONS + " AND c.relname ~ '_p[0-9]{8}$'", table):
                    day = datetime.strptime(name[-8:], "%Y%m%d").replace(tzinfo=UTC)
                    if day + timedelta(days=1) > older_than:
                        continue
                    if await conn.fetchval(f'SELECT EXISTS (SELECT 1 FROM "{name}")'):
                        continue
                    await conn.execute(f'DROP TABLE IF EXISTS "{name}"')
                    dropped += 1
        return dropped

    # ---------------------------------------------------------------- manifest
    async def files(
        self,
        signal: str,
        project_ids: tuple[uuid.UUID, ...] | None,
        since: datetime | None,
        until: datetime | None,
        trace_id: str | None = None,
        session_id: str | None = None,
    ) -> list[ColdFile]:
        conds = ["signal = $1", "retired_at IS NULL"]  # a retired file was replaced by a compacted one
        args: list[Any] = [signal]

        def add(sql: str, value: Any) -> None:
            args.append(value)
            conds.append(sql.replace("?", f"${len(args)}"))

        if project_ids is not None:
            add("project_id = ANY(?::uuid[])", list(project_ids))
        if since is not None:
            add("max_ts >= ?", since)
        if until is not None:
            add("min_ts < ?", until)
        if trace_id:
            add("id IN (SELECT file_id FROM observe_cold_keys WHERE value = ? AND kind = 't')", trace_id)
        if session_id:
            add("id IN (SELECT file_id FROM observe_cold_keys WHERE value = ? AND kind = 's')", session_id)
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {FILE_COLS} FROM observe_cold_files WHERE {' AND '.join(conds)} ORDER BY min_ts", *args
            )
        return [cold_file(r) for r in rows]

    async def recorded(self, keys: list[str]) -> set[str]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch("SELECT key FROM observe_cold_files WHERE key = ANY($1::text[])", keys)
        return {r[0] for r in rows}

    async def expire(self, before: date) -> list[ColdFile]:
        # the lookup keys have no foreign key (047): delete them in the same transaction
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "DELETE FROM observe_cold_keys WHERE file_id IN (SELECT id FROM observe_cold_files WHERE day < $1)",
                before,
            )
            rows = await conn.fetch(f"DELETE FROM observe_cold_files WHERE day < $1 RETURNING {FILE_COLS}", before)
        return [cold_file(r) for r in rows]
