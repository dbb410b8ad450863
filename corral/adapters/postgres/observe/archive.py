"""The rotation side of the hot tier and the cold-tier manifest, in PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import asyncpg

from corral.core.observe.model import LOG_COLUMNS, POINT_COLUMNS, SPAN_COLUMNS
from corral.core.observe.ports import ColdFile

__all__ = ["PostgresHotArchive"]

_TABLES = {"logs": "log_entries", "spans": "spans", "points": "metric_samples"}
_COLUMNS = {"logs": LOG_COLUMNS, "spans": SPAN_COLUMNS, "points": POINT_COLUMNS}
_FILE_COLS = "id, signal, day, project_id, key, rows, min_ts, max_ts, bytes"


def _file(r: Any) -> ColdFile:
    return ColdFile(
        id=r[0], signal=r[1], day=r[2], project_id=r[3], key=r[4], rows=r[5], min_ts=r[6], max_ts=r[7], bytes=r[8]
    )


def _row(signal: str, r: Any) -> dict[str, Any]:
    row = dict(zip(_COLUMNS[signal], r, strict=True))
    if row.get("trace_id") is not None:
        row["trace_id"] = row["trace_id"].hex
    return row


class PostgresHotArchive:
    """HotArchive + ColdManifest."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def old_partitions(self, signal: str, older_than: datetime) -> list[tuple[date, uuid.UUID | None]]:
        table = _TABLES[signal]
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT DISTINCT (ts AT TIME ZONE 'UTC')::date AS day, project_id FROM {table} "
                "WHERE ts < $1 ORDER BY 1",
                older_than,
            )
        return [(r[0], r[1]) for r in rows]

    async def take(
        self, signal: str, day: date, project_id: uuid.UUID | None, older_than: datetime, limit: int
    ) -> list[dict[str, Any]]:
        start = datetime.combine(day, time(), tzinfo=UTC)
        end = min(start + timedelta(days=1), older_than)
        order = "ts, id" if signal != "points" else "ts, series_id"
        cols = ", ".join(_COLUMNS[signal])
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {cols} FROM {_TABLES[signal]} WHERE ts >= $1 AND ts < $2 "
                f"AND project_id IS NOT DISTINCT FROM $3 ORDER BY {order} LIMIT $4",
                start,
                end,
                project_id,
                limit,
            )
        return [_row(signal, r) for r in rows]

    async def commit_rotation(self, file: ColdFile, rows: list[dict[str, Any]]) -> bool:
        table = _TABLES[file.signal]
        async with self._pool.acquire() as conn, conn.transaction():
            inserted = await conn.fetchval(
                f"INSERT INTO observe_cold_files ({_FILE_COLS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) "
                "ON CONFLICT (key) DO NOTHING RETURNING id",
                file.id,
                file.signal,
                file.day,
                file.project_id,
                file.key,
                file.rows,
                file.min_ts,
                file.max_ts,
                file.bytes,
            )
            if inserted is None:
                return False
            keys = {("t", r["trace_id"]) for r in rows if r.get("trace_id")}
            keys |= {("s", r["session_id"]) for r in rows if r.get("session_id")}
            if keys:
                await conn.copy_records_to_table(
                    "observe_cold_keys",
                    records=[(k, v, file.id) for k, v in keys],
                    columns=("kind", "value", "file_id"),
                )
            if file.signal == "points":
                await conn.execute(
                    "DELETE FROM metric_samples m USING unnest($1::uuid[], $2::timestamptz[]) AS d(s, t) "
                    "WHERE m.series_id = d.s AND m.ts = d.t AND m.ts >= $3 AND m.ts <= $4",
                    [r["series_id"] for r in rows],
                    [r["ts"] for r in rows],
                    file.min_ts,
                    file.max_ts,
                )
            else:
                await conn.execute(
                    f"DELETE FROM {table} WHERE ts >= $1 AND ts <= $2 AND id = ANY($3::bigint[])",
                    file.min_ts,
                    file.max_ts,
                    [r["id"] for r in rows],
                )
        return True

    async def drop_empty_partitions(self, older_than: datetime) -> int:
        dropped = 0
        async with self._pool.acquire() as conn:
            for table in _TABLES.values():
                parts = await conn.fetch(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = $1 AND c.relname ~ '_p[0-9]{8}$'",
                    table,
                )
                for (name,) in parts:
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
        conds = ["signal = $1"]
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
                f"SELECT {_FILE_COLS} FROM observe_cold_files WHERE {' AND '.join(conds)} ORDER BY min_ts", *args
            )
        return [_file(r) for r in rows]

    async def recorded(self, keys: list[str]) -> set[str]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch("SELECT key FROM observe_cold_files WHERE key = ANY($1::text[])", keys)
        return {r[0] for r in rows}

    async def expire(self, before: date) -> list[ColdFile]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(f"DELETE FROM observe_cold_files WHERE day < $1 RETURNING {_FILE_COLS}", before)
        return [_file(r) for r in rows]
