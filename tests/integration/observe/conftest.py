"""Fixtures of the observability adapter tests."""

import pytest

from corral.adapters.postgres.observe import create_telemetry_pool


@pytest.fixture
async def pool(db_dsn):
    p = await create_telemetry_pool(db_dsn)
    yield p
    await p.close()
