"""The S3 object store passes the ObjectStore contract against a real S3 server (SeaweedFS)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from corral.adapters.s3 import S3ObjectStore
from corral.contracts.objectstore import ObjectStoreContract
from corral.core.errors import Unavailable
from corral.core.storage.ports import ObjectStore


def _store(s3: Any, bucket: str, **overrides: Any) -> S3ObjectStore:
    options = {
        "endpoint": s3.endpoint,
        "bucket": bucket,
        "access_key": s3.access_key,
        "secret_key": s3.secret_key,
        "region": s3.region,
    }
    options.update(overrides)
    return S3ObjectStore(**options)


class TestS3ObjectStore(ObjectStoreContract):
    @pytest.fixture
    async def object_store(self, s3: Any, s3_bucket: str) -> AsyncIterator[S3ObjectStore]:
        async with _store(s3, s3_bucket) as store:
            yield store

    async def open_signed_url(
        self, store: Any, url: str, method: str = "GET", body: bytes | None = None
    ) -> tuple[bool, bytes | None]:
        async with aiohttp.ClientSession() as http, http.request(method, url, data=body) as response:
            payload = await response.read()
            if response.status in (401, 403):
                return False, None
            assert response.status in (200, 204), (response.status, payload[:300])
            return True, payload if method == "GET" else None

    @pytest.mark.xfail(
        strict=True,
        reason="SeaweedFS lists in directory order ('logs/a/1' before 'logs/a-2'); "
        "AWS S3 and MinIO list in UTF-8 byte order",
    )
    async def test_list_is_in_utf8_byte_order(self, object_store: ObjectStore) -> None:
        await super().test_list_is_in_utf8_byte_order(object_store)


async def test_multipart_stream_upload(s3: Any, s3_bucket: str) -> None:
    part = 5 * 1024 * 1024

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(11):  # 11 MiB in 1 MiB chunks: two full parts and a short last one
            yield bytes([i]) * (1024 * 1024)

    async with _store(s3, s3_bucket, part_size=part) as store:
        info = await store.put("multi/part.bin", chunks())
        assert info.size == 11 * 1024 * 1024
        head = await store.head("multi/part.bin")
        assert head.size == info.size
        tail = b"".join([c async for c in store.get("multi/part.bin", start=11 * 1024 * 1024 - 3)])
        assert tail == bytes([10]) * 3


async def test_missing_bucket_and_wrong_credentials_are_unavailable(s3: Any, s3_bucket: str) -> None:
    async with _store(s3, "no-such-bucket-corral") as store:
        with pytest.raises(Unavailable, match="does not exist"):
            await store.ping()
    async with _store(s3, s3_bucket, secret_key="wrong") as store:
        with pytest.raises(Unavailable, match="credentials") as err:
            await store.read("k")
        assert "wrong" not in str(err.value)


async def test_unreachable_endpoint_is_unavailable() -> None:
    store = S3ObjectStore(
        endpoint="http://127.0.0.1:9", bucket="b", access_key="a", secret_key="s", max_attempts=1
    )
    async with store:
        with pytest.raises(Unavailable, match="unreachable"):
            await store.ping()


async def test_ensure_bucket_is_idempotent(s3: Any) -> None:
    async with _store(s3, "corral-ensure-test") as store:
        await store.ensure_bucket()
        await store.ensure_bucket()
        await store.ping()
