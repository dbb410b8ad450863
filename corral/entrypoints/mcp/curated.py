"""Curated tools: one call where an agent would otherwise need several, each step still an operation called
through its own route (same checks, same audit)."""

from __future__ import annotations

from typing import Any

import attrs

from corral.entrypoints.mcp.dispatch import Answer, Caller, ToolInputError
from corral.entrypoints.mcp.tools import CuratedTool
from corral.entrypoints.web.routing import RouteSpec

__all__ = ["CURATED", "Outcome", "ToolContext", "problem_text"]


@attrs.frozen
class Outcome:
    """A tool's result: ``data`` (JSON) when it worked, else ``error`` (the text the agent reads)."""

    data: Any = None
    error: str | None = None


@attrs.define
class ToolContext:
    """What a curated tool calls operations with."""

    caller: Caller
    specs: dict[str, RouteSpec]  # operation id → route

    async def call(self, operation_id: str, arguments: dict[str, Any]) -> Answer:
        return await self.caller.call(self.specs[operation_id], arguments)


def problem_text(answer: Answer) -> str:
    """The text of an error answer: status, title and detail of its problem+json (the field when named)."""
    try:
        problem = answer.json()
    except ValueError:
        problem = None
    if not isinstance(problem, dict):
        text = answer.body.decode(errors="replace")[:2000]
        return f"HTTP {answer.status}: {text or 'error'}"
    text = f"HTTP {answer.status} {problem.get('title', '')}: {problem.get('detail', '')}".replace(" :", ":")
    if problem.get("field"):
        text += f" (field: {problem['field']})"
    return text


def _project(arguments: dict[str, Any]) -> tuple[str, str]:
    project = arguments.get("project")
    if not isinstance(project, str) or project.count("/") != 1 or not all(project.split("/")):
        raise ToolInputError("argument 'project' must be owner/name")
    owner, name = project.split("/")
    return owner, name


def _only(arguments: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(arguments) - allowed)
    if unknown:
        raise ToolInputError(f"unknown argument {unknown[0]!r}; this tool takes: {', '.join(sorted(allowed))}")


async def read_file(ctx: ToolContext, arguments: dict[str, Any]) -> Outcome:
    """A file's content at a ref (default: the project's default branch), or a directory's entries."""
    _only(arguments, {"project", "path", "ref"})
    owner, name = _project(arguments)
    path = arguments.get("path", "")
    ref = arguments.get("ref")
    if not isinstance(path, str) or (ref is not None and (not isinstance(ref, str) or not ref)):
        raise ToolInputError("arguments 'path' and 'ref' must be strings")
    path = path.strip("/")
    where = {"owner": owner, "name": name}
    if ref is None:
        project = await ctx.call("get_project", where)
        if not project.ok:
            return Outcome(error=problem_text(project))
        ref = str(project.json()["default_branch"])
    base = {"project": f"{owner}/{name}", "ref": ref, "path": path}
    failed: Answer | None = None
    if path:
        blob = await ctx.call("blob", {**where, "ref": ref, "path": path})
        if blob.ok:
            got = blob.json()
            return Outcome({**base, "type": "file", "encoding": got["encoding"], "content": got["content"],
                            "size": got["size"], "sha": got["sha"], "truncated": got["truncated"]})
        if blob.status not in (400, 404, 422):
            return Outcome(error=problem_text(blob))
        failed = blob
    tree = await ctx.call("tree", {**where, "ref": ref, "path": path}) if path else \
        await ctx.call("tree_root", {**where, "ref": ref})
    if not tree.ok:
        return Outcome(error=problem_text(failed or tree))
    entries = [{"name": e["name"], "path": e["path"], "type": e["type"], "size": e["size"]}
               for e in tree.json()["items"]]
    return Outcome({**base, "type": "directory", "entries": entries})


async def session_timeline(ctx: ToolContext, arguments: dict[str, Any]) -> Outcome:
    """Every log record and span of an agent session, oldest first, with a summary (counts, errors, span)."""
    _only(arguments, {"session_id", "project", "limit"})
    session_id = arguments.get("session_id")
    if not isinstance(session_id, str) or not session_id:
        raise ToolInputError("argument 'session_id' is required")
    query = {k: arguments[k] for k in ("project", "limit") if arguments.get(k) is not None}
    answer = await ctx.call("session_timeline", {"session_id": session_id, **query})
    if not answer.ok:
        return Outcome(error=problem_text(answer))
    items = answer.json().get("items", [])
    logs = [i for i in items if i.get("type") == "log"]
    errors = [i for i in logs if str(i.get("level", "")).lower() in ("error", "fatal", "critical")]
    times = [str(i["timestamp"]) for i in items if i.get("timestamp")]
    summary = {"logs": len(logs), "spans": len(items) - len(logs), "errors": len(errors),
               "first": min(times) if times else None, "last": max(times) if times else None,
               "trace_ids": sorted({str(i["trace_id"]) for i in items if i.get("trace_id")})}
    return Outcome({"session_id": session_id, "summary": summary, "errors": errors, "items": items})


_PROJECT = {"type": "string", "description": "the project as owner/name"}

CURATED: list[CuratedTool] = [
    CuratedTool(
        name="read_file",
        title="Read a file (or list a directory) at a ref",
        description="The content of a file of a project's repository at a ref (branch, tag or commit; default: "
                    "the default branch), as utf-8 text or base64; when the path is a directory, its entries. "
                    "One call instead of get_project + get_file + list_directory.",
        input_schema={"type": "object", "additionalProperties": False, "required": ["project", "path"],
                      "properties": {"project": _PROJECT,
                                     "path": {"type": "string", "description": "file or directory path ('' = root)"},
                                     "ref": {"type": "string", "description": "branch, tag or commit sha"}}},
        output_schema={"type": "object", "required": ["project", "ref", "path", "type"], "properties": {
            "project": {"type": "string"}, "ref": {"type": "string"}, "path": {"type": "string"},
            "type": {"enum": ["file", "directory"]}, "encoding": {"enum": ["utf-8", "base64"]},
            "content": {"type": "string"}, "size": {"type": "integer"}, "sha": {"type": "string"},
            "truncated": {"type": "boolean"},
            "entries": {"type": "array", "items": {"type": "object"}}}},
        needs=("get_project", "blob", "tree", "tree_root"),
        call=read_file,
    ),
    CuratedTool(
        name="get_session_timeline",
        title="An agent session's timeline",
        description="Every log record and span of an agent session (its session_id), oldest first, with a summary "
                    "(counts, time span, trace ids) and its error records pulled out.",
        input_schema={"type": "object", "additionalProperties": False, "required": ["session_id"],
                      "properties": {"session_id": {"type": "string"},
                                     "project": {"type": "string", "description": "owner/name or project id"},
                                     "limit": {"type": "integer", "minimum": 1, "maximum": 10000,
                                               "description": "records per kind (default 1000)"}}},
        output_schema={"type": "object", "required": ["session_id", "summary", "errors", "items"], "properties": {
            "session_id": {"type": "string"}, "summary": {"type": "object"},
            "errors": {"type": "array", "items": {"type": "object"}},
            "items": {"type": "array", "items": {"type": "object"}}}},
        needs=("session_timeline",),
        replaces=("session_timeline",),
        call=session_timeline,
    ),
]
