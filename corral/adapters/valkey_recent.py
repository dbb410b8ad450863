"""Fingerprints of recently stored OTLP requests in Valkey (shared by every replica)."""

from __future__ import annotations

import logging

import redis.asyncio as redis

__all__ = ["ValkeyRecentRequests"]

log = logging.getLogger(__name__)


class ValkeyRecentRequests:
    """RecentRequests: one key per fingerprint with a TTL. Valkey trouble never blocks ingest:
    ``seen`` then answers False (the request is stored, maybe twice) and ``remember`` is skipped."""

    def __init__(self, client: redis.Redis, prefix: str = "corral:otlp:seen:") -> None:
        self._client = client
        self._prefix = prefix

    async def seen(self, key: str) -> bool:
        try:
            return bool(await self._client.exists(self._prefix + key))
        except (redis.RedisError, OSError) as exc:
            log.warning("cannot check OTLP request fingerprints in Valkey: %s", exc)
            return False

    async def remember(self, key: str, ttl_seconds: int) -> None:
        try:
            await self._client.set(self._prefix + key, b"1", ex=ttl_seconds)
        except (redis.RedisError, OSError) as exc:
            log.warning("cannot record an OTLP request fingerprint in Valkey: %s", exc)
