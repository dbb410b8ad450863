"""A scripted test double of the Executor port, and a scheduler over in-memory fakes.

The double runs nothing: each workload's behaviour is looked up by its step name (label ``corral.step``) in
``script``: output, exit code, how long it "runs" (or until stopped). It records starts and ends with a
monotonic counter so tests can assert the per-edge start order.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

import attrs

from corral.adapters.pipeline_yaml import PyYamlPipelineFileParser
from corral.core.pipelines.creation import NewRun, create_pipeline
from corral.core.pipelines.runs import Pipeline
from corral.core.pipelines.scheduler import EngineSettings, PipelineScheduler
from corral.core.pipelines.selection import SourceFile
from corral.core.projects.model import Project, Visibility
from corral.core.workloads.model import ExitStatus, Outcome, WorkloadHandle, WorkloadSpec, Workspace
from corral.fakes.clock import FakeClock
from corral.fakes.pipeline_logs import InMemoryStepLogs
from corral.fakes.uow import InMemoryUnitOfWorkFactory


@attrs.define
class Script:
    output: str = ""
    exit_code: int = 0
    seconds: float = 0.0  # None-like forever: use a large number
    fail_to_start: str = ""


@attrs.define
class _Run:
    spec: WorkloadSpec
    script: Script
    done: asyncio.Future[ExitStatus]
    task: asyncio.Task[None] | None = None


@attrs.define
class ScriptedExecutor:
    script: dict[str, Script] = attrs.field(factory=dict)
    events: list[tuple[str, str]] = attrs.field(factory=list)  # ("start"|"end", step)
    specs: dict[str, WorkloadSpec] = attrs.field(factory=dict)  # step -> last spec
    workspaces: dict[str, Workspace] = attrs.field(factory=dict)
    deleted: list[str] = attrs.field(factory=list)
    runs: dict[str, _Run] = attrs.field(factory=dict)

    async def create_workspace(self, key: str) -> Workspace:
        return self.workspaces.setdefault(key, Workspace(key, f"/workspaces/{key}"))

    async def delete_workspace(self, workspace: Workspace) -> None:
        self.deleted.append(workspace.key)
        self.workspaces.pop(workspace.key, None)

    async def start(self, spec: WorkloadSpec) -> WorkloadHandle:
        step = spec.labels["corral.step"]
        script = self.script.get(step, Script())
        self.specs[step] = spec
        loop = asyncio.get_running_loop()
        run = _Run(spec, script, loop.create_future())
        self.runs[spec.name] = run
        self.events.append(("start", step))
        if script.fail_to_start:
            run.done.set_result(ExitStatus(Outcome.FAILED_TO_START, reason=script.fail_to_start))
            self.events.append(("end", step))
        else:
            run.task = asyncio.create_task(self._finish(run, step))
        return WorkloadHandle(spec.name, spec.name, dict(spec.labels))

    async def _finish(self, run: _Run, step: str) -> None:
        timeout = run.spec.timeout_seconds
        if timeout is not None and timeout < run.script.seconds:
            await asyncio.sleep(timeout)
            self._end(run, step, ExitStatus(Outcome.TIMED_OUT, reason=f"after {timeout:g}s"))
            return
        await asyncio.sleep(run.script.seconds)
        self._end(run, step, ExitStatus(Outcome.EXITED, run.script.exit_code))

    def _end(self, run: _Run, step: str, status: ExitStatus) -> None:
        if not run.done.done():
            run.done.set_result(status)
            self.events.append(("end", step))

    async def logs(self, handle: WorkloadHandle) -> AsyncIterator[bytes]:
        run = self.runs[handle.ref]
        data = run.script.output.encode()
        for i in range(0, len(data), 7):  # small chunks: secrets split across chunks must still be masked
            yield data[i:i + 7]
        await asyncio.shield(run.done)

    async def wait(self, handle: WorkloadHandle) -> ExitStatus:
        return await asyncio.shield(self.runs[handle.ref].done)

    async def stop(self, handle: WorkloadHandle, grace_seconds: float = 5.0) -> None:
        run = self.runs[handle.ref]
        if run.task is not None:
            run.task.cancel()
        self._end(run, handle.labels["corral.step"], ExitStatus(Outcome.STOPPED))

    async def pack(self, workspace: Workspace, paths: tuple[str, ...]) -> AsyncIterator[bytes]:
        raise NotImplementedError
        yield b""

    async def unpack(self, workspace: Workspace, chunks: AsyncIterator[bytes]) -> None:
        raise NotImplementedError

    async def running(self, labels: Mapping[str, str]) -> list[WorkloadHandle]:
        return []

    def order(self) -> list[str]:
        return [f"{kind}:{step}" for kind, step in self.events]

    def index(self, kind: str, step: str) -> int:
        return self.events.index((kind, step))


@attrs.define
class Engine:
    uow_factory: InMemoryUnitOfWorkFactory
    executor: Any  # a ScriptedExecutor unless make_engine was given another
    scheduler: PipelineScheduler
    logs: InMemoryStepLogs
    project: Project
    clock: FakeClock

    async def create(self, yaml: str, *, event: str = "push", branch: str = "main",
                     actor: uuid.UUID | None = None) -> Pipeline:
        run = NewRun(event=event, ref=f"refs/heads/{branch}", branch=branch, sha="a" * 40, message="change",
                     author="Ann", actor_id=actor, actor_name="ann" if actor else "")
        async with self.uow_factory() as uow:
            pipeline = await create_pipeline(uow, self.clock, PyYamlPipelineFileParser(), self.project, run,
                                              [SourceFile(".woodpecker.yaml", yaml)], base_url="http://corral.test")
            assert pipeline is not None
            await uow.commit()
        return pipeline

    async def run_all(self, timeout: float = 10.0) -> None:
        """Claim and run until nothing is pending or running (bounded)."""
        async def go() -> None:
            while True:
                await self.scheduler.run_once()
                await self.scheduler.wait_idle()
                async with self.uow_factory() as uow:
                    pending = [w for p in await uow.pipelines.recent(self.project.id, limit=100)
                               for w in await uow.pipelines.workflows(p.id) if not w.status.final]
                if not pending:
                    return
                await asyncio.sleep(0.01)
        await asyncio.wait_for(go(), timeout)

    async def statuses(self, number: int) -> dict[str, str]:
        async with self.uow_factory() as uow:
            p = await uow.pipelines.get(self.project.id, number)
            assert p is not None
            out = {"pipeline": p.status.value}
            for s in await uow.pipelines.steps(p.id):
                out[s.name] = s.status.value
            return out

    async def pipeline(self, number: int) -> Pipeline:
        async with self.uow_factory() as uow:
            p = await uow.pipelines.get(self.project.id, number)
            assert p is not None
            return p


async def make_engine(script: dict[str, Script] | None = None, *, executor: Any = None, objects: Any = None,
                      **settings: object) -> Engine:
    clock = FakeClock.real_time()
    uow_factory = InMemoryUnitOfWorkFactory(clock=clock)
    now = datetime.now(UTC)
    project = Project(id=uuid.uuid4(), owner_id=uuid.uuid4(), owner_name="acme", name="app",
                      visibility=Visibility.PRIVATE, default_branch="main", repo_path="acme/app.git",
                      created_at=now, updated_at=now)
    async with uow_factory() as uow:
        await uow.projects.add(project)
        await uow.commit()
    if executor is None:
        executor = ScriptedExecutor(script or {})
    logs = InMemoryStepLogs()
    options: dict[str, object] = {"owner": "replica-1", "base_url": "http://corral.test", **settings}
    scheduler = PipelineScheduler(uow_factory, executor, PyYamlPipelineFileParser(), logs, clock,
                                  EngineSettings(**options),  # type: ignore[arg-type]
                                  clone_source=lambda p: f"/repos/{p.repo_path}", objects=objects)
    return Engine(uow_factory, executor, scheduler, logs, project, clock)
