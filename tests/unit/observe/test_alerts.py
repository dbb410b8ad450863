import uuid
from datetime import timedelta

import pytest

from corral.contracts.alert_store import AlertStoreContract
from corral.contracts.telemetry_store import T0, log_row
from corral.core.errors import InvalidInput, NotFound
from corral.core.observe.alerts import Actor, AlertEvaluator, AlertService, parse_rule_query
from corral.core.observe.commands import AlertRuleChanges, NewAlertRule
from corral.core.observe.model import AlertCondition, MetricAgg, TelemetryBatch
from corral.core.observe.query import ObserveQueries
from corral.fakes.observe import InMemoryAlertStore, InMemoryTelemetryStore


class Clock:
    def __init__(self):
        self.t = T0

    def now(self):
        return self.t

    def monotonic(self):
        return 0.0


ACTOR = Actor(user_id=uuid.uuid4(), name="ops")


def rule_of(**kw: object) -> NewAlertRule:
    fields: dict[str, object] = {"condition": AlertCondition.GT, **kw}
    return NewAlertRule(**fields)  # type: ignore[arg-type]


def test_rule_queries_parse_or_name_the_problem():
    p = parse_rule_query("metric:http.latency{route=/api, method=GET} p95 10m")
    assert p.metric.name == "http.latency"
    assert p.metric.labels == (("route", "/api"), ("method", "GET"))
    assert p.metric.agg is MetricAgg.P95
    assert p.window == timedelta(minutes=10)
    logs = parse_rule_query("logs: level=error,fatal service=api q=timeout window=1m")
    assert logs.logs.levels == ("error", "fatal")
    assert (logs.logs.service, logs.logs.q, logs.window) == ("api", "timeout", timedelta(minutes=1))
    for bad in ("cpu > 3", "metric:", "metric:x 5 parsecs", "logs: color=red", "metric:x{nope}"):
        with pytest.raises(InvalidInput) as exc:
            parse_rule_query(bad)
        assert exc.value.field == "query"


async def test_crud_is_validated_and_audited():
    store = InMemoryAlertStore()
    service = AlertService(store=store, clock=Clock())
    rule = await service.create(ACTOR, rule_of(name="errors", query="logs: level=error", threshold=3))
    assert rule.notify_channels == ("in_app",)
    assert rule.created_by == ACTOR.user_id
    with pytest.raises(InvalidInput) as exc:
        await service.create(ACTOR, rule_of(name="x", query="logs:"))
    assert exc.value.field == "threshold"
    with pytest.raises(InvalidInput) as exc:
        await service.create(ACTOR, rule_of(name=" ", query="logs:", threshold=1))
    assert exc.value.field == "name"
    updated = await service.update(ACTOR, rule.id, AlertRuleChanges(threshold=5, enabled=False))
    assert (updated.threshold, updated.enabled) == (5, False)
    assert updated.name == "errors"  # fields not sent stay as they are
    with pytest.raises(InvalidInput) as exc:
        await service.update(ACTOR, rule.id, AlertRuleChanges(name=" "))
    assert exc.value.field == "name"
    with pytest.raises(InvalidInput) as exc:  # a threshold set to null needs the absent condition
        await service.update(ACTOR, rule.id, AlertRuleChanges(threshold=None))
    assert exc.value.field == "threshold"
    described = await service.update(ACTOR, rule.id, AlertRuleChanges(description="why"))
    assert described.description == "why"
    cleared = await service.update(ACTOR, rule.id, AlertRuleChanges(description=None))
    assert cleared.description is None and cleared.threshold == 5
    await service.delete(ACTOR, rule.id)
    with pytest.raises(NotFound):
        await service.delete(ACTOR, rule.id)
    assert [a.action for a in store.audit] == [
        "alert_rule.create", "alert_rule.update", "alert_rule.update", "alert_rule.update", "alert_rule.delete",
    ]
    assert len(store.rules) == 0


async def test_rule_fires_after_for_seconds_then_resolves_once():
    clock = Clock()
    telemetry = InMemoryTelemetryStore()
    store = InMemoryAlertStore()
    queries = ObserveQueries(hot=telemetry, clock=clock)
    evaluator = AlertEvaluator(store=store, queries=queries, clock=clock)
    rule = await AlertService(store=store, clock=clock).create(
        ACTOR, rule_of(name="errors", query="logs: level=error window=5m", threshold=1, for_seconds=60)
    )
    clock.t = T0 + timedelta(minutes=1)
    await telemetry.write(TelemetryBatch(logs=[log_row(30, level="error"), log_row(31, level="error")]))
    assert await evaluator.evaluate_all() == []  # holds, but not yet for 60 s
    clock.t += timedelta(seconds=61)
    [fired] = await evaluator.evaluate_all()
    assert (fired.status, fired.value) == ("firing", 2.0)
    assert await evaluator.evaluate_all() == []  # still firing: no second event
    clock.t += timedelta(minutes=10)  # the errors left the window
    [resolved] = await evaluator.evaluate_all()
    assert resolved.status == "resolved"
    assert [e.status for _, e in store.notices] == ["firing", "resolved"]
    assert store.notices[0][0].id == rule.id
    events = await store.list_events(None, None, 10)
    firing = next(e for e in events if e.status == "firing")
    assert firing.resolved_at == clock.t


async def test_absent_fires_when_a_metric_has_no_data():
    clock = Clock()
    store = InMemoryAlertStore()
    evaluator = AlertEvaluator(
        store=store,
        queries=ObserveQueries(hot=InMemoryTelemetryStore(), clock=clock),
        clock=clock,
    )
    await AlertService(store=store, clock=clock).create(
        ACTOR, rule_of(name="heartbeat", query="metric:heartbeat 1m", condition=AlertCondition.ABSENT, for_seconds=0)
    )
    [event] = await evaluator.evaluate_all()
    assert event.status == "firing"
    assert event.value is None


class TestInMemoryAlertStore(AlertStoreContract):
    @pytest.fixture
    async def alert_store(self):
        return InMemoryAlertStore()

    @pytest.fixture
    def alert_projects(self):
        return (uuid.uuid4(), uuid.uuid4())


async def test_a_failed_transition_writes_nothing_and_the_next_pass_fires_once():
    clock = Clock()
    telemetry = InMemoryTelemetryStore()
    store = InMemoryAlertStore()
    evaluator = AlertEvaluator(store=store, queries=ObserveQueries(hot=telemetry, clock=clock), clock=clock)
    rule = await AlertService(store=store, clock=clock).create(
        ACTOR, rule_of(name="errors", query="logs: level=error window=5m", threshold=0, for_seconds=0)
    )
    clock.t = T0 + timedelta(minutes=1)
    await telemetry.write(TelemetryBatch(logs=[log_row(30, level="error")]))
    store.fail_transition = ConnectionError("crash between the writes")
    assert await evaluator.evaluate_all() == []  # the evaluator logs it and goes on
    assert store.events == [] and store.notices == []
    assert (await store.get_rule(rule.id)).firing_event_id is None
    [fired] = await evaluator.evaluate_all()
    assert await evaluator.evaluate_all() == []
    assert [e.id for e in store.events] == [fired.id]
    assert [e.id for _, e in store.notices] == [fired.id]
    assert (await store.get_rule(rule.id)).firing_event_id == fired.id
