"""Pack maintenance runs after a push has been answered (receive-pack runs with receive.autogc=false), debounced
per repository, and an interrupted run leaves the repository sound."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.e2e.gitkit import git, write

pytestmark = pytest.mark.e2e


def packs(repo: Path) -> list[str]:
    return sorted(p.name for p in (repo / "objects" / "pack").glob("*.pack"))


async def _project(corral, tmp_path: Path) -> tuple[str, Path, Path, str]:
    alice = await corral.user("alice", admin=True)
    from corral.core.projects.commands import NewProject
    from corral.core.projects.model import Actor

    user = await corral.ids.users.get("alice")
    project = await corral.kit.projects.create(Actor(user.id, user.name), NewProject(name="app"))
    served = corral.kit.git.path(project.repo_path)
    # every push keeps its pack; more than two packs make ``gc --auto`` repack
    await git(served, "config", "receive.unpackLimit", "1")
    await git(served, "config", "gc.autoPackLimit", "2")
    work = tmp_path / "w"
    await git(tmp_path, "clone", corral.url("alice/app"), "w", token=alice)
    return alice, served, work, project.repo_path


async def _push(work: Path, alice: str, i: int) -> None:
    write(work / f"f{i}.txt", f"{i}\n")
    await git(work, "add", ".")
    await git(work, "commit", "-qm", f"commit {i}")
    await git(work, "push", "-q", "origin", "main", token=alice)


async def test_maintenance_repacks_after_pushes_beyond_gc_thresholds(corral, tmp_path: Path) -> None:
    alice, served, work, _ = await _project(corral, tmp_path)
    maintenance = corral.kit.maintenance
    for i in range(2):
        await _push(work, alice, i)
    await maintenance.wait_idle()
    assert len(packs(served)) == 2  # below the threshold: --auto looked and left them
    runs = maintenance.runs
    assert runs >= 1
    # the push itself does not repack (receive.autogc=false): only the background run after it does
    await _push(work, alice, 2)
    await maintenance.wait_idle()
    assert maintenance.runs > runs
    assert len(packs(served)) == 1, packs(served)
    fsck = await git(served, "fsck", "--no-progress")
    assert fsck.returncode == 0
    assert (await git(served, "rev-list", "--count", "main")).stdout.strip() == "3"


async def test_a_stale_maintenance_lock_is_removed_and_a_fresh_one_respected(corral, tmp_path: Path) -> None:
    import os
    import time

    alice, served, work, repo = await _project(corral, tmp_path)
    for i in range(3):
        await _push(work, alice, i)
    await corral.kit.maintenance.wait_idle()
    assert len(packs(served)) == 1  # repacked once the third pack arrived
    m = corral.kit.maintenance
    lock = served / "objects" / "maintenance.lock"
    for i in range(3, 6):  # three more packs: over gc.autoPackLimit again
        await _push(work, alice, i)
        await m.wait_idle()
        if i == 3:
            lock.write_text("")  # a run killed an hour ago: younger than git's 12 h, so respected
            os.utime(lock, (time.time() - 3600,) * 2)
    assert len(packs(served)) == 4, packs(served)  # the lock made every run skip
    assert lock.exists()
    os.utime(lock, (time.time() - 13 * 3600,) * 2)  # now older than 12 h: removed before the next run
    m.request(repo)
    await m.wait_idle()
    assert not lock.exists()
    assert len(packs(served)) == 1, packs(served)


async def test_pushes_coalesce_and_close_interrupts_safely(corral, tmp_path: Path) -> None:
    alice, served, work, repo = await _project(corral, tmp_path)
    for i in range(4):
        await _push(work, alice, i)
    await corral.kit.maintenance.wait_idle()
    m = corral.kit.maintenance
    before = m.runs
    for _ in range(5):  # a burst while one run is pending or running: at most one more after it
        m.request(repo)
    await m.wait_idle()
    assert 1 <= m.runs - before <= 2
    # close while a run is in flight: git is not signalled (that could leave objects/maintenance.lock behind);
    # it finishes on its own, and the repository is sound and repacked
    await git(served, "config", "gc.autoPackLimit", "100")
    for i in range(4, 8):
        await _push(work, alice, i)
    await m.wait_idle()
    assert len(packs(served)) > 2  # kept for the run below, which repacks them
    await git(served, "config", "gc.autoPackLimit", "2")
    m.grace = 0
    m.request(repo)
    for _ in range(1000):  # until git runs
        if m.running():
            break
        await asyncio.sleep(0.001)
    procs = list(m._procs)
    await m.aclose()
    m.request(repo)  # closed: ignored
    assert m.running() == 0
    for proc in procs:
        await asyncio.wait_for(proc.wait(), timeout=60)
        assert proc.returncode == 0
    assert not list(served.rglob("*.lock")) and not (served / "gc.pid").exists()
    assert (await git(served, "fsck", "--no-progress")).returncode == 0
    assert (await git(served, "rev-list", "--count", "main")).stdout.strip() == "8"
    assert len(packs(served)) == 1


async def test_stale_push_quarantines_are_removed_and_live_ones_kept(corral, tmp_path: Path) -> None:
    """A push killed with its receive-pack leaves ``objects/tmp_objdir-incoming-*``; once nothing in it changed
    for an hour it is removed (the sweep at start, and before a maintenance run); a younger one (a push another
    replica may be receiving right now) stays. The repository stays sound and pushable."""
    import os
    import time

    alice, served, work, repo = await _project(corral, tmp_path)
    await _push(work, alice, 0)
    objects = served / "objects"

    def quarantine(name: str, age: float) -> Path:
        q = objects / f"tmp_objdir-incoming-{name}"
        (q / "pack").mkdir(parents=True)
        (q / "pack" / "tmp_pack_x").write_bytes(b"PACK half")
        for path in (q / "pack" / "tmp_pack_x", q / "pack", q):
            os.utime(path, (time.time() - age,) * 2)
        return q

    stale, live = quarantine("stale", 2 * 3600), quarantine("live", 60)
    half_stale = quarantine("busy", 2 * 3600)
    os.utime(half_stale / "pack" / "tmp_pack_x")  # its pack is still being written: not stale
    assert await corral.kit.maintenance.sweep_quarantines() == 1
    assert not stale.exists() and live.exists() and half_stale.exists()
    os.utime(live, (time.time() - 2 * 3600,) * 2)
    for path in live.rglob("*"):
        os.utime(path, (time.time() - 2 * 3600,) * 2)
    corral.kit.maintenance.request(repo)  # the maintenance run removes it too
    await corral.kit.maintenance.wait_idle()
    assert not live.exists() and half_stale.exists()
    await _push(work, alice, 1)
    assert (await git(served, "fsck", "--no-progress")).returncode == 0
