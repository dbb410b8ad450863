"""Pipeline routes: the lint call, and runs (list, run by hand, show, cancel, restart, step logs)."""

from __future__ import annotations

import asyncio
import posixpath
from datetime import datetime
from typing import Any

import attrs
from aiohttp import web

from corral.core.errors import InvalidInput, PayloadTooLarge
from corral.core.pagination import Page
from corral.core.pipelines.ports import MAX_FILE_BYTES, PipelineFileParser
from corral.core.pipelines.runs import Pipeline
from corral.core.pipelines.selection import Definition, SourceFile, load_definition
from corral.core.pipelines.service import PipelineDetail, PipelineService
from corral.core.projects.model import Project
from corral.entrypoints.web.jsonio import json_response
from corral.entrypoints.web.keys import PLATFORM
from corral.entrypoints.web.operation import PageParams, body_of, params_of, query_param
from corral.entrypoints.web.project_access import actor_of, project_of
from corral.entrypoints.web.routing import RouteTable
from corral.entrypoints.web.schemas.pipelines import (
    ArtifactList,
    CommitStatusOut,
    LintResult,
    PipelineDetailOut,
    PipelineOut,
)

__all__ = ["routes"]

routes = RouteTable(tag="pipelines")

_YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain")
_DEFAULT_FILE = ".woodpecker.yaml"


@attrs.frozen
class LintQuery:
    """Options of the lint call."""

    file: str | None = query_param(
        doc="the file's path in the repository, e.g. .woodpecker/build.yaml: it names the workflow and the "
            f"errors (default {_DEFAULT_FILE}); must end in .yaml or .yml")


async def _read_text(request: web.Request) -> str:
    if request.content_type not in _YAML_TYPES:
        raise InvalidInput(f"send the pipeline file as {' or '.join(_YAML_TYPES[:1] + _YAML_TYPES[-1:])} "
                           f"(got {request.content_type or 'no Content-Type'})", field="Content-Type")
    if request.content_length is not None and request.content_length > MAX_FILE_BYTES:
        raise PayloadTooLarge(f"pipeline files are limited to {MAX_FILE_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > MAX_FILE_BYTES:
            raise PayloadTooLarge(f"pipeline files are limited to {MAX_FILE_BYTES} bytes")
        chunks.append(chunk)
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"the pipeline file is not UTF-8 (byte {exc.start})", field="body") from None


def _result(definition: Definition) -> dict[str, Any]:
    workflows: dict[str, list[str]] = {}
    for w in definition.workflows:  # one entry per file, even when a matrix expands it
        workflows.setdefault(w.name, [s.name for s in w.steps])
    return {
        "valid": definition.valid,
        "errors": [{"message": e.message, "line": e.line or None, "path": e.path} for e in definition.errors],
        "workflows": [{"name": n, "steps": s} for n, s in workflows.items()],
    }


@routes.post(
    "/api/v1/pipelines/lint", summary="Check a pipeline file without running it", account=False,
    description="The body is the YAML text of one pipeline file (Woodpecker's vocabulary plus Corral's "
                "extensions). The answer is 200 whether or not the file is valid: `valid`, every error with its "
                "line and key path, and the workflows with their step names. Workflow `depends_on` naming other "
                "files is not checked (one file is linted alone). Files over 1 MiB are refused (413); documents "
                "that expand through aliases past a node budget or nest too deeply are invalid.",
    params=LintQuery, request_body={"type": "string", "description": "the pipeline file (YAML)"},
    request_content_types=("application/yaml", "text/plain"), response=LintResult)
async def lint_pipeline(request: web.Request) -> web.StreamResponse:
    query = params_of(request, LintQuery)
    file = query.file or _DEFAULT_FILE
    if (not file.endswith((".yaml", ".yml")) or file.startswith("/") or ".." in file.split("/")
            or len(file) > 255 or posixpath.normpath(file) != file):
        raise InvalidInput("file must be a relative path ending in .yaml or .yml", field="file")
    text = await _read_text(request)
    parser: PipelineFileParser = request.app[PLATFORM].resolve(PipelineFileParser)
    definition = await asyncio.to_thread(
        load_definition, [SourceFile(file, text)], parser, check_workflow_dependencies=False)
    return json_response(_result(definition))


# ---- runs -------------------------------------------------------------------------------------------------
BASE = "/api/v1/projects/{owner}/{name}/pipelines"
_READ: dict[str, Any] = {"permission": "pipeline:read", "project": "path", "anonymous": True}
_RUN: dict[str, Any] = {"permission": "pipeline:run", "project": "path"}


