"""A small in-memory unit of work for the secrets and notifications unit tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

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
        self.audit = RecordingAudit()
        self._snap = None

    async def __aenter__(self) -> MiniUnitOfWork:
        self._snap = self.db.secret_tables.snapshot()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self._snap is not None:
            self.db.secret_tables.restore(self._snap)

    async def commit(self) -> None:
        self.db.audit.extend(self.audit.entries)
        self.audit.entries.clear()
        self._snap = None

    async def rollback(self) -> None:
        pass


@attrs.define
class MiniDatabase:
    secret_tables: SecretTables = attrs.field(factory=SecretTables)
    audit: list[Any] = attrs.field(factory=list)

    def __call__(self) -> MiniUnitOfWork:
        return MiniUnitOfWork(self)
