"""Live tail of telemetry over Valkey pub/sub (every replica publishes, every replica can serve a tail)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as redis

__all__ = ["ValkeyLiveTail"]

log = logging.getLogger(__name__)
CHANNEL = "corral:observe:tail"


class ValkeyLiveTail:
    """LiveTail. Publishing is skipped while nobody listens anywhere (checked at most once a second),
    so a busy ingest pays nothing for tails that are not open."""

    def __init__(self, client: redis.Redis, channel: str = CHANNEL, max_per_publish: int = 2000) -> None:
        self._client = client
        self._channel = channel
        self._max = max_per_publish
        self._listeners = 0
        self._checked = 0.0

    async def listening(self) -> bool:
        now = time.monotonic()
        if now - self._checked > 1.0:
            self._checked = now
            try:
                counts = await self._client.pubsub_numsub(self._channel)
                self._listeners = int(counts[0][1]) if counts else 0
            except (redis.RedisError, OSError):
                self._listeners = 0
        return self._listeners > 0

    async def publish(self, items: list[dict[str, Any]]) -> None:
        if not items or not await self.listening():
            return
        try:
            await self._client.publish(self._channel, json.dumps(items[-self._max :], default=str))
        except (redis.RedisError, OSError) as exc:
            log.debug("live tail publish failed: %s", exc)

    async def subscribe(self) -> AsyncIterator[dict[str, Any]]:
        pubsub = self._client.pubsub()
        await pubsub.subscribe(self._channel)
        self._checked = 0.0
        try:
            async for message in pubsub.listen():
                if message.get("type") != "message":
                    continue
                for item in json.loads(message["data"]):
                    yield item
        finally:
            await pubsub.unsubscribe(self._channel)
            await pubsub.aclose()
