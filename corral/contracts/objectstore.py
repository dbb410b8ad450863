"""ObjectStoreContract: the behaviour every ObjectStore must show.

Subclass it once per implementation and provide:

- a fixture ``object_store`` returning an empty store;
- ``open_signed_url(store, url, method="GET", body=None)``: follow a URL made by
  ``signed_url`` the way an anonymous client would and return ``(allowed, body)``.
  Stores served by Corral itself use ``open_locally_signed_url`` (their ``verify_signed``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import pytest

from corral.core.errors import InvalidInput, NotFound
from corral.core.storage.ports import ObjectStore
from corral.core.storage.signing import OBJECT_ROUTE

__all__ = ["ObjectStoreContract", "open_locally_signed_url", "tamper_signature"]

INVALID_KEYS = ["", "/abs", "a//b", "a/", "a/../b", "../x", "./x", "a\x00b", "a\\b", "x" * 1025]


async def _stream(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        await asyncio.sleep(0)
        yield chunk


async def _collect(iterator: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in iterator])


def tamper_signature(url: str) -> str:
    """The same URL with one character of its signature query parameter changed."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    changed = []
    for name, value in query:
        if name.lower().endswith("signature") and value:
            value = value[:-1] + ("0" if value[-1] != "0" else "1")
        changed.append((name, value))
    assert changed != query, f"no signature parameter in {url}"
    return urlunsplit(parts._replace(query=urlencode(changed)))


async def open_locally_signed_url(
    store: Any, url: str, method: str = "GET", body: bytes | None = None
) -> tuple[bool, bytes | None]:
    """What the ``/api/v1/objects/{key}`` route does with a URL, using the store's ``verify_signed``."""
    parts = urlsplit(url)
    assert OBJECT_ROUTE in parts.path, url
    key = unquote(parts.path.split(OBJECT_ROUTE, 1)[1])
    query = dict(parse_qsl(parts.query))
    if not store.verify_signed(key, method, query.get("expires", ""), query.get("signature", "")):
        return False, None
    if method == "PUT":
        await store.put(key, body or b"")
        return True, None
    return True, await store.read(key)


