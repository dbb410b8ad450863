"""The agent session store contract on PostgreSQL (every migration applied, 062 included)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from corral.adapters.postgres.pool import create_pool
from corral.adapters.postgres.uow import PostgresUnitOfWorkFactory
from corral.contracts.agent_store import AgentSessionStoreContract
from corral.core.ids import uuid7
from corral.core.projects.ports import UserRef

pytestmark = pytest.mark.integration


@pytest.fixture
async def pool(db_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(db_dsn, min_size=1, max_size=10)
    yield pool
    await pool.close()


async def _add_user(pool: asyncpg.Pool, name: str) -> UserRef:
    uid = uuid7()
    await pool.execute(
        "INSERT INTO users (id, name, email, password_hash) VALUES ($1, $2, $3, 'x')", uid, name, f"{name}@example.com"
    )
    return UserRef(uid, name, f"{name}@example.com")


class TestPostgresAgentSessionStore(AgentSessionStoreContract):
    @pytest.fixture
    def agents_uow_factory(self, pool: asyncpg.Pool) -> Any:
        return PostgresUnitOfWorkFactory(pool)

    @pytest.fixture
    def make_user(self, pool: asyncpg.Pool) -> Any:
        return lambda name: _add_user(pool, name)
