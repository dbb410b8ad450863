"""Pipeline housekeeping: what a crashed server left running, old workspaces, expired artifacts.

- ``recover()`` (at start): workloads of pipelines still running on the executor (``running`` with the label
  ``corral.pipeline``) that no live replica owns — their workflow ended, or its lease belongs to an earlier
  process on this host — are stopped; their steps still ``running`` become ``error`` and their workflow
  ``error`` (instead of waiting for the lease to expire).
- ``sweep()`` (periodically): workspaces kept after a workflow ended (failed ones are kept for a restart from
  a step) are deleted once ``workspace_retention_hours`` passed; expired artifacts are deleted.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from datetime import timedelta

import attrs

from corral.core.clock import Clock
from corral.core.pipelines.completion import finish_pipeline_if_done, skip_blocked_workflows
from corral.core.pipelines.runs import Status
from corral.core.pipelines.step_files import StepFiles
from corral.core.projects.model import Project, PurgeParts
from corral.core.uow import UnitOfWork, UnitOfWorkFactory
from corral.core.workloads.ports import Executor

__all__ = ["PipelineHousekeeping", "pipeline_purge_parts"]

log = logging.getLogger("corral.pipelines")


def _host(owner: str | None) -> str:
    return (owner or "").split(":", 1)[0]


async def pipeline_purge_parts(uow: UnitOfWork, project: Project) -> PurgeParts:
    """A deleted project's caches, artifacts and step logs, and its workflows' workspaces not deleted yet
    (corral.core.projects.purge)."""
    return PurgeParts(prefixes=(f"cache/{project.id}/", f"artifacts/{project.id}/", f"pipelines/{project.id}/"),
                      workspaces=tuple(await uow.pipelines.workspaces_of(project.id)))


@attrs.define
class PipelineHousekeeping:
    uow_factory: UnitOfWorkFactory
    executor: Executor
    clock: Clock
    owner: str  # this process's lease owner id ("host:pid:nonce")
    files: StepFiles | None = None
    workspace_retention_hours: float = 24.0
    stop_grace_seconds: float = 5.0

    async def recover(self) -> int:
        """Stop the leftovers of a crashed server (see the module docstring); returns how many were stopped."""
        handles = [h for h in await self.executor.running({}) if "corral.pipeline" in h.labels]
        stopped = 0
        ended: set[uuid.UUID] = set()
        for handle in handles:
            try:
                workflow_id = uuid.UUID(handle.labels.get("corral.workflow", ""))
                pipeline_id = uuid.UUID(handle.labels["corral.pipeline"])
            except ValueError:
                continue
            async with self.uow_factory() as uow:
                workflow = next((w for w in await uow.pipelines.workflows(pipeline_id) if w.id == workflow_id), None)
            if (workflow is not None and workflow.status is Status.RUNNING and workflow.lease_owner != self.owner
                    and _host(workflow.lease_owner) != _host(self.owner)):
                continue  # another replica (another host) runs it
            if workflow is not None and workflow.lease_owner == self.owner:
                continue  # this process started it after all
            with contextlib.suppress(Exception):
                await self.executor.stop(handle, self.stop_grace_seconds)
            stopped += 1
            if workflow is not None and workflow.status is Status.RUNNING:
                ended.add(pipeline_id)
                await self._mark_error(pipeline_id, workflow_id, handle.labels.get("corral.step", ""))
        if stopped:
            log.warning("stopped pipeline workloads a previous server process left running",
                        extra={"count": stopped, "pipelines": len(ended)})
        return stopped

    async def _mark_error(self, pipeline_id: uuid.UUID, workflow_id: uuid.UUID, step: str) -> None:
        reason = "the server running it stopped (its workload was stopped at the next start)"
        now = self.clock.now()
        async with self.uow_factory() as uow:
            workflow = next((w for w in await uow.pipelines.workflows(pipeline_id) if w.id == workflow_id), None)
            if workflow is None or workflow.status is not Status.RUNNING:
                return
            for s in await uow.pipelines.steps(pipeline_id):
                if s.workflow_id != workflow_id or s.status.final:
                    continue
                if s.status is Status.RUNNING:
                    await uow.pipelines.update_step(attrs.evolve(s, status=Status.ERROR, finished_at=now,
                                                                 error=reason))
                else:
                    await uow.pipelines.update_step(attrs.evolve(s, status=Status.SKIPPED))
            await uow.pipelines.update_workflow(attrs.evolve(workflow, status=Status.ERROR, finished_at=now,
                                                             error=reason, lease_owner=None))
            await skip_blocked_workflows(uow, pipeline_id, now)
            await finish_pipeline_if_done(uow, self.clock, pipeline_id)
            await uow.commit()

    async def sweep(self) -> tuple[int, int]:
        """Delete old kept workspaces and expired artifacts; returns how many of each."""
        before = self.clock.now() - timedelta(hours=self.workspace_retention_hours)
        async with self.uow_factory() as uow:
            kept = await uow.pipelines.kept_workspaces(before, 100)
        for workflow in kept:
            try:
                # create_workspace is idempotent: it answers the executor's own reference of the kept one
                await self.executor.delete_workspace(await self.executor.create_workspace(workflow.workspace_key))
            except Exception as exc:
                log.warning("a pipeline workspace could not be deleted: %s", exc)
                continue
            async with self.uow_factory() as uow:
                await uow.pipelines.update_workflow(attrs.evolve(workflow, workspace_deleted=True))
                await uow.commit()
        artifacts = await self.files.expire() if self.files is not None else 0
        return len(kept), artifacts
