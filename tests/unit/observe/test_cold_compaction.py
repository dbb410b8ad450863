"""Cold-tier compaction over the in-memory fakes (the core logic and the fake manifest's contract)."""

from datetime import timedelta

import pytest

from corral.contracts.cold_compaction import (
    DATA_T0,
    ColdCompactionManifestContract,
    compaction_dataset,
    query_answers,
)
from corral.contracts.cold_merger import ColdMergerContract
from corral.core.errors import InvalidInput
from corral.core.observe.compaction import ColdCompaction, prune_cache
from corral.core.observe.query import ObserveQueries
from corral.core.observe.rotation import ColdRotation
from corral.fakes.clock import FakeClock as Clock
from corral.fakes.observe import InMemoryColdTier, InMemoryTelemetryStore
from corral.fakes.observe_compaction import InMemoryColdCompactionManifest


class TestInMemoryColdCompactionManifest(ColdCompactionManifestContract):
    @pytest.fixture
    async def cold_manifests(self):
        store = InMemoryTelemetryStore()
        return store, InMemoryColdCompactionManifest(store)


NOW = DATA_T0 + timedelta(days=3)


@pytest.fixture
async def rotated():
    store = InMemoryTelemetryStore()
    await store.write(compaction_dataset())
    cold = InMemoryColdTier()
    rotation = ColdRotation(hot=store, manifest=store, writer=cold, clock=Clock(NOW), rows_per_window=4)
    await rotation.run_once()
    return store, cold, rotation


def compactor(store, cold, **kw):
    kw.setdefault("min_files", 3)
    kw.setdefault("target_rows", 25)
    return ColdCompaction(
        manifest=InMemoryColdCompactionManifest(store), merger=cold, writer=cold, clock=Clock(NOW), **kw
    )


async def test_merging_gives_the_same_answers_from_fewer_sorted_files(rotated):
    store, cold, rotation = rotated
    q = ObserveQueries(hot=store, clock=Clock(NOW), cold_manifest=store, cold_reader=cold)
    before = await query_answers(q)
    files_before = len(store.manifest)
    c = compactor(store, cold, max_groups=100)
    report = await c.run_once(rotation.complete_days(NOW))
    assert report.groups > 0 and report.files_in > report.files_out
    assert report.rows == sum(store.manifest[k].rows for k in store.retired)
    assert report.files_in == len(store.retired)
    listed = [f for f in store.manifest.values() if f.key not in store.retired]
    assert len(listed) == files_before - report.files_in + report.files_out
    assert sum(f.rows for f in listed) == 60 + 60 + 120
    for f in listed:
        rows = cold.objects[f.key]
        assert [r["ts"] for r in rows] == sorted(r["ts"] for r in rows)
        assert (len(rows), rows[0]["ts"], rows[-1]["ts"]) == (f.rows, f.min_ts, f.max_ts)
        assert len({r["project_id"] for r in rows}) == 1
    assert await query_answers(q) == before
    again = await c.run_once(rotation.complete_days(NOW))
    assert (again.groups, again.files_in, again.abandoned) == (0, 0, 0)  # a second pass is a no-op


async def test_a_crash_before_the_commit_changes_no_answer_and_the_next_pass_succeeds(rotated):
    store, cold, rotation = rotated
    q = ObserveQueries(hot=store, clock=Clock(NOW), cold_manifest=store, cold_reader=cold)
    before = await query_answers(q)
    listed = dict(store.manifest)
    c = compactor(store, cold)
    c.manifest.fail_replace = ConnectionError("killed before the commit")
    with pytest.raises(ConnectionError):
        await c.run_once(rotation.complete_days(NOW))
    assert store.manifest == listed and store.retired == {}
    assert set(cold.objects) > set(listed)  # the merged object is an orphan
    assert await query_answers(q) == before
    assert (await c.run_once(rotation.complete_days(NOW))).groups > 0
    assert await query_answers(q) == before


async def test_retention_expiring_the_day_meanwhile_makes_compaction_back_off(rotated):
    store, cold, rotation = rotated
    c = compactor(store, cold)
    real_write = cold.write

    async def write_then_expire(key, signal, rows):
        await store.expire(NOW.date())  # retention takes every file meanwhile
        return await real_write(key, signal, rows)

    cold.write = write_then_expire
    report = await c.run_once(rotation.complete_days(NOW))
    assert report.groups == 0 and report.abandoned > 0
    assert store.manifest == {}


async def test_retired_files_stay_readable_until_the_grace_then_go(rotated):
    store, cold, rotation = rotated
    c = compactor(store, cold, retired_grace=timedelta(hours=1))
    await c.run_once(rotation.complete_days(NOW))
    retired = set(store.retired)
    assert retired and retired <= set(cold.objects)
    assert await store.recorded(sorted(retired)) == retired  # not orphans for the sweep
    sweep = await rotation.run_once(now=NOW + timedelta(hours=2))
    assert sweep.orphans_deleted == 0 and retired <= set(cold.objects)
    later = compactor(store, cold)
    later.clock = Clock(NOW + timedelta(minutes=59))
    assert (await later.run_once(rotation.complete_days(NOW))).retired_deleted == 0
    later.clock = Clock(NOW + timedelta(minutes=61))
    assert (await later.run_once(rotation.complete_days(NOW))).retired_deleted == len(retired)
    assert not retired & set(cold.objects)
    assert not retired & set(store.manifest)


async def test_every_replica_drops_its_copies_of_files_no_longer_recorded(rotated):
    store, cold, rotation = rotated
    await compactor(store, cold).run_once(rotation.complete_days(NOW))
    retired = set(store.retired)
    assert await prune_cache(cold, store) == 0  # retired files are still recorded: copies kept
    await compactor(store, cold).run_once(rotation.complete_days(NOW), now=NOW + timedelta(hours=2))
    cold.objects.update({k: [] for k in retired})  # another replica still holds copies of them
    assert await prune_cache(cold, store, batch=3) == len(retired)
    assert set(cold.evicted) == retired


async def test_only_complete_days_and_a_bounded_number_of_groups_per_pass(rotated):
    store, cold, rotation = rotated
    c = compactor(store, cold, max_groups=1)
    assert (await c.run_once({s: DATA_T0.date() for s in ("logs", "spans", "points")})).groups == 0
    assert (await c.run_once(rotation.complete_days(NOW))).groups == 1
    off = compactor(store, cold, min_files=0)
    assert (await off.run_once(rotation.complete_days(NOW))).groups == 0


def test_settings_are_checked():
    store, cold = InMemoryTelemetryStore(), InMemoryColdTier()
    for kw in ({"min_files": 1}, {"target_rows": 0}, {"max_groups": 0}, {"min_files": -1}):
        with pytest.raises(InvalidInput):
            compactor(store, cold, **kw)


class TestInMemoryColdMerger(ColdMergerContract):
    @pytest.fixture
    async def cold_tier(self):
        return InMemoryColdTier()
