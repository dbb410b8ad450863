"""What a pass costs the API server: with nothing to change, one list call per kind for every deployment and no
dry-run apply for an object whose live version was already found in sync; a change (drift, a new rendering)
is still seen; a new desired state is handled before the checks of the others."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from corral.core.deploy.commands import DesiredState
from corral.core.deploy.model import SyncStatus
from corral.core.deploy.service import ProjectInfo
from corral.core.ids import uuid7
from corral.core.projects.model import Project, Visibility
from corral.fakes.deploy import FakeCluster
from tests.unit.deploy.test_reconciler import WEB
from tests.unit.deploy.world import ANN, World, make_world


async def _many(w: World, n: int) -> list[ProjectInfo]:
    out = []
    async with w.uow() as u:
        for i in range(n):
            p = Project(id=uuid7(), owner_id=ANN.id, owner_name="acme", name=f"app{i}", visibility=Visibility.PRIVATE,
                        default_branch="main", repo_path="x.git", created_at=w.clock.now(), updated_at=w.clock.now())
            await u.projects.add(p)
            out.append(ProjectInfo(p.id, p.full_name))
        await u.commit()
    for p in out:
        await w.service.set_desired(ANN, p, "staging", DesiredState(
            ops_repo="ops", app_path="apps/web", image_ref="r.example/web:1", namespace=p.full_name.split("/")[1]))
    return out


async def test_nothing_to_change_costs_one_list_per_kind() -> None:
    w = await make_world()
    assert w.cluster is not None
    await _many(w, 20)
    await w.reconciler.run_once()
    w.clock.advance(31)
    await w.reconciler.run_once()  # settles; compares every object once (dry-run)
    reads, dry_runs, writes = w.cluster.reads, w.cluster.dry_runs, len(w.cluster.calls)
    report = await w.reconciler.run_once()
    assert report is not None and report.deployments == 20 and report.applied == 0
    assert w.cluster.reads - reads == 1  # one list call (the kinds are listed by the fake in one go)
    assert w.cluster.dry_runs == dry_runs and len(w.cluster.calls) == writes


async def test_drift_is_still_seen_after_the_in_sync_shortcut() -> None:
    w = await make_world()
    assert w.cluster is not None
    await w.deploy()
    for _ in range(3):
        await w.reconciler.run_once()
        w.clock.advance(31)
    assert (await w.current()).sync is SyncStatus.SYNCED
    dry_runs = w.cluster.dry_runs
    w.cluster.edit(WEB, {"spec": {"replicas": 4}})  # a new resourceVersion
    await w.reconciler.run_once()
    assert w.cluster.dry_runs == dry_runs + 1  # only the changed object is compared again
    assert (await w.current()).sync is SyncStatus.OUT_OF_SYNC


class RecordingCluster(FakeCluster):
    """Records the namespace of every apply (dry-run or not), in order."""

    seen: list[tuple[str, bool]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen = []

    async def apply(self, obj: Mapping[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        self.seen.append((obj["metadata"]["namespace"], dry_run))
        return await super().apply(obj, dry_run=dry_run)


async def test_a_new_desired_state_goes_first() -> None:
    w = await make_world()
    cluster = RecordingCluster(w.clock)
    w.reconciler.cluster = cluster
    projects = await _many(w, 5)
    await w.reconciler.run_once()
    cluster.seen.clear()
    await w.service.set_desired(ANN, projects[-1], "staging", DesiredState(
        ops_repo="ops", app_path="apps/web", image_ref="r.example/web:2", namespace="app4"))
    await w.reconciler.run_once()
    # app4 (written last, listed last) is applied before the other four are compared (dry-run)
    assert cluster.seen[:2] == [("app4", False), ("app4", False)]
    assert {ns for ns, dry in cluster.seen[2:]} == {"app0", "app1", "app2", "app3"}
