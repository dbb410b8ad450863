"""InMemoryObjectStore: the ObjectStore port on a dict, for unit tests and ``corral serve --memory``."""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import attrs

from corral.core.clock import Clock
from corral.core.errors import NotFound, Unavailable
from corral.core.storage.keys import (
    check_range,
    decode_list_token,
    encode_list_token,
    resolve_range,
    validate_key,
    validate_limit,
    validate_prefix,
)
from corral.core.storage.ports import ObjectInfo, ObjectListing
from corral.core.storage.signing import ObjectUrlSigner

__all__ = ["InMemoryObjectStore"]

_CHUNK = 64 * 1024


@attrs.frozen
class _Stored:
    data: bytes
    info: ObjectInfo


@attrs.define
class InMemoryObjectStore:
    """Objects in a dict. Signed URLs use the same scheme as the local store (see ``verify_signed``).

    ``calls`` records the operations performed (``("put", key)``, ...), so tests can assert on them.
    """

    signing_key: bytes = attrs.field(default=b"in-memory-object-store-key", repr=False)
    base_url: str = "memory://corral"
    clock: Clock | None = None
    unavailable: bool = False  # set True to make every call raise Unavailable (readiness tests)
    calls: list[tuple[str, str]] = attrs.field(factory=list)
    _objects: dict[str, _Stored] = attrs.field(factory=dict, init=False)
    _keys: list[str] = attrs.field(factory=list, init=False)  # sorted
    _signer: ObjectUrlSigner = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._signer = ObjectUrlSigner(self.signing_key, self.base_url, self.clock)

    def _now(self) -> datetime:
        return self.clock.now() if self.clock is not None else datetime.now(UTC)

    def _check_up(self) -> None:
        if self.unavailable:
            raise Unavailable("the in-memory object store was switched off for this test")

    def _lookup(self, key: str) -> _Stored:
        stored = self._objects.get(key)
        if stored is None:
            raise NotFound(f"object {key!r} does not exist")
        return stored

    async def put(
        self, key: str, data: bytes | AsyncIterator[bytes], *, content_type: str | None = None
    ) -> ObjectInfo:
        validate_key(key)
        self._check_up()
        if isinstance(data, (bytes, bytearray, memoryview)):
            body = bytes(data)
        else:
            parts = [bytes(chunk) async for chunk in data]
            body = b"".join(parts)
        info = ObjectInfo(
            key=key,
            size=len(body),
            modified_at=self._now(),
            etag=hashlib.md5(body, usedforsecurity=False).hexdigest(),
            content_type=content_type,
        )
        if key not in self._objects:
            bisect.insort(self._keys, key)
        self._objects[key] = _Stored(body, info)
        self.calls.append(("put", key))
        return info

    async def get(
        self, key: str, *, start: int | None = None, end: int | None = None
    ) -> AsyncIterator[bytes]:
        validate_key(key)
        check_range(start, end)
        self._check_up()
        stored = self._lookup(key)
        self.calls.append(("get", key))
        span = resolve_range(len(stored.data), start, end)
        body = stored.data if span is None else stored.data[span[0] : span[1] + 1]
        for offset in range(0, len(body), _CHUNK):
            yield body[offset : offset + _CHUNK]

    async def read(self, key: str) -> bytes:
        validate_key(key)
        self._check_up()
        self.calls.append(("read", key))
        return self._lookup(key).data

    async def head(self, key: str) -> ObjectInfo:
        validate_key(key)
        self._check_up()
        return self._lookup(key).info

    async def exists(self, key: str) -> bool:
        validate_key(key)
        self._check_up()
        return key in self._objects

    async def list(self, prefix: str = "", *, limit: int = 1000, token: str | None = None) -> ObjectListing:
        validate_prefix(prefix)
        validate_limit(limit)
        after = decode_list_token(token)
        self._check_up()
        index = bisect.bisect_left(self._keys, prefix)
        if after is not None:
            index = max(index, bisect.bisect_right(self._keys, after))
        found: list[ObjectInfo] = []
        while index < len(self._keys) and self._keys[index].startswith(prefix):
            if len(found) == limit:
                return ObjectListing(found, encode_list_token(found[-1].key))
            info = self._objects[self._keys[index]].info
            found.append(attrs.evolve(info, content_type=None))
            index += 1
        return ObjectListing(found, None)

    async def delete(self, key: str) -> None:
        validate_key(key)
        self._check_up()
        self.calls.append(("delete", key))
        if self._objects.pop(key, None) is not None:
            self._keys.remove(key)

    async def move_if_absent(self, source: str, key: str) -> bool:
        validate_key(source)
        validate_key(key)
        self._check_up()
        self.calls.append(("move_if_absent", key))
        stored = self._lookup(source)
        await self.delete(source)
        if key in self._objects:
            return False
        self._objects[key] = _Stored(stored.data, attrs.evolve(stored.info, key=key))
        bisect.insort(self._keys, key)
        return True

    async def signed_url(self, key: str, *, method: str = "GET", expires_in: int = 3600) -> str:
        self._check_up()
        return self._signer.sign(key, method=method, expires_in=expires_in)

    def verify_signed(self, key: str, method: str, expires: str | int, signature: str) -> bool:
        """Whether a signed URL's parameters are valid for ``method`` on ``key`` right now."""
        return self._signer.verify(key, method, expires, signature)

    async def ping(self) -> None:
        self._check_up()
