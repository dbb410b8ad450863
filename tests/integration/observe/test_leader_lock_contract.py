"""PostgresLeaderLock passes the LeaderLock contract; a holder whose connection dies loses the lock."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from corral.adapters.postgres.observe import PostgresLeaderLock
from corral.contracts.leader_lock import LeaderLockContract

pytestmark = pytest.mark.integration


class TestPostgresLeaderLock(LeaderLockContract):
    @pytest.fixture
    def leader_locks(self, pg_dsn: str) -> tuple[PostgresLeaderLock, PostgresLeaderLock]:
        return PostgresLeaderLock(pg_dsn), PostgresLeaderLock(pg_dsn)  # two replicas, one database


async def test_takeover_after_the_holders_connection_dies(pg_dsn: str) -> None:
    a, b = PostgresLeaderLock(pg_dsn), PostgresLeaderLock(pg_dsn)
    admin = await asyncpg.connect(pg_dsn)
    try:
        async with a.lead("rotation") as first:
            assert first is True
            async with b.lead("rotation") as second:
                assert second is False
            holders = await admin.fetch("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted")
            assert len(holders) == 1
            # the holder's process dies: PostgreSQL ends its session (as on a crash or a lost network)
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", holders[0]["pid"]) is True
            for _ in range(50):
                if not await admin.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"):
                    break
                await asyncio.sleep(0.05)
            async with b.lead("rotation") as takeover:
                assert takeover is True
    finally:
        await admin.close()
