"""ColdCompactionManifestContract: behaviour of the manifest side of cold-tier compaction.

Subclasses provide an async fixture ``cold_manifests`` returning ``(manifest, compaction)``: a
``ColdManifest`` and a ``ColdCompactionManifest`` over the same, empty, manifest.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from corral.contracts.telemetry_store import T0 as DATA_T0
from corral.contracts.telemetry_store import log_row, span_row
from corral.core.observe.model import LogQuery, MetricAgg, MetricQuery, TelemetryBatch
from corral.core.observe.ports import ColdFile
from corral.core.observe.query import ObserveQueries, parse_cursor

__all__ = ["ColdCompactionManifestContract", "cold_file", "compaction_dataset", "query_answers"]

PROJECTS = (uuid.UUID(int=11), uuid.UUID(int=12))
SERIES = uuid.UUID(int=21)


def compaction_dataset(n: int = 60) -> TelemetryBatch:
    """Logs, spans and metric points of two projects and none over one day: rotated in small
    windows they make many small files per (signal, day, project)."""
    logs, spans = [], []
    for i in range(n):
        project = PROJECTS[i % 2] if i % 5 else None
        logs.append(
            log_row(
                i * 60,
                project_id=project,
                trace_id=f"{i % 7:032x}" if i % 3 else None,
                session_id=f"sess-{i % 4}",
                level=("info", "warn", "error")[i % 3],
                service=("api", "worker")[i % 2],
                message=f"step {i}" + (" NEEDLE found" if i % 11 == 0 else ""),
                attributes={"n": i, "tool": ("bash", "git")[i % 2]},
            )
        )
        spans.append(
            span_row(
                f"{i:016x}",
                f"{i - 7:016x}" if i >= 7 else None,
                i * 60_000 + 5,
                trace_id=f"{i % 7:032x}",
                project_id=project,
                session_id=f"sess-{i % 4}",
            )
        )
    series = [(SERIES, "cpu", '{"host": "a"}', "gauge", None, None, "svc", None, None)]
    points = [(SERIES, DATA_T0 + timedelta(seconds=30 * i), float(i % 13), None, None, None) for i in range(2 * n)]
    return TelemetryBatch(logs=logs, spans=spans, series=series, points=points)


async def query_answers(q: ObserveQueries) -> dict[str, Any]:
    """What the query API answers over ``compaction_dataset`` (log search with filters, full text,
    paging, trace waterfalls, logs by trace id, session timelines, metrics)."""

    async def logs(**kw: Any) -> list[tuple[int, str]]:
        return [(i.id, i.message) for i in (await q.search_logs(LogQuery(limit=1000, **kw))).items]

    out: dict[str, Any] = {
        "all": await logs(),
        "project": await logs(project_ids=(PROJECTS[0],)),
        "levels": await logs(levels=("error", "warn"), service="api"),
        "text": await logs(q="needle"),
        "attributes": await logs(attributes=(("tool", "git"),)),
        "window": await logs(since=DATA_T0 + timedelta(minutes=10), until=DATA_T0 + timedelta(minutes=25)),
    }
    pages, cursor = [], None
    while True:
        page = await q.search_logs(LogQuery(limit=7, cursor=parse_cursor(cursor)))
        pages.append([i.id for i in page.items])
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    out["pages"] = pages
    for t in range(7):
        trace = f"{t:032x}"
        out[f"trace {t}"] = [(w.span.span_id, w.depth, w.offset_ms) for w in (await q.trace(trace, None)).spans]
        out[f"trace logs {t}"] = await logs(trace_id=trace)
    for s in range(4):
        timeline = await q.session_timeline(f"sess-{s}", None)
        out[f"session {s}"] = [(t.kind, t.timestamp, t.log.id if t.log else t.span and t.span.span_id)
                               for t in timeline]
        out[f"session logs {s}"] = await logs(session_id=f"sess-{s}", project_ids=(PROJECTS[1],))
    series = await q.metrics(
        MetricQuery(name="cpu", agg=MetricAgg.MAX, step_seconds=300, since=DATA_T0, until=DATA_T0 + timedelta(hours=2))
    )
    out["metrics"] = [(s.labels, s.points) for s in series]
    return out

DAY = date(2026, 11, 20)
T0 = datetime(2026, 11, 20, tzinfo=UTC)


def cold_file(i: int, *, rows: int = 10, day: date = DAY, project_id: uuid.UUID | None = None,
              signal: str = "logs") -> ColdFile:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(minutes=10 * i)
    return ColdFile(
        id=uuid.uuid4(),
        signal=signal,
        day=day,
        project_id=project_id,
        key=f"telemetry/{signal}/day={day}/project={project_id or 'none'}/{i}-{uuid.uuid4().hex[:6]}.parquet",
        rows=rows,
        min_ts=start,
        max_ts=start + timedelta(minutes=5),
        bytes=1000 + i,
    )


def _keys(*values: str) -> frozenset[tuple[str, str]]:
    return frozenset(("t", v) for v in values)


class ColdCompactionManifestContract:
    async def test_groups_of_enough_small_files_of_complete_days_oldest_first(self, cold_manifests: Any) -> None:
        _, compaction = cold_manifests
        p = uuid.uuid4()
        day2 = DAY + timedelta(days=1)
        files = [cold_file(i, project_id=p) for i in (3, 1, 2)]  # recorded out of time order
        files += [cold_file(9, project_id=p, rows=500)]  # not small: left out
        files += [cold_file(i) for i in range(2)]  # project none: only two small files
        files += [cold_file(i, day=day2, project_id=p) for i in range(3)]  # a later day
        files += [cold_file(i, signal="spans", project_id=p) for i in range(3)]  # another signal
        assert await compaction.replace([], files, [frozenset()] * len(files), T0)

        groups = await compaction.compactable("logs", day2 + timedelta(days=1), 100, 3, 10)
        assert [(g.signal, g.day, g.project_id) for g in groups] == [("logs", DAY, p), ("logs", day2, p)]
        assert [f.key for f in groups[0].files] == [files[1].key, files[2].key, files[0].key]  # by min_ts
        assert groups[0].files[0] == files[1]
        assert [g.day for g in await compaction.compactable("logs", day2, 100, 3, 10)] == [DAY]  # day2 not complete
        assert len(await compaction.compactable("logs", day2 + timedelta(days=1), 100, 3, 1)) == 1  # limit
        assert len(await compaction.compactable("logs", day2, 100, 2, 10)) == 2  # project none has 2
        assert await compaction.compactable("logs", day2, 100, 4, 10) == []
        assert [g.signal for g in await compaction.compactable("spans", day2, 100, 3, 10)] == ["spans"]

    async def test_replace_lists_the_new_files_and_retires_the_old_at_once(self, cold_manifests: Any) -> None:
        manifest, compaction = cold_manifests
        old = [cold_file(i) for i in range(3)]
        assert await compaction.replace([], old, [_keys("a" * 32), _keys("b" * 32), frozenset()], T0)
        merged = cold_file(0, rows=30)
        assert await compaction.replace(old, [merged], [_keys("a" * 32, "b" * 32)], T0)

        assert await manifest.files("logs", None, None, None) == [merged]
        assert await manifest.files("logs", None, None, None, trace_id="a" * 32) == [merged]
        assert await manifest.files("logs", None, None, None, trace_id="b" * 32) == [merged]
        # retired files are still recorded: the orphan sweep must leave their objects alone
        assert await manifest.recorded([f.key for f in old]) == {f.key for f in old}
        assert await compaction.compactable("logs", DAY + timedelta(days=1), 30, 1, 10) == []  # only retired ones

    async def test_session_keys_are_kept_apart_from_trace_keys(self, cold_manifests: Any) -> None:
        manifest, compaction = cold_manifests
        f = cold_file(0)
        assert await compaction.replace([], [f], [frozenset({("s", "sess-1"), ("t", "c" * 32)})], T0)
        assert await manifest.files("logs", None, None, None, session_id="sess-1") == [f]
        assert await manifest.files("logs", None, None, None, trace_id="sess-1") == []
        assert await manifest.files("logs", None, None, None, session_id="c" * 32) == []

    async def test_replace_backs_off_when_an_old_file_expired_or_was_retired(self, cold_manifests: Any) -> None:
        manifest, compaction = cold_manifests
        old = [cold_file(i) for i in range(2)]
        other_day = [cold_file(i, day=DAY + timedelta(days=5)) for i in range(2)]
        assert await compaction.replace([], old + other_day, [frozenset()] * 4, T0)
        await manifest.expire(DAY + timedelta(days=1))  # retention takes DAY meanwhile
        lost = cold_file(0, rows=20)
        assert not await compaction.replace(old, [lost], [_keys("d" * 32)], T0)
        assert await manifest.recorded([lost.key]) == set()
        assert await manifest.files("logs", None, None, None, trace_id="d" * 32) == []

        first = cold_file(5, rows=20, day=other_day[0].day)
        assert await compaction.replace(other_day, [first], [frozenset()], T0)
        second = cold_file(6, rows=20, day=other_day[0].day)
        assert not await compaction.replace(other_day, [second], [frozenset()], T0)  # already retired
        assert await manifest.files("logs", None, None, None) == [first]

    async def test_retired_files_are_forgotten_only_after_the_grace(self, cold_manifests: Any) -> None:
        manifest, compaction = cold_manifests
        early, late = [cold_file(i) for i in range(2)], [cold_file(i + 2) for i in range(2)]
        assert await compaction.replace([], early + late, [frozenset()] * 4, T0)
        assert await compaction.replace(early, [cold_file(0, rows=20)], [frozenset()], T0)
        assert await compaction.replace(late, [cold_file(2, rows=20)], [frozenset()], T0 + timedelta(hours=1))
        assert await compaction.purge_retired(T0) == []  # retired at T0: not before T0
        gone = await compaction.purge_retired(T0 + timedelta(minutes=30))
        assert sorted(f.key for f in gone) == sorted(f.key for f in early)
        assert await manifest.recorded([f.key for f in early + late]) == {f.key for f in late}
        assert len(await manifest.files("logs", None, None, None)) == 2

    async def test_expiry_forgets_retired_files_of_old_days_too(self, cold_manifests: Any) -> None:
        manifest, compaction = cold_manifests
        old = [cold_file(i) for i in range(2)]
        assert await compaction.replace([], old, [frozenset()] * 2, T0)
        merged = cold_file(0, rows=20)
        assert await compaction.replace(old, [merged], [frozenset()], T0)
        expired = await manifest.expire(DAY + timedelta(days=1))
        assert sorted(f.key for f in expired) == sorted(f.key for f in [*old, merged])
        assert await compaction.purge_retired(T0 + timedelta(days=1)) == []
