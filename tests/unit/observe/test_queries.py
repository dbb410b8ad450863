import uuid
from datetime import UTC, datetime, timedelta

import pytest

from corral.contracts.telemetry_store import T0, log_row, span_row
from corral.core.errors import InvalidInput
from corral.core.observe.filters import aggregate, percentile
from corral.core.observe.model import LogQuery, MetricAgg, MetricQuery, SpanItem, TelemetryBatch
from corral.core.observe.query import ObserveQueries, parse_cursor, waterfall
from corral.fakes.observe import InMemoryTelemetryStore


class FixedClock:
    def now(self):
        return T0 + timedelta(hours=1)

    def monotonic(self):
        return 0.0


@pytest.fixture
async def store():
    return InMemoryTelemetryStore()


async def test_log_pages_follow_cursors_to_the_end(store):
    await store.write(TelemetryBatch(logs=[log_row(i) for i in range(5)]))
    queries = ObserveQueries(hot=store, clock=FixedClock())
    page = await queries.search_logs(LogQuery(limit=2))
    seen = [i.message for i in page.items]
    while page.next_cursor:
        page = await queries.search_logs(LogQuery(limit=2, cursor=parse_cursor(page.next_cursor)))
        seen += [i.message for i in page.items]
    assert seen == [f"message {i}" for i in (4, 3, 2, 1, 0)]


def test_a_foreign_cursor_is_invalid_input():
    with pytest.raises(InvalidInput):
        parse_cursor("bm9wZQ")


async def test_trace_waterfall_is_in_tree_order_with_offsets(store):
    await store.write(
        TelemetryBatch(
            spans=[
                span_row("c" * 16, "a" * 16, 5),
                span_row("a" * 16, None, 0),
                span_row("b" * 16, "a" * 16, 2),
                span_row("d" * 16, "b" * 16, 3),
            ]
        )
    )
    view = await ObserveQueries(hot=store, clock=FixedClock()).trace("a" * 32, None)
    assert [(w.span.span_id[0], w.depth, w.offset_ms) for w in view.spans] == [
        ("a", 0, 0.0),
        ("b", 1, 2.0),
        ("d", 2, 3.0),
        ("c", 1, 5.0),
    ]


async def test_session_timeline_interleaves_logs_and_spans(store):
    await store.write(
        TelemetryBatch(
            logs=[log_row(1, session_id="s"), log_row(3, session_id="s"), log_row(2, session_id="other")],
            spans=[span_row("e" * 16, None, 2000, session_id="s")],
        )
    )
    items = await ObserveQueries(hot=store, clock=FixedClock()).session_timeline("s", None)
    assert [t.kind for t in items] == ["log", "span", "log"]


async def test_metrics_aggregate_per_step(store):
    sid = uuid.uuid4()
    await store.write(
        TelemetryBatch(
            series=[(sid, "req", '{"route":"/"}', "counter", None, None, "svc", None, None)],
            points=[
                (sid, T0 + timedelta(seconds=10 * i), float(v), None, None, None)
                for i, v in enumerate([0, 10, 20, 5, 15, 25])
            ],
        )
    )
    q = ObserveQueries(hot=store, clock=FixedClock())
    rate = await q.metrics(
        MetricQuery(name="req", agg=MetricAgg.RATE, step_seconds=30, since=T0, until=T0 + timedelta(minutes=1))
    )
    assert rate[0].labels == {"route": "/"}
    # bucket 0: 0→10→20 = +20; bucket 1: reset to 5 (+5), +10, +10 = +25
    assert [v for _, v in rate[0].points] == [20 / 30, 25 / 30]
    mx = await q.metrics(
        MetricQuery(name="req", agg=MetricAgg.MAX, step_seconds=60, since=T0, until=T0 + timedelta(minutes=1))
    )
    assert mx[0].points == [(T0, 25.0)]
    with pytest.raises(InvalidInput):
        await q.metrics(MetricQuery(name="req", step_seconds=1, since=T0, until=T0 + timedelta(days=1)))


def test_aggregations():
    t = datetime(2026, 1, 1, tzinfo=UTC)
    pts = [(t + timedelta(seconds=i), float(i)) for i in range(101)]
    end = t + timedelta(seconds=200)
    assert aggregate(pts, MetricAgg.P95, t, end, 200) == [(t, 95.0)]
    assert aggregate(pts, MetricAgg.AVG, t, end, 200) == [(t, 50.0)]
    assert aggregate(pts, MetricAgg.SUM, t, end, 200) == [(t, 5050.0)]
    assert aggregate(pts, MetricAgg.MIN, t, end, 100) == [(t, 0.0), (t + timedelta(seconds=100), 100.0)]
    assert percentile([1.0, 2.0], 0.5) == 1.5


def _span(span_id, parent, start_ms):
    return SpanItem(id=0, start=T0 + timedelta(milliseconds=start_ms), trace_id="a" * 32, span_id=span_id,
                    parent_span_id=parent, name=span_id, service="svc", kind="internal", status="ok", duration_ms=1.0,
                    project_id=None, session_id=None, user_id=None, attributes={}, events=[])


def test_the_waterfall_orders_siblings_by_start_then_id_and_roots_orphans():
    spans = [_span("r", None, 0), _span("c2", "r", 5), _span("c1", "r", 5), _span("c0", "r", 9),
             _span("g", "c1", 6), _span("orphan", "gone", 1), _span("r", None, 0)]  # "r" twice: once in the tree
    assert [(w.span.span_id, w.depth, w.offset_ms) for w in waterfall(spans)] == [
        ("r", 0, 0.0), ("c1", 1, 5.0), ("g", 2, 6.0), ("c2", 1, 5.0), ("c0", 1, 9.0), ("orphan", 0, 1.0)]


def test_spans_a_parent_cycle_hides_from_every_root_follow_as_roots():
    # x <-> y and u <-> v are cycles, z hangs under y: none of them is reachable from the root
    spans = [_span("root", None, 0), _span("x", "y", 3), _span("y", "x", 4), _span("z", "y", 5),
             _span("u", "v", 8), _span("v", "u", 7)]
    assert [(w.span.span_id, w.depth) for w in waterfall(spans)] == [
        ("root", 0), ("x", 0), ("y", 1), ("z", 2), ("v", 0), ("u", 1)]
    # a trace that is nothing but a cycle still shows every span
    assert [w.span.span_id for w in waterfall([_span("p", "q", 1), _span("q", "p", 0)])] == ["q", "p"]
    assert waterfall([]) == []
