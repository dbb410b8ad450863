"""Audit entries and the query over them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import attrs

from corral.core.errors import InvalidInput
from corral.core.pagination import clamp_limit, decode_cursor, encode_cursor

__all__ = [
    "SYSTEM_ACTOR_ID",
    "SYSTEM_ACTOR_NAME",
    "AuditEntry",
    "AuditQuery",
    "audit_cursor",
    "check_audit_query",
    "decode_audit_cursor",
]

# Mutations made by Corral itself (bootstrap, background loops) are attributed to this actor.
SYSTEM_ACTOR_ID = uuid.UUID(int=0)
SYSTEM_ACTOR_NAME = "system"

_FORBIDDEN_DETAIL_KEYS = frozenset({"password", "token", "secret", "value", "password_hash", "token_hash"})


def _no_secrets(_inst: object, _attr: object, detail: dict[str, Any]) -> None:
    bad = _FORBIDDEN_DETAIL_KEYS.intersection(detail)
    if bad:
        raise ValueError(f"audit detail must never carry secrets: {sorted(bad)}")


@attrs.frozen
class AuditEntry:
    """Who did what to which resource, from where."""

    id: uuid.UUID
    actor_id: uuid.UUID
    actor_name: str
    action: str  # dotted: 'user.create', 'project.delete', 'auth.login_failed'
    resource: str  # 'user', 'project', 'secret', ...
    created_at: datetime
    resource_id: uuid.UUID | None = None
    project_id: uuid.UUID | None = None
    detail: dict[str, Any] = attrs.field(factory=dict, validator=_no_secrets)
    ip_addr: str | None = None


@attrs.frozen
class AuditQuery:
    """Filters for listing the audit log, newest first."""

    actor: str | None = None  # actor name
    action: str | None = None
    resource: str | None = None
    project_id: uuid.UUID | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50
    cursor: str | None = None


def audit_cursor(entry: AuditEntry) -> str:
    """The cursor continuing a newest-first listing after ``entry`` (sort key: created_at, id)."""
    return encode_cursor({"t": entry.created_at.isoformat(), "id": str(entry.id)})


def decode_audit_cursor(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    """Inverse of ``audit_cursor``; anything else is InvalidInput naming ``cursor``."""
    raw = decode_cursor(cursor)
    if raw is None:
        return None
    try:
        when = datetime.fromisoformat(str(raw["t"]))
        last_id = uuid.UUID(str(raw["id"]))
    except (KeyError, ValueError) as exc:
        raise InvalidInput("cursor is not a cursor returned by this API", field="cursor") from exc
    if when.tzinfo is None:
        raise InvalidInput("cursor is not a cursor returned by this API", field="cursor")
    return when, last_id


def check_audit_query(query: AuditQuery) -> int:
    """Validate the filters of ``query``; return its limit (1..MAX_LIMIT)."""
    for name in ("since", "until"):
        value = getattr(query, name)
        if value is not None and value.tzinfo is None:
            raise InvalidInput(f"{name} must carry a timezone (e.g. 2026-01-01T00:00:00Z)", field=name)
    return clamp_limit(query.limit)
