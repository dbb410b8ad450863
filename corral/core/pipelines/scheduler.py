"""The scheduler: leases pending workflows from the database and runs their steps on the executor.

One ``PipelineScheduler`` runs per replica (``loop``). Each turn it

1. marks ``error`` the workflows whose lease expired (their replica died or lost the database): running steps
   become ``error``, pending ones ``skipped``; nothing is left ``running`` forever;
2. claims pending workflows (``FOR UPDATE SKIP LOCKED``) while it has room under ``max_running_steps``, and
   runs each in a task (``corral.core.pipelines.workflow_run``).

A heartbeat task renews the leases of the workflows it runs and notices cancellations requested on other
replicas; a workflow whose lease was taken away is stopped without writing anything.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import timedelta

import attrs

from corral.core.clock import Clock
from corral.core.errors import Conflict, Unavailable
from corral.core.outage import OutageLog
from corral.core.outbox import topics
from corral.core.pipelines.completion import finish_pipeline_if_done, skip_blocked_workflows
from corral.core.pipelines.creation import pipeline_event_payload
from corral.core.pipelines.engine_ports import PipelineTokens, SecretValues, StepLogs
from corral.core.pipelines.ports import PipelineFileParser
from corral.core.pipelines.runs import Status, WorkflowRun
from corral.core.pipelines.settings import EngineSettings
from corral.core.pipelines.step_files import StepFiles
from corral.core.pipelines.workflow_run import WorkflowExecution
from corral.core.projects.model import Project
from corral.core.storage.ports import ObjectStore
from corral.core.uow import UnitOfWorkFactory
from corral.core.workloads.ports import Executor

__all__ = ["EngineSettings", "PipelineScheduler", "finish_pipeline_if_done", "skip_blocked_workflows"]

log = logging.getLogger("corral.pipelines")
_WAKE_RETRIES = 10
_WAKE_RETRY_SECONDS = 0.02


@attrs.define(eq=False)
class PipelineScheduler:
    uow_factory: UnitOfWorkFactory
    executor: Executor
    parser: PipelineFileParser
    logs: StepLogs
    clock: Clock
    settings: EngineSettings
    clone_source: Callable[[Project], str]  # where the clone step clones from (the repository's path on disk)
    secrets: SecretValues | None = None
    tokens: PipelineTokens | None = None
    objects: ObjectStore | None = None  # caches and artifacts (none: the steps' cache/artifacts are ignored)
    _files: StepFiles | None = attrs.field(init=False, default=None)
    _steps: asyncio.Semaphore = attrs.field(init=False)
    _runs: dict[uuid.UUID, WorkflowExecution] = attrs.field(factory=dict, init=False)
    _tasks: set[asyncio.Task[None]] = attrs.field(factory=set, init=False)
    _wake: asyncio.Event = attrs.field(factory=asyncio.Event, init=False)
    _outage: OutageLog = attrs.field(factory=lambda: OutageLog("pipeline scheduler", log), init=False)
    _beat_outage: OutageLog = attrs.field(factory=lambda: OutageLog("pipeline lease heartbeat", log), init=False)

    def __attrs_post_init__(self) -> None:
        self._steps = asyncio.Semaphore(self.settings.max_running_steps)
        if self.objects is not None:
            self._files = StepFiles(self.executor, self.objects, self.uow_factory, self.clock)

    @property
    def files(self) -> StepFiles | None:
        return self._files

    @property
    def step_slots(self) -> asyncio.Semaphore:
        return self._steps

    @property
    def active(self) -> int:
        return len(self._runs)

    async def loop(self) -> None:
        """Run forever: sweep, claim, heartbeat (cancelled with the server)."""
        beat = asyncio.create_task(self._heartbeats())
        try:
            while True:
                try:
                    worked = await self.run_once()
                except Exception as exc:
                    backoff = self._outage.failed(exc)
                    if backoff is not None:  # PostgreSQL is down: one warning, then quiet until it is back
                        await asyncio.sleep(backoff)
                        continue
                    log.exception("pipeline scheduler turn failed; retrying")
                    worked = 0
                else:
                    self._outage.succeeded()
                if not worked:
                    try:
                        await self._idle()
                    except Unavailable as exc:  # the wake-up retries met the outage: the next turn backs off
                        self._outage.failed(exc)
        finally:
            beat.cancel()
            await self.shutdown()

    def wake(self) -> None:
        """A pipeline was created on this replica: look for work now instead of at the next poll."""
        self._wake.set()

    async def _idle(self) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), self.settings.poll_seconds)
        except TimeoutError:
            return
        # woken by the creator, maybe before its transaction committed: look a few times, briefly
        self._wake.clear()
        for _ in range(_WAKE_RETRIES):
            if await self.run_once():
                return
            await asyncio.sleep(_WAKE_RETRY_SECONDS)

    async def shutdown(self) -> None:
        """Stop every workflow this replica runs (their leases expire; another replica marks them error)."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass

    async def run_once(self) -> int:
        """One turn: expire dead leases, claim what fits; returns how much it did."""
        done = await self.expire_leases()
        free = self.settings.max_running_steps - self.active
        if free <= 0:
            return done
        try:
            async with self.uow_factory() as uow:
                claimed = await uow.pipelines.claim(self.settings.owner, self.clock.now(), free)
                for w in claimed:
                    pipeline = await uow.pipelines.get_by_id(w.pipeline_id)
                    if pipeline is not None and pipeline.status is Status.PENDING:
                        running = attrs.evolve(pipeline, status=Status.RUNNING, started_at=self.clock.now())
                        await uow.pipelines.update_pipeline(running)
                        project = await uow.projects.get(pipeline.project_id)
                        if project is not None:
                            await uow.outbox.add(topics.PIPELINE, pipeline_event_payload(running, project, "running"),
                                                 project_id=project.id)
                await uow.commit()
        except Conflict:  # the in-memory database's concurrent claim: the next turn tries again
            return done
        for w in claimed:
            self._start(w)
        return done + len(claimed)

    def _start(self, workflow: WorkflowRun) -> None:
        execution = WorkflowExecution(self, workflow)
        self._runs[workflow.id] = execution
        task = asyncio.create_task(execution.run(), name=f"workflow-{workflow.id}")
        self._tasks.add(task)

        def forget(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            self._runs.pop(workflow.id, None)
            if not t.cancelled() and t.exception() is not None:
                log.error("workflow %s crashed", workflow.id, exc_info=t.exception())

        task.add_done_callback(forget)

    async def wait_idle(self) -> None:
        """Wait until this replica runs no workflow (tests)."""
        while self._tasks:
            await asyncio.wait(list(self._tasks))

    def cancel_local(self, pipeline_id: uuid.UUID) -> bool:
        """Stop at once the workflows of ``pipeline_id`` running here; True when there were any."""
        found = False
        for execution in list(self._runs.values()):
            if execution.pipeline_id == pipeline_id:
                execution.abort("cancel")
                found = True
        return found

    async def expire_leases(self) -> int:
        """Mark ``error`` the workflows whose lease expired (see the module docstring)."""
        before = self.clock.now() - timedelta(seconds=self.settings.lease_seconds)
        async with self.uow_factory() as uow:
            expired = await uow.pipelines.expired(before, 50)
            if not expired:
                return 0
            now = self.clock.now()
            pipelines: set[uuid.UUID] = set()
            for w in expired:
                reason = f"the replica running it ({w.lease_owner}) stopped renewing its lease"
                await uow.pipelines.update_workflow(attrs.evolve(w, status=Status.ERROR, finished_at=now,
                                                                 error=reason, lease_owner=None))
                for s in await uow.pipelines.steps(w.pipeline_id):
                    if s.workflow_id != w.id or s.status.final:
                        continue
                    if s.status is Status.RUNNING:
                        await uow.pipelines.update_step(attrs.evolve(s, status=Status.ERROR, finished_at=now,
                                                                     error=reason))
                    else:
                        await uow.pipelines.update_step(attrs.evolve(s, status=Status.SKIPPED))
                pipelines.add(w.pipeline_id)
            for pipeline_id in pipelines:
                await skip_blocked_workflows(uow, pipeline_id, now)
                await finish_pipeline_if_done(uow, self.clock, pipeline_id)
            await uow.commit()
            log.warning("workflows marked error after their lease expired", extra={"count": len(expired)})
            return len(expired)

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_seconds)
            try:
                await self.heartbeat()
            except Exception as exc:
                if self._beat_outage.failed(exc) is None:
                    log.exception("pipeline lease heartbeat failed")
            else:
                self._beat_outage.succeeded()

    async def heartbeat(self) -> None:
        """Renew this replica's leases; stop what lost its lease; abort what was cancelled elsewhere."""
        runs = dict(self._runs)
        if not runs:
            return
        async with self.uow_factory() as uow:
            held = set(await uow.pipelines.heartbeat(self.settings.owner, list(runs), self.clock.now()))
            cancelled: set[uuid.UUID] = set()
            for pipeline_id in {e.pipeline_id for e in runs.values()}:
                p = await uow.pipelines.get_by_id(pipeline_id)
                if p is not None and p.cancel_requested:
                    cancelled.add(pipeline_id)
            await uow.commit()
        for workflow_id, execution in runs.items():
            if workflow_id not in held:
                execution.abort("lease")
            elif execution.pipeline_id in cancelled:
                execution.abort("cancel")
