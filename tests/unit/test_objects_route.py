"""Signed object links served by Corral: GET/HEAD with ranges, PUT, and refusal of bad or expired links."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer

from corral.core.storage.ports import ObjectStore
from corral.entrypoints.web.app import create_app
from corral.fakes.objectstore import InMemoryObjectStore
from tests.unit.webstub import StubPlatform


class StoppedClock:
    def __init__(self) -> None:
        self.current = datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def monotonic(self) -> float:
        return 0.0


@pytest.fixture
def clock() -> StoppedClock:
    return StoppedClock()


@pytest.fixture
def store(clock: StoppedClock) -> InMemoryObjectStore:
    return InMemoryObjectStore(base_url="http://corral.test", clock=clock)


@pytest.fixture
async def client(store: InMemoryObjectStore) -> AsyncIterator[TestClient]:
    platform = StubPlatform()
    platform.container.register(ObjectStore, instance=store)
    client = TestClient(TestServer(create_app(platform)))
    await client.start_server()
    yield client
    await client.close()


def _local(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def test_get_head_and_ranges(client: TestClient, store: InMemoryObjectStore) -> None:
    await store.put("builds/7/log file.txt", b"0123456789", content_type="text/plain")
    url = _local(await store.signed_url("builds/7/log file.txt"))
    response = await client.get(url)
    assert response.status == 200
    assert await response.read() == b"0123456789"
    assert response.headers["Content-Type"].startswith("text/plain")
    assert response.headers["ETag"]
    head = await client.head(url)
    assert (head.status, head.headers["Content-Length"]) == (200, "10")
    ranged = await client.get(url, headers={"Range": "bytes=2-4"})
    assert (ranged.status, await ranged.read()) == (206, b"234")
    assert ranged.headers["Content-Range"] == "bytes 2-4/10"
    suffix = await client.get(url, headers={"Range": "bytes=-3"})
    assert (suffix.status, await suffix.read()) == (206, b"789")
    beyond = await client.get(url, headers={"Range": "bytes=10-"})
    assert beyond.status == 416


async def test_bad_expired_or_misused_links_are_refused(
    client: TestClient, store: InMemoryObjectStore, clock: StoppedClock
) -> None:
    await store.put("secret.bin", b"x")
    url = _local(await store.signed_url("secret.bin", expires_in=60))
    tampered = url[:-1] + ("0" if url[-1] != "0" else "1")
    assert (await client.get(tampered)).status == 403
    assert (await client.get(url.split("?")[0])).status == 403
    assert (await client.put(url, data=b"overwrite")).status == 403  # a GET link does not allow PUT
    other_key = url.replace("secret.bin", "other.bin")
    assert (await client.get(other_key)).status == 403
    clock.current += timedelta(seconds=61)
    response = await client.get(url)
    assert response.status == 403
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert await store.read("secret.bin") == b"x"


async def test_put_link_stores_the_body(client: TestClient, store: InMemoryObjectStore) -> None:
    url = _local(await store.signed_url("uploads/a.bin", method="PUT"))
    response = await client.put(url, data=b"payload" * 1000, headers={"Content-Type": "application/x-test"})
    assert response.status == 201
    assert (await response.json())["size"] == 7000
    assert await store.read("uploads/a.bin") == b"payload" * 1000
    assert (await store.head("uploads/a.bin")).content_type == "application/x-test"


async def test_missing_object_is_404(client: TestClient, store: InMemoryObjectStore) -> None:
    url = _local(await store.signed_url("never/put"))
    assert (await client.get(url)).status == 404


async def test_a_store_without_local_links_answers_404(store: InMemoryObjectStore) -> None:
    class S3Like:  # presigned URLs point at S3 itself: Corral serves nothing here
        pass

    platform = StubPlatform()
    platform.container.register(ObjectStore, instance=S3Like())
    client = TestClient(TestServer(create_app(platform)))
    await client.start_server()
    try:
        url = _local(await store.signed_url("k"))
        assert (await client.get(url)).status == 404
    finally:
        await client.close()
