"""Writing audit rows for identity mutations (same transaction as the mutation)."""

from __future__ import annotations

import uuid
from typing import Any

from corral.core.audit.model import AuditEntry
from corral.core.clock import Clock
from corral.core.identity.model import Principal
from corral.core.ids import uuid7
from corral.core.uow import UnitOfWork

__all__ = ["record"]


async def record(
    uow: UnitOfWork,
    clock: Clock,
    actor: Principal,
    action: str,
    resource: str,
    *,
    resource_id: uuid.UUID | None = None,
    project_id: uuid.UUID | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one audit row attributed to ``actor`` (its IP included); never pass secrets in ``detail``."""
    await uow.audit.record(
        AuditEntry(
            id=uuid7(),
            actor_id=actor.user_id,
            actor_name=actor.name,
            action=action,
            resource=resource,
            created_at=clock.now(),
            resource_id=resource_id,
            project_id=project_id,
            detail=detail or {},
            ip_addr=actor.ip_addr,
        )
    )
