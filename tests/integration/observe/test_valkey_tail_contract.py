"""ValkeyLiveTail passes the LiveTail contract: one replica publishes, another serves the tails."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis

from corral.adapters.valkey_tail import ValkeyLiveTail
from corral.contracts.live_tail import LiveTailContract

pytestmark = pytest.mark.integration


class TestValkeyLiveTail(LiveTailContract):
    @pytest.fixture
    async def live_tails(self, valkey_url: str) -> AsyncIterator[tuple[ValkeyLiveTail, ValkeyLiveTail]]:
        publishing, serving = redis.from_url(valkey_url), redis.from_url(valkey_url)
        yield ValkeyLiveTail(publishing), ValkeyLiveTail(serving)
        await publishing.aclose()
        await serving.aclose()
