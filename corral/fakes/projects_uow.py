"""The in-memory unit of work for projects tests: the platform-wide one, with shortcuts to what they inspect.

It used to be a separate unit of work that snapshot the projects tables on entry and restored them on
rollback, which undid commits other units made meanwhile (PostgreSQL never does). Now every unit has the
isolation of ``InMemoryUnitOfWork``: private copies, merged on commit.
"""

from __future__ import annotations

from corral.core.audit.model import AuditEntry
from corral.core.clock import Clock
from corral.core.outbox.model import OutboxEvent
from corral.fakes.projects import ProjectsData
from corral.fakes.uow import InMemoryUnitOfWorkFactory

__all__ = ["ProjectsMemory"]


class ProjectsMemory(InMemoryUnitOfWorkFactory):
    """``memory()`` → a unit of work; ``data``, ``audit`` and ``events`` are the committed projects tables,
    audit rows and outbox events."""

    def __init__(self, clock: Clock | None = None) -> None:
        super().__init__(clock=clock)

    @property
    def data(self) -> ProjectsData:
        return self.db.projects

    @property
    def audit(self) -> list[AuditEntry]:
        """Committed audit entries, oldest first."""
        return list(self.db.audit.entries.values())

    @property
    def events(self) -> list[OutboxEvent]:
        """Committed outbox events (processed or not), oldest first."""
        events = self.db.outbox.events
        return [events[k] for k in sorted(events)]
