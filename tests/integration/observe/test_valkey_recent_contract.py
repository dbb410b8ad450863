"""ValkeyRecentRequests passes the RecentRequests contract (real Valkey TTLs, so real time passes)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis

from corral.adapters.valkey_recent import ValkeyRecentRequests
from corral.contracts.recent_requests import RecentRequestsContract

pytestmark = pytest.mark.integration


class TestValkeyRecentRequests(RecentRequestsContract):
    @pytest.fixture
    async def recent_requests(self, valkey_url: str) -> AsyncIterator[ValkeyRecentRequests]:
        client = redis.from_url(valkey_url)
        yield ValkeyRecentRequests(client)
        await client.aclose()

    async def let_time_pass(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
