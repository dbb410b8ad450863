"""Fixtures for the projects/git unit tests: fakes only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from corral.core.ids import uuid7
from corral.core.projects.model import Actor
from corral.core.projects.ports import UserRef
from corral.fakes.git import InMemoryGitRepositories
from corral.fakes.projects import (
    InMemoryUserDirectory,
)
from corral.fakes.projects_uow import ProjectsMemory
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


class World(ProjectsMemory):
    """The projects memory, with the committed outbox events at ``events``."""


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
