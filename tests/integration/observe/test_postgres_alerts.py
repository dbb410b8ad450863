import json
from datetime import timedelta

import attrs
import pytest

from corral.adapters.postgres.observe import PostgresAlertStore
from corral.contracts.alert_store import AlertStoreContract, audit, rule
from corral.core.ids import uuid7
from corral.core.observe.model import AlertEvent

pytestmark = pytest.mark.integration


class TestPostgresAlertStore(AlertStoreContract):
    @pytest.fixture
    async def alert_store(self, pool):
        return PostgresAlertStore(pool)

    @pytest.fixture
    async def alert_projects(self, pool):
        async with pool.acquire() as conn:
            owner = await conn.fetchval(
                "INSERT INTO users (name, email, password_hash) VALUES ('owner', 'o@example.com', 'x') RETURNING id"
            )
            return tuple(
                [
                    await conn.fetchval("INSERT INTO projects (owner_id, name) VALUES ($1, $2) RETURNING id", owner, n)
                    for n in ("app", "other")
                ]
            )


async def test_mutations_are_audited_and_transitions_go_to_the_outbox(pool):
    store = PostgresAlertStore(pool)
    async with pool.acquire() as conn:
        author = await conn.fetchval(
            "INSERT INTO users (name, email, password_hash) VALUES ('ops', 'ops@example.com', 'x') RETURNING id"
        )
    r = rule(None, created_by=author)
    await store.add_rule(r, audit(r, "alert_rule.create"))
    event = AlertEvent(
        id=uuid7(), rule_id=r.id, status="firing", value=5.0, message="errors: 5 (gt 3)", created_at=r.created_at
    )
    await store.record_transition(attrs.evolve(r, firing_event_id=event.id), event)
    async with pool.acquire() as conn:
        actions = await conn.fetch("SELECT action FROM audit_log WHERE resource_id = $1", r.id)
        topic, payload = await conn.fetchrow("SELECT topic, payload::text FROM outbox")
    assert [a[0] for a in actions] == ["alert_rule.create"]
    assert topic == "alert_firing"
    payload = json.loads(payload)
    assert (payload["title"], payload["rule_id"], payload["user_ids"]) == ("errors", str(r.id), [str(author)])


async def test_a_crash_between_the_transition_writes_leaves_nothing_and_fires_once_later(pool):
    """Fault injected after the event and rule-state writes, before the outbox row: nothing stays."""
    from corral.core.observe.alerts import AlertEvaluator
    from corral.core.observe.model import TelemetryBatch
    from corral.core.observe.query import ObserveQueries
    from corral.fakes.observe import InMemoryTelemetryStore

    store = PostgresAlertStore(pool)
    r = rule(None, created_by=None, query="logs: level=error window=5m", threshold=0.0, for_seconds=0)
    await store.add_rule(r, audit(r, "alert_rule.create"))

    class Clock:
        def now(self):
            return r.created_at + timedelta(minutes=1)

    telemetry = InMemoryTelemetryStore()
    await telemetry.write(
        TelemetryBatch(
            logs=[(1, Clock().now() - timedelta(seconds=30), None, None, None, None, None, "svc", "error", "x", "{}")]
        )
    )
    evaluator = AlertEvaluator(store=store, queries=ObserveQueries(hot=telemetry, clock=Clock()), clock=Clock())
    async with pool.acquire() as conn:
        await conn.execute(
            "CREATE FUNCTION crash_outbox() RETURNS trigger LANGUAGE plpgsql AS "
            "$$BEGIN RAISE EXCEPTION 'injected crash'; END$$"
        )
        await conn.execute("CREATE TRIGGER crash BEFORE INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION crash_outbox()")
    assert await evaluator.evaluate_all() == []  # the failure is logged; the pass goes on
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM alert_events") == 0
        assert await conn.fetchval("SELECT firing_event_id FROM alert_rules WHERE id = $1", r.id) is None
        await conn.execute("DROP TRIGGER crash ON outbox")
    [fired] = await evaluator.evaluate_all()
    assert await evaluator.evaluate_all() == []  # still firing: nothing new
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM alert_events") == 1
        assert await conn.fetchval("SELECT count(*) FROM outbox WHERE topic = 'alert_firing'") == 1
        assert await conn.fetchval("SELECT firing_event_id FROM alert_rules WHERE id = $1", r.id) == fired.id
