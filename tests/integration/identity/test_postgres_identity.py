from __future__ import annotations

import asyncpg
import pytest

from corral.contracts.identity_resolver import ResolverContract
from corral.contracts.identity_stores import IdentityStoresContract
from tests.integration.identity.pg_uow import IdentityPgUow, insert_project

pytestmark = pytest.mark.integration


@pytest.fixture
async def pg_conn(db_dsn):
    conn = await asyncpg.connect(db_dsn)
    yield conn
    await conn.close()


class TestPostgresIdentityStores(IdentityStoresContract):
    @pytest.fixture
    def identity_uow_factory(self, pg_conn):
        return lambda: IdentityPgUow(pg_conn)

    async def make_project(self, uow, owner_id, index):
        return await insert_project(uow, owner_id, index)

    async def put_plaintext_totp(self, uow, user_id, secret):
        await uow.conn.execute("INSERT INTO user_totp (user_id, secret, last_step) VALUES ($1, $2, 7)", user_id, secret)


class TestPostgresResolver(ResolverContract):
    @pytest.fixture
    def identity_uow_factory(self, pg_conn):
        return lambda: IdentityPgUow(pg_conn)

    async def make_project(self, uow, owner_id, index):
        return await insert_project(uow, owner_id, index)
