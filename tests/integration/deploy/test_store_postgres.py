"""The DeployStore contract on PostgreSQL (every migration applied)."""

from __future__ import annotations

from typing import Any

import pytest

from corral.contracts.deploy import DeployStoreContract
from tests.integration.platformkit import PostgresStoreFixtures


class TestPostgresDeployStore(PostgresStoreFixtures, DeployStoreContract):
    @pytest.fixture
    def deploy_uow_factory(self, uow_factory: Any) -> Any:
        return uow_factory
