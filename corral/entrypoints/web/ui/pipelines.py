"""Pipeline pages like Woodpecker's: a project's pipelines, one pipeline's workflows and steps as a graph with
statuses and durations, a step's log (stored text, followed live by ui.js over the API's SSE stream), cancel and
restart forms, artifacts. The same PipelineService and permissions as the pipelines API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
from aiohttp import web

from corral.core.errors import NotFound
from corral.core.pipelines.runs import Status, StepKind, StepRun, WorkflowRun
from corral.core.pipelines.service import PipelineService
from corral.entrypoints.web.keys import PLATFORM
from corral.entrypoints.web.operation import params_of, path_number, query_param
from corral.entrypoints.web.project_access import actor_of, can, project_of
from corral.entrypoints.web.ui.ansi import ansi_html
from corral.entrypoints.web.ui.pages import Crumb, form_data, redirect, url_path
from corral.entrypoints.web.ui.projects import project_crumbs, project_page
from corral.entrypoints.web.ui.table import form
from corral.entrypoints.web.ui.table import page as page_route

__all__ = ["StepView", "graph"]

P = "/ui/{owner}/{name}/pipelines"
_READ: dict[str, Any] = {"permission": "pipeline:read", "project": "path"}
_RUN: dict[str, Any] = {"permission": "pipeline:run", "project": "path"}
MAX_LOG_LINES = 20_000  # more is cut (the raw log link has it all)
_RESTARTABLE = {Status.FAILURE, Status.ERROR, Status.KILLED}


@attrs.frozen
class ListParams:
    cursor: str | None = query_param(doc="next page")


@attrs.frozen
class DetailParams:
    step: str | None = query_param(doc="the step whose log is shown")
    workflow: str | None = query_param(doc="the workflow of that step")
    q: str | None = query_param(doc="only log lines holding this text")


@attrs.frozen
class StepView:
    step: StepRun
    workflow: str
    level: int
    duration: timedelta | None


def _service(request: web.Request) -> PipelineService:
    found: PipelineService = request.app[PLATFORM].resolve(PipelineService)
    return found


def _took(start: datetime | None, end: datetime | None) -> timedelta | None:
    if start is None:
        return None
    return (end or datetime.now(UTC)) - start


def graph(workflow: WorkflowRun, steps: list[StepRun]) -> list[list[StepView]]:
    """The workflow's steps in columns: a step sits one column right of the last step it depends on."""
    mine = sorted((s for s in steps if s.workflow_id == workflow.id), key=lambda s: s.position)
    names = {s.name for s in mine}
    levels: dict[str, int] = {}
    for _ in range(len(mine) + 1):  # bounded relaxation (a DAG settles in at most len(steps) rounds)
        changed = False
        for s in mine:
            deps = [d for d in s.depends_on if d in names]
            if s.kind == StepKind.CLONE:
                level = 0
            elif deps:
                level = 1 + max(levels.get(d, 0) for d in deps)
            else:
                level = 1 if any(x.kind == StepKind.CLONE for x in mine) else 0
            if levels.get(s.name) != level:
                levels[s.name] = level
                changed = True
        if not changed:
            break
    columns: dict[int, list[StepView]] = {}
    for s in mine:
        columns.setdefault(levels[s.name], []).append(
            StepView(s, workflow.name, levels[s.name], _took(s.started_at, s.finished_at)))
    return [columns[k] for k in sorted(columns)]


@page_route(P, summary="Pipelines of a project, newest first", **_READ, params=ListParams)
async def pipelines(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    q = params_of(request, ListParams)
    found = await _service(request).recent(project, limit=50, cursor=q.cursor)
    rows = [(p, _took(p.started_at, p.finished_at)) for p in found.items]
    return await project_page(request, "pipelines.html", title="Pipelines", tab="pipelines",
                              crumbs=project_crumbs(project, Crumb("Pipelines")), rows=rows,
                              next_cursor=found.next_cursor)


@page_route(f"{P}/{{number}}", summary="One pipeline: workflows, steps, a step's log, artifacts", **_READ,
            params=DetailParams)
async def pipeline(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    number = path_number(request)
    q = params_of(request, DetailParams)
    service = _service(request)
    detail = await service.get(project, number)
    workflows = [(w, graph(w, detail.steps), _took(w.started_at, w.finished_at)) for w in detail.workflows]
    wf_names = {w.id: w.name for w in detail.workflows}
    chosen = _chosen(detail.steps, wf_names, q.step, q.workflow)
    lines: list[tuple[int, Any]] = []
    cut = False
    if chosen is not None:
        wanted = (q.q or "").lower()
        stored = await service.log_lines(project, number, chosen.name, workflow=wf_names[chosen.workflow_id],
                                         wait=False)
        async for n, text in stored:
            if wanted and wanted not in text.lower():
                continue
            if len(lines) >= MAX_LOG_LINES:
                cut = True
                break
            lines.append((n, ansi_html(text)))
    artifacts = await service.artifacts(project, number)
    api = f"/api/v1/projects/{project.full_name}/pipelines/{number}"
    log_url = None
    if chosen is not None:
        log_url = f"{api}/logs/{url_path(chosen.name)}?workflow={url_path(wf_names[chosen.workflow_id])}"
    return await project_page(
        request, "pipeline.html", title=f"Pipeline #{number}", tab="pipelines",
        crumbs=project_crumbs(project, Crumb("Pipelines", f"/ui/{project.full_name}/pipelines"), Crumb(f"#{number}")),
        p=detail.pipeline, took=_took(detail.pipeline.started_at, detail.pipeline.finished_at), workflows=workflows,
        chosen=chosen, chosen_workflow=wf_names.get(chosen.workflow_id) if chosen else None, lines=lines, cut=cut,
        log_url=log_url, follow=chosen is not None and not chosen.status.final and not q.q, q=q.q or "",
        artifacts=artifacts, api=api, can_run=await can(request, "pipeline:run", project),
        failed=[s for s in detail.steps if s.status in _RESTARTABLE and s.kind == StepKind.STEP],
        restartable=detail.pipeline.status.final, cancellable=not detail.pipeline.status.final)


def _chosen(steps: list[StepRun], wf_names: dict[Any, str], step: str | None,
            workflow: str | None) -> StepRun | None:
    if step:
        for s in steps:
            if s.name == step and (workflow is None or wf_names.get(s.workflow_id) == workflow):
                return s
        raise NotFound(f"this pipeline has no step {step}")
    ordered = sorted(steps, key=lambda s: (s.kind == StepKind.CLONE, s.position))
    for wanted in (_RESTARTABLE, {Status.RUNNING}):
        found = next((s for s in ordered if s.status in wanted), None)
        if found is not None:
            return found
    return next((s for s in ordered if s.started_at is not None), ordered[0] if ordered else None)


@form(f"{P}/{{number}}/cancel", summary="Cancel a pipeline", **_RUN)
async def cancel(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    found = await _service(request).cancel(actor_of(request), project, path_number(request))
    return redirect(f"/ui/{project.full_name}/pipelines/{found.number}")


@form(f"{P}/{{number}}/restart", summary="Run a pipeline again, whole or from a failed step", **_RUN)
async def restart(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    data = await form_data(request)
    found = await _service(request).restart(actor_of(request), project, path_number(request),
                                            data.get("step") or None)
    return redirect(f"/ui/{project.full_name}/pipelines/{found.number}")
