"""The in-memory dedupe memory passes the RecentRequests contract (on a fake clock)."""

from __future__ import annotations

import pytest

from corral.contracts.recent_requests import RecentRequestsContract
from corral.fakes.clock import FakeClock
from corral.fakes.observe import InMemoryRecentRequests


class TestInMemoryRecentRequests(RecentRequestsContract):
    @pytest.fixture
    def recent_requests(self) -> InMemoryRecentRequests:
        self.clock = FakeClock()
        return InMemoryRecentRequests(clock=self.clock)

    async def let_time_pass(self, seconds: float) -> None:
        self.clock.advance(seconds)
