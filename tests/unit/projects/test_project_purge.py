"""Deleting a project removes what it kept outside PostgreSQL, through a durable purge record (fakes).

The same scenario runs on PostgreSQL with a real S3 (tests/integration/test_project_purge_s3.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from corral.core.agents.service import agent_purge_parts
from corral.core.errors import Unavailable
from corral.core.ids import uuid7
from corral.core.pipelines.housekeeping import pipeline_purge_parts
from corral.core.pipelines.runs import Pipeline, Status, StepKind, StepRun
from corral.core.pipelines.step_files import artifact_prefix, cache_key
from corral.core.pipelines.workflow_run import step_log_key
from corral.core.projects.model import Project, PurgeParts, Visibility
from corral.core.projects.ports import UserRef
from corral.core.projects.purge import ProjectPurger, own_parts, plan_purge
from corral.core.projects.releases import _asset_key
from corral.entrypoints.web.routes.lfs import key_of, lfs_purge_parts, staging_key_of
from corral.fakes.clock import FakeClock
from corral.fakes.git import InMemoryGitRepositories
from corral.fakes.objectstore import InMemoryObjectStore
from corral.fakes.uow import InMemoryUnitOfWorkFactory
from tests.purgekit import PurgeRig, deleting_a_project_leaves_nothing_behind


class FlakyStore(InMemoryObjectStore):
    """An object store whose deletes fail while ``down`` (an outage in the middle of a purge)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.deleted = 0

    async def delete(self, key: str) -> None:
        if self.down and self.deleted >= 2:  # a few deletes get through, then the store goes away
            raise Unavailable("the object store is not reachable")
        await super().delete(key)
        self.deleted += 1


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def rig(clock: FakeClock) -> PurgeRig:
    repos = InMemoryGitRepositories()

    async def make_user(name: str) -> UserRef:
        return UserRef(uuid7(), name, f"{name}@example.com")

    return PurgeRig(InMemoryUnitOfWorkFactory(clock=clock), FlakyStore(), repos, clock, make_user,
                    repo_exists=lambda path: path in repos.repos)


async def test_deleting_a_project_leaves_nothing_behind(rig: PurgeRig) -> None:
    await deleting_a_project_leaves_nothing_behind(rig)


async def test_a_purge_that_fails_midway_is_retried_until_done(rig: PurgeRig, clock: FakeClock) -> None:
    actor, project = await rig.project("doomed")
    await rig.seed(actor, project)
    store = rig.objects
    assert isinstance(store, FlakyStore)
    store.down = True
    await rig.service.delete(actor, project)  # the project is gone at once; its leftovers wait for the store
    left = await rig.leftovers(project)
    assert 0 < len(left) < 10
    async with rig.uow_factory() as uow:
        purge = await uow.project_purges.get(project.id)
        assert await uow.projects.get(project.id) is None
    assert purge is not None and purge.attempts == 1 and "not reachable" in (purge.last_error or "")
    assert purge.next_attempt_at > clock.now()
    assert await rig.purger.run_once() == 0  # not due yet
    clock.set(purge.next_attempt_at)
    assert await rig.purger.run_once() == 0  # due, but the store is still down: attempt 2, a longer delay
    async with rig.uow_factory() as uow:
        second = await uow.project_purges.get(project.id)
    assert second is not None and second.attempts == 2
    assert second.next_attempt_at - clock.now() > purge.next_attempt_at - purge.created_at
    store.down = False
    clock.set(second.next_attempt_at)
    assert await rig.purger.run_once() == 1
    assert await rig.leftovers(project) == []
    async with rig.uow_factory() as uow:
        assert await uow.project_purges.get(project.id) is None


