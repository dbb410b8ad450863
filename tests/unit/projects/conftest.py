"""Fixtures for the projects/git unit tests: fakes only."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from corral.core.ids import uuid7
from corral.core.outbox.model import OutboxEvent
from corral.core.projects.model import Actor
from corral.core.projects.ports import UserRef
from corral.fakes.git import InMemoryGitRepositories
from corral.fakes.projects import (
    InMemoryBranchProtectionStore,
    InMemoryCommentStore,
    InMemoryIssueStore,
    InMemoryMergeRequestStore,
    InMemoryProjectStore,
    InMemoryReviewStore,
    InMemoryUserDirectory,
    InMemoryWebhookDeliveryStore,
    InMemoryWebhookStore,
    ProjectsData,
)
from corral.fakes.webhooks import RecordingWebhookTransport


class StepClock:
    def __init__(self) -> None:
        self.t = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
        self.mono = 0.0

    def now(self) -> datetime:
        return self.t

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)
        self.mono += seconds


class ListAudit:
    def __init__(self, sink: list[Any]) -> None:
        self.sink = sink

    async def record(self, entry: Any) -> None:
        self.sink.append(entry)

    async def query(self, query: Any) -> Any:
        raise NotImplementedError


class ListOutbox:
    def __init__(self, sink: list[OutboxEvent]) -> None:
        self.sink = sink

    async def add(self, topic: str, payload: dict[str, Any], *, project_id: uuid.UUID | None = None) -> OutboxEvent:
        event = OutboxEvent(uuid7(), topic, payload, datetime.now(UTC), project_id)
        self.sink.append(event)
        return event

    async def claim(self, limit: int) -> list[OutboxEvent]:
        return [e for e in self.sink if e.processed_at is None][:limit]

    async def mark_processed(self, ids: list[uuid.UUID]) -> None:
        pass


class World:
    """Shared in-memory state plus a unit-of-work factory over it."""

    def __init__(self) -> None:
        self.data = ProjectsData()
        self.audit: list[Any] = []
        self.events: list[OutboxEvent] = []

    def __call__(self) -> Uow:
        return Uow(self)


class Uow:
    def __init__(self, world: World) -> None:
        self.world = world
        self._audit: list[Any] = []
        self._events: list[OutboxEvent] = []
        d = world.data
        self.audit = ListAudit(self._audit)
        self.outbox = ListOutbox(self._events)
        self.projects = InMemoryProjectStore(d)
        self.issues = InMemoryIssueStore(d)
        self.comments = InMemoryCommentStore(d)
        self.merge_requests = InMemoryMergeRequestStore(d)
        self.reviews = InMemoryReviewStore(d)
        self.branch_protections = InMemoryBranchProtectionStore(d)
        self.webhooks = InMemoryWebhookStore(d)
        self.webhook_deliveries = InMemoryWebhookDeliveryStore(d)

    async def __aenter__(self) -> Uow:
        self._snap = self.world.data.snapshot()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._snap is not None:
            self.world.data.restore(self._snap)

    async def commit(self) -> None:
        self.world.audit += self._audit
        self.world.events += self._events
        self._audit, self._events = [], []
        self._snap = None

    async def rollback(self) -> None:
        pass


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def clock() -> StepClock:
    return StepClock()


@pytest.fixture
def repos() -> InMemoryGitRepositories:
    return InMemoryGitRepositories()


@pytest.fixture
def users() -> InMemoryUserDirectory:
    return InMemoryUserDirectory()


@pytest.fixture
def transport() -> RecordingWebhookTransport:
    return RecordingWebhookTransport()


@pytest.fixture
def alice(users: InMemoryUserDirectory) -> Actor:
    u = users.add(UserRef(uuid7(), "alice", "alice@example.com"))
    return Actor(u.id, u.name, u.email)


@pytest.fixture
def bob(users: InMemoryUserDirectory) -> Actor:
    u = users.add(UserRef(uuid7(), "bob", "bob@example.com"))
    return Actor(u.id, u.name, u.email)
