"""The projects store contract on the in-memory stores."""

from __future__ import annotations

import pytest

from corral.contracts.projects import ProjectStoresContract
from corral.fakes.projects_uow import ProjectsMemory
from corral.fakes.uow import InMemoryUnitOfWorkFactory
from tests.helpers import InMemoryUsers


class TestInMemoryProjectStores(InMemoryUsers, ProjectStoresContract):
    """Through ``ProjectsMemory``, the unit of work of the projects unit tests."""

    @pytest.fixture
    def projects_uow_factory(self) -> ProjectsMemory:
        return ProjectsMemory()


class TestPlatformInMemoryProjectStores(InMemoryUsers, ProjectStoresContract):
    """The same stores inside the platform-wide in-memory unit of work (copy-on-begin, merge on commit)."""

    @pytest.fixture
    def projects_uow_factory(self) -> InMemoryUnitOfWorkFactory:
        return InMemoryUnitOfWorkFactory()