class ObjectStoreContract:
    """Behaviour of ObjectStore (see the module docstring for what a subclass provides)."""

    async def open_signed_url(
        self, store: Any, url: str, method: str = "GET", body: bytes | None = None
    ) -> tuple[bool, bytes | None]:
        raise NotImplementedError

    # ------------------------------------------------------------------------------------ put / read

    async def test_put_bytes_then_read(self, object_store: ObjectStore) -> None:
        info = await object_store.put("a/b/c.txt", b"hello", content_type="text/plain")
        assert (info.key, info.size) == ("a/b/c.txt", 5)
        assert await object_store.read("a/b/c.txt") == b"hello"

    async def test_put_stream(self, object_store: ObjectStore) -> None:
        chunks = [bytes([i]) * 70_000 for i in range(5)]
        info = await object_store.put("streamed.bin", _stream(*chunks))
        assert info.size == 350_000
        assert await object_store.read("streamed.bin") == b"".join(chunks)

    async def test_put_empty(self, object_store: ObjectStore) -> None:
        await object_store.put("empty", b"")
        assert await object_store.read("empty") == b""
        assert await _collect(object_store.get("empty")) == b""
        assert (await object_store.head("empty")).size == 0

    async def test_get_streams_in_chunks(self, object_store: ObjectStore) -> None:
        data = bytes(range(256)) * 4096  # 1 MiB
        await object_store.put("big.bin", data)
        chunks = [chunk async for chunk in object_store.get("big.bin")]
        assert b"".join(chunks) == data
        assert len(chunks) > 1

    async def test_ranged_get(self, object_store: ObjectStore) -> None:
        await object_store.put("r.txt", b"0123456789")
        assert await _collect(object_store.get("r.txt", start=2, end=5)) == b"2345"
        assert await _collect(object_store.get("r.txt", start=7)) == b"789"
        assert await _collect(object_store.get("r.txt", end=2)) == b"012"
        assert await _collect(object_store.get("r.txt", start=8, end=100)) == b"89"

    async def test_unsatisfiable_range_is_invalid_input(self, object_store: ObjectStore) -> None:
        await object_store.put("r.txt", b"0123456789")
        for start, end in [(10, None), (5, 2), (-1, 3)]:
            with pytest.raises(InvalidInput) as err:
                await _collect(object_store.get("r.txt", start=start, end=end))
            assert err.value.field == "range"

    async def test_overwrite_replaces_content_and_etag(self, object_store: ObjectStore) -> None:
        first = await object_store.put("k", b"first version")
        second = await object_store.put("k", b"second")
        assert await object_store.read("k") == b"second"
        head = await object_store.head("k")
        assert head.size == 6
        assert first.etag is not None
        assert head.etag is not None
        assert head.etag != first.etag
        assert second.etag == head.etag

    async def test_concurrent_overwrites_are_atomic(self, object_store: ObjectStore) -> None:
        size = 300_000
        versions = {bytes([65 + i]) * size for i in range(4)}
        await object_store.put("hot", next(iter(versions)))

        async def writer(fill: bytes) -> None:
            for _ in range(3):
                await object_store.put("hot", _stream(fill[: size // 3], fill[size // 3 :]))

        async def reader() -> list[bytes]:
            return [await object_store.read("hot") for _ in range(6)]

        results = await asyncio.gather(*(writer(v) for v in versions), reader(), reader())
        seen = [body for batch in results if batch for body in batch]
        assert seen
        assert all(body in versions for body in seen), "a reader saw a mix of two versions"

    async def test_head(self, object_store: ObjectStore) -> None:
        await object_store.put("docs/readme.md", b"# hi", content_type="text/markdown")
        info = await object_store.head("docs/readme.md")
        assert (info.key, info.size, info.content_type) == ("docs/readme.md", 4, "text/markdown")
        assert info.modified_at.tzinfo is not None

    async def test_exists(self, object_store: ObjectStore) -> None:
        assert not await object_store.exists("x/y")
        await object_store.put("x/y", b"1")
        assert await object_store.exists("x/y")
        assert not await object_store.exists("x")  # no directories

    async def test_key_and_nested_key_coexist(self, object_store: ObjectStore) -> None:
        await object_store.put("a", b"file a")
        await object_store.put("a/b", b"file a/b")
        assert await object_store.read("a") == b"file a"
        assert await object_store.read("a/b") == b"file a/b"
        await object_store.delete("a")
        assert await object_store.read("a/b") == b"file a/b"

    async def test_unusual_but_valid_keys(self, object_store: ObjectStore) -> None:
        keys = ["sp ace/ü-ñ.txt", "pct%20/x", "at@/y", "hash#/z", "q?=&/w", "~tilde/.hidden", "..../x"]
        for key in keys:
            await object_store.put(key, key.encode())
        for key in keys:
            assert await object_store.read(key) == key.encode()
        listed = await object_store.list()
        assert sorted(o.key for o in listed.objects) == sorted(keys)

    # ------------------------------------------------------------------------------------ errors

    async def test_missing_key_is_not_found(self, object_store: ObjectStore) -> None:
        with pytest.raises(NotFound):
            await object_store.read("nope")
        with pytest.raises(NotFound):
            await object_store.head("nope")
        with pytest.raises(NotFound):
            await _collect(object_store.get("nope"))
        with pytest.raises(NotFound):
            await _collect(object_store.get("nope", start=1, end=2))

    @pytest.mark.parametrize("key", INVALID_KEYS)
    async def test_invalid_key_is_invalid_input(self, object_store: ObjectStore, key: str) -> None:
        with pytest.raises(InvalidInput) as err:
            await object_store.put(key, b"x")
        assert err.value.field == "key"
        for call in (
            object_store.read,
            object_store.head,
            object_store.exists,
            object_store.delete,
            object_store.signed_url,
        ):
            with pytest.raises(InvalidInput):
                await call(key)
        with pytest.raises(InvalidInput):
            await _collect(object_store.get(key))
        assert (await object_store.list()).objects == []

    async def test_invalid_list_arguments(self, object_store: ObjectStore) -> None:
        for limit in (0, -1, 1001):
            with pytest.raises(InvalidInput) as err:
                await object_store.list(limit=limit)
            assert err.value.field == "limit"
        with pytest.raises(InvalidInput):
            await object_store.list("/abs")

    # ------------------------------------------------------------------------------------ list

    async def test_list_with_prefix(self, object_store: ObjectStore) -> None:
        for key in ["logs/b", "logs/a/1", "logs-x", "log", "other/logs/c", "logs/a-2"]:
            await object_store.put(key, b"x")
        listing = await object_store.list("logs/")
        assert sorted(o.key for o in listing.objects) == ["logs/a-2", "logs/a/1", "logs/b"]
        assert listing.next_token is None
        partial = await object_store.list("logs/a")
        assert sorted(o.key for o in partial.objects) == ["logs/a-2", "logs/a/1"]
        everything = await object_store.list()
        assert sorted(o.key for o in everything.objects) == [
            "log",
            "logs-x",
            "logs/a-2",
            "logs/a/1",
            "logs/b",
            "other/logs/c",
        ]
        assert all(o.size == 1 for o in everything.objects)
        assert (await object_store.list("nothing/")).objects == []

    async def test_list_is_in_utf8_byte_order(self, object_store: ObjectStore) -> None:
        keys = ["logs/b", "logs/a/1", "logs-x", "log", "logs/a-2", "logs/a", "logs/a.b", "logs/é", "logs/z"]
        for key in keys:
            await object_store.put(key, b"x")
        listed = [o.key for o in (await object_store.list()).objects]
        assert listed == sorted(keys, key=lambda k: k.encode())
        paged: list[str] = []
        token: str | None = None
        while True:
            page = await object_store.list("logs", limit=2, token=token)
            paged += [o.key for o in page.objects]
            if (token := page.next_token) is None:
                break
        assert paged == [k for k in listed if k.startswith("logs")]

    async def test_list_paginates(self, object_store: ObjectStore) -> None:
        keys = sorted(f"p/{i // 5}/{i:03d}" for i in range(23))
        await asyncio.gather(*(object_store.put(k, k.encode()) for k in keys))
        await object_store.put("q/outside", b"x")
        seen: list[str] = []
        token: str | None = None
        pages = 0
        while True:
            page = await object_store.list("p/", limit=10, token=token)
            pages += 1
            assert len(page.objects) <= 10
            seen += [o.key for o in page.objects]
            token = page.next_token
            if token is None:
                break
        assert seen == keys
        assert pages == 3

    async def test_list_rejects_a_foreign_token(self, object_store: ObjectStore) -> None:
        await object_store.put("a", b"x")
        with pytest.raises(InvalidInput) as err:
            await object_store.list(token="not-a-token-from-us")
        assert err.value.field == "token"

    # ------------------------------------------------------------------------------------ delete

    async def test_delete_is_idempotent(self, object_store: ObjectStore) -> None:
        await object_store.put("d/x", b"1")
        await object_store.put("d/y", b"2")
        await object_store.delete("d/x")
        await object_store.delete("d/x")
        await object_store.delete("never/existed")
        assert not await object_store.exists("d/x")
        assert [o.key for o in (await object_store.list("d/")).objects] == ["d/y"]

    # ------------------------------------------------------------------------------------ URLs, health

    async def test_move_if_absent(self, object_store: ObjectStore) -> None:
        await object_store.put("staging/one", b"first", content_type="text/plain")
        assert await object_store.move_if_absent("staging/one", "final/x") is True
        assert await object_store.read("final/x") == b"first"
        assert (await object_store.head("final/x")).size == 5
        assert not await object_store.exists("staging/one")
        await object_store.put("staging/two", b"second!")
        assert await object_store.move_if_absent("staging/two", "final/x") is False  # never replaced
        assert await object_store.read("final/x") == b"first"
        assert not await object_store.exists("staging/two")  # the source goes either way
        with pytest.raises(NotFound):
            await object_store.move_if_absent("staging/none", "final/y")
        assert not await object_store.exists("final/y")

    async def test_signed_get_url(self, object_store: ObjectStore) -> None:
        await object_store.put("share/report.txt", b"signed content")
        url = await object_store.signed_url("share/report.txt", expires_in=600)
        assert await self.open_signed_url(object_store, url) == (True, b"signed content")
        allowed, _ = await self.open_signed_url(object_store, tamper_signature(url))
        assert not allowed

    async def test_signed_put_url(self, object_store: ObjectStore) -> None:
        url = await object_store.signed_url("uploads/new.bin", method="PUT")
        allowed, _ = await self.open_signed_url(object_store, url, "PUT", b"uploaded")
        assert allowed
        assert await object_store.read("uploads/new.bin") == b"uploaded"
        allowed, _ = await self.open_signed_url(object_store, url, "GET")
        assert not allowed  # a PUT grant is not a GET grant

    async def test_signed_url_arguments_are_validated(self, object_store: ObjectStore) -> None:
        with pytest.raises(InvalidInput) as err:
            await object_store.signed_url("k", method="DELETE")
        assert err.value.field == "method"
        for expires_in in (0, 7 * 24 * 3600 + 1):
            with pytest.raises(InvalidInput) as err:
                await object_store.signed_url("k", expires_in=expires_in)
            assert err.value.field == "expires_in"

    async def test_ping(self, object_store: ObjectStore) -> None:
        await object_store.ping()

    async def test_abandoned_stream_releases(self, object_store: ObjectStore) -> None:
        await object_store.put("big", b"z" * 600_000)
        for _ in range(40):  # more than a connection pool holds: early-closed streams must give theirs back
            stream = object_store.get("big")
            async with contextlib.aclosing(stream):  # type: ignore[type-var]
                first = await anext(stream)
                assert first.startswith(b"z")
        assert len(await object_store.read("big")) == 600_000
