import pytest

from corral.adapters.postgres.observe import PostgresTelemetryStore, create_telemetry_pool
from corral.contracts.telemetry_store import TelemetryStoreContract

pytestmark = pytest.mark.integration


@pytest.fixture
async def telemetry_pool(db_dsn):
    pool = await create_telemetry_pool(db_dsn)
    yield pool
    await pool.close()


class TestPostgresTelemetryStore(TelemetryStoreContract):
    @pytest.fixture
    async def telemetry_store(self, telemetry_pool):
        return PostgresTelemetryStore(telemetry_pool)


async def test_telemetry_connections_plan_for_the_parameters_without_jit(telemetry_pool):
    async with telemetry_pool.acquire() as conn:
        assert await conn.fetchval("SHOW jit") == "off"
        assert await conn.fetchval("SHOW plan_cache_mode") == "force_custom_plan"

