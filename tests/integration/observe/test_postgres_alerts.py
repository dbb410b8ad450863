import json

import pytest

from corral.adapters.postgres.observe import PostgresAlertNotifier, PostgresAlertStore, create_telemetry_pool
from corral.contracts.alert_store import AlertStoreContract, audit, rule
from corral.core.ids import uuid7
from corral.core.observe.model import AlertEvent

pytestmark = pytest.mark.integration


@pytest.fixture
async def pool(db_dsn):
    p = await create_telemetry_pool(db_dsn)
    yield p
    await p.close()


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
    await store.add_event(event)
    await PostgresAlertNotifier(pool).alert_transition(r, event)
    async with pool.acquire() as conn:
        actions = await conn.fetch("SELECT action FROM audit_log WHERE resource_id = $1", r.id)
        topic, payload = await conn.fetchrow("SELECT topic, payload::text FROM outbox")
    assert [a[0] for a in actions] == ["alert_rule.create"]
    assert topic == "alert_firing"
    payload = json.loads(payload)
    assert (payload["title"], payload["rule_id"], payload["user_ids"]) == ("errors", str(r.id), [str(author)])
