"""A small in-memory unit of work for the secrets and notifications unit tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from corral.core.ids import uuid7
from corral.core.outbox.model import OutboxEvent
from corral.fakes.notify import (
    InMemoryNotificationStore,
    InMemoryPreferenceStore,
    InMemoryRecipientDirectory,
    NotifyTables,
)
from corral.fakes.secrets import InMemorySecretStore, SecretTables


@attrs.define
class Clock:
    t: datetime = datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self.t

    def monotonic(self) -> float:
        return self.t.timestamp()

    def advance(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)


@attrs.define
class RecordingAudit:
    entries: list[Any] = attrs.field(factory=list)

    async def record(self, entry: Any) -> None:
        self.entries.append(entry)


@attrs.frozen
class Who:
    user_id: uuid.UUID
    name: str


@attrs.define(slots=False)
class MiniUnitOfWork:
    db: MiniDatabase

    def __attrs_post_init__(self) -> None:
        self.secrets = InMemorySecretStore(self.db.secret_tables)
        self.notifications = InMemoryNotificationStore(self.db.notify_tables)
        self.notification_preferences = InMemoryPreferenceStore(self.db.notify_tables)
        self.notification_recipients = InMemoryRecipientDirectory(self.db.notify_tables)
        self.outbox = MiniOutbox(self.db)
        self.audit = RecordingAudit()
        self._snap = None

    async def __aenter__(self) -> MiniUnitOfWork:
        self._snap = (
            self.db.secret_tables.snapshot(), self.db.notify_tables.snapshot(), dict(self.db.outbox_processed),
            list(self.db.outbox),
        )
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self._snap is not None:
            self.db.secret_tables.restore(self._snap[0])
            self.db.notify_tables.restore(self._snap[1])
            self.db.outbox_processed = self._snap[2]
            self.db.outbox = self._snap[3]
        self.notifications.release()
        self.outbox.release()

    async def commit(self) -> None:
        self.db.audit.extend(self.audit.entries)
        self.audit.entries.clear()
        self._snap = None

    async def rollback(self) -> None:
        pass


@attrs.define
class MiniOutbox:
    db: MiniDatabase
    claimed: set[uuid.UUID] = attrs.field(factory=set)

    async def add(self, topic: str, payload: dict, *, project_id: uuid.UUID | None = None) -> OutboxEvent:
        event = OutboxEvent(uuid7(), topic, payload, self.db.clock.now(), project_id)
        self.db.outbox.append(event)
        return event

    async def claim(self, limit: int) -> list[OutboxEvent]:
        out = [
            e for e in self.db.outbox
            if e.id not in self.db.outbox_processed and e.id not in self.db.outbox_locked
        ][:limit]
        for e in out:
            self.db.outbox_locked.add(e.id)
            self.claimed.add(e.id)
        return out

    async def mark_processed(self, ids: list[uuid.UUID]) -> None:
        for i in ids:
            self.db.outbox_processed[i] = True

    def release(self) -> None:
        self.db.outbox_locked -= self.claimed
        self.claimed.clear()


@attrs.define
class MiniDatabase:
    secret_tables: SecretTables = attrs.field(factory=SecretTables)
    notify_tables: NotifyTables = attrs.field(factory=NotifyTables)
    audit: list[Any] = attrs.field(factory=list)
    outbox: list[OutboxEvent] = attrs.field(factory=list)
    outbox_processed: dict[uuid.UUID, bool] = attrs.field(factory=dict)
    outbox_locked: set[uuid.UUID] = attrs.field(factory=set)
    clock: Clock = attrs.field(factory=lambda: Clock())

    def __call__(self) -> MiniUnitOfWork:
        return MiniUnitOfWork(self)
