"""The pipeline store contract on the in-memory unit of work."""

from __future__ import annotations

import pytest

from corral.contracts.pipeline_store import PipelineStoreContract
from corral.core.ids import uuid7
from corral.core.projects.ports import UserRef
from corral.fakes.uow import InMemoryUnitOfWorkFactory


class TestInMemoryPipelineStore(PipelineStoreContract):
    @pytest.fixture
    def pipelines_uow_factory(self) -> InMemoryUnitOfWorkFactory:
        return InMemoryUnitOfWorkFactory()

    @pytest.fixture
    def make_user(self):  # type: ignore[no-untyped-def]
        async def make(name: str) -> UserRef:
            return UserRef(uuid7(), name, f"{name}@example.com")

        return make
