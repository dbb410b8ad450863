"""ValkeyAuthzCache passes the AuthzCache contract: two replicas on one Valkey (entries expire on real time)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from corral.adapters.valkey import connect_valkey
from corral.adapters.valkey_authz import ValkeyAuthzCache
from corral.contracts.authz_cache import AuthzCacheContract
from corral.fakes.clock import FakeClock

pytestmark = pytest.mark.integration


class _WallClock(FakeClock):
    def now(self) -> datetime:
        return datetime.now(UTC)


class TestValkeyAuthzCache(AuthzCacheContract):
    @pytest.fixture
    def authz_clock(self) -> _WallClock:
        return _WallClock()

    @pytest.fixture
    async def authz_caches(
        self, valkey_url: str, authz_clock: _WallClock
    ) -> AsyncIterator[tuple[ValkeyAuthzCache, ValkeyAuthzCache]]:
        clients = [connect_valkey(valkey_url), connect_valkey(valkey_url)]
        caches = [ValkeyAuthzCache(client, authz_clock) for client in clients]
        for cache in caches:
            await cache.start()
        yield caches[0], caches[1]
        for cache in caches:
            await cache.aclose()
        for client in clients:
            await client.aclose()

    async def let_time_pass(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


async def test_an_entry_put_on_one_replica_is_served_by_another(valkey_url: str) -> None:
    clock = _WallClock()
    clients = [connect_valkey(valkey_url), connect_valkey(valkey_url)]
    a, b = (ValkeyAuthzCache(client, clock) for client in clients)
    try:
        await a.start()
        await b.start()
        user = uuid.uuid4()
        await a.put_permissions(user, None, frozenset({"project:read"}), clock.now() + timedelta(minutes=1),
                                a.generation())
        assert await b.get_permissions(user, None) == frozenset({"project:read"})
        assert (b.valkey_hits, b.lru_hits) == (1, 0)
        assert await b.get_permissions(user, None) == frozenset({"project:read"})
        assert b.lru_hits == 1  # then kept locally
    finally:
        for cache in (a, b):
            await cache.aclose()
        for client in clients:
            await client.aclose()
