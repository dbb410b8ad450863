"""The end of workflows and pipelines: skipping what can no longer run, the final status, telling the world."""

from __future__ import annotations

import uuid
from datetime import datetime

import attrs

from corral.core.clock import Clock
from corral.core.outbox import topics
from corral.core.pipelines.creation import pipeline_event_payload
from corral.core.pipelines.runs import Pipeline, Status, WorkflowRun, overall_status
from corral.core.uow import UnitOfWork

__all__ = ["finish_pipeline_if_done", "skip_blocked_workflows"]


async def finish_pipeline_if_done(uow: UnitOfWork, clock: Clock, pipeline_id: uuid.UUID) -> Pipeline | None:
    """When every workflow of the pipeline ended, give the pipeline its final status and tell the world
    (``pipeline`` event, ``build_failed`` notification on failure or error). Returns the finished pipeline."""
    pipeline = await uow.pipelines.get_by_id(pipeline_id)
    if pipeline is None or pipeline.status.final:
        return None
    workflows = await uow.pipelines.workflows(pipeline_id)
    if any(not w.status.final for w in workflows):
        return None
    status = Status.KILLED if pipeline.cancel_requested else overall_status(w.status for w in workflows)
    finished = attrs.evolve(pipeline, status=status, finished_at=clock.now(),
                            started_at=pipeline.started_at or clock.now())
    await uow.pipelines.update_pipeline(finished)
    project = await uow.projects.get(pipeline.project_id)
    if project is not None:
        await uow.outbox.add(topics.PIPELINE, pipeline_event_payload(finished, project, status.value),
                             project_id=project.id)
        if status in (Status.FAILURE, Status.ERROR):
            await uow.outbox.add(topics.BUILD_FAILED, {
                "project": project.full_name, "project_id": str(project.id), "number": finished.number,
                "title": f"pipeline #{finished.number} {status.value}", "ref": finished.ref,
                "commit_sha": finished.commit_sha,
                "user_ids": [str(finished.triggered_by)] if finished.triggered_by else [], "notify_actor": True,
                "dedupe_key": f"build_failed:{finished.id}",
            }, project_id=project.id)
    return finished


async def skip_blocked_workflows(uow: UnitOfWork, pipeline_id: uuid.UUID, now: datetime) -> None:
    """Pending workflows whose ``depends_on`` ended in a status outside their ``runs_on`` are skipped
    (recursively), as Woodpecker does."""
    changed = True
    while changed:
        changed = False
        workflows = await uow.pipelines.workflows(pipeline_id)
        by_name: dict[str, list[WorkflowRun]] = {}
        for w in workflows:
            by_name.setdefault(w.name.split(" (")[0], []).append(w)
        for w in workflows:
            if w.status is not Status.PENDING:
                continue
            deps = [d for name in w.depends_on for d in by_name.get(name, [])]
            if deps and all(d.status.final for d in deps) and any(d.status.value not in w.runs_on for d in deps):
                await uow.pipelines.update_workflow(attrs.evolve(w, status=Status.SKIPPED, finished_at=now))
                for s in await uow.pipelines.steps(pipeline_id):
                    if s.workflow_id == w.id and not s.status.final:
                        await uow.pipelines.update_step(attrs.evolve(s, status=Status.SKIPPED))
                changed = True
