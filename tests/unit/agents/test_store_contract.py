"""The agent session store contract on the in-memory unit of work."""

from __future__ import annotations

import pytest

from corral.contracts.agent_store import AgentSessionStoreContract
from corral.core.ids import uuid7
from corral.core.projects.ports import UserRef
from corral.fakes.uow import InMemoryUnitOfWorkFactory


class TestInMemoryAgentSessionStore(AgentSessionStoreContract):
    @pytest.fixture
    def agents_uow_factory(self) -> InMemoryUnitOfWorkFactory:
        return InMemoryUnitOfWorkFactory()

    @pytest.fixture
    def make_user(self):  # type: ignore[no-untyped-def]
        async def make(name: str) -> UserRef:
            return UserRef(uuid7(), name, f"{name}@example.com")

        return make
