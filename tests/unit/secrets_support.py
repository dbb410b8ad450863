"""Helpers for the secrets and notifications unit tests, over the shared in-memory unit of work."""

from __future__ import annotations

import uuid

import attrs

from corral.core.audit.model import AuditEntry
from corral.fakes.clock import FakeClock
from corral.fakes.uow import InMemoryUnitOfWorkFactory


@attrs.frozen
class Who:
    user_id: uuid.UUID
    name: str


def new_db(clock: FakeClock | None = None) -> InMemoryUnitOfWorkFactory:
    """A fresh fake database; ``factory()`` makes units of work, ``factory.db`` is the committed state."""
    return InMemoryUnitOfWorkFactory(clock=clock or FakeClock())


def audit(factory: InMemoryUnitOfWorkFactory) -> list[AuditEntry]:
    """Every committed audit entry, oldest first."""
    return sorted(factory.db.audit.entries.values(), key=lambda e: e.id)
