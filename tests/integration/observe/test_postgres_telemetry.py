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


# ------------------------------------------------------------------ 044: json attributes
async def test_an_attribute_holding_nul_is_stored_and_filterable(telemetry_pool):
    from corral.adapters.otlp.codec import OtlpCodec
    from corral.core.observe.model import Caller, LogQuery
    from tests.otlp_payloads import kv, logs_request

    store = PostgresTelemetryStore(telemetry_pool)
    req = logs_request(3, session_id="nul")
    for rec in req.resource_logs[0].scope_logs[0].log_records:
        rec.attributes.append(kv("k", "a\x00b"))
    await store.write(OtlpCodec().logs(req, Caller(), lambda path: None))
    rows = await store.search_logs(LogQuery(session_id="nul", attributes=(("environment", "production"),)))
    assert len(rows) == 3 and rows[0].attributes["k"] == "a\ufffdb"
