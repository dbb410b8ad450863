"""Cold-tier compaction against PostgreSQL with objects on local disk and on S3."""

from datetime import timedelta

import asyncpg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corral.adapters.coldtier import ParquetColdTier
from corral.adapters.localfs import LocalFsObjectStore
from corral.adapters.postgres.observe import (
    PostgresColdCompactionManifest,
    PostgresHotArchive,
    PostgresTelemetryStore,
)
from corral.contracts.cold_compaction import DATA_T0, ColdCompactionManifestContract, compaction_dataset, query_answers
from corral.contracts.cold_merger import ColdMergerContract
from corral.core.observe.compaction import ColdCompaction, prune_cache
from corral.core.observe.model import LogQuery
from corral.core.observe.query import ObserveQueries
from corral.core.observe.rotation import ColdRotation
from corral.fakes.clock import FakeClock as Clock

pytestmark = pytest.mark.integration
NOW = DATA_T0 + timedelta(days=3)


class TestPostgresColdCompactionManifest(ColdCompactionManifestContract):
    @pytest.fixture
    async def cold_manifests(self, pool):
        return PostgresHotArchive(pool), PostgresColdCompactionManifest(pool)


class TestParquetColdMerger(ColdMergerContract):
    @pytest.fixture
    async def cold_tier(self, tmp_path):
        return ParquetColdTier(local_store(tmp_path / "objects"), tmp_path / "cache")


class Tier:
    """The dataset rotated into many small files, and the compaction the server would run."""

    def __init__(self, pool, store, cache):
        self.pool, self.store = pool, store
        self.hot = PostgresTelemetryStore(pool)
        self.archive = PostgresHotArchive(pool)
        self.cold = ParquetColdTier(store, cache)
        self.rotation = ColdRotation(
            hot=self.archive, manifest=self.archive, writer=self.cold, clock=Clock(NOW), rows_per_window=4
        )
        self.compaction = ColdCompaction(
            manifest=PostgresColdCompactionManifest(pool), merger=self.cold, writer=self.cold, clock=Clock(NOW),
            min_files=3, target_rows=25, max_groups=100,
        )
        self.queries = ObserveQueries(hot=self.hot, clock=Clock(NOW), cold_manifest=self.archive, cold_reader=self.cold)

    async def load(self):
        await self.hot.write(compaction_dataset())
        assert (await self.rotation.run_once()).rows == 60 + 60 + 120
        return self

    async def compact(self, at=NOW):
        self.compaction.clock = Clock(at)
        return await self.compaction.run_once(self.rotation.complete_days(NOW), now=at)

    async def listed(self):
        async with self.pool.acquire() as conn:
            return await conn.fetch("SELECT key, rows FROM observe_cold_files WHERE retired_at IS NULL")

    async def live_keys(self):
        async with self.pool.acquire() as conn:
            return await conn.fetch(
                "SELECT f.key, k.kind, k.value FROM observe_cold_keys k JOIN observe_cold_files f ON f.id = k.file_id "
                "WHERE f.retired_at IS NULL"
            )


def local_store(root):
    return LocalFsObjectStore(root, signing_key=b"k" * 32, base_url="http://localhost", fsync=False)


async def test_compaction_keeps_every_answer_and_lookup_key_in_fewer_sorted_files(pool, tmp_path):
    tier = await Tier(pool, local_store(tmp_path / "objects"), tmp_path / "cache").load()
    before = await tier.queries.search_logs(LogQuery(limit=1))  # warms the cache with pre-compaction files
    answers = await query_answers(tier.queries)
    keys_before = {(r["kind"], r["value"]) for r in await tier.live_keys()}
    files_before = len(await tier.listed())

    report = await tier.compact()
    assert report.groups > 0 and report.files_out < report.files_in and report.rows > 0
    listed = await tier.listed()
    assert len(listed) == files_before - report.files_in + report.files_out
    assert sum(r["rows"] for r in listed) == 240
    assert await query_answers(tier.queries) == answers
    assert (await tier.queries.search_logs(LogQuery(limit=1))).items == before.items
    fresh = ParquetColdTier(tier.store, tmp_path / "other-cache")  # another replica, nothing cached
    q = ObserveQueries(hot=tier.hot, clock=Clock(NOW), cold_manifest=tier.archive, cold_reader=fresh)
    assert await query_answers(q) == answers

    live = await tier.live_keys()
    assert {(r["kind"], r["value"]) for r in live} == keys_before
    for key in {r["key"] for r in listed if ".c" in r["key"]}:  # each merged file: its rows' keys, sorted by time
        table = pq.read_table(pa.BufferReader(await tier.store.read(key)))
        ts = table["ts"].to_pylist()
        assert ts == sorted(ts)
        expected = {("t", v) for v in table["trace_id"].to_pylist() if v}
        if "session_id" in table.column_names:
            expected |= {("s", v) for v in table["session_id"].to_pylist() if v}
        assert {(r["kind"], r["value"]) for r in live if r["key"] == key} == expected

    again = await tier.compact()
    assert (again.groups, again.files_in, again.abandoned) == (0, 0, 0)


