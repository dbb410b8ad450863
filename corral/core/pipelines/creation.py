"""Creating a pipeline: read its files at the commit, plan it, allocate its number, write its rows."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from typing import Any

import attrs

from corral.core.audit.model import AuditEntry
from corral.core.clock import Clock
from corral.core.errors import NotFound
from corral.core.git.ports import GitRepositories
from corral.core.ids import uuid7
from corral.core.outbox import topics
from corral.core.pipelines.conditions import TriggerContext
from corral.core.pipelines.definition import Workflow
from corral.core.pipelines.environment import definition_json, pipeline_environment, replan
from corral.core.pipelines.expression import ExpressionError
from corral.core.pipelines.nodes import PipelineError
from corral.core.pipelines.ports import MAX_FILE_BYTES, PipelineFileParser
from corral.core.pipelines.runs import Pipeline, Status, StepKind, StepRun, WorkflowRun
from corral.core.pipelines.selection import WOODPECKER_DIR, Definition, SourceFile, choose_files
from corral.core.projects.model import Project
from corral.core.uow import UnitOfWork

__all__ = ["CLONE_STEP", "NewRun", "create_pipeline", "pipeline_event_payload", "read_pipeline_files",
           "workflow_rows"]

CLONE_STEP = "clone"


async def read_pipeline_files(git: GitRepositories, repo: str, sha: str) -> list[SourceFile]:
    """The pipeline files present at ``sha`` (``choose_files``' rule), with their text."""
    root = await git.tree(repo, sha, "")
    paths = [e.path for e in root if e.type == "blob"]
    if any(e.path == WOODPECKER_DIR and e.type == "tree" for e in root):
        paths += [e.path for e in await git.tree(repo, sha, WOODPECKER_DIR) if e.type == "blob"]
    files: list[SourceFile] = []
    for path in choose_files(paths):
        blob = await git.blob(repo, sha, path, limit=MAX_FILE_BYTES + 1)
        files.append(SourceFile(path, blob.data.decode("utf-8", errors="replace")))
    return files


@attrs.frozen(kw_only=True)
class NewRun:
    """What triggered a run, as the trigger knows it."""

    event: str
    ref: str
    branch: str
    sha: str
    message: str = ""
    author: str = ""
    changed_files: tuple[str, ...] | None = None
    actor_id: uuid.UUID | None = None
    actor_name: str = ""
    variables: Mapping[str, str] = attrs.field(factory=dict)
    pull_request: int | None = None
    extra: Mapping[str, str] = attrs.field(factory=dict)
    trigger_key: str | None = None
    parent_number: int | None = None


def workflow_rows(pipeline: Pipeline, planned: list[Workflow]) -> tuple[list[WorkflowRun], list[StepRun]]:
    """One workflow row per planned workflow, one step row per clone step, service and step."""
    workflows: list[WorkflowRun] = []
    steps: list[StepRun] = []
    for position, wf in enumerate(planned):
        w = WorkflowRun(id=uuid7(), pipeline_id=pipeline.id, project_id=pipeline.project_id, position=position,
                        name=wf.display_name, status=Status.PENDING, depends_on=wf.depends_on, runs_on=wf.runs_on)
        workflows.append(w)
        n = 0

        def row(name: str, kind: StepKind, image: str = "", deps: tuple[str, ...] = (), detached: bool = False,
                w: WorkflowRun = w) -> StepRun:
            nonlocal n
            n += 1
            return StepRun(id=uuid7(), pipeline_id=pipeline.id, workflow_id=w.id, project_id=pipeline.project_id,
                           position=n, name=name, kind=kind, status=Status.PENDING, image=image, depends_on=deps,
                           detached=detached)

        if not wf.clone.skip:
            steps.append(row(CLONE_STEP, StepKind.CLONE))
        for service in wf.services:
            steps.append(row(service.name, StepKind.SERVICE, service.image, detached=True))
        for step in wf.steps:
            steps.append(row(step.name, StepKind.STEP, step.image, wf.dependencies.get(step.name, ()), step.detach))
    return workflows, steps


def pipeline_event_payload(pipeline: Pipeline, project: Project, action: str) -> dict[str, Any]:
    """The ``pipeline`` outbox event (webhooks) and its shape."""
    return {
        "action": action,
        "project": {"id": str(project.id), "full_name": project.full_name},
        "pipeline": {"number": pipeline.number, "status": pipeline.status.value, "event": pipeline.event,
                     "ref": pipeline.ref, "commit_sha": pipeline.commit_sha, "parent": pipeline.parent_number},
        "sender": {"id": str(pipeline.triggered_by) if pipeline.triggered_by else None,
                   "name": pipeline.triggered_by_name},
    }


async def create_pipeline(uow: UnitOfWork, clock: Clock, parser: PipelineFileParser, project: Project, run: NewRun,
                          files: list[SourceFile], *, base_url: str,
                          require_workflows: bool = True) -> Pipeline | None:
    """Plan ``run`` and write it (in ``uow``): a pending pipeline, or one in ``error`` when its files are
    invalid. None when nothing runs (no files, or no workflow matches and ``require_workflows``)."""
    if not files:
        if require_workflows:
            return None
        raise NotFound(f"no pipeline file (.corral.yaml, .woodpecker/*.yaml or .woodpecker.yaml) at {run.sha[:12]}")
    ctx = TriggerContext(event=run.event, branch=run.branch, ref=run.ref, commit_message=run.message,
                         changed_files=run.changed_files, repo=project.full_name, cron=run.extra.get("cron", ""))
    draft = Pipeline(
        id=uuid7(), project_id=project.id, number=0, event=run.event, ref=run.ref, commit_sha=run.sha,
        status=Status.PENDING, created_at=clock.now(), branch=run.branch, commit_message=run.message,
        commit_author=run.author, pull_request=run.pull_request, triggered_by=run.actor_id,
        triggered_by_name=run.actor_name, variables=dict(run.variables), parent_number=run.parent_number,
        definition=definition_json(files, ctx, run.extra), trigger_key=run.trigger_key,
    )
    environ = pipeline_environment(draft, project, base_url=base_url)
    try:
        planned, definition = await asyncio.to_thread(replan, draft, parser, environ)
    except ExpressionError as exc:  # an `evaluate` condition that fails on this trigger's values
        planned, definition = [], Definition((), (PipelineError("", 0, "when.evaluate", str(exc)),))
    if definition.valid and not planned and require_workflows:
        return None
    number = await uow.pipelines.next_number(project.id)
    pipeline = attrs.evolve(draft, number=number)
    workflows: list[WorkflowRun] = []
    steps: list[StepRun] = []
    if not definition.valid:
        errors = tuple(f"{e.file}:{e.line}: {e.path + ': ' if e.path else ''}{e.message}" for e in definition.errors)
        pipeline = attrs.evolve(pipeline, status=Status.ERROR, errors=errors, finished_at=clock.now())
    elif not planned:
        pipeline = attrs.evolve(pipeline, status=Status.SKIPPED, finished_at=clock.now(),
                                errors=("no workflow matches this trigger",))
    else:
        workflows, steps = workflow_rows(pipeline, planned)
    await uow.pipelines.add(pipeline, workflows, steps)
    if run.actor_id is not None:
        await uow.audit.record(AuditEntry(
            id=uuid7(), actor_id=run.actor_id, actor_name=run.actor_name, action="pipeline.create",
            resource="pipeline", created_at=clock.now(), resource_id=pipeline.id, project_id=project.id,
            detail={"number": pipeline.number, "event": run.event, "ref": run.ref, "commit_sha": run.sha,
                    "parent": pipeline.parent_number, "status": pipeline.status.value},
        ))
    await uow.outbox.add(topics.PIPELINE, pipeline_event_payload(pipeline, project, "created"), project_id=project.id)
    return pipeline
