"""The projects store contract on the in-memory stores."""

from __future__ import annotations

import pytest

from corral.contracts.projects import ProjectStoresContract
from corral.core.ids import uuid7
from corral.core.projects.ports import UserRef
from corral.fakes.projects_uow import ProjectsMemory
from corral.fakes.uow import InMemoryUnitOfWorkFactory


class TestInMemoryProjectStores(ProjectStoresContract):
    """Through ``ProjectsMemory``, the unit of work of the projects unit tests."""

    @pytest.fixture
    def projects_uow_factory(self) -> ProjectsMemory:
        return ProjectsMemory()

    @pytest.fixture
    def make_user(self):
        async def make(name: str) -> UserRef:
            return UserRef(uuid7(), name, f"{name}@example.com")

        return make


class TestPlatformInMemoryProjectStores(ProjectStoresContract):
    """The same stores inside the platform-wide in-memory unit of work (copy-on-begin, merge on commit)."""

    @pytest.fixture
    def projects_uow_factory(self) -> InMemoryUnitOfWorkFactory:
        return InMemoryUnitOfWorkFactory()

    @pytest.fixture
    def make_user(self):
        async def make(name: str) -> UserRef:
            return UserRef(uuid7(), name, f"{name}@example.com")

        return make
