"""Rotation from PostgreSQL into Parquet (pyarrow) and queries over both tiers (DuckDB)."""

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from corral.adapters.coldtier import ParquetColdTier
from corral.adapters.postgres.observe import PostgresHotArchive, PostgresTelemetryStore
from corral.contracts.telemetry_store import T0, log_row, span_row
from corral.core.errors import NotFound
from corral.core.observe.model import LogQuery, MetricAgg, MetricQuery, TelemetryBatch
from corral.core.observe.ports import ColdFile
from corral.core.observe.query import ObserveQueries
from corral.core.observe.rotation import ColdRotation
from corral.core.storage.ports import ObjectInfo

pytestmark = pytest.mark.integration


class DirStore:
    """Just enough of an ObjectStore over a directory for these tests."""

    def __init__(self, root):
        self.root = root

    async def put(self, key, data, *, content_type=None):
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return ObjectInfo(key=key, size=len(data), modified_at=datetime.now(UTC))

    async def read(self, key):
        path = self.root / key
        if not path.exists():
            raise NotFound(key)
        return path.read_bytes()

    async def delete(self, key):
        (self.root / key).unlink(missing_ok=True)

    async def list(self, prefix="", *, limit=1000, token=None):
        from corral.core.storage.ports import ObjectListing

        found = sorted(str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_file())
        objects = [
            ObjectInfo(key=k, size=0, modified_at=datetime.fromtimestamp((self.root / k).stat().st_mtime, UTC))
            for k in found
            if k.startswith(prefix)
        ]
        return ObjectListing(objects=objects)


class Clock:
    def __init__(self, now):
        self._now = now

    def now(self):
        return self._now

    def monotonic(self):
        return 0.0


async def test_rotation_moves_rows_into_parquet_and_queries_merge_tiers(pool, tmp_path):
    hot = PostgresTelemetryStore(pool)
    archive = PostgresHotArchive(pool)
    store = DirStore(tmp_path / "objects")
    cold = ParquetColdTier(store, tmp_path / "cache")
    old = [
        log_row(
            i,
            session_id="s1",
            trace_id="ab" * 16 if i == 1 else None,
            message={2: "old 2 needle", 4: "old 4\ttab\nline \\N back\\slash\r"}.get(i, f"old {i}"),
            attributes={"tool": "bash", "n": i},
        )
        for i in range(6)
    ]
    recent = [log_row(0, ts=T0 + timedelta(days=3), message="recent", session_id="s1")]
    sid = uuid.uuid4()
    await hot.write(
        TelemetryBatch(
            logs=old + recent,
            spans=[
                span_row("1" * 16, None, 0, trace_id="ab" * 16, session_id="s1"),
                span_row("2" * 16, "1" * 16, 2, trace_id="ab" * 16),
            ],
            series=[(sid, "cpu", '{"host": "a"}', "gauge", None, None, "svc", None, None)],
            points=[(sid, T0 + timedelta(seconds=i), float(i), None, None, None) for i in range(4)],
        )
    )
    rotation = ColdRotation(
        hot=archive, manifest=archive, writer=cold, clock=Clock(T0 + timedelta(days=3)), rows_per_window=2
    )
    report = await rotation.run_once()
    assert report.rows == 6 + 2 + 4
    assert (await rotation.run_once()).rows == 0  # idempotent
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM log_entries") == 1
        files = await conn.fetchval("SELECT count(*) FROM observe_cold_files")
        assert files == report.files >= 4  # logs in windows of at most 4 rows, spans, points
        assert await conn.fetchval("SELECT max(rows) FROM observe_cold_files") <= 4
        keys = {tuple(r) for r in await conn.fetch("SELECT kind, value FROM observe_cold_keys")}
        assert keys == {("t", "ab" * 16), ("s", "s1")}

    q = ObserveQueries(hot=hot, clock=Clock(T0 + timedelta(days=3)), cold_manifest=archive, cold_reader=cold)
    page = await q.search_logs(LogQuery(limit=3))
    assert [i.message.split("\t")[0] for i in page.items] == ["recent", "old 5", "old 4"]
    from corral.core.observe.query import parse_cursor

    rest = await q.search_logs(LogQuery(limit=10, cursor=parse_cursor(page.next_cursor)))
    assert [i.message for i in rest.items] == ["old 3", "old 2 needle", "old 1", "old 0"]
    assert page.items[2].message == "old 4\ttab\nline \\N back\\slash\r"  # COPY's text escapes undone
    assert [i.message for i in (await q.search_logs(LogQuery(q="NEEDLE"))).items] == ["old 2 needle"]
    assert [i.message for i in (await q.search_logs(LogQuery(trace_id="ab" * 16))).items] == ["old 1"]
    assert [i.message for i in (await q.search_logs(LogQuery(attributes=(("n", "3"),)))).items] == ["old 3"]
    first = (await q.search_logs(LogQuery(trace_id="ab" * 16))).items[0]
    assert first.timestamp == T0 + timedelta(seconds=1)
    assert first.session_id == "s1"
    view = await q.trace("ab" * 16, None)
    assert [(w.span.span_id[0], w.depth) for w in view.spans] == [("1", 0), ("2", 1)]
    timeline = await q.session_timeline("s1", None)
    assert len(timeline) == 6 + 1 + 1
    series = await q.metrics(
        MetricQuery(name="cpu", agg=MetricAgg.MAX, step_seconds=60, since=T0, until=T0 + timedelta(minutes=1))
    )
    assert series[0].points == [(T0, 3.0)]

    expired = await ColdRotation(
        hot=archive, manifest=archive, writer=cold, clock=Clock(T0 + timedelta(days=95))
    ).run_once()
    assert expired.expired_files == files + 1  # the "recent" record was rotated first, then every day expired
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM observe_cold_keys") == 0
    assert not list((tmp_path / "objects").rglob("*.parquet"))


