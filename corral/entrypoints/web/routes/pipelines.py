"""Pipeline routes. For now the lint call: is this pipeline file valid, and if not, every error."""

from __future__ import annotations

import asyncio
import posixpath
from typing import Any

import attrs
from aiohttp import web

from corral.core.errors import InvalidInput, PayloadTooLarge
from corral.core.pipelines.ports import MAX_FILE_BYTES, PipelineFileParser
from corral.core.pipelines.selection import Definition, SourceFile, load_definition
from corral.entrypoints.web.jsonio import json_response
from corral.entrypoints.web.keys import PLATFORM
from corral.entrypoints.web.operation import params_of, query_param
from corral.entrypoints.web.routing import RouteTable
from corral.entrypoints.web.schemas.pipelines import LintResult

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
