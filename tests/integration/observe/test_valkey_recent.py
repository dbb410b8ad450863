import pytest
import redis.asyncio as redis

from corral.adapters.valkey_recent import ValkeyRecentRequests

pytestmark = pytest.mark.integration


async def test_fingerprints_live_in_valkey_with_their_ttl(valkey_url):
    client = redis.from_url(valkey_url)
    try:
        recent = ValkeyRecentRequests(client)
        assert not await recent.seen("abc")
        await recent.remember("abc", 600)
        assert await recent.seen("abc")
        assert 0 < await client.ttl("corral:otlp:seen:abc") <= 600
        assert await ValkeyRecentRequests(client).seen("abc")  # another replica sees it too
    finally:
        await client.aclose()


async def test_valkey_trouble_never_blocks_ingest():
    client = redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    try:
        recent = ValkeyRecentRequests(client)
        await recent.remember("abc", 600)
        assert not await recent.seen("abc")
    finally:
        await client.aclose()
