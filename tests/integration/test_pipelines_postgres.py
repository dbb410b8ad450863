"""The pipeline store contract on PostgreSQL (every migration applied, 060 included)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from corral.adapters.postgres.pool import create_pool
from corral.adapters.postgres.uow import PostgresUnitOfWorkFactory
from corral.contracts.pipeline_store import PipelineStoreContract
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


class TestPostgresPipelineStore(PipelineStoreContract):
    @pytest.fixture
    def pipelines_uow_factory(self, pool: asyncpg.Pool) -> Any:
        return PostgresUnitOfWorkFactory(pool)

    @pytest.fixture
    def make_user(self, pool: asyncpg.Pool) -> Any:
        return lambda name: _add_user(pool, name)
