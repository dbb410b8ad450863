"""Cursor helpers of the PostgreSQL identity stores."""

from __future__ import annotations

import uuid
from typing import Any

from corral.core.errors import InvalidInput
from corral.core.pagination import decode_cursor

__all__ = ["cursor_uuid", "cursor_value"]


def cursor_value(cursor: str | None, key: str) -> Any:
    after = decode_cursor(cursor)
    return None if after is None else after.get(key)


def cursor_uuid(cursor: str | None) -> uuid.UUID | None:
    value = cursor_value(cursor, "id")
    if value is None:
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise InvalidInput("cursor is not a cursor returned by this API", field="cursor") from None
