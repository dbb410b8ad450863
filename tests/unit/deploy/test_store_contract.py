"""The DeployStore contract on the in-memory unit of work."""

from __future__ import annotations

import pytest

from corral.contracts.deploy import DeployStoreContract
from corral.core.ids import uuid7
from corral.core.projects.ports import UserRef
from corral.fakes.uow import InMemoryUnitOfWorkFactory


class TestInMemoryDeployStore(DeployStoreContract):
    @pytest.fixture
    def deploy_uow_factory(self) -> InMemoryUnitOfWorkFactory:
        return InMemoryUnitOfWorkFactory()

    @pytest.fixture
    def make_user(self):
        async def make(name: str) -> UserRef:
            return UserRef(uuid7(), name, f"{name}@example.com")

        return make