async def test_cold_files_live_in_s3_and_are_read_back_through_the_object_store(pool, tmp_path, s3, s3_bucket):
    from corral.adapters.s3 import S3ObjectStore

    store = S3ObjectStore(endpoint=s3.endpoint, bucket=s3_bucket, access_key=s3.access_key,
                          secret_key=s3.secret_key, region=s3.region)
    try:
        hot = PostgresTelemetryStore(pool)
        archive = PostgresHotArchive(pool)
        cold = ParquetColdTier(store, tmp_path / "cache")
        await hot.write(TelemetryBatch(logs=[log_row(i, trace_id="cd" * 16, message=f"s3 {i}") for i in range(3)]))
        report = await ColdRotation(hot=archive, manifest=archive, writer=cold,
                                    clock=Clock(T0 + timedelta(days=3))).run_once()
        assert report.rows == 3
        [f] = await archive.files("logs", None, None, None)
        assert (await store.head(f.key)).size == f.bytes
        fresh = ParquetColdTier(store, tmp_path / "other-cache")  # another replica: nothing cached yet
        q = ObserveQueries(hot=hot, clock=Clock(T0), cold_manifest=archive, cold_reader=fresh)
        page = await q.search_logs(LogQuery(trace_id="cd" * 16))
        assert [i.message for i in page.items] == ["s3 2", "s3 1", "s3 0"]
    finally:
        await store.close()


