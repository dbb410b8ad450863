"""Leader election with a PostgreSQL session advisory lock on a dedicated connection."""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import AsyncIterator

import asyncpg

__all__ = ["PostgresLeaderLock"]


class PostgresLeaderLock:
    """LeaderLock: the lock lives as long as the connection, so a dead process releases it."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn

    @contextlib.asynccontextmanager
    async def lead(self, name: str) -> AsyncIterator[bool]:
        key = zlib.crc32(f"corral:{name}".encode())
        conn = await asyncpg.connect(self._dsn)
        try:
            got = bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", key))
            yield got
        finally:
            with contextlib.suppress(Exception):
                await conn.close()
