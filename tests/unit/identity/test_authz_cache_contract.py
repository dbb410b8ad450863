"""The in-memory authz cache passes the AuthzCache contract (two replicas on one bus, a fake clock)."""

from __future__ import annotations

import pytest

from corral.contracts.authz_cache import AuthzCacheContract
from corral.fakes.clock import FakeClock
from corral.fakes.identity_services import InMemoryAuthzCache, InMemoryCacheBus


class TestInMemoryAuthzCache(AuthzCacheContract):
    @pytest.fixture
    def authz_clock(self) -> FakeClock:
        self.clock = FakeClock()
        return self.clock

    @pytest.fixture
    def authz_caches(self, authz_clock: FakeClock) -> tuple[InMemoryAuthzCache, InMemoryAuthzCache]:
        bus = InMemoryCacheBus()
        return InMemoryAuthzCache(authz_clock, bus), InMemoryAuthzCache(authz_clock, bus)

    async def let_time_pass(self, seconds: float) -> None:
        self.clock.advance(seconds)
