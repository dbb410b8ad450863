"""A unit of work over the in-memory projects stores (with in-memory audit and outbox), for projects tests.

The platform-wide InMemoryUnitOfWork composes the same stores; this one lets the projects domain be
tested on its own. Changes are applied directly and undone on rollback from a snapshot taken on entry.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

import attrs

from corral.core.audit.model import AuditEntry, AuditQuery
from corral.core.ids import uuid7
from corral.core.outbox.model import OutboxEvent
from corral.core.pagination import Page
from corral.fakes.projects import (
    InMemoryBranchProtectionStore,
    InMemoryCommentStore,
    InMemoryIssueStore,
    InMemoryMergeRequestStore,
    InMemoryProjectStore,
    InMemoryReviewStore,
    InMemoryWebhookDeliveryStore,
    InMemoryWebhookStore,
    ProjectsData,
)

__all__ = ["InMemoryProjectsUnitOfWork", "ProjectsMemory"]


@attrs.define
class ProjectsMemory:
    """What every unit of work made by this factory shares; ``audit`` and ``events`` hold committed rows."""

    data: ProjectsData = attrs.field(factory=ProjectsData)
    audit: list[AuditEntry] = attrs.field(factory=list)
    events: list[OutboxEvent] = attrs.field(factory=list)

    def __call__(self) -> InMemoryProjectsUnitOfWork:
        return InMemoryProjectsUnitOfWork(self)


class _Audit:
    def __init__(self, sink: list[AuditEntry]) -> None:
        self.sink = sink

    async def record(self, entry: AuditEntry) -> None:
        self.sink.append(entry)

    async def query(self, query: AuditQuery) -> Page[AuditEntry]:
        return Page([e for e in reversed(self.sink) if query.action in (None, e.action)][: query.limit])


class _Outbox:
    def __init__(self, sink: list[OutboxEvent], committed: list[OutboxEvent]) -> None:
        self.sink = sink
        self.committed = committed

    async def add(self, topic: str, payload: dict[str, Any], *, project_id: uuid.UUID | None = None) -> OutboxEvent:
        event = OutboxEvent(uuid7(), topic, payload, datetime.now(UTC), project_id)
        self.sink.append(event)
        return event

    async def claim(self, limit: int) -> list[OutboxEvent]:
        return [e for e in self.committed if e.processed_at is None][:limit]

    async def mark_processed(self, ids: list[uuid.UUID]) -> None:
        done = set(ids)
        now = datetime.now(UTC)
        self.committed[:] = [attrs.evolve(e, processed_at=now) if e.id in done else e for e in self.committed]


class InMemoryProjectsUnitOfWork:
    def __init__(self, memory: ProjectsMemory) -> None:
        self.memory = memory
        self._audit: list[AuditEntry] = []
        self._events: list[OutboxEvent] = []
        self._snapshot: dict[str, Any] | None = None
        d = memory.data
        self.audit = _Audit(self._audit)
        self.outbox = _Outbox(self._events, memory.events)
        self.projects = InMemoryProjectStore(d)
        self.issues = InMemoryIssueStore(d)
        self.comments = InMemoryCommentStore(d)
        self.merge_requests = InMemoryMergeRequestStore(d)
        self.reviews = InMemoryReviewStore(d)
        self.branch_protections = InMemoryBranchProtectionStore(d)
        self.webhooks = InMemoryWebhookStore(d)
        self.webhook_deliveries = InMemoryWebhookDeliveryStore(d)

    async def __aenter__(self) -> Self:
        self._snapshot = self.memory.data.snapshot()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.rollback()

    async def commit(self) -> None:
        self.memory.audit.extend(self._audit)
        self.memory.events.extend(self._events)
        self._audit.clear()
        self._events.clear()
        self._snapshot = None

    async def rollback(self) -> None:
        if self._snapshot is not None:
            self.memory.data.restore(self._snapshot)
            self._snapshot = None
        self._audit.clear()
        self._events.clear()
