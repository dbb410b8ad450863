"""The pipeline store contract on PostgreSQL (every migration applied, 060 included)."""

from __future__ import annotations

from typing import Any

import pytest

from corral.contracts.pipeline_store import PipelineStoreContract
from tests.integration.platformkit import PostgresStoreFixtures

pytestmark = pytest.mark.integration


class TestPostgresPipelineStore(PostgresStoreFixtures, PipelineStoreContract):
    @pytest.fixture
    def pipelines_uow_factory(self, uow_factory: Any) -> Any:
        return uow_factory
