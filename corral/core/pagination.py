"""Cursor pagination shared by every list endpoint: ``{"items": [...], "next_cursor": ...}``.

Cursors are opaque and authenticated: the sort key of the last item, as JSON, followed by an
HMAC-SHA256 tag under the cursor key. The platform installs a key derived from the master key
(``configure_cursor_key``), so every replica accepts every other's cursors and they survive
restarts; without one (tests, fakes) a random per-process key is used. A cursor not made by us
(forged, tampered, truncated) is an InvalidInput naming ``cursor``; the users of ``decode_cursor``
still check the type of each value they read (``cursor_str``, ``cursor_int``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from typing import Generic, TypeVar

import attrs

from corral.core.errors import InvalidInput

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "Page",
    "clamp_limit",
    "configure_cursor_key",
    "cursor_int",
    "cursor_str",
    "decode_cursor",
    "encode_cursor",
    "invalid_cursor",
]

T = TypeVar("T")
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
_TAG_BYTES = 16
_MAX_CURSOR_CHARS = 4096
_key = secrets.token_bytes(32)


def configure_cursor_key(key: bytes) -> None:
    """Install the key cursors are signed with (at bootstrap: derived from the master key)."""
    global _key
    if len(key) < 16:
        raise ValueError("a cursor key needs at least 16 bytes")
    _key = bytes(key)


def _tag(payload: bytes) -> bytes:
    return hmac.new(_key, payload, hashlib.sha256).digest()[:_TAG_BYTES]


def invalid_cursor(field: str = "cursor") -> InvalidInput:
    return InvalidInput(f"{field} is not a cursor returned by this API", field=field)


@attrs.frozen
class Page(Generic[T]):
    """One page of a listing; ``next_cursor`` is None on the last page."""

    items: list[T]
    next_cursor: str | None = None


def encode_cursor(values: dict[str, object]) -> str:
    """An opaque, URL-safe, signed cursor carrying the sort key of the last item returned."""
    raw = json.dumps(values, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw + _tag(raw)).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> dict[str, object] | None:
    """Inverse of encode_cursor; a cursor that was not made by us is an InvalidInput naming ``cursor``."""
    if not cursor:
        return None
    if len(cursor) > _MAX_CURSOR_CHARS:
        raise invalid_cursor()
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        blob = base64.urlsafe_b64decode(padded.encode("ascii"))
    except (binascii.Error, ValueError, UnicodeError) as exc:
        raise invalid_cursor() from exc
    raw, tag = blob[:-_TAG_BYTES], blob[-_TAG_BYTES:]
    if len(blob) <= _TAG_BYTES or not hmac.compare_digest(tag, _tag(raw)):
        raise invalid_cursor()
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise invalid_cursor() from exc
    if not isinstance(value, dict):
        raise invalid_cursor()
    return value


def cursor_str(values: dict[str, object] | None, key: str) -> str | None:
    """The string ``key`` of a decoded cursor (None when there is no cursor); any other type is invalid."""
    if values is None:
        return None
    found = values.get(key)
    if not isinstance(found, str):
        raise invalid_cursor()
    return found


def cursor_int(values: dict[str, object] | None, key: str, *, minimum: int = 0, maximum: int = 2**63 - 1) -> int | None:
    """The integer ``key`` of a decoded cursor within [minimum, maximum] (None when there is no cursor)."""
    if values is None:
        return None
    found = values.get(key)
    if isinstance(found, bool) or not isinstance(found, int) or not minimum <= found <= maximum:
        raise invalid_cursor()
    return found


def clamp_limit(limit: int | None) -> int:
    """Validate ``limit``: 1..MAX_LIMIT, default DEFAULT_LIMIT."""
    if limit is None:
        return DEFAULT_LIMIT
    if limit < 1 or limit > MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    return limit
