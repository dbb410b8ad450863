"""InMemoryPipelineStore: the PipelineStore port over dicts (rows replaced, never mutated)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import attrs

from corral.core.errors import Conflict
from corral.core.pipelines.runs import Artifact, Pipeline, Schedule, Status, StepRun, WorkflowRun
from corral.fakes.outbox import RowLocks

__all__ = ["InMemoryPipelineStore", "PipelineTables"]


@attrs.define
class PipelineTables:
    """The committed (or a unit's private) state of the pipeline tables."""

    pipelines: dict[uuid.UUID, Pipeline] = attrs.field(factory=dict)
    workflows: dict[uuid.UUID, WorkflowRun] = attrs.field(factory=dict)
    steps: dict[uuid.UUID, StepRun] = attrs.field(factory=dict)
    artifacts: dict[uuid.UUID, Artifact] = attrs.field(factory=dict)
    schedules: dict[uuid.UUID, Schedule] = attrs.field(factory=dict)


@attrs.define
class InMemoryPipelineStore:
    tables: PipelineTables = attrs.field(factory=PipelineTables)
    counters: dict[Any, int] = attrs.field(factory=dict)  # shared, never rolled back (like a row-locked UPDATE)
    locks: RowLocks = attrs.field(factory=RowLocks)
    owner: object = attrs.field(factory=object)

    async def next_number(self, project_id: uuid.UUID) -> int:
        key = (project_id, "pipeline")
        self.counters[key] = self.counters.get(key, 0) + 1
        return self.counters[key]

    async def add(self, pipeline: Pipeline, workflows: list[WorkflowRun], steps: list[StepRun]) -> None:
        for p in self.tables.pipelines.values():
            if pipeline.trigger_key is not None and p.trigger_key == pipeline.trigger_key:
                raise Conflict(f"a pipeline for trigger {pipeline.trigger_key} exists")
            if p.project_id == pipeline.project_id and p.number == pipeline.number:
                raise Conflict(f"pipeline #{pipeline.number} exists")
        self.tables.pipelines[pipeline.id] = pipeline
        for w in workflows:
            self.tables.workflows[w.id] = w
        for s in steps:
            self.tables.steps[s.id] = s

    async def get(self, project_id: uuid.UUID, number: int) -> Pipeline | None:
        return next((p for p in self.tables.pipelines.values()
                     if p.project_id == project_id and p.number == number), None)

    async def get_by_id(self, pipeline_id: uuid.UUID) -> Pipeline | None:
        return self.tables.pipelines.get(pipeline_id)

    async def by_trigger(self, trigger_key: str) -> Pipeline | None:
        return next((p for p in self.tables.pipelines.values() if p.trigger_key == trigger_key), None)

    async def recent(self, project_id: uuid.UUID, *, limit: int, before_number: int | None = None) -> list[Pipeline]:
        found = [p for p in self.tables.pipelines.values() if p.project_id == project_id
                 and (before_number is None or p.number < before_number)]
        return sorted(found, key=lambda p: -p.number)[:limit]

    async def last_before(self, project_id: uuid.UUID, number: int, branch: str) -> Pipeline | None:
        found = [p for p in self.tables.pipelines.values()
                 if p.project_id == project_id and p.number < number and p.branch == branch]
        return max(found, key=lambda p: p.number, default=None)

    async def workflows(self, pipeline_id: uuid.UUID) -> list[WorkflowRun]:
        return sorted((w for w in self.tables.workflows.values() if w.pipeline_id == pipeline_id),
                      key=lambda w: w.position)

    async def steps(self, pipeline_id: uuid.UUID) -> list[StepRun]:
        order = {w.id: w.position for w in self.tables.workflows.values() if w.pipeline_id == pipeline_id}
        return sorted((s for s in self.tables.steps.values() if s.pipeline_id == pipeline_id),
                      key=lambda s: (order.get(s.workflow_id, 0), s.position))

    async def update_pipeline(self, pipeline: Pipeline) -> None:
        self.tables.pipelines[pipeline.id] = pipeline

    async def update_workflow(self, workflow: WorkflowRun) -> None:
        self.tables.workflows[workflow.id] = workflow

    async def update_step(self, step: StepRun) -> None:
        self.tables.steps[step.id] = step

    def _lock(self, row_id: uuid.UUID) -> bool:
        holder = self.locks.held.get(row_id, self.owner)
        if holder is not self.owner:
            return False
        self.locks.held[row_id] = self.owner
        return True

    async def claim(self, owner: str, now: datetime, limit: int) -> list[WorkflowRun]:
        claimed: list[WorkflowRun] = []
        pipelines = self.tables.pipelines
        candidates = sorted((w for w in self.tables.workflows.values() if w.status is Status.PENDING),
                            key=lambda w: (pipelines[w.pipeline_id].created_at, w.pipeline_id.int, w.position))
        for w in candidates:
            if len(claimed) == limit:
                break
            if pipelines[w.pipeline_id].cancel_requested:
                continue
            siblings = [s for s in self.tables.workflows.values() if s.pipeline_id == w.pipeline_id]
            if any(not s.status.final for s in siblings if s.name.split(" (")[0] in w.depends_on):
                continue
            if not self._lock(w.id):
                continue
            leased = attrs.evolve(w, status=Status.RUNNING, lease_owner=owner, heartbeat_at=now, started_at=now)
            self.tables.workflows[w.id] = leased
            claimed.append(leased)
        return claimed

    async def heartbeat(self, owner: str, ids: list[uuid.UUID], now: datetime) -> list[uuid.UUID]:
        held: list[uuid.UUID] = []
        for workflow_id in ids:
            w = self.tables.workflows.get(workflow_id)
            if w is not None and w.status is Status.RUNNING and w.lease_owner == owner:
                self.tables.workflows[workflow_id] = attrs.evolve(w, heartbeat_at=now)
                held.append(workflow_id)
        return held

    async def expired(self, before: datetime, limit: int) -> list[WorkflowRun]:
        found = sorted((w for w in self.tables.workflows.values() if w.status is Status.RUNNING
                        and w.heartbeat_at is not None and w.heartbeat_at < before),
                       key=lambda w: w.heartbeat_at or before)
        out: list[WorkflowRun] = []
        for w in found:
            if len(out) == limit:
                break
            if self._lock(w.id):
                out.append(w)
        return out

    async def by_commit(self, project_id: uuid.UUID, sha: str, limit: int) -> list[Pipeline]:
        found = [p for p in self.tables.pipelines.values() if p.project_id == project_id and p.commit_sha == sha]
        return sorted(found, key=lambda p: -p.number)[:limit]

    async def kept_workspaces(self, before: datetime, limit: int) -> list[WorkflowRun]:
        found = [w for w in self.tables.workflows.values() if w.status.final and not w.workspace_deleted
                 and w.workspace_key and w.finished_at is not None and w.finished_at < before]
        return sorted(found, key=lambda w: w.finished_at or before)[:limit]

    async def workspaces_of(self, project_id: uuid.UUID) -> list[str]:
        return sorted(w.workspace_key for w in self.tables.workflows.values()
                      if w.project_id == project_id and w.workspace_key and not w.workspace_deleted)

    # ---- artifacts ----------------------------------------------------------------------------------------
    async def put_artifact(self, artifact: Artifact) -> Artifact | None:
        old = await self.artifact(artifact.pipeline_id, artifact.name)
        if old is not None:
            del self.tables.artifacts[old.id]
        self.tables.artifacts[artifact.id] = artifact
        return old

    async def artifacts(self, pipeline_id: uuid.UUID) -> list[Artifact]:
        return sorted((a for a in self.tables.artifacts.values() if a.pipeline_id == pipeline_id),
                      key=lambda a: a.name)

    async def artifact(self, pipeline_id: uuid.UUID, name: str) -> Artifact | None:
        return next((a for a in self.tables.artifacts.values() if a.pipeline_id == pipeline_id and a.name == name),
                    None)

    async def expired_artifacts(self, now: datetime, limit: int) -> list[Artifact]:
        found = sorted((a for a in self.tables.artifacts.values() if a.expires_at is not None and a.expires_at <= now),
                       key=lambda a: a.expires_at or now)
        return self._locked(found, limit)

    async def delete_artifact(self, artifact_id: uuid.UUID) -> None:
        self.tables.artifacts.pop(artifact_id, None)

    # ---- schedules ----------------------------------------------------------------------------------------
    async def add_schedule(self, schedule: Schedule) -> None:
        if await self.schedule(schedule.project_id, schedule.name) is not None:
            raise Conflict(f"a pipeline schedule named {schedule.name!r} exists")
        self.tables.schedules[schedule.id] = schedule

    async def schedules(self, project_id: uuid.UUID) -> list[Schedule]:
        return sorted((s for s in self.tables.schedules.values() if s.project_id == project_id),
                      key=lambda s: s.name)

    async def schedule(self, project_id: uuid.UUID, name: str) -> Schedule | None:
        return next((s for s in self.tables.schedules.values() if s.project_id == project_id and s.name == name),
                    None)

    async def update_schedule(self, schedule: Schedule) -> None:
        self.tables.schedules[schedule.id] = schedule

    async def delete_schedule(self, schedule_id: uuid.UUID) -> None:
        self.tables.schedules.pop(schedule_id, None)

    async def due_schedules(self, now: datetime, limit: int) -> list[Schedule]:
        found = sorted((s for s in self.tables.schedules.values() if s.next_run_at <= now),
                       key=lambda s: s.next_run_at)
        return self._locked(found, limit)

    def _locked(self, rows: list[Any], limit: int) -> list[Any]:
        out: list[Any] = []
        for row in rows:
            if len(out) < limit and self._lock(row.id):
                out.append(row)
        return out