async def test_a_purge_whose_worker_died_is_taken_again_after_its_lease(
    rig: PurgeRig, clock: FakeClock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    actor, project = await rig.project("doomed")
    await rig.seed(actor, project)
    run_once = ProjectPurger.run_once

    async def died(*_args: Any, **_kwargs: Any) -> int:
        return 0

    monkeypatch.setattr(ProjectPurger, "run_once", died)  # the deleting process dies right after its commit...
    await rig.service.delete(actor, project)
    monkeypatch.setattr(ProjectPurger, "run_once", run_once)
    async with rig.uow_factory() as uow:  # ...or another one claimed the purge and died working on it
        claimed = await uow.project_purges.claim(clock.now(), clock.now() + rig.purger.lease, 10)
        await uow.commit()
    assert [p.project_id for p in claimed] == [project.id]
    assert await rig.purger.run_once() == 0  # leased: nobody else takes it meanwhile
    assert len(await rig.leftovers(project)) == 10  # every object, workspace and the repository
    clock.advance(rig.purger.lease.total_seconds())
    assert await rig.purger.run_once() == 1
    assert await rig.leftovers(project) == []


async def test_a_purge_naming_workspaces_waits_for_an_executor(rig: PurgeRig, clock: FakeClock) -> None:
    actor, project = await rig.project("doomed")
    await rig.seed(actor, project)
    rig.purger.executor = None
    await rig.service.delete(actor, project)
    async with rig.uow_factory() as uow:
        purge = await uow.project_purges.get(project.id)
    assert purge is not None and "executor" in (purge.last_error or "")
    rig.purger.executor = rig.executor
    clock.set(purge.next_attempt_at)
    assert await rig.purger.run_once() == 1
    assert await rig.leftovers(project) == []


async def test_the_platform_wires_every_domain_into_the_purge(tmp_path: Path) -> None:
    """Every domain's contributor joins the purger, and the executor deletes the workspaces."""
    from corral.core.workloads.ports import Executor
    from corral.entrypoints.bootstrap import start_platform
    from corral.entrypoints.config import Settings
    from corral.entrypoints.web.project_access import ProjectsKit

    platform = await start_platform(Settings(profile="memory", data_dir=tmp_path))
    try:
        kit: ProjectsKit = platform.resolve(ProjectsKit)
        purger = kit.projects.purger
        assert purger is not None and purger.executor is platform.resolve(Executor)
        names = {c.__name__ for c in purger.contributors}
        assert names == {"lfs_purge_parts", "pipeline_purge_parts", "agent_purge_parts"}
    finally:
        await platform.aclose()


async def test_every_key_a_domain_makes_for_a_project_is_under_its_purge_prefixes() -> None:
    """The purge deletes by prefix: each domain's own key functions must land under one."""
    db = InMemoryUnitOfWorkFactory()
    project = Project(id=uuid7(), owner_id=uuid7(), owner_name="o", name="p", visibility=Visibility.PRIVATE,
                      default_branch="main", repo_path="x.git", created_at=FakeClock().now(),
                      updated_at=FakeClock().now())
    async with db() as uow:
        purge = await plan_purge(uow, project, [lfs_purge_parts, pipeline_purge_parts, agent_purge_parts],
                                 FakeClock())
    pipeline = Pipeline(id=uuid7(), project_id=project.id, number=1, event="push", ref="refs/heads/main",
                        commit_sha="c" * 40, status=Status.SUCCESS, created_at=FakeClock().now())
    step = StepRun(id=uuid7(), pipeline_id=pipeline.id, workflow_id=uuid7(), project_id=project.id, position=0,
                   name="s", kind=StepKind.STEP, status=Status.SUCCESS)
    keys = [key_of(project, "ab" * 32), staging_key_of(project, "ab" * 32, "0" * 32),
            cache_key(project.id, "feature/x", "deps"), artifact_prefix(pipeline) + "dist.tar",
            step_log_key(step),
            _asset_key(project, uuid7(), uuid7())]
    for key in keys:
        assert any(key.startswith(prefix) for prefix in purge.prefixes), key
    assert set(own_parts(project).prefixes) <= set(purge.prefixes)


async def test_a_prefix_that_does_not_name_the_project_is_refused() -> None:
    """A contributor's bug must not turn the purge into a wipe of the store (or of another project)."""
    now = FakeClock().now()
    project = Project(id=uuid7(), owner_id=uuid7(), owner_name="o", name="p", visibility=Visibility.PRIVATE,
                      default_branch="main", repo_path="x.git", created_at=now, updated_at=now)
    other = uuid7()
    for bad in ("", "cache/", f"cache/{other}/", f"cache/{project.id}"):
        async def contributor(_uow: Any, _project: Any, bad: str = bad) -> PurgeParts:
            return PurgeParts(prefixes=(bad,))

        async with InMemoryUnitOfWorkFactory()() as uow:
            with pytest.raises(ValueError, match="does not name project"):
                await plan_purge(uow, project, [contributor], FakeClock())
