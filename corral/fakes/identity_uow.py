"""A unit of work over the in-memory identity stores (plus an in-memory audit log), for identity tests.

The platform-wide InMemoryUnitOfWork composes the same stores; this one exists so identity code can be
tested on its own.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

import attrs

from corral.core.audit.model import AuditEntry, AuditQuery
from corral.core.outbox.model import OutboxEvent
from corral.core.pagination import Page
from corral.fakes.identity import (
    InMemoryDelegationStore,
    InMemoryIdentityData,
    InMemoryIdentitySettingsStore,
    InMemoryLoginThrottleStore,
    InMemoryRoleStore,
    InMemorySessionStore,
    InMemoryTokenStore,
    InMemoryTotpStore,
    InMemoryUserStore,
)

__all__ = ["IdentityMemory", "InMemoryIdentityUnitOfWork"]


@attrs.define
class IdentityMemory:
    """Everything the identity unit of work reads and writes, shared by every unit it makes."""

    data: InMemoryIdentityData = attrs.field(factory=InMemoryIdentityData)
    audit: list[AuditEntry] = attrs.field(factory=list)

    def __call__(self) -> InMemoryIdentityUnitOfWork:
        return InMemoryIdentityUnitOfWork(self)


class _Audit:
    def __init__(self, sink: list[AuditEntry], committed: list[AuditEntry]) -> None:
        self.sink = sink
        self.committed = committed

    async def record(self, entry: AuditEntry) -> None:
        self.sink.append(entry)

    async def query(self, query: AuditQuery) -> Page[AuditEntry]:
        rows = [
            e
            for e in reversed(self.committed + self.sink)
            if (query.actor is None or e.actor_name == query.actor)
            and (query.action is None or e.action == query.action)
            and (query.resource is None or e.resource == query.resource)
            and (query.project_id is None or e.project_id == query.project_id)
            and (query.since is None or e.created_at >= query.since)
            and (query.until is None or e.created_at < query.until)
        ]
        return Page(rows[: query.limit], None)


class _NoOutbox:
    async def add(self, topic: str, payload: dict[str, Any], *, project_id: Any = None) -> OutboxEvent:
        raise NotImplementedError

    async def claim(self, limit: int) -> list[OutboxEvent]:
        return []

    async def mark_processed(self, ids: list[Any]) -> None:
        return None


class InMemoryIdentityUnitOfWork:
    def __init__(self, memory: IdentityMemory) -> None:
        self.memory = memory
        d = memory.data
        self.users = InMemoryUserStore(d)
        self.roles = InMemoryRoleStore(d)
        self.delegations = InMemoryDelegationStore(d)
        self.tokens = InMemoryTokenStore(d)
        self.sessions = InMemorySessionStore(d)
        self.login_throttle = InMemoryLoginThrottleStore(d)
        self.totp = InMemoryTotpStore(d)
        self.identity_settings = InMemoryIdentitySettingsStore(d)
        self._audit_rows: list[AuditEntry] = []
        self.audit = _Audit(self._audit_rows, memory.audit)
        self.outbox = _NoOutbox()
        self._snap: InMemoryIdentityData | None = None

    async def __aenter__(self) -> Self:
        self._snap = self.memory.data.snapshot()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.rollback()

    async def commit(self) -> None:
        self.memory.audit.extend(self._audit_rows)
        self._audit_rows.clear()
        self._snap = self.memory.data.snapshot()

    async def rollback(self) -> None:
        if self._snap is not None:
            self.memory.data.restore(self._snap)
            self._snap = self.memory.data.snapshot()
        self._audit_rows.clear()
