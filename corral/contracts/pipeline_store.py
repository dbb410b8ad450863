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

    async def test_artifacts_are_replaced_by_name_and_expire(self, pipelines_uow_factory: Any,
                                                             make_user: Any) -> None:
        from corral.core.pipelines.runs import Artifact

        project = await _project(pipelines_uow_factory, make_user)
        p, workflows, steps = _pipeline(project, 1)

        def artifact(name: str, size: int, expires: datetime | None) -> Artifact:
            return Artifact(id=uuid7(), pipeline_id=p.id, project_id=project.id, step="a", name=name,
                            key=f"artifacts/{p.id}/{name}", size=size, created_at=T0, expires_at=expires)

        first = artifact("dist/app", 1, T0 + timedelta(hours=1))
        async with pipelines_uow_factory() as uow:
            await uow.pipelines.add(p, workflows, steps)
            assert await uow.pipelines.put_artifact(first) is None
            assert await uow.pipelines.put_artifact(artifact("b.txt", 2, None)) is None
            replaced = await uow.pipelines.put_artifact(second := artifact("dist/app", 3, T0 + timedelta(hours=2)))
            await uow.commit()
        assert replaced == first
        async with pipelines_uow_factory() as uow:
            assert [(a.name, a.size) for a in await uow.pipelines.artifacts(p.id)] == [("b.txt", 2), ("dist/app", 3)]
            assert await uow.pipelines.artifact(p.id, "dist/app") == second
            assert await uow.pipelines.artifact(p.id, "nope") is None
            assert await uow.pipelines.expired_artifacts(T0 + timedelta(hours=1), 10) == []
            assert await uow.pipelines.expired_artifacts(T0 + timedelta(hours=2), 10) == [second]
            await uow.pipelines.delete_artifact(second.id)
            await uow.commit()
        async with pipelines_uow_factory() as uow:
            assert [a.name for a in await uow.pipelines.artifacts(p.id)] == ["b.txt"]

    async def test_schedules_are_unique_by_name_and_locked_when_due(self, pipelines_uow_factory: Any,
                                                                     make_user: Any) -> None:
        from corral.core.pipelines.runs import Schedule

        project = await _project(pipelines_uow_factory, make_user)
        nightly = Schedule(id=uuid7(), project_id=project.id, name="nightly", cron="@daily", branch="main",
                           created_at=T0, next_run_at=T0 + timedelta(hours=1), variables={"A": "1"})
        async with pipelines_uow_factory() as uow:
            await uow.pipelines.add_schedule(nightly)
            await uow.commit()
        async with pipelines_uow_factory() as uow:
            with pytest.raises(Conflict):
                await uow.pipelines.add_schedule(attrs.evolve(nightly, id=uuid7()))
        async with pipelines_uow_factory() as uow:
            assert await uow.pipelines.schedules(project.id) == [nightly]
            assert await uow.pipelines.schedule(project.id, "nightly") == nightly
            assert await uow.pipelines.due_schedules(T0, 10) == []
        async with pipelines_uow_factory() as first, pipelines_uow_factory() as second:
            assert await first.pipelines.due_schedules(T0 + timedelta(hours=1), 10) == [nightly]
            assert await second.pipelines.due_schedules(T0 + timedelta(hours=1), 10) == []  # locked
            moved = attrs.evolve(nightly, next_run_at=T0 + timedelta(days=1), last_run_at=T0 + timedelta(hours=1))
            await first.pipelines.update_schedule(moved)
            await first.commit()
        async with pipelines_uow_factory() as uow:
            assert await uow.pipelines.schedule(project.id, "nightly") == moved
            await uow.pipelines.delete_schedule(nightly.id)
            await uow.commit()
        async with pipelines_uow_factory() as uow:
            assert await uow.pipelines.schedules(project.id) == []

    async def test_pipelines_by_commit_and_kept_workspaces(self, pipelines_uow_factory: Any, make_user: Any) -> None:
        project = await _project(pipelines_uow_factory, make_user)
        p1, w1, s1 = _pipeline(project, 1)
        p2, w2, s2 = _pipeline(project, 2)
        other = attrs.evolve(_pipeline(project, 3)[0], commit_sha="d" * 40)
        kept = attrs.evolve(w1[0], status=Status.FAILURE, workspace_key="ws-1", workspace_deleted=False,
                            finished_at=T0)
        async with pipelines_uow_factory() as uow:
            await uow.pipelines.add(p1, [kept, w1[1]], s1)
            await uow.pipelines.add(p2, w2, s2)
            await uow.pipelines.add(other, [], [])
            await uow.commit()
        async with pipelines_uow_factory() as uow:
            assert [p.number for p in await uow.pipelines.by_commit(project.id, "c" * 40, 10)] == [2, 1]
            assert [p.number for p in await uow.pipelines.by_commit(project.id, "c" * 40, 1)] == [2]
            mine = [w for w in await uow.pipelines.kept_workspaces(T0, 100) if w.project_id == project.id]
            assert mine == []
            mine = [w for w in await uow.pipelines.kept_workspaces(T0 + timedelta(seconds=1), 100)
                    if w.project_id == project.id]
            assert mine == [kept]
            assert await uow.pipelines.workspaces_of(project.id) == ["ws-1"]  # what its purge deletes
            assert await uow.pipelines.workspaces_of(uuid7()) == []