async def test_unlisted_objects_older_than_the_grace_are_deleted_others_kept(pool, tmp_path, s3, s3_bucket):
    """An object written just before a crash (never recorded in the manifest) is cleaned up."""
    from corral.adapters.s3 import S3ObjectStore

    store = S3ObjectStore(endpoint=s3.endpoint, bucket=s3_bucket, access_key=s3.access_key,
                          secret_key=s3.secret_key, region=s3.region)
    try:
        hot = PostgresTelemetryStore(pool)
        archive = PostgresHotArchive(pool)
        cold = ParquetColdTier(store, tmp_path / "cache")
        await hot.write(TelemetryBatch(logs=[log_row(i, message=f"kept {i}") for i in range(3)]))
        await ColdRotation(hot=archive, manifest=archive, writer=cold, clock=Clock(T0 + timedelta(days=3))).run_once()
        [kept] = await archive.files("logs", None, None, None)
        orphan = "telemetry/logs/day=2026-11-20/project=none/crashed-3.parquet"
        await store.put(orphan, b"PAR1 half written")
        await store.put("lfs/objects/not-telemetry", b"other data")
        now = datetime.now(UTC)

        def rotation(at):
            return ColdRotation(hot=archive, manifest=archive, writer=cold, clock=Clock(at))

        young = await rotation(now).run_once()  # inside the grace: may be a rotation in progress
        assert young.orphans_deleted == 0
        assert await store.exists(orphan)
        report = await rotation(now + timedelta(hours=2)).run_once()
        assert report.orphans_deleted == 1
        assert not await store.exists(orphan)
        assert await store.exists(kept.key)
        assert await store.exists("lfs/objects/not-telemetry")
        q = ObserveQueries(hot=hot, clock=Clock(T0), cold_manifest=archive, cold_reader=cold)
        assert len((await q.search_logs(LogQuery(q="kept"))).items) == 3
    finally:
        await store.close()


async def test_a_window_deletes_only_the_rows_of_its_snapshot_and_a_failed_commit_changes_nothing(pool, tmp_path):
    hot = PostgresTelemetryStore(pool)
    archive = PostgresHotArchive(pool)
    await hot.write(TelemetryBatch(logs=[log_row(i, trace_id="cd" * 16) for i in range(3)]))
    window = await archive.window("logs", T0, T0 + timedelta(hours=1), None)
    assert [p.rows for p in window.parts] == [3]
    await hot.write(TelemetryBatch(logs=[log_row(5, trace_id="ef" * 16)]))  # committed after the window's snapshot
    part = window.parts[0]
    file = ColdFile(id=uuid.uuid4(), signal="logs", day=T0.date(), project_id=None, key="k1", rows=3,
                    min_ts=part.first[0], max_ts=part.last[0], bytes=1)
    assert await window.commit([file])
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM log_entries") == 1  # the late row stays hot
        assert await conn.fetchval("SELECT count(*) FROM observe_cold_keys WHERE value = $1", "cd" * 16) == 1

    window = await archive.window("logs", T0, T0 + timedelta(hours=1), None)
    again = ColdFile(id=uuid.uuid4(), signal="logs", day=T0.date(), project_id=None, key="k1", rows=1,
                     min_ts=T0, max_ts=T0, bytes=1)
    assert not await window.commit([again])  # the key is already recorded: nothing changes
    assert await archive.window("logs", T0, T0 + timedelta(hours=1), 0) is None  # 1 row > max_rows 0
    cold = ParquetColdTier(DirStore(tmp_path / "objects"), tmp_path / "cache")
    rotation = ColdRotation(hot=archive, manifest=archive, writer=cold, clock=Clock(T0 + timedelta(days=3)))
    real_copy = asyncpg.Connection.copy_records_to_table

    async def crash(self, *args, **kwargs):
        raise ConnectionError("killed between the manifest row and the delete")

    asyncpg.Connection.copy_records_to_table = crash
    try:
        with pytest.raises(ConnectionError):
            await rotation.run_once()
    finally:
        asyncpg.Connection.copy_records_to_table = real_copy
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM log_entries") == 1
        assert await conn.fetchval("SELECT count(*) FROM observe_cold_files") == 1
    assert (await rotation.run_once()).rows == 1
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM log_entries") == 0
        assert await conn.fetchval("SELECT sum(rows) FROM observe_cold_files") == 4
