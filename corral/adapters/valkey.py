"""Valkey (Redis protocol) client construction: cache, pub/sub and live tails build on it."""

from __future__ import annotations

import redis.asyncio as redis
from redis import exceptions as redis_errors

__all__ = ["CONNECTION_ERRORS", "connect_valkey", "unsafe_eviction_policy"]

# Everything that means "Valkey is not reachable right now".
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.BusyLoadingError,
)


def connect_valkey(url: str) -> redis.Redis:
    """A pooled asyncio client for ``url`` (connections are opened lazily)."""
    return redis.Redis.from_url(url, socket_connect_timeout=2, health_check_interval=30)


async def unsafe_eviction_policy(client: redis.Redis) -> str | None:
    """The server's maxmemory policy when it may evict keys without a TTL (``allkeys-*``), else None.

    Corral's authz epoch key has no TTL and must survive (see adapters/embedded/valkey.py). Managed services
    often refuse CONFIG: then nothing can be said and None is returned."""
    try:
        config = await client.config_get("maxmemory-policy")
    except (redis.RedisError, OSError):
        return None
    policy = next(iter(config.values()), None) if config else None
    if isinstance(policy, bytes):
        policy = policy.decode()
    return policy if isinstance(policy, str) and policy.startswith("allkeys") else None
