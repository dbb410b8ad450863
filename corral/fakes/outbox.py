"""InMemoryOutbox: the outbox of one in-memory unit of work."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import attrs

from corral.core.clock import Clock
from corral.core.errors import InvalidInput
from corral.core.ids import uuid7
from corral.core.outbox.model import OutboxEvent
from corral.fakes.clock import FakeClock

__all__ = ["InMemoryOutbox", "OutboxTable", "RowLocks"]


@attrs.define
class OutboxTable:
    """The events the in-memory outbox reads and writes (part of the fake database)."""

    events: dict[uuid.UUID, OutboxEvent] = attrs.field(factory=dict)


@attrs.define
class RowLocks:
    """Row locks shared by every unit of a fake database (like FOR UPDATE): row id → owner."""

    held: dict[uuid.UUID, object] = attrs.field(factory=dict)

    def release(self, owner: object) -> None:
        for key in [k for k, v in self.held.items() if v is owner]:
            del self.held[key]


@attrs.define
class InMemoryOutbox:
    """Outbox over an OutboxTable. ``claim`` locks rows for ``owner`` (the unit of work) in
    ``locks`` and skips rows locked by another owner, like FOR UPDATE SKIP LOCKED."""

    table: OutboxTable = attrs.field(factory=OutboxTable)
    clock: Clock = attrs.field(factory=FakeClock)
    locks: RowLocks = attrs.field(factory=RowLocks)
    owner: object = attrs.field(factory=object)

    async def add(
        self, topic: str, payload: dict[str, Any], *, project_id: uuid.UUID | None = None
    ) -> OutboxEvent:
        if not topic:
            raise InvalidInput("an outbox event needs a topic", field="topic")
        event = OutboxEvent(
            id=uuid7(),
            topic=topic,
            payload=json.loads(json.dumps(payload, default=str)),  # the stored (JSONB) form
            project_id=project_id,
            created_at=self.clock.now(),
        )
        self.table.events[event.id] = event
        return event

    async def claim(self, limit: int) -> list[OutboxEvent]:
        if limit < 1:
            raise InvalidInput("claim needs a limit of at least 1", field="limit")
        claimed: list[OutboxEvent] = []
        for event_id in sorted(self.table.events):
            if len(claimed) == limit:
                break
            event = self.table.events[event_id]
            holder = self.locks.held.get(event_id, self.owner)
            if event.processed_at is not None or holder is not self.owner:
                continue
            self.locks.held[event_id] = self.owner
            claimed.append(event)
        return claimed

    async def mark_processed(self, ids: list[uuid.UUID]) -> None:
        now = self.clock.now()
        for event_id in ids:
            event = self.table.events.get(event_id)
            if event is not None and event.processed_at is None:
                self.table.events[event_id] = attrs.evolve(event, processed_at=now)

    async def purge_processed(self, before: datetime, limit: int) -> int:
        if limit < 1:
            raise InvalidInput("purge needs a limit of at least 1", field="limit")
        doomed = [
            k for k in sorted(self.table.events)
            if (at := self.table.events[k].processed_at) is not None and at < before
        ][:limit]
        for key in doomed:
            del self.table.events[key]
        return len(doomed)

    @property
    def events(self) -> list[OutboxEvent]:
        """Every event this outbox can see, oldest first (for assertions in tests)."""
        return [self.table.events[k] for k in sorted(self.table.events)]
