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


async def test_a_record_refused_even_when_cleaned_is_dropped_alone_not_its_batch(telemetry_pool, caplog):
    """A value PostgreSQL refuses (here: attributes that are not JSON) costs that record, not its batch: the
    batch is written again part by part, and only the refused record is left out (and logged)."""
    import uuid

    from corral.contracts.telemetry_store import log_row
    from corral.core.observe.model import LogQuery, TelemetryBatch

    store = PostgresTelemetryStore(telemetry_pool)
    pid = uuid.uuid4()
    rows = [log_row(i, project_id=pid, message=f"ok {i}") for i in range(5)]
    broken = list(log_row(9, project_id=pid, message="broken\x00"))
    broken[10] = "{not json"
    rows.insert(2, tuple(broken))
    await store.write(TelemetryBatch(logs=rows))
    found = await store.search_logs(LogQuery(project_ids=(pid,)))
    assert sorted(i.message for i in found) == [f"ok {i}" for i in range(5)]
    assert "dropped a telemetry record" in caplog.text
