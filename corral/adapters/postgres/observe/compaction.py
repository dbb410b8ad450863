"""The manifest side of cold-tier compaction in PostgreSQL (observe_cold_files.retired_at, 045)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

import asyncpg

from corral.adapters.postgres.observe.archive import FILE_COLS, cold_file
from corral.adapters.postgres.observe.window import record_files
from corral.core.observe.ports import ColdFile, ColdGroup

__all__ = ["PostgresColdCompactionManifest"]

_GROUPS = f"""
WITH small AS (
    SELECT {FILE_COLS} FROM observe_cold_files
    WHERE signal = $1 AND day < $2 AND rows < $3 AND retired_at IS NULL
), groups AS (
    SELECT day, project_id FROM small GROUP BY day, project_id HAVING count(*) >= $4
    ORDER BY day, project_id NULLS FIRST LIMIT $5
)
SELECT s.* FROM small s JOIN groups g ON g.day = s.day AND g.project_id IS NOT DISTINCT FROM s.project_id
ORDER BY s.day, s.project_id NULLS FIRST, s.min_ts, s.key
"""


class _Abandon(Exception):
    """Rolls the replacing transaction back."""


class PostgresColdCompactionManifest:
    """ColdCompactionManifest over the cold-tier manifest tables."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def compactable(
        self, signal: str, before: date, max_rows: int, min_files: int, limit: int
    ) -> list[ColdGroup]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(_GROUPS, signal, before, max_rows, min_files, limit)
        groups: dict[tuple[date, uuid.UUID | None], list[ColdFile]] = {}
        for r in rows:
            f = cold_file(r)
            groups.setdefault((f.day, f.project_id), []).append(f)
        return [ColdGroup(signal, day, project, tuple(files)) for (day, project), files in groups.items()]

    async def replace(
        self, old: list[ColdFile], new: list[ColdFile], keys: list[frozenset[tuple[str, str]]], retired_at: datetime
    ) -> bool:
        ids = [f.id for f in old]
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                # lock in id order (a concurrent replace of overlapping files waits, then sees them retired)
                locked = await conn.fetch(
                    "SELECT id FROM observe_cold_files WHERE id = ANY($1::uuid[]) AND retired_at IS NULL "
                    "ORDER BY id FOR UPDATE",
                    ids,
                )
                if len(locked) != len(set(ids)):
                    raise _Abandon
                if await record_files(conn, new) != len(new):
                    raise _Abandon
                records = [(kind, value, f.id) for f, ks in zip(new, keys, strict=True) for kind, value in ks]
                if records:
                    await conn.copy_records_to_table(
                        "observe_cold_keys", records=records, columns=("kind", "value", "file_id")
                    )
                if ids:
                    # lookups join the keys to listed files only: a retired file's keys go with its purge
                    await conn.execute(
                        "UPDATE observe_cold_files SET retired_at = $2 WHERE id = ANY($1::uuid[])", ids, retired_at
                    )
        except _Abandon:
            return False
        return True

    async def purge_retired(self, retired_before: datetime) -> list[ColdFile]:
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                f"DELETE FROM observe_cold_files WHERE retired_at < $1 RETURNING {FILE_COLS}", retired_before
            )
            gone = [r[0] for r in rows]
            if gone:
                await conn.execute("DELETE FROM observe_cold_keys WHERE file_id = ANY($1::uuid[])", gone)
        return [cold_file(r) for r in rows]
