"""The ObjectStore port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Protocol

import attrs

__all__ = ["ObjectInfo", "ObjectListing", "ObjectStore"]

# Keys, prefixes, ranges and limits are validated by corral.core.storage.keys;
# local signed URLs are made by corral.core.storage.signing.


@attrs.frozen
class ObjectInfo:
    """Metadata of one stored object."""

    key: str
    size: int
    modified_at: datetime
    etag: str | None = None  # opaque; changes when the content is replaced
    content_type: str | None = None  # as given to put(); None in listings (S3 does not list it)


@attrs.frozen
class ObjectListing:
    """One page of keys under a prefix, in lexicographic key order."""

    objects: list[ObjectInfo]
    next_token: str | None = None


class ObjectStore(Protocol):
    """A flat namespace of blobs addressed by ``/``-separated keys (S3 semantics).

    Keys follow corral.core.storage.keys.validate_key (no empty, ``.`` or
    ``..`` segment, no leading or trailing ``/``, at most 1024 bytes): an
    invalid key raises InvalidInput(field="key") and changes nothing. A missing
    key raises NotFound. ``a`` and ``a/b`` may both exist (there are no
    directories). ``put`` replaces an existing object atomically: readers see
    the old or the new bytes, never a mix. A backend that cannot be reached
    raises Unavailable.
    """

    async def put(
        self, key: str, data: bytes | AsyncIterator[bytes], *, content_type: str | None = None
    ) -> ObjectInfo:
        """Store bytes (or an async stream of chunks) under ``key``."""
        ...

    def get(self, key: str, *, start: int | None = None, end: int | None = None) -> AsyncIterator[bytes]:
        """Stream the object's bytes in chunks; ``start``/``end`` (inclusive) select a byte range.

        ``end`` past the last byte is clamped; a negative bound, ``end < start``
        or a ``start`` at or past the end raise InvalidInput(field="range").
        Errors (NotFound too) are raised when the iterator is first advanced.
        Close the iterator if you stop early (``contextlib.aclosing``) so the
        backend connection is released at once.
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
        """Objects whose key starts with ``prefix`` in key order, at most ``limit`` (1..1000) per page.

        Key order is UTF-8 byte order (AWS S3, MinIO, the local and in-memory
        stores); SeaweedFS walks directories instead, which differs only where a
        segment holds a character sorting before ``/`` (such as ``-`` or ``.``).
        Paging visits every matching key exactly once on all of them.

        Pass ``next_token`` back as ``token`` for the next page; it is None on
        the last page. A token not made by this store raises InvalidInput(field="token").
        """
        ...

    async def delete(self, key: str) -> None:
        """Remove ``key``; deleting a missing key is not an error."""
        ...

    async def move_if_absent(self, source: str, key: str) -> bool:
        """Make the object at ``source`` the object at ``key`` unless ``key`` exists, and remove ``source``.

        True when ``key`` now holds ``source``'s bytes; False when ``key`` already existed (it is left as it
        was; ``source`` is removed all the same). NotFound when ``source`` is absent. Readers of ``key`` see
        no object or the whole one. The check is atomic on the local and in-memory stores; on S3 (no
        conditional copy everywhere) two movers racing for one absent key may both write it, so callers move
        only content that ``key`` determines (a content-addressed key whose bytes were checked against it).
        """
        ...

    async def signed_url(self, key: str, *, method: str = "GET", expires_in: int = 3600) -> str:
        """A URL that grants ``method`` (GET, HEAD or PUT) on ``key`` without other credentials.

        It expires after ``expires_in`` seconds (1..604800). The key need not exist yet (PUT).
        """
        ...

    async def ping(self) -> None:
        """Raise Unavailable if the store cannot be reached (for /readyz)."""
        ...
