"""Cursor helpers of the PostgreSQL identity stores."""

from __future__ import annotations

import uuid

from corral.core.errors import InvalidInput
from corral.core.pagination import cursor_str, decode_cursor

__all__ = ["cursor_uuid", "cursor_value"]


def cursor_value(cursor: str | None, key: str) -> str | None:
    """The string ``key`` of ``cursor`` (None without a cursor); a value of another type is InvalidInput."""
    return cursor_str(decode_cursor(cursor), key)


def cursor_uuid(cursor: str | None) -> uuid.UUID | None:
    value = cursor_value(cursor, "id")
    if value is None:
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise InvalidInput("cursor is not a cursor returned by this API", field="cursor") from None