@attrs.frozen(kw_only=True)
class NewPipeline:
    """Run the pipeline of a ref by hand (event ``manual``)."""

    ref: str = attrs.field(default="", metadata={"doc": "branch, tag or commit (default: the default branch)"})
    variables: dict[str, str] = attrs.field(factory=dict, metadata={
        "doc": "extra environment variables of every step (names: letters, digits, _; not CI_* or CORRAL_*)"})


@attrs.frozen(kw_only=True)
class RestartPipeline:
    """Run a pipeline again: all of it, or from one failed step on."""

    step: str | None = attrs.field(default=None, metadata={
        "doc": "a failed step: it and the steps depending on it run again on the workspace the run left; "
               "null: the whole pipeline"})


@attrs.frozen
class LogQuery:
    """Which step's log."""

    workflow: str | None = query_param(doc="the workflow, when several workflows have a step of this name")


def _service(request: web.Request) -> PipelineService:
    found: PipelineService = request.app[PLATFORM].resolve(PipelineService)
    return found


def _number(request: web.Request) -> int:
    try:
        value = int(request.match_info["number"])
    except ValueError:
        raise InvalidInput("number must be an integer", field="number") from None
    if value < 1 or value > 2**31 - 1:
        raise InvalidInput("number must be a positive integer", field="number")
    return value


def _ts(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _pipeline_json(p: Pipeline) -> dict[str, Any]:
    return {"number": p.number, "status": p.status.value, "event": p.event, "ref": p.ref,
            "commit_sha": p.commit_sha, "created_at": _ts(p.created_at), "started_at": _ts(p.started_at),
            "finished_at": _ts(p.finished_at), "parent": p.parent_number}


def _detail_json(d: PipelineDetail) -> dict[str, Any]:
    return {
        **_pipeline_json(d.pipeline), "branch": d.pipeline.branch,
        "triggered_by": d.pipeline.triggered_by_name or None, "errors": list(d.pipeline.errors),
        "workflows": [{"name": w.name, "status": w.status.value, "error": w.error, "steps": [
            {"name": s.name, "status": s.status.value, "exit_code": s.exit_code, "started_at": _ts(s.started_at),
             "finished_at": _ts(s.finished_at)} for s in d.steps if s.workflow_id == w.id]} for w in d.workflows],
    }


async def _detail(request: web.Request, project: Project, number: int, status: int = 200) -> web.StreamResponse:
    return json_response(_detail_json(await _service(request).get(project, number)), status=status)


@routes.get(BASE, summary="Pipelines of a project, newest first", **_READ, params=PageParams,
            response=Page[PipelineOut])
async def list_pipelines(request: web.Request) -> web.StreamResponse:
    q = params_of(request, PageParams)
    page = await _service(request).recent(await project_of(request), limit=q.limit, cursor=q.cursor)
    return json_response({"items": [_pipeline_json(p) for p in page.items], "next_cursor": page.next_cursor})


@routes.post(BASE, summary="Run a pipeline by hand", **_RUN, params=None, body=NewPipeline,
             response=PipelineDetailOut, status=201,
             description="Runs the pipeline files of `ref` (event `manual`) with `variables` in every step's "
                         "environment. 400 when the ref does not exist; 404 when it has no pipeline file.")
async def create_pipeline(request: web.Request) -> web.StreamResponse:
    body = body_of(request, NewPipeline)
    project = await project_of(request)
    pipeline = await _service(request).run(actor_of(request), project, body.ref, body.variables)
    return await _detail(request, project, pipeline.number, 201)


@routes.get(f"{BASE}/{{number}}", summary="One pipeline with its workflows and steps", **_READ, params=None,
            response=PipelineDetailOut)
async def get_pipeline(request: web.Request) -> web.StreamResponse:
    return await _detail(request, await project_of(request), _number(request))


@routes.post(f"{BASE}/{{number}}/cancel", summary="Cancel a pipeline: everything it runs is stopped at once",
             **_RUN, params=None, response=PipelineDetailOut)
async def cancel_pipeline(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    pipeline = await _service(request).cancel(actor_of(request), project, _number(request))
    return await _detail(request, project, pipeline.number)


@routes.post(f"{BASE}/{{number}}/restart", summary="Run a pipeline again, whole or from a failed step",
             **_RUN, params=None, body=RestartPipeline, response=PipelineDetailOut, status=201,
             description="A new pipeline whose `parent` is this one. With `step`, that failed step and what "
                         "depends on it run again on the workspace the old run left (no new clone); steps that "
                         "ended before are kept, not run again. 409 when the step did not fail or its workspace "
                         "is gone (workspaces are deleted when a workflow succeeds).")
async def restart_pipeline(request: web.Request) -> web.StreamResponse:
    body = body_of(request, RestartPipeline)
    project = await project_of(request)
    pipeline = await _service(request).restart(actor_of(request), project, _number(request), body.step)
    return await _detail(request, project, pipeline.number, 201)


_KEEPALIVE_SECONDS = 15.0


@routes.get(f"{BASE}/{{number}}/logs/{{step}}", summary="The masked log of a step (live with SSE)", **_READ,
            params=LogQuery, content_type="text/plain",
            response={"type": "string", "description": "the log lines (text/plain), or an SSE stream"},
            description="`text/plain`: the log so far (secrets masked). With `Accept: text/event-stream`: the live "
                        "stream, one event per line (`id:` is the line number; `Last-Event-ID` resumes after it), "
                        "comments as keep-alives, and `event: eof` once the step's log is complete.")
async def step_log(request: web.Request) -> web.StreamResponse:
    q = params_of(request, LogQuery)
    project = await project_of(request)
    sse = "text/event-stream" in request.headers.get("Accept", "")
    after = 0
    if sse and request.headers.get("Last-Event-ID", "").strip().isdigit():
        after = int(request.headers["Last-Event-ID"].strip())
    lines = await _service(request).log_lines(project, _number(request), request.match_info["step"], after=after,
                                              workflow=q.workflow, wait=sse)
    if not sse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
        await response.prepare(request)
        batch: list[str] = []
        async for _, text in lines:
            batch.append(text + "\n")
            if len(batch) >= 1000:
                await response.write("".join(batch).encode())
                batch.clear()
        if batch:
            await response.write("".join(batch).encode())
        await response.write_eof()
        return response
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                           "X-Accel-Buffering": "no"})
    await response.prepare(request)
    iterator = aiter(lines)
    pending: asyncio.Task[tuple[int, str]] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(iterator))
            done, _ = await asyncio.wait({pending}, timeout=_KEEPALIVE_SECONDS)
            if not done:
                await response.write(b": keep-alive\n\n")
                continue
            try:
                n, text = pending.result()
            except StopAsyncIteration:
                break
            finally:
                if pending.done():
                    pending = None
            await response.write(f"id: {n}\ndata: {text}\n\n".encode())
        await response.write(b"event: eof\ndata: \n\n")
    finally:
        if pending is not None:
            pending.cancel()
    await response.write_eof()
    return response


