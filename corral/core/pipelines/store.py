"""The PipelineStore port: pipelines, workflows and steps in the unit of work, and the workflow queue."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Protocol

from corral.core.pipelines.runs import Artifact, Pipeline, Schedule, StepRun, WorkflowRun

__all__ = ["PipelineStore"]


class PipelineStore(Protocol):
    """Runs of pipelines (``corral.contracts.pipeline_store.PipelineStoreContract``).

    - ``next_number`` is atomic per project: concurrent callers get distinct numbers 1, 2, 3...
    - ``add`` inserts a pipeline with its workflows and steps; a second pipeline with the same non-null
      ``trigger_key`` raises Conflict (one pipeline per trigger event).
    - ``claim(owner, now, limit)`` leases up to ``limit`` pending workflows whose pipeline is not being
      cancelled and whose ``depends_on`` workflows (same pipeline) have all ended, oldest pipeline first;
      rows are locked so concurrent claimers on other replicas skip them (``FOR UPDATE SKIP LOCKED``); a
      claimed workflow is ``running`` with ``lease_owner=owner`` and ``heartbeat_at=now``.
    - ``heartbeat`` refreshes the leases of ``owner``'s running workflows among ``ids`` and returns the ids it
      still holds (a lease taken away by ``expired`` is not renewed).
    - ``expired(before)`` returns running workflows whose ``heartbeat_at`` is older than ``before``, locked.
    - ``put_artifact`` replaces an artifact of the same pipeline and name (returns the replaced one, whose
      object the caller deletes); ``expired_artifacts`` locks what it returns (SKIP LOCKED).
    - ``add_schedule`` raises Conflict for a second schedule of the same name in a project;
      ``due_schedules(now)`` returns schedules whose ``next_run_at`` is at or before ``now``, locked
      (SKIP LOCKED: one replica fires a due time).
    - ``kept_workspaces(before)`` returns ended workflows whose workspace still exists and which ended
      before ``before``.
    """

    async def next_number(self, project_id: uuid.UUID) -> int: ...

    async def add(self, pipeline: Pipeline, workflows: list[WorkflowRun], steps: list[StepRun]) -> None: ...

    async def get(self, project_id: uuid.UUID, number: int) -> Pipeline | None: ...

    async def get_by_id(self, pipeline_id: uuid.UUID) -> Pipeline | None: ...

    async def by_trigger(self, trigger_key: str) -> Pipeline | None: ...

    async def recent(self, project_id: uuid.UUID, *, limit: int, before_number: int | None = None) -> list[Pipeline]:
        """Newest first (highest number first), numbers below ``before_number`` when given."""
        ...

    async def last_before(self, project_id: uuid.UUID, number: int, branch: str) -> Pipeline | None:
        """The newest pipeline of ``branch`` numbered below ``number`` (CI_PREV_PIPELINE_*)."""
        ...

    async def workflows(self, pipeline_id: uuid.UUID) -> list[WorkflowRun]:
        """In position order."""
        ...

    async def steps(self, pipeline_id: uuid.UUID) -> list[StepRun]:
        """Every step of every workflow, by workflow position then step position."""
        ...

    async def update_pipeline(self, pipeline: Pipeline) -> None: ...

    async def update_workflow(self, workflow: WorkflowRun) -> None: ...

    async def update_step(self, step: StepRun) -> None: ...

    async def claim(self, owner: str, now: datetime, limit: int) -> list[WorkflowRun]: ...

    async def heartbeat(self, owner: str, ids: list[uuid.UUID], now: datetime) -> list[uuid.UUID]: ...

    async def expired(self, before: datetime, limit: int) -> list[WorkflowRun]: ...

    async def by_commit(self, project_id: uuid.UUID, sha: str, limit: int) -> list[Pipeline]:
        """The pipelines of commit ``sha``, newest first."""
        ...

    async def kept_workspaces(self, before: datetime, limit: int) -> list[WorkflowRun]: ...

    async def workspaces_of(self, project_id: uuid.UUID) -> list[str]:
        """The keys of the project's workflow workspaces not deleted yet (running or kept), for its purge."""
        ...

    # ---- artifacts ----------------------------------------------------------------------------------------
    async def put_artifact(self, artifact: Artifact) -> Artifact | None: ...

    async def artifacts(self, pipeline_id: uuid.UUID) -> list[Artifact]:
        """By name."""
        ...

    async def artifact(self, pipeline_id: uuid.UUID, name: str) -> Artifact | None: ...

    async def expired_artifacts(self, now: datetime, limit: int) -> list[Artifact]: ...

    async def delete_artifact(self, artifact_id: uuid.UUID) -> None: ...

    # ---- schedules ----------------------------------------------------------------------------------------
    async def add_schedule(self, schedule: Schedule) -> None: ...

    async def schedules(self, project_id: uuid.UUID) -> list[Schedule]:
        """By name."""
        ...

    async def schedule(self, project_id: uuid.UUID, name: str) -> Schedule | None: ...

    async def update_schedule(self, schedule: Schedule) -> None: ...

    async def delete_schedule(self, schedule_id: uuid.UUID) -> None: ...

    async def due_schedules(self, now: datetime, limit: int) -> list[Schedule]: ...
