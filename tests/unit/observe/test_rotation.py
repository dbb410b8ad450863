import uuid
from datetime import timedelta

import pytest

from corral.contracts.telemetry_store import T0, log_row, span_row
from corral.core.observe.model import LogQuery, TelemetryBatch
from corral.core.observe.ports import ColdFile
from corral.core.observe.query import ObserveQueries
from corral.core.observe.rotation import ColdRotation
from corral.fakes.observe import InMemoryColdTier, InMemoryTelemetryStore


class Clock:
    def __init__(self, now):
        self._now = now

    def now(self):
        return self._now

    def monotonic(self):
        return 0.0


@pytest.fixture
async def store():
    s = InMemoryTelemetryStore()
    await s.write(
        TelemetryBatch(
            logs=[log_row(i, session_id="s", trace_id="a" * 32 if i == 0 else None) for i in range(5)],
            spans=[span_row("1" * 16, None, 0, session_id="s")],
        )
    )
    return s


def rotation(store, cold, now, rows_per_window=2):
    return ColdRotation(hot=store, manifest=store, writer=cold, clock=Clock(now), rows_per_window=rows_per_window)


async def test_old_rows_move_to_files_and_queries_still_find_them(store):
    cold = InMemoryColdTier()
    report = await rotation(store, cold, T0 + timedelta(days=3)).run_once()
    assert report.rows == 6
    assert report.files == len(store.manifest) >= 3  # at most 4 rows (twice the window's target) a window
    assert all(f.rows <= 4 for f in store.manifest.values())
    assert store.logs == [] and store.spans == []
    assert sum(len(v) for v in cold.objects.values()) == 6
    q = ObserveQueries(hot=store, clock=Clock(T0), cold_manifest=store, cold_reader=cold)
    page = await q.search_logs(LogQuery(limit=10))
    assert [i.message for i in page.items] == [f"message {i}" for i in (4, 3, 2, 1, 0)]
    assert [i.message for i in (await q.search_logs(LogQuery(trace_id="a" * 32))).items] == ["message 0"]
    assert len((await q.trace("a" * 32, None)).spans) == 1
    assert len(await q.session_timeline("s", None)) == 6


async def test_a_second_run_is_a_no_op(store):
    cold = InMemoryColdTier()
    await rotation(store, cold, T0 + timedelta(days=3)).run_once()
    again = await rotation(store, cold, T0 + timedelta(days=3)).run_once()
    assert (again.rows, again.files) == (0, 0)


async def test_crash_between_write_and_commit_neither_loses_nor_duplicates(store):
    cold = InMemoryColdTier()
    real_commit = store._commit_window
    calls = 0

    def crashing_commit(signal, files, parts):
        nonlocal calls
        calls += 1
        if calls == 2:
            raise ConnectionError("killed")
        return real_commit(signal, files, parts)

    store._commit_window = crashing_commit
    with pytest.raises(ConnectionError):
        await rotation(store, cold, T0 + timedelta(days=3)).run_once()
    assert 0 < sum(f.rows for f in store.manifest.values()) < 5  # the first window committed, not the second
    store._commit_window = real_commit
    await rotation(store, cold, T0 + timedelta(days=3)).run_once()
    q = ObserveQueries(hot=store, clock=Clock(T0), cold_manifest=store, cold_reader=cold)
    page = await q.search_logs(LogQuery(limit=100))
    assert sorted(i.message for i in page.items) == sorted(f"message {i}" for i in range(5))
    assert sum(f.rows for f in store.manifest.values()) == 6


async def test_recent_rows_stay_hot_and_old_cold_days_expire(store):
    cold = InMemoryColdTier()
    report = await rotation(store, cold, T0 + timedelta(hours=1)).run_once()
    assert report.rows == 0
    files = (await rotation(store, cold, T0 + timedelta(days=3)).run_once()).files
    expired = await rotation(store, cold, T0 + timedelta(days=91)).run_once()
    assert expired.expired_files == files > 0
    assert cold.objects == {}
    assert store.manifest == {}


