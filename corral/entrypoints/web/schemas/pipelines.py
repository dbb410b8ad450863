"""Response shapes of the pipeline routes."""

from __future__ import annotations

from datetime import datetime

import attrs

__all__ = [
    "ArtifactList",
    "ArtifactOut",
    "CommitPipelineOut",
    "CommitStatusOut",
    "CommitWorkflowOut",
    "LintError",
    "LintResult",
    "LintWorkflow",
    "PipelineDetailOut",
    "PipelineOut",
    "ScheduleList",
    "ScheduleOut",
    "StepOut",
    "WorkflowOut",
]


@attrs.frozen
class LintError:
    """One mistake: what is wrong, its 1-based line (null when it concerns the whole file) and key path."""

    message: str
    line: int | None
    path: str


@attrs.frozen
class LintWorkflow:
    """A workflow the file defines and its steps, in file order."""

    name: str
    steps: list[str]


@attrs.frozen
class LintResult:
    """Whether a pipeline file is valid; every error when it is not."""

    valid: bool
    errors: list[LintError]
    workflows: list[LintWorkflow]


@attrs.frozen
class PipelineOut:
    """A pipeline run (newest first in lists)."""

    number: int
    status: str
    event: str
    ref: str
    commit_sha: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    parent: int | None


@attrs.frozen
class StepOut:
    """A step (the clone step and services included) and how it ended."""

    name: str
    status: str
    exit_code: int | None
    started_at: datetime | None
    finished_at: datetime | None


@attrs.frozen
class WorkflowOut:
    """A workflow (one per file and matrix combination) and its steps."""

    name: str
    status: str
    error: str
    steps: list[StepOut]


@attrs.frozen
class PipelineDetailOut:
    """A pipeline with its workflows and steps; ``errors`` say why it could not run."""

    number: int
    status: str
    event: str
    ref: str
    commit_sha: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    parent: int | None
    branch: str
    triggered_by: str | None
    errors: list[str]
    workflows: list[WorkflowOut]


@attrs.frozen
class ArtifactOut:
    """A file a step uploaded (``artifacts``): ``name`` is its path relative to the workspace."""

    name: str
    size: int
    step: str
    expires_at: datetime | None


@attrs.frozen
class ArtifactList:
    """The artifacts of a pipeline, by name (expired ones are gone)."""

    items: list[ArtifactOut]


@attrs.frozen
class ScheduleOut:
    """A cron schedule: a ``cron`` pipeline of ``branch`` at every due time of ``cron`` (UTC)."""

    name: str
    cron: str
    branch: str
    variables: dict[str, str]
    next_run_at: datetime
    last_run_at: datetime | None
    created_by: str | None
    created_at: datetime


@attrs.frozen
class ScheduleList:
    """The pipeline schedules of a project, by name."""

    items: list[ScheduleOut]


@attrs.frozen
class CommitWorkflowOut:
    """A workflow of a pipeline of the commit (a required check's name)."""

    name: str
    status: str


@attrs.frozen
class CommitPipelineOut:
    """A pipeline of the commit."""

    number: int
    status: str
    event: str
    ref: str
    workflows: list[CommitWorkflowOut]


@attrs.frozen
class CommitStatusOut:
    """The pipeline status of a commit: ``state`` is the newest pipeline's status (``none`` without any)."""

    sha: str
    state: str
    pipelines: list[CommitPipelineOut]
