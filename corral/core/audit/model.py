"""Audit entries and the query over them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import attrs

__all__ = ["SYSTEM_ACTOR_ID", "SYSTEM_ACTOR_NAME", "AuditEntry", "AuditQuery"]

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
