"""The local-filesystem object store passes the ObjectStore contract, and keeps its on-disk promises."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from corral.adapters.localfs import LocalFsObjectStore
from corral.contracts.objectstore import ObjectStoreContract, open_locally_signed_url

KEY = b"0123456789abcdef-test-signing-key"


class TestLocalFsObjectStore(ObjectStoreContract):
    @pytest.fixture
    def object_store(self, tmp_path: Path) -> LocalFsObjectStore:
        return LocalFsObjectStore(tmp_path / "objects", KEY, "http://corral.test:8080/")

    async def open_signed_url(
        self, store: Any, url: str, method: str = "GET", body: bytes | None = None
    ) -> tuple[bool, bytes | None]:
        return await open_locally_signed_url(store, url, method, body)


class _StoppedClock:
    def __init__(self) -> None:
        self.current = datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def monotonic(self) -> float:
        return 0.0


async def test_signed_url_form_and_expiry(tmp_path: Path) -> None:
    clock = _StoppedClock()
    store = LocalFsObjectStore(tmp_path, KEY, "https://corral.example/", clock=clock)
    url = await store.signed_url("a b/c.txt", expires_in=30)
    parts = urlsplit(url)
    assert (
        f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://corral.example/api/v1/objects/a%20b/c.txt"
    )
    query = dict(parse_qsl(parts.query))
    assert query["expires"] == str(int(clock.current.timestamp()) + 30)
    assert store.verify_signed("a b/c.txt", "GET", query["expires"], query["signature"])
    assert not store.verify_signed("a b/c.txt", "PUT", query["expires"], query["signature"])
    assert not store.verify_signed("a b/c.txt", "GET", "not-a-number", query["signature"])
    other_key = LocalFsObjectStore(
        tmp_path, b"another-signing-key-0123", "https://corral.example", clock=clock
    )
    assert not other_key.verify_signed("a b/c.txt", "GET", query["expires"], query["signature"])
    clock.current += timedelta(seconds=31)
    assert not store.verify_signed("a b/c.txt", "GET", query["expires"], query["signature"])


async def test_failed_stream_leaves_no_object_and_no_temp_file(tmp_path: Path) -> None:
    store = LocalFsObjectStore(tmp_path, KEY, "http://x")
    await store.put("k", b"old")

    async def broken() -> AsyncIterator[bytes]:
        yield b"new" * 1_000_000
        raise RuntimeError("client went away")

    with pytest.raises(RuntimeError):
        await store.put("k", broken())
    assert await store.read("k") == b"old"
    assert os.listdir(tmp_path / "#staging") == []


async def test_delete_prunes_empty_directories(tmp_path: Path) -> None:
    store = LocalFsObjectStore(tmp_path, KEY, "http://x")
    await store.put("a/b/c/d", b"1")
    await store.put("a/x", b"2")
    await store.delete("a/b/c/d")
    assert sorted(os.listdir(tmp_path / "a@")) == ["x"]


async def test_stray_files_are_not_listed(tmp_path: Path) -> None:
    store = LocalFsObjectStore(tmp_path, KEY, "http://x")
    await store.put("dir/k", b"1")
    (tmp_path / "dir@" / "#leftover").write_bytes(b"")
    (tmp_path / "stray-dir").mkdir()
    listing = await store.list()
    assert [o.key for o in listing.objects] == ["dir/k"]