async def test_a_crash_before_the_commit_changes_nothing_and_the_next_pass_succeeds(pool, tmp_path):
    tier = await Tier(pool, local_store(tmp_path / "objects"), tmp_path / "cache").load()
    answers = await query_answers(tier.queries)
    listed = await tier.listed()
    real_copy = asyncpg.Connection.copy_records_to_table

    async def crash(self, *args, **kwargs):
        raise ConnectionError("killed between the merged object and the commit")

    asyncpg.Connection.copy_records_to_table = crash
    try:
        with pytest.raises(ConnectionError):
            await tier.compact()
    finally:
        asyncpg.Connection.copy_records_to_table = real_copy
    assert sorted(await tier.listed()) == sorted(listed)
    objects = [o.key for o in (await tier.store.list("telemetry/")).objects]
    assert any(".c" in key for key in objects)  # the merged object, an orphan
    assert await query_answers(tier.queries) == answers

    assert (await tier.compact()).groups > 0
    assert await query_answers(tier.queries) == answers
    sweep = await tier.rotation.run_once(now=NOW + timedelta(days=1))  # long after: orphans would go
    assert sweep.orphans_deleted == 0  # the retry rewrote and recorded the same keys


async def test_retention_expiring_the_day_meanwhile_makes_compaction_back_off(pool, tmp_path):
    tier = await Tier(pool, local_store(tmp_path / "objects"), tmp_path / "cache").load()
    real_write = tier.cold.write

    async def write_then_expire(key, signal, rows):
        for f in await tier.archive.expire(NOW.date()):  # retention takes the day meanwhile
            await tier.cold.delete(f.key)
        return await real_write(key, signal, rows)

    tier.cold.write = write_then_expire
    report = await tier.compact()
    assert report.groups == 0 and report.abandoned > 0
    assert await tier.listed() == []


async def test_a_retired_object_stays_readable_until_the_grace_then_goes(pool, tmp_path, s3, s3_bucket):
    from corral.adapters.s3 import S3ObjectStore

    store = S3ObjectStore(endpoint=s3.endpoint, bucket=s3_bucket, access_key=s3.access_key,
                          secret_key=s3.secret_key, region=s3.region)
    try:
        tier = await Tier(pool, store, tmp_path / "cache").load()
        answers = await query_answers(tier.queries)
        query = LogQuery(limit=1000, q="step")
        planned = await tier.archive.files("logs", None, None, None)  # a query listed these just before
        expected = await tier.cold.search_logs(planned, query)

        report = await tier.compact()
        assert report.groups > 0
        assert await query_answers(tier.queries) == answers
        async with pool.acquire() as conn:
            rows = await conn.fetch("SELECT key FROM observe_cold_files WHERE retired_at IS NOT NULL")
        retired = [r[0] for r in rows]
        assert retired and all([await store.exists(k) for k in retired])
        late = ParquetColdTier(store, tmp_path / "late-cache")  # the in-flight query, on another replica
        assert await late.search_logs(planned, query) == expected
        cached = set(await late.cached())
        assert cached & set(retired)
        assert await prune_cache(late, tier.archive) == 0  # retired but young: kept
        sweep = await tier.rotation.run_once(now=NOW + timedelta(days=1))  # written long ago, retired just now
        assert sweep.orphans_deleted == 0
        assert all([await store.exists(k) for k in retired])

        assert (await tier.compact(NOW + timedelta(minutes=59))).retired_deleted == 0
        assert (await tier.compact(NOW + timedelta(minutes=61))).retired_deleted == len(retired)
        assert not any([await store.exists(k) for k in retired])
        assert not [k for k in retired if (tmp_path / "cache" / k).exists()]
        assert await prune_cache(late, tier.archive) == len(cached & set(retired))  # the other replica's copies
        assert set(await late.cached()) == cached - set(retired)
        assert await query_answers(tier.queries) == answers
    finally:
        await store.close()
