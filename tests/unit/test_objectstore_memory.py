"""The in-memory object store passes the ObjectStore contract; its signed URLs expire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from corral.contracts.objectstore import ObjectStoreContract, open_locally_signed_url
from corral.core.errors import Unavailable
from corral.fakes.objectstore import InMemoryObjectStore


class _StoppedClock:
    def __init__(self) -> None:
        self.current = datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def monotonic(self) -> float:
        return self.current.timestamp()


class TestInMemoryObjectStore(ObjectStoreContract):
    @pytest.fixture
    def object_store(self) -> InMemoryObjectStore:
        return InMemoryObjectStore()

    async def open_signed_url(
        self, store: Any, url: str, method: str = "GET", body: bytes | None = None
    ) -> tuple[bool, bytes | None]:
        return await open_locally_signed_url(store, url, method, body)


async def test_signed_url_expires() -> None:
    clock = _StoppedClock()
    store = InMemoryObjectStore(clock=clock)
    await store.put("k", b"v")
    url = await store.signed_url("k", expires_in=60)
    query = dict(parse_qsl(urlsplit(url).query))
    assert store.verify_signed("k", "GET", query["expires"], query["signature"])
    assert store.verify_signed("k", "HEAD", query["expires"], query["signature"])
    assert not store.verify_signed("other", "GET", query["expires"], query["signature"])
    assert not store.verify_signed("k", "GET", str(int(query["expires"]) + 1), query["signature"])
    clock.current += timedelta(seconds=61)
    assert not store.verify_signed("k", "GET", query["expires"], query["signature"])


async def test_unavailable_switch_and_call_log() -> None:
    store = InMemoryObjectStore()
    await store.put("k", b"v")
    await store.delete("k")
    assert store.calls == [("put", "k"), ("delete", "k")]
    store.unavailable = True
    with pytest.raises(Unavailable):
        await store.ping()
