"""Agent session pages: the sessions of the projects one may read, a new-session form on a project (prompt, the
permissions to delegate among those the user holds there, limits), one session with its milestones, the
conversation (tool calls folded), cost and turns, a follow-up message and a stop button (agent:run), links to
its branch, merge request and telemetry; live by the API's SSE stream (ui.js). The same AgentService as the API."""

from __future__ import annotations

import json
from typing import Any

import attrs
from aiohttp import web

from corral.core.agents.commands import AgentMessage, NewAgentSession
from corral.core.agents.model import AgentEvent
from corral.core.errors import CorralError, InvalidInput
from corral.core.identity.catalogue import PERMISSIONS
from corral.entrypoints.web.keys import WEB_AUTH, principal_of, require_principal
from corral.entrypoints.web.project_access import can, project_of
from corral.entrypoints.web.routes.agents import _project_name, _service, _session
from corral.entrypoints.web.ui.dashboard import readable_projects
from corral.entrypoints.web.ui.pages import Crumb, form_data, page, redirect
from corral.entrypoints.web.ui.projects import project_crumbs, project_page
from corral.entrypoints.web.ui.table import form
from corral.entrypoints.web.ui.table import page as page_route

__all__ = ["Turn", "conversation"]

ONE = "/ui/agent-sessions/{id}"
_DEFAULT_DELEGATED = ("project:read", "project:write")


@attrs.frozen
class Turn:
    """One entry of the conversation as shown: kind is text, tool, milestone, status, message, result or other."""

    id: int
    kind: str
    role: str
    content: str
    title: str = ""
    detail: str = ""
    error: bool = False


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=1, sort_keys=True, default=str)


def conversation(events: list[AgentEvent]) -> tuple[list[Turn], list[AgentEvent]]:
    """The events as turns (a tool call with its result folded into one), and the milestones."""
    turns: list[Turn] = []
    tools: dict[str, int] = {}
    milestones = [e for e in events if e.type == "milestone"]
    for e in events:
        if e.type == "tool_use":
            tools[str(e.metadata.get("tool_use_id"))] = len(turns)
            name = str(e.metadata.get("name") or "tool")
            turns.append(Turn(e.id, "tool", e.role.value, e.content, title=name,
                              detail=_pretty(e.metadata.get("input", e.content))))
        elif e.type == "tool_result":
            at = tools.get(str(e.metadata.get("tool_use_id")))
            error = bool(e.metadata.get("is_error"))
            if at is not None:
                t = turns[at]
                turns[at] = attrs.evolve(t, content=e.content, error=error)
            else:
                turns.append(Turn(e.id, "tool", e.role.value, e.content, title="tool result", error=error))
        elif e.type in ("text", "output", "message", "result", "milestone", "status"):
            turns.append(Turn(e.id, "text" if e.type == "output" else e.type, e.role.value, e.content,
                              error=bool(e.metadata.get("is_error"))))
        elif e.type != "system":
            turns.append(Turn(e.id, "other", e.role.value, e.content, title=e.type))
    return turns, milestones


@page_route("/ui/agent-sessions", summary="Agent sessions of the projects you may read, newest first",
            account=False)
async def sessions(request: web.Request) -> web.StreamResponse:
    service = _service(request)
    rows: list[tuple[str, Any]] = []
    for project in await readable_projects(request, limit=50):
        found = await service.recent(project, limit=20, cursor=None)
        rows += [(project.full_name, s) for s in found.items]
    rows.sort(key=lambda r: r[1].created_at, reverse=True)
    return await page(request, "agent_sessions.html", title="Agent sessions", crumbs=[Crumb("Agent sessions")],
                      rows=rows[:100])


@page_route(ONE, summary="One agent session: milestones, conversation, cost, follow-up, stop", account=False)
async def session(request: web.Request) -> web.StreamResponse:
    s = await _session(request, "project:read")
    project = await _project_name(request, s)
    events = await _service(request).events(s.id, limit=500)
    turns, milestones = conversation(events)
    principal = principal_of(request)
    try:
        await request.app[WEB_AUTH].authorize(request, principal, "agent:run", s.project_id)
        can_run = True
    except CorralError:
        can_run = False
    return await page(request, "agent_session.html", title=f"Agent session {str(s.id)[:8]}",
                      crumbs=[Crumb("Agent sessions", "/ui/agent-sessions"), Crumb(str(s.id)[:8])],
                      s=s, project=project, turns=turns, milestones=milestones, can_run=can_run,
                      last_event=events[-1].id if events else 0)


@form(f"{ONE}/messages", summary="Send an agent session a follow-up message", account=True)
async def message(request: web.Request) -> web.StreamResponse:
    s = await _session(request, "agent:run")
    data = await form_data(request)
    content = AgentMessage(content=data.get("content", ""))
    await _service(request).send_message(require_principal(request), s.id, content)
    return redirect(f"/ui/agent-sessions/{s.id}")


@form(f"{ONE}/stop", summary="Stop an agent session", account=True)
async def stop(request: web.Request) -> web.StreamResponse:
    s = await _session(request, "agent:run")
    await _service(request).stop(require_principal(request), s.id)
    return redirect(f"/ui/agent-sessions/{s.id}")


P = "/ui/{owner}/{name}/agent-sessions"


async def _delegable(request: web.Request) -> list[tuple[str, str]]:
    project = await project_of(request)
    return [(name, doc) for name, doc in sorted(PERMISSIONS.items()) if await can(request, name, project)]


@page_route(f"{P}/new", summary="Start an agent session: prompt, permissions to delegate, limits",
            permission="agent:run", project="path")
async def new_session(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    return await project_page(request, "agent_session_new.html", title="New agent session", tab="agents",
                              crumbs=project_crumbs(project, Crumb("New agent session")),
                              delegable=await _delegable(request), checked=_DEFAULT_DELEGATED,
                              defaults=NewAgentSession(prompt=""))


def _number(data: Any, field: str, kind: type) -> Any:
    raw = (data.get(field) or "").strip()
    if not raw:
        return None
    try:
        return kind(raw)
    except ValueError:
        raise InvalidInput(f"{field} must be a number", field=field) from None


@form(P, summary="Start an agent session from the form", permission="agent:run", project="path")
async def create(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    data = await form_data(request)
    limits = {k: v for k, v in (("max_turns", _number(data, "max_turns", int)),
                                ("max_cost_usd", _number(data, "max_cost_usd", float)),
                                ("timeout_seconds", _number(data, "timeout_seconds", int))) if v is not None}
    command = NewAgentSession(prompt=data.get("prompt", ""), permissions=data.getall("permissions", []),
                              branch=(data.get("branch") or "").strip() or None,
                              open_merge_request=data.get("open_merge_request") == "on", **limits)
    created = await _service(request).create(require_principal(request), project, command)
    return redirect(f"/ui/agent-sessions/{created.id}")
