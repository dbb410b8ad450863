"""The DeployStore contract on the in-memory unit of work."""

from __future__ import annotations

import pytest

from corral.contracts.deploy import DeployStoreContract
from corral.fakes.uow import InMemoryUnitOfWorkFactory
from tests.helpers import InMemoryUsers


class TestInMemoryDeployStore(InMemoryUsers, DeployStoreContract):
    @pytest.fixture
    def deploy_uow_factory(self) -> InMemoryUnitOfWorkFactory:
        return InMemoryUnitOfWorkFactory()