# ---- artifacts --------------------------------------------------------------------------------------------
_BINARY: dict[str, Any] = {"type": "string", "format": "binary"}


@routes.get(f"{BASE}/{{number}}/artifacts", summary="The files the steps of a pipeline uploaded", **_READ,
            params=None, response=ArtifactList,
            description="Steps with `artifacts: {paths, expire_in}` upload each matching file after they ran "
                        "(whether they succeeded or failed); `name` is the file's path in the workspace. Expired "
                        "artifacts are deleted.")
async def list_artifacts(request: web.Request) -> web.StreamResponse:
    found = await _service(request).artifacts(await project_of(request), _number(request))
    return json_response({"items": [{"name": a.name, "size": a.size, "step": a.step,
                                     "expires_at": _ts(a.expires_at)} for a in found]})


@routes.get(f"{BASE}/{{number}}/artifacts/{{artifact:.+}}", summary="Download an artifact of a pipeline", **_READ,
            params=None, response=_BINARY, content_type="application/octet-stream",
            description="The bytes of the artifact named by its path (e.g. `dist/app.tar.gz`); 404 when there is "
                        "none of that name or it expired.")
async def get_artifact(request: web.Request) -> web.StreamResponse:
    name = request.match_info["artifact"]
    artifact, chunks = await _service(request).artifact(await project_of(request), _number(request), name)
    filename = posixpath.basename(artifact.name).replace('"', "")
    response = web.StreamResponse(headers={
        "Content-Type": "application/octet-stream", "Cache-Control": "private, no-store",
        "Content-Disposition": f'attachment; filename="{filename}"'})
    response.content_length = artifact.size
    await response.prepare(request)
    async for chunk in chunks:
        await response.write(chunk)
    await response.write_eof()
    return response


@routes.get("/api/v1/projects/{owner}/{name}/commits/{sha}/status", summary="The pipeline status of a commit",
            **_READ, params=None, response=CommitStatusOut,
            description="`sha` may also be a branch or a tag. `state` is the status of the commit's newest pipeline "
                        "(`none` when no pipeline ran for it); `pipelines` lists its newest pipelines with their "
                        "workflows (what branch protection's `required_checks` name).")
async def commit_status(request: web.Request) -> web.StreamResponse:
    sha, runs = await _service(request).commit_status(await project_of(request), request.match_info["sha"])
    return json_response({
        "sha": sha, "state": runs[0][0].status.value if runs else "none",
        "pipelines": [{"number": p.number, "status": p.status.value, "event": p.event, "ref": p.ref,
                       "workflows": [{"name": w.name, "status": w.status.value} for w in workflows]}
                      for p, workflows in runs]})
