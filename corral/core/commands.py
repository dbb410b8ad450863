"""What every typed command shares: the ``UNSET`` marker of a partial update's absent fields.

Commands are attrs classes in each domain's ``commands`` module. The web edge structures request bodies
into them (unknown fields, missing fields and wrong types are 400s naming the field), the OpenAPI document,
the MCP tools and the client CLI are generated from them, and the core services take them, never raw JSON.
A field of a partial update (PATCH) that the caller did not send holds ``UNSET``; ``None`` is a sent null.
"""

from __future__ import annotations

import enum
from typing import Any, TypeVar

import attrs

__all__ = ["UNSET", "Unset", "is_set", "sent_fields"]

T = TypeVar("T")


class Unset(enum.Enum):
    """The type of ``UNSET``: a field the caller did not send."""

    UNSET = "unset"

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET = Unset.UNSET


def is_set(value: T | Unset) -> bool:
    """Whether a partial update's field was sent (``None`` included)."""
    return value is not UNSET


def sent_fields(command: Any) -> dict[str, Any]:
    """The fields of a partial-update command that the caller sent, by name."""
    return {f.name: getattr(command, f.name) for f in attrs.fields(type(command))
            if getattr(command, f.name) is not UNSET}
