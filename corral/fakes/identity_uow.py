"""The in-memory unit of work for identity tests: the platform-wide one, with shortcuts to what they inspect.

It used to be a separate unit of work that snapshot the identity tables on entry and restored them on exit,
which undid commits other units made meanwhile (PostgreSQL never does). Now every unit has the isolation of
``InMemoryUnitOfWork``: private copies, merged on commit.
"""

from __future__ import annotations

from corral.core.audit.model import AuditEntry
from corral.core.clock import Clock
from corral.fakes.identity import InMemoryIdentityData
from corral.fakes.uow import InMemoryUnitOfWorkFactory

__all__ = ["IdentityMemory"]


class IdentityMemory(InMemoryUnitOfWorkFactory):
    """``memory()`` → a unit of work; ``data`` and ``audit`` are the committed identity tables and audit rows."""

    def __init__(self, clock: Clock | None = None) -> None:
        super().__init__(clock=clock)

    @property
    def data(self) -> InMemoryIdentityData:
        return self.db.identity

    @property
    def audit(self) -> list[AuditEntry]:
        """Committed audit entries, oldest first."""
        return list(self.db.audit.entries.values())
