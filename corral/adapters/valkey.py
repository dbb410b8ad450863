"""Valkey (Redis protocol) client construction: cache, pub/sub and live tails build on it."""

from __future__ import annotations

import redis.asyncio as redis

__all__ = ["connect_valkey"]


def connect_valkey(url: str) -> redis.Redis:
    """A pooled asyncio client for ``url`` (connections are opened lazily)."""
    return redis.Redis.from_url(url, socket_connect_timeout=2, health_check_interval=30)
