"""Leader election with a PostgreSQL session advisory lock on a dedicated connection."""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import AsyncIterator

import asyncpg

from corral.adapters.postgres.errors import CONNECTION_ERRORS, unavailable

__all__ = ["PostgresLeaderLock"]


class PostgresLeaderLock:
    """LeaderLock: the lock lives as long as the connection, so a dead process releases it."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._held: dict[str, asyncpg.Connection] = {}

    def holds(self, name: str) -> bool:
        """Whether the lock taken by ``lead(name)`` is still held: False once PostgreSQL ended the session
        (the socket closed: a terminated backend, a restarted server). Costs no round trip, so a long pass can ask
        between steps; a silently lost network is only noticed when the connection is next used."""
        conn = self._held.get(name)
        return conn is not None and not conn.is_closed()

    @contextlib.asynccontextmanager
    async def lead(self, name: str) -> AsyncIterator[bool]:
        key = zlib.crc32(f"corral:{name}".encode())
        try:  # PostgreSQL down: Unavailable, as every store says it (the loops log an outage once)
            conn = await asyncpg.connect(self._dsn)
        except CONNECTION_ERRORS as exc:
            raise unavailable(exc) from exc
        try:
            try:
                got = bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", key))
            except CONNECTION_ERRORS as exc:
                raise unavailable(exc) from exc
            if got:
                self._held[name] = conn
            yield got
        finally:
            if self._held.get(name) is conn:
                del self._held[name]
            with contextlib.suppress(Exception):
                await conn.close()
