"""The pipeline store contract on the in-memory unit of work."""

from __future__ import annotations

import pytest

from corral.contracts.pipeline_store import PipelineStoreContract
from corral.fakes.uow import InMemoryUnitOfWorkFactory
from tests.helpers import InMemoryUsers


class TestInMemoryPipelineStore(InMemoryUsers, PipelineStoreContract):
    @pytest.fixture
    def pipelines_uow_factory(self) -> InMemoryUnitOfWorkFactory:
        return InMemoryUnitOfWorkFactory()
