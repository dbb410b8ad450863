"""The ObjectStore port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Protocol

import attrs

__all__ = ["ObjectInfo", "ObjectListing", "ObjectStore"]


@attrs.frozen
class ObjectInfo:
    """Metadata of one stored object."""

    key: str
    size: int
    modified_at: datetime
    etag: str | None = None


@attrs.frozen
class ObjectListing:
    """One page of keys under a prefix, in lexicographic key order."""

    objects: list[ObjectInfo]
    next_token: str | None = None


class ObjectStore(Protocol):
    """A flat namespace of immutable-ish blobs addressed by ``/``-separated keys.

    Keys are validated (no empty segment, no ``..``, no leading ``/``):
    an invalid key raises InvalidInput. A missing key raises NotFound.
    ``put`` replaces an existing object atomically: readers see the old or the
    new bytes, never a mix.
    """

    async def put(
        self, key: str, data: bytes | AsyncIterator[bytes], *, content_type: str | None = None
    ) -> ObjectInfo:
        """Store bytes (or an async stream of chunks) under ``key``."""
        ...

    def get(self, key: str, *, start: int | None = None, end: int | None = None) -> AsyncIterator[bytes]:
        """Stream the object's bytes in chunks; ``start``/``end`` (inclusive) select a byte range.

        Raises NotFound (when iterated) if the key does not exist.
        """
        ...

    async def read(self, key: str) -> bytes:
        """The whole object (for small objects)."""
        ...

    async def head(self, key: str) -> ObjectInfo:
        """Metadata of ``key``; NotFound if absent."""
        ...

    async def exists(self, key: str) -> bool:
        """Whether ``key`` exists."""
        ...

    async def list(self, prefix: str = "", *, limit: int = 1000, token: str | None = None) -> ObjectListing:
        """Objects whose key starts with ``prefix``; pass ``next_token`` back for the next page."""
        ...

    async def delete(self, key: str) -> None:
        """Remove ``key``; deleting a missing key is not an error."""
        ...

    async def signed_url(self, key: str, *, method: str = "GET", expires_in: int = 3600) -> str:
        """A URL that grants ``method`` on ``key`` without other credentials until it expires."""
        ...

    async def ping(self) -> None:
        """Raise Unavailable if the store cannot be reached (for /readyz)."""
        ...
