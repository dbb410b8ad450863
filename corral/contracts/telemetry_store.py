"""TelemetryStoreContract: behaviour of a hot telemetry store (TelemetryWriter + TelemetryReader).

Subclasses provide an async fixture ``telemetry_store`` returning an empty store.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from corral.core.observe.model import LogQuery, MetricAgg, MetricQuery, TelemetryBatch
from corral.core.observe.rowids import RowIds

__all__ = ["TelemetryStoreContract", "log_row", "span_row"]

_ids = RowIds()
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def log_row(i: int = 0, **kw: Any) -> tuple[Any, ...]:
    row: dict[str, Any] = {
        "id": _ids.ids(1)[0],
        "ts": T0 + timedelta(seconds=i),
        "trace_id": None,
        "span_id": None,
        "project_id": None,
        "session_id": None,
        "user_id": None,
        "service": "svc",
        "level": "info",
        "message": f"message {i}",
        "attributes": {},
    }
    row.update(kw)
    row["attributes"] = json.dumps(row["attributes"])
    return tuple(row.values())


def span_row(span_id: str, parent: str | None, start_ms: int, **kw: Any) -> tuple[Any, ...]:
    row: dict[str, Any] = {
        "id": _ids.ids(1)[0],
        "ts": T0 + timedelta(milliseconds=start_ms),
        "trace_id": "a" * 32,
        "span_id": span_id,
        "parent_span_id": parent,
        "project_id": None,
        "session_id": None,
        "user_id": None,
        "service": "svc",
        "name": f"op-{span_id}",
        "kind": "internal",
        "status": "ok",
        "duration_ms": 5.0,
        "attributes": {"k": 1},
        "events": [],
    }
    row.update(kw)
    row["attributes"] = json.dumps(row["attributes"])
    row["events"] = json.dumps(row["events"])
    return tuple(row.values())


class TelemetryStoreContract:
    async def test_logs_come_back_newest_first_with_every_envelope_field(self, telemetry_store: Any) -> None:
        pid, uid = uuid.uuid4(), uuid.uuid4()
        rows = [
            log_row(i, project_id=pid, user_id=uid, session_id="s1", trace_id="b" * 32, span_id="c" * 16)
            for i in range(3)
        ]
        await telemetry_store.write(TelemetryBatch(logs=rows))
        items = await telemetry_store.search_logs(LogQuery(project_ids=(pid,)))
        assert [i.message for i in items] == ["message 2", "message 1", "message 0"]
        first = items[0]
        assert (first.project_id, first.user_id, first.session_id) == (pid, uid, "s1")
        assert (first.trace_id, first.span_id, first.service, first.level) == (
            "b" * 32,
            "c" * 16,
            "svc",
            "info",
        )
        assert first.timestamp == T0 + timedelta(seconds=2)

    async def test_every_log_filter_narrows(self, telemetry_store: Any) -> None:
        p1, p2 = uuid.uuid4(), uuid.uuid4()
        await telemetry_store.write(
            TelemetryBatch(
                logs=[
                    log_row(0, project_id=p1, message="Disk FULL on node", level="error", service="api"),
                    log_row(1, project_id=p1, session_id="sess", attributes={"tool": "bash", "code": 2}),
                    log_row(2, project_id=p2, trace_id="d" * 32, attributes={"resource": {"host": "h1"}}),
                    log_row(3, project_id=p1, level="warn"),
                ]
            )
        )

        async def msgs(**kw: Any) -> list[str]:
            return [i.message for i in await telemetry_store.search_logs(LogQuery(**kw))]

        assert await msgs(project_ids=(p2,)) == ["message 2"]
        assert await msgs(q="disk full") == ["Disk FULL on node"]
        assert await msgs(levels=("error", "warn")) == ["message 3", "Disk FULL on node"]
        assert await msgs(service="api") == ["Disk FULL on node"]
        assert await msgs(session_id="sess") == ["message 1"]
        assert await msgs(trace_id="d" * 32) == ["message 2"]
        assert await msgs(attributes=(("tool", "bash"), ("code", "2"))) == ["message 1"]
        assert await msgs(attributes=(("resource/host", "h1"),)) == ["message 2"]
        assert await msgs(attributes=(("tool", "git"),)) == []
        assert await msgs(since=T0 + timedelta(seconds=1), until=T0 + timedelta(seconds=3)) == [
            "message 2",
            "message 1",
        ]
        assert await msgs(project_ids=()) == []

    async def test_full_text_ignores_case_in_any_script_and_takes_wildcards_literally(
        self, telemetry_store: Any
    ) -> None:
        await telemetry_store.write(
            TelemetryBatch(
                logs=[
                    log_row(0, message="Build FAILED on runner-7"),
                    log_row(1, message="Échec : Ошибка сборки"),
                    log_row(2, message="Сборка failed again"),
                    log_row(3, message="progress 100% done_ok"),
                    log_row(4, message="progress 1000 doneXok"),
                ]
            )
        )

        async def msgs(q: str) -> list[str]:
            return [i.message for i in await telemetry_store.search_logs(LogQuery(q=q))]

        assert await msgs("failed ON RUNNER") == ["Build FAILED on runner-7"]
        assert await msgs("Failed") == ["Сборка failed again", "Build FAILED on runner-7"]
        assert await msgs("échec") == ["Échec : Ошибка сборки"]
        assert await msgs("ОШИБКА") == ["Échec : Ошибка сборки"]
        assert await msgs("СБОРК") == ["Сборка failed again", "Échec : Ошибка сборки"]
        assert await msgs("100% done_") == ["progress 100% done_ok"]

    async def test_cursor_pages_through_equal_timestamps_without_gaps(self, telemetry_store: Any) -> None:
        rows = [log_row(0, message=f"m{i}") for i in range(5)] + [log_row(1, message="later")]
        await telemetry_store.write(TelemetryBatch(logs=rows))
        seen: list[str] = []
        cursor = None
        for _ in range(10):
            page = await telemetry_store.search_logs(LogQuery(limit=2, cursor=cursor))
            if not page:
                break
            seen += [i.message for i in page]
            cursor = (page[-1].timestamp, page[-1].id)
        assert seen[0] == "later"
        assert sorted(seen) == sorted(["later", "m0", "m1", "m2", "m3", "m4"])

    async def test_a_trace_s_spans_carry_its_id_and_their_json_values(self, telemetry_store: Any) -> None:
        nested = {"http.route": "/x", "n": 2, "ok": True, "none": None, "list": [1.5, "two", {"k": []}], "obj": {}}
        await telemetry_store.write(TelemetryBatch(spans=[
            span_row("1" * 16, None, 0, attributes={}, events=[]),
            span_row("2" * 16, "1" * 16, 1, attributes={}, events=[]),
            span_row("3" * 16, "1" * 16, 2, attributes=nested, events=[{"name": "e", "attributes": {"a": [1]}}]),
        ]))
        spans = sorted(await telemetry_store.trace_spans("a" * 32, None), key=lambda s: s.span_id)
        assert [s.trace_id for s in spans] == ["a" * 32] * 3
        assert [(s.attributes, s.events) for s in spans[:2]] == [({}, []), ({}, [])]
        # each span has its own (empty) values: changing one leaves the others alone
        spans[0].attributes["k"] = 1
        spans[0].events.append(1)
        assert (spans[1].attributes, spans[1].events) == ({}, [])
        assert spans[2].attributes == nested
        assert spans[2].events == [{"name": "e", "attributes": {"a": [1]}}]

    async def test_trace_spans_and_session(self, telemetry_store: Any) -> None:
        pid = uuid.uuid4()
        await telemetry_store.write(
            TelemetryBatch(
                spans=[
                    span_row("1" * 16, None, 0, project_id=pid, session_id="s9"),
                    span_row("2" * 16, "1" * 16, 3, project_id=pid, session_id="s9", events=[{"name": "e"}]),
                    span_row("3" * 16, None, 0, trace_id="f" * 32),
                ],
                logs=[log_row(0, session_id="s9", project_id=pid)],
            )
        )
        spans = await telemetry_store.trace_spans("a" * 32, (pid,))
        assert {s.span_id for s in spans} == {"1" * 16, "2" * 16}
        child = next(s for s in spans if s.span_id == "2" * 16)
        assert child.parent_span_id == "1" * 16
        assert child.events == [{"name": "e"}]
        assert child.attributes == {"k": 1}
        assert child.duration_ms == 5.0
        assert await telemetry_store.trace_spans("a" * 32, (uuid.uuid4(),)) == []
        assert [s.span_id for s in await telemetry_store.session_spans("s9", None, 10)] == [
            "1" * 16,
            "2" * 16,
        ]
        assert len(await telemetry_store.session_logs("s9", (pid,), 10)) == 1

    async def test_metric_points_by_name_and_labels(self, telemetry_store: Any) -> None:
        s1, s2 = uuid.uuid4(), uuid.uuid4()
        series = [
            (s1, "cpu", json.dumps({"host": "a"}), "gauge", None, None, "svc", None, None),
            (s2, "cpu", json.dumps({"host": "b"}), "gauge", None, None, "svc", None, None),
        ]
        points = [(s1, T0 + timedelta(seconds=i), float(i), None, None, None) for i in range(5)]
        points += [(s2, T0, 100.0, None, None, None)]
        await telemetry_store.write(TelemetryBatch(series=series, points=points))
        await telemetry_store.write(TelemetryBatch(series=series[:1]))  # known series: ignored
        q = MetricQuery(
            name="cpu", labels=(("host", "a"),), agg=MetricAgg.AVG, since=T0, until=T0 + timedelta(seconds=3)
        )
        result = await telemetry_store.metric_points(q)
        assert len(result) == 1
        assert result[0][0].labels == {"host": "a"}
        assert [v for _, v in result[0][1]] == [0.0, 1.0, 2.0]
        both = await telemetry_store.metric_points(MetricQuery(name="cpu", since=T0, until=T0 + timedelta(hours=1)))
        assert len(both) == 2

    async def test_metric_names_are_distinct_sorted_per_project_with_a_unit(self, telemetry_store: Any) -> None:
        pid, other = uuid.uuid4(), uuid.uuid4()
        series = [
            (uuid.uuid4(), "mem", json.dumps({"host": "a"}), "gauge", None, pid, "svc", None, None),
            (uuid.uuid4(), "mem", json.dumps({"host": "b"}), "gauge", "By", pid, "svc", None, None),
            (uuid.uuid4(), "cpu", json.dumps({}), "counter", "s", pid, "svc", None, None),
            (uuid.uuid4(), "hidden", json.dumps({}), "gauge", None, other, "svc", None, None),
        ]
        await telemetry_store.write(TelemetryBatch(series=series))
        names = await telemetry_store.metric_names((pid,), 10)
        assert [(n.name, n.metric_type, n.unit) for n in names] == [("cpu", "counter", "s"), ("mem", "gauge", "By")]
        assert [n.name for n in await telemetry_store.metric_names((pid,), 1)] == ["cpu"]
        assert {"cpu", "mem", "hidden"} <= {n.name for n in await telemetry_store.metric_names(None, 100)}

    async def test_nul_and_lone_surrogates_anywhere_never_fail_their_batch(self, telemetry_store: Any) -> None:
        """One record with NUL (raw, or escaped in JSON) or a lone surrogate in any text column or JSON member
        is stored with U+FFFD instead, together with the rest of its batch (Corral's own log of a request
        for ``/api/v1/nothing%00x`` once failed a whole self-telemetry batch)."""
        pid = uuid.uuid4()
        bad = "a\x00b\ud800c"
        logs = [log_row(i, project_id=pid) for i in range(3)]
        logs.append(log_row(3, project_id=pid, session_id=bad, service=bad, message=f"GET /x{bad}",
                            attributes={"http_path": bad, bad: [bad, {"k": bad}]}))
        s1 = uuid.uuid4()
        series = [(s1, f"cpu{bad}", json.dumps({"host": bad}), "gauge", bad, pid, bad, bad, None)]
        spans = [span_row("4" * 16, None, 0, project_id=pid, name=bad, session_id=bad, attributes={"u": bad},
                          events=[{"name": bad}])]
        points = [(s1, T0, 1.0, pid, None, None)]
        await telemetry_store.write(TelemetryBatch(logs=logs, series=series, spans=spans, points=points))
        items = await telemetry_store.search_logs(LogQuery(project_ids=(pid,)))
        assert len(items) == 4
        clean = "a\ufffdb\ufffdc"
        worst = items[0]
        assert worst.message == f"GET /x{clean}" and worst.service == clean and worst.session_id == clean
        assert worst.attributes == {"http_path": clean, clean: [clean, {"k": clean}]}
        span = (await telemetry_store.trace_spans("a" * 32, (pid,)))[0]
        assert span.name == clean and span.attributes == {"u": clean} and span.events == [{"name": clean}]
        found = await telemetry_store.metric_points(MetricQuery(name=f"cpu{clean}", since=T0,
                                                                until=T0 + timedelta(seconds=1)))
        assert found[0][0].labels == {"host": clean} and found[0][1][0][1] == 1.0
