"""The projects store contract on PostgreSQL (every migration applied)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from corral.adapters.postgres.pool import create_pool
from corral.adapters.postgres.projects import PostgresUserDirectory
from corral.adapters.postgres.uow import PostgresUnitOfWorkFactory
from corral.contracts.projects import ProjectStoresContract
from corral.core.ids import uuid7
from corral.core.projects.ports import UserRef


@pytest.fixture
async def pool(db_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(db_dsn, min_size=1, max_size=20)
    yield pool
    await pool.close()


async def _add_user(pool: asyncpg.Pool, name: str) -> UserRef:
    uid = uuid7()
    await pool.execute(
        "INSERT INTO users (id, name, email, password_hash) VALUES ($1, $2, $3, 'x')", uid, name, f"{name}@example.com"
    )
    return UserRef(uid, name, f"{name}@example.com")


class TestPostgresProjectStores(ProjectStoresContract):
    @pytest.fixture
    def projects_uow_factory(self, pool: asyncpg.Pool) -> Any:
        return PostgresUnitOfWorkFactory(pool)

    @pytest.fixture
    def make_user(self, pool: asyncpg.Pool) -> Any:
        return lambda name: _add_user(pool, name)


async def test_user_directory(pool: asyncpg.Pool) -> None:
    alice = await _add_user(pool, "alice")
    directory = PostgresUserDirectory(pool)
    assert await directory.by_name("alice") == alice
    assert await directory.by_name("nobody") is None
    assert await directory.by_ids({alice.id, uuid7()}) == {alice.id: alice}
