"""PipelineStoreContract: what every PipelineStore does (numbers, rows, the leased workflow queue).

Subclasses provide ``pipelines_uow_factory`` (units carrying ``projects`` and ``pipelines``, able to hold two
units open at once) and ``make_user`` (an async callable ``name -> UserRef``).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from corral.core.errors import Conflict
from corral.core.ids import uuid7
from corral.core.pipelines.runs import Pipeline, Status, StepKind, StepRun, WorkflowRun
from corral.core.projects.model import Project, Visibility

__all__ = ["PipelineStoreContract"]

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


async def _project(uow_factory: Any, make_user: Any) -> Project:
    owner = await make_user(f"u{uuid.uuid4().hex[:8]}")
    pid = uuid7()
    project = Project(id=pid, owner_id=owner.id, owner_name=owner.name, name="app", visibility=Visibility.PRIVATE,
                      default_branch="main", repo_path=f"{pid}.git", created_at=T0, updated_at=T0)
    async with uow_factory() as uow:
        await uow.projects.add(project)
        await uow.commit()
    return project


def _pipeline(project: Project, number: int, *, created: datetime = T0, key: str | None = None,
              branch: str = "main") -> tuple[Pipeline, list[WorkflowRun], list[StepRun]]:
    p = Pipeline(id=uuid7(), project_id=project.id, number=number, event="push", ref=f"refs/heads/{branch}",
                 commit_sha="c" * 40, status=Status.PENDING, created_at=created, branch=branch, commit_message="m",
                 commit_author="Ann", variables={"A": "1"}, definition={"files": [{"path": "x", "text": "y"}]},
                 trigger_key=key, errors=("e1",))
    build = WorkflowRun(id=uuid7(), pipeline_id=p.id, project_id=project.id, position=0, name="build",
                        status=Status.PENDING)
    deploy = WorkflowRun(id=uuid7(), pipeline_id=p.id, project_id=project.id, position=1, name="deploy (ENV=prod)",
                         status=Status.PENDING, depends_on=("build",), runs_on=("success", "failure"))
    steps = [StepRun(id=uuid7(), pipeline_id=p.id, workflow_id=w.id, project_id=project.id, position=i, name=n,
                     kind=StepKind.CLONE if n == "clone" else StepKind.STEP, status=Status.PENDING,
                     image="alpine", depends_on=d)
             for w in (build, deploy) for i, (n, d) in enumerate((("clone", ()), ("a", ()), ("b", ("a",))), 1)]
    return p, [build, deploy], steps


class PipelineStoreContract:
    async def test_numbers_are_allocated_atomically(self, pipelines_uow_factory: Any, make_user: Any) -> None:
        project = await _project(pipelines_uow_factory, make_user)

        async def one() -> int:
            async with pipelines_uow_factory() as uow:
                n: int = await uow.pipelines.next_number(project.id)
                await uow.commit()
                return n

        assert sorted(await asyncio.gather(*(one() for _ in range(5)))) == [1, 2, 3, 4, 5]

    async def test_a_pipeline_reads_back_as_written(self, pipelines_uow_factory: Any, make_user: Any) -> None:
        project = await _project(pipelines_uow_factory, make_user)
        p, workflows, steps = _pipeline(project, 1, key="outbox:1")
        async with pipelines_uow_factory() as uow:
            await uow.pipelines.add(p, workflows, steps)
            await uow.commit()
        async with pipelines_uow_factory() as uow:
            assert await uow.pipelines.get(project.id, 1) == p
            assert await uow.pipelines.get_by_id(p.id) == p
            assert await uow.pipelines.by_trigger("outbox:1") == p
            assert await uow.pipelines.workflows(p.id) == workflows
            assert await uow.pipelines.steps(p.id) == steps
            with pytest.raises(Conflict):
                await uow.pipelines.add(attrs.evolve(p, id=uuid7(), number=2), [], [])

    async def test_list_is_newest_first_with_a_cursor(self, pipelines_uow_factory: Any, make_user: Any) -> None:
        project = await _project(pipelines_uow_factory, make_user)
        async with pipelines_uow_factory() as uow:
            for n in (1, 2, 3):
                p, _, _ = _pipeline(project, n, branch="main" if n != 2 else "dev")
                await uow.pipelines.add(p, [], [])
            await uow.commit()
        async with pipelines_uow_factory() as uow:
            assert [p.number for p in await uow.pipelines.recent(project.id, limit=10)] == [3, 2, 1]
            assert [p.number for p in await uow.pipelines.recent(project.id, limit=1, before_number=3)] == [2]
            prev = await uow.pipelines.last_before(project.id, 3, "main")
            assert prev is not None and prev.number == 1

    async def test_updates_replace_rows(self, pipelines_uow_factory: Any, make_user: Any) -> None:
        project = await _project(pipelines_uow_factory, make_user)
        p, workflows, steps = _pipeline(project, 1)
        async with pipelines_uow_factory() as uow:
            await uow.pipelines.add(p, workflows, steps)
            done = attrs.evolve(p, status=Status.FAILURE, started_at=T0, finished_at=T0, cancel_requested=True)
            await uow.pipelines.update_pipeline(done)
            w = attrs.evolve(workflows[0], status=Status.FAILURE, workspace_key="ws", workspace_deleted=False,
                             error="boom")
            await uow.pipelines.update_workflow(w)
            s = attrs.evolve(steps[1], status=Status.FAILURE, exit_code=2, started_at=T0, finished_at=T0,
                             log_key="k.log", error="exit 2")
            await uow.pipelines.update_step(s)
            await uow.commit()
        async with pipelines_uow_factory() as uow:
            assert await uow.pipelines.get_by_id(p.id) == done
            assert (await uow.pipelines.workflows(p.id))[0] == w
            assert (await uow.pipelines.steps(p.id))[1] == s

    async def test_claim_leases_ready_workflows_once(self, pipelines_uow_factory: Any, make_user: Any) -> None:
        project = await _project(pipelines_uow_factory, make_user)
        p, workflows, steps = _pipeline(project, 1)
        async with pipelines_uow_factory() as uow:
            await uow.pipelines.add(p, workflows, steps)
            await uow.commit()
        async with pipelines_uow_factory() as first, pipelines_uow_factory() as second:
            got = await first.pipelines.claim("r1", T0, 10)
            assert [w.name for w in got] == ["build"]  # deploy waits for build
            assert got[0].status is Status.RUNNING and got[0].lease_owner == "r1" and got[0].heartbeat_at == T0
            assert [w for w in await second.pipelines.claim("r2", T0, 10) if w.pipeline_id == p.id] == []
            await first.commit()
        async with pipelines_uow_factory() as uow:
            assert await uow.pipelines.heartbeat("r1", [got[0].id], T0 + timedelta(seconds=5)) == [got[0].id]
            assert await uow.pipelines.heartbeat("r2", [got[0].id], T0 + timedelta(seconds=5)) == []
            await uow.pipelines.update_workflow(attrs.evolve(got[0], status=Status.SUCCESS, lease_owner=None))
            await uow.commit()
        async with pipelines_uow_factory() as uow:
            ready = [w for w in await uow.pipelines.claim("r2", T0, 10) if w.pipeline_id == p.id]
            assert [w.name for w in ready] == ["deploy (ENV=prod)"]
            await uow.commit()

    async def test_cancelled_pipelines_are_not_claimed(self, pipelines_uow_factory: Any, make_user: Any) -> None:
        project = await _project(pipelines_uow_factory, make_user)
        p, workflows, steps = _pipeline(project, 1)
        async with pipelines_uow_factory() as uow:
            await uow.pipelines.add(attrs.evolve(p, cancel_requested=True), workflows, steps)
            await uow.commit()
        async with pipelines_uow_factory() as uow:
            assert [w for w in await uow.pipelines.claim("r1", T0, 10) if w.pipeline_id == p.id] == []

    async def test_expired_leases_are_found(self, pipelines_uow_factory: Any, make_user: Any) -> None:
        project = await _project(pipelines_uow_factory, make_user)
        p, workflows, steps = _pipeline(project, 1)
        async with pipelines_uow_factory() as uow:
            await uow.pipelines.add(p, workflows, steps)
            [w] = [w for w in await uow.pipelines.claim("r1", T0, 10) if w.pipeline_id == p.id]
            await uow.commit()
        async with pipelines_uow_factory() as uow:
            assert w.id not in {x.id for x in await uow.pipelines.expired(T0, 100)}
            assert w.id in {x.id for x in await uow.pipelines.expired(T0 + timedelta(seconds=1), 100)}
