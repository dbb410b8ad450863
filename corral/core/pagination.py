"""Cursor pagination shared by every list endpoint: ``{"items": [...], "next_cursor": ...}``."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Generic, TypeVar

import attrs

from corral.core.errors import InvalidInput

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "Page", "clamp_limit", "decode_cursor", "encode_cursor"]

T = TypeVar("T")
DEFAULT_LIMIT = 50
MAX_LIMIT = 500


@attrs.frozen
class Page(Generic[T]):
    """One page of a listing; ``next_cursor`` is None on the last page."""

    items: list[T]
    next_cursor: str | None = None


def encode_cursor(values: dict[str, object]) -> str:
    """An opaque, URL-safe cursor carrying the sort key of the last item returned."""
    raw = json.dumps(values, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> dict[str, object] | None:
    """Inverse of encode_cursor; a cursor that was not made by us is an InvalidInput naming ``cursor``."""
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput("cursor is not a cursor returned by this API", field="cursor") from exc
    if not isinstance(value, dict):
        raise InvalidInput("cursor is not a cursor returned by this API", field="cursor")
    return value


def clamp_limit(limit: int | None) -> int:
    """Validate ``limit``: 1..MAX_LIMIT, default DEFAULT_LIMIT."""
    if limit is None:
        return DEFAULT_LIMIT
    if limit < 1 or limit > MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    return limit
