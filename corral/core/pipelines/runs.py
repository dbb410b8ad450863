"""What the engine records about a run: pipelines, their workflows and steps, with Woodpecker's statuses.

A *pipeline* is one trigger (a push, a tag, a merge request, a manual run, a restart); it holds one row per
planned *workflow* and one per *step* (the clone step, services and steps). The workflow is the unit of
scheduling: one replica leases it (``lease_owner`` + ``heartbeat_at``) and runs all its steps, because its
steps share one workspace.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import attrs

__all__ = ["EVENTS", "FINAL", "Artifact", "Pipeline", "Schedule", "Status", "StepKind", "StepRun", "WorkflowRun",
           "overall_status"]


class Status(enum.StrEnum):
    """Woodpecker's statuses (pipelines, workflows and steps share them)."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    FAILURE = "failure"
    KILLED = "killed"
    SKIPPED = "skipped"
    ERROR = "error"
    BLOCKED = "blocked"
    DECLINED = "declined"

    @property
    def final(self) -> bool:
        return self in FINAL


FINAL = frozenset({Status.SUCCESS, Status.FAILURE, Status.KILLED, Status.SKIPPED, Status.ERROR, Status.DECLINED})

# The events a pipeline is started by (Woodpecker's names; a restart keeps its parent's event).
EVENTS = ("push", "tag", "pull_request", "pull_request_closed", "cron", "manual")


class StepKind(enum.StrEnum):
    CLONE = "clone"
    SERVICE = "service"
    STEP = "step"


def overall_status(statuses: Iterable[Status]) -> Status:
    """The status of a whole made of parts (a workflow of steps, a pipeline of workflows), once all ended:
    error beats failure beats killed; all skipped is skipped; else success."""
    seen = set(statuses)
    for worst in (Status.ERROR, Status.FAILURE, Status.KILLED):
        if worst in seen:
            return worst
    if seen and seen <= {Status.SKIPPED}:
        return Status.SKIPPED
    return Status.SUCCESS


@attrs.frozen(kw_only=True)
class Pipeline:
    """One run. ``definition`` is what the engine replans from (the pipeline files' text and the trigger
    context, JSON-shaped); ``variables`` the manual run's variables; ``errors`` why it could not run."""

    id: uuid.UUID
    project_id: uuid.UUID
    number: int
    event: str
    ref: str
    commit_sha: str
    status: Status
    created_at: datetime
    branch: str = ""
    commit_message: str = ""
    commit_author: str = ""
    pull_request: int | None = None
    parent_number: int | None = None
    triggered_by: uuid.UUID | None = None
    triggered_by_name: str = ""
    variables: Mapping[str, str] = attrs.field(factory=dict)
    definition: Mapping[str, Any] = attrs.field(factory=dict)
    errors: tuple[str, ...] = ()
    trigger_key: str | None = None  # dedupe: one pipeline per outbox event
    cancel_requested: bool = False
    started_at: datetime | None = None
    finished_at: datetime | None = None


@attrs.frozen(kw_only=True)
class WorkflowRun:
    """One planned workflow of a pipeline (``name`` is its display name, matrix included)."""

    id: uuid.UUID
    pipeline_id: uuid.UUID
    project_id: uuid.UUID
    position: int
    name: str
    status: Status
    depends_on: tuple[str, ...] = ()
    runs_on: tuple[str, ...] = ("success",)
    workspace_key: str = ""
    workspace_deleted: bool = True  # no workspace is kept (yet)
    reuse_workspace: bool = False  # a restart from a step: run on the parent's workspace, no clone
    lease_owner: str | None = None
    heartbeat_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str = ""


@attrs.frozen(kw_only=True)
class StepRun:
    """One step (or the clone step, or a service) of a workflow run."""

    id: uuid.UUID
    pipeline_id: uuid.UUID
    workflow_id: uuid.UUID
    project_id: uuid.UUID
    position: int
    name: str
    kind: StepKind
    status: Status
    image: str = ""
    depends_on: tuple[str, ...] = ()
    detached: bool = False
    exit_code: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    log_key: str | None = None
    error: str = ""


@attrs.frozen(kw_only=True)
class Artifact:
    """One file a step uploaded (``artifacts: {paths, expire_in}``): ``name`` is its path relative to the
    workspace, ``key`` the object holding its bytes; deleted after ``expires_at`` (None: kept)."""

    id: uuid.UUID
    pipeline_id: uuid.UUID
    project_id: uuid.UUID
    step: str
    name: str
    key: str
    size: int
    created_at: datetime
    expires_at: datetime | None = None


@attrs.frozen(kw_only=True)
class Schedule:
    """A cron schedule of a project: a ``cron`` pipeline of ``branch`` at every due time of ``cron`` (UTC),
    run as the user who created it; ``next_run_at`` is the next due time."""

    id: uuid.UUID
    project_id: uuid.UUID
    name: str
    cron: str
    branch: str
    created_at: datetime
    next_run_at: datetime
    variables: Mapping[str, str] = attrs.field(factory=dict)
    created_by: uuid.UUID | None = None
    created_by_name: str = ""
    last_run_at: datetime | None = None
