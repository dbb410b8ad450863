"""Response shapes of the pipeline routes."""

from __future__ import annotations

from datetime import datetime

import attrs

__all__ = ["LintError", "LintResult", "LintWorkflow", "PipelineDetailOut", "PipelineOut", "StepOut", "WorkflowOut"]


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
class PipelineDetailOut(PipelineOut):
    """A pipeline with its workflows and steps; ``errors`` say why it could not run."""

    branch: str
    triggered_by: str | None
    errors: list[str]
    workflows: list[WorkflowOut]