async def test_objects_missing_from_the_manifest_are_deleted_after_the_grace(store):
    cold = InMemoryColdTier()
    now = T0 + timedelta(days=3)
    await rotation(store, cold, now).run_once()
    listed = set(cold.objects)
    for name in ("a", "b", "c"):  # objects written just before a crash: never recorded
        await cold.write(f"telemetry/logs/day=2026-11-20/project=none/{name}.parquet", "logs", [{"id": 1}])
    cold.written_at["telemetry/logs/day=2026-11-20/project=none/c.parquet"] = now  # young: maybe mid-rotation
    for key in listed | {f"telemetry/logs/day=2026-11-20/project=none/{n}.parquet" for n in "ab"}:
        cold.written_at[key] = now - timedelta(hours=2)
    report = await rotation(store, cold, now).run_once()
    assert report.orphans_deleted == 2
    assert set(cold.objects) == listed | {"telemetry/logs/day=2026-11-20/project=none/c.parquet"}
    assert (await rotation(store, cold, now).run_once()).orphans_deleted == 0


async def test_rows_arriving_in_an_open_window_stay_hot_for_the_next_pass(store):
    window = await store.window("logs", T0 - timedelta(hours=1), T0 + timedelta(hours=1), None)
    await store.write(TelemetryBatch(logs=[log_row(7)]))  # lands inside the window, after its snapshot
    parts = window.parts
    files = [
        ColdFile(id=uuid.uuid4(), signal="logs", day=T0.date(), project_id=p.project_id, key=f"k{i}", rows=p.rows,
                 min_ts=p.first[0], max_ts=p.last[0], bytes=1)
        for i, p in enumerate(parts)
    ]
    assert await window.commit(files)
    assert [r["ts"] for r in store.logs] == [T0 + timedelta(seconds=7)]
    report = await rotation(store, InMemoryColdTier(), T0 + timedelta(days=3)).run_once()
    assert report.rows == 2  # the late log and the span


async def test_windows_narrow_until_they_fit_and_each_project_gets_its_own_file():
    store = InMemoryTelemetryStore()
    projects = [uuid.UUID(int=1), uuid.UUID(int=2)]
    await store.write(TelemetryBatch(logs=[log_row(i, project_id=projects[i % 2]) for i in range(40)]))
    cold = InMemoryColdTier()
    report = await rotation(store, cold, T0 + timedelta(days=3), rows_per_window=5).run_once()
    assert report.rows == 40
    files = list(store.manifest.values())
    assert all(f.rows <= 10 for f in files)
    assert {f.project_id for f in files} == set(projects)
    assert sum(f.rows for f in files if f.project_id == projects[0]) == 20
    for f in files:  # each file: one project, sorted by time
        rows = cold.objects[f.key]
        assert {r["project_id"] for r in rows} == {f.project_id}
        assert [r["ts"] for r in rows] == sorted(r["ts"] for r in rows)
        assert (rows[0]["ts"], rows[-1]["ts"], len(rows)) == (f.min_ts, f.max_ts, f.rows)


class _Gate:
    """Wraps an object so the named async methods wait at a shared barrier before running:
    reads that run one after another never get past it."""

    def __init__(self, inner, barrier, names):
        self._inner, self._barrier, self._names = inner, barrier, names

    def __getattr__(self, name):
        attr = getattr(self._inner, name)
        if name not in self._names:
            return attr

        async def gated(*args, **kwargs):
            await self._barrier.wait()
            return await attr(*args, **kwargs)

        return gated


async def test_session_timeline_and_trace_read_both_tiers_at_once(store):
    import asyncio

    cold = InMemoryColdTier()
    await rotation(store, cold, T0 + timedelta(days=3)).run_once()
    await store.write(TelemetryBatch(logs=[log_row(9, session_id="s")]))  # one record still hot
    barrier = asyncio.Barrier(4)  # hot logs, hot spans, cold logs, cold spans
    q = ObserveQueries(
        hot=_Gate(store, barrier, {"session_logs", "session_spans"}),
        clock=Clock(T0),
        cold_manifest=store,
        cold_reader=_Gate(cold, barrier, {"session_logs", "session_spans"}),
    )
    assert len(await asyncio.wait_for(q.session_timeline("s", None), 10)) == 7
    barrier = asyncio.Barrier(2)  # hot spans, cold spans
    q = ObserveQueries(
        hot=_Gate(store, barrier, {"trace_spans"}),
        clock=Clock(T0),
        cold_manifest=store,
        cold_reader=_Gate(cold, barrier, {"trace_spans"}),
    )
    assert len((await asyncio.wait_for(q.trace("a" * 32, None), 10)).spans) == 1
