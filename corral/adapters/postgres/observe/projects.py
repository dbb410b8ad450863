"""``owner/name`` ↔ project id from the projects and users tables, cached (asked on the ingest path)."""

from __future__ import annotations

import time
import uuid

import asyncpg

__all__ = ["PostgresProjectDirectory"]

_UNKNOWN = object()
_TTL = 60.0


class PostgresProjectDirectory:
    """ProjectDirectory; answers are cached for a minute (a renamed project is seen within that)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._ids: dict[str, tuple[float, uuid.UUID | None]] = {}
        self._paths: dict[uuid.UUID, tuple[float, str | None]] = {}

    def cached(self, path: str) -> uuid.UUID | object | None:
        hit = self._ids.get(path)
        if hit is None or hit[0] < time.monotonic():
            return _UNKNOWN
        return hit[1]

    async def resolve(self, paths: set[str]) -> None:
        pairs = [p.split("/", 1) for p in paths if p.count("/") == 1]
        found: dict[str, uuid.UUID] = {}
        try:
            async with self._pool.acquire() as conn:
                rows = await conn.fetch(
                    "SELECT u.name || '/' || p.name, p.id FROM projects p JOIN users u ON u.id = p.owner_id "
                    "WHERE (u.name, p.name) IN (SELECT * FROM unnest($1::text[], $2::text[]))",
                    [a for a, _ in pairs],
                    [b for _, b in pairs],
                )
            found = {r[0]: r[1] for r in rows}
        except asyncpg.UndefinedTableError:  # projects not installed: no path names a project
            found = {}
        expires = time.monotonic() + _TTL
        for p in paths:
            self._ids[p] = (expires, found.get(p))

    async def id_of(self, path: str) -> uuid.UUID | None:
        await self.resolve({path})
        value = self.cached(path)
        return value if isinstance(value, uuid.UUID) else None

    async def path_of(self, project_id: uuid.UUID) -> str | None:
        hit = self._paths.get(project_id)
        if hit is not None and hit[0] >= time.monotonic():
            return hit[1]
        try:
            async with self._pool.acquire() as conn:
                path = await conn.fetchval(
                    "SELECT u.name || '/' || p.name FROM projects p JOIN users u ON u.id = p.owner_id WHERE p.id = $1",
                    project_id,
                )
        except asyncpg.UndefinedTableError:
            path = None
        self._paths[project_id] = (time.monotonic() + _TTL, path)
        return path
