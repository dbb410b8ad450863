"""Agent session routes: start and list in a project; show, events, live stream, messages, interrupt, stop."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime
from typing import Any

import attrs
from aiohttp import WSMsgType, web

from corral.core.agents.commands import AgentMessage, NewAgentSession
from corral.core.agents.model import AgentEvent, AgentSession
from corral.core.agents.service import AgentService
from corral.core.errors import InvalidInput, NotFound, PermissionDenied, Unauthenticated
from corral.core.pagination import Page
from corral.entrypoints.web.jsonio import json_response
from corral.entrypoints.web.keys import PLATFORM, WEB_AUTH, principal_of
from corral.entrypoints.web.operation import PageParams, body_of, params_of, query_param
from corral.entrypoints.web.project_access import project_of
from corral.entrypoints.web.routing import RouteTable
from corral.entrypoints.web.schemas.agents import AgentEventList, AgentSessionCreated, AgentSessionOut

__all__ = ["routes"]

routes = RouteTable(tag="agents")

BASE = "/api/v1/projects/{owner}/{name}/agent-sessions"
ONE = "/api/v1/agent-sessions/{id}"
_KEEPALIVE_SECONDS = 15.0
_POLL_SECONDS = 2.0  # viewers on another replica than the runner see new events within this


@attrs.frozen
class EventsQuery:
    """Which events."""

    after: int | None = query_param(doc="only events with a greater id (0 or omitted: from the first)", minimum=0)
    limit: int | None = query_param(doc="at most this many (1-500, default 500)", minimum=1, maximum=500)


@attrs.frozen
class StreamQuery:
    """Where a live view starts."""

    after: int | None = query_param(doc="resume after this event id (the Last-Event-ID header does the same)",
                                    minimum=0)


def _service(request: web.Request) -> AgentService:
    found: AgentService | None = request.app[PLATFORM].resolve_optional(AgentService)
    if found is None:
        raise NotFound("agent sessions are not available on this server (no workload executor)")
    return found


def _ts(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _session_json(s: AgentSession, project: str | None) -> dict[str, Any]:
    return {"id": str(s.id), "status": s.status.value, "project": project, "prompt": s.prompt, "branch": s.branch,
            "agent_user": s.agent_user_name, "cost_usd": s.cost_usd, "turns": s.turns,
            "created_at": _ts(s.created_at), "finished_at": _ts(s.finished_at), "merge_request": s.merge_request,
            "error": s.error, "requester": s.requester_name, "provider": s.provider,
            "permissions": list(s.permissions), "expires_at": _ts(s.expires_at), "started_at": _ts(s.started_at),
            "duration_ms": s.duration_ms}


def _event_json(e: AgentEvent) -> dict[str, Any]:
    return {"id": e.id, "type": e.type, "role": e.role.value, "content": e.content, "metadata": e.metadata,
            "created_at": _ts(e.created_at)}


def _principal(request: web.Request) -> Any:
    principal = principal_of(request)
    if principal is None:
        raise Unauthenticated("authentication required")
    return principal


async def _project_name(request: web.Request, session: AgentSession) -> str | None:
    async with request.app[PLATFORM].uow_factory() as uow:
        project = await uow.projects.get(session.project_id)
    return project.full_name if project is not None else None


async def _session(request: web.Request, permission: str) -> AgentSession:
    """The session of the path, when the caller holds ``permission`` in its project (else 404: a session of a
    project one cannot see does not exist for them)."""
    principal = principal_of(request)
    if principal is None:
        raise Unauthenticated("authentication required")
    try:
        session_id = uuid.UUID(request.match_info["id"])
    except ValueError:
        raise NotFound("no such agent session") from None
    session = await _service(request).get(session_id)
    auth = request.app[WEB_AUTH]
    try:
        await auth.authorize(request, principal, "project:read", session.project_id)
    except PermissionDenied:
        raise NotFound(f"no agent session {session_id}") from None
    if permission != "project:read":
        await auth.authorize(request, principal, permission, session.project_id)
    return session


@routes.post(BASE, summary="Start an agent session in a project", permission="agent:run", project="path",
             params=None, body=NewAgentSession, response=AgentSessionCreated, status=201,
             description="Creates the session's agent user (role agent), delegates `permissions` to it in this "
                         "project only (each must be one you hold here: else 403 and nothing is made), expiring "
                         "after `timeout_seconds`, issues it a token restricted to the project, and starts the "
                         "provider on a clone of the project on `branch` (default `agent/<short id>`). "
                         "Follow it with the events or the live stream.")
async def create_session(request: web.Request) -> web.StreamResponse:
    body = body_of(request, NewAgentSession)
    project = await project_of(request)
    principal = principal_of(request)
    if principal is None:
        raise Unauthenticated("authentication required")
    session = await _service(request).create(principal, project, body)
    return json_response({"id": str(session.id), "status": session.status.value, "branch": session.branch,
                          "agent_user": session.agent_user_name, "expires_at": _ts(session.expires_at)}, status=201)


@routes.get(BASE, summary="Agent sessions of a project, newest first", permission="project:read", project="path",
            params=PageParams, response=Page[AgentSessionOut])
async def list_sessions(request: web.Request) -> web.StreamResponse:
    q = params_of(request, PageParams)
    project = await project_of(request)
    page = await _service(request).recent(project, limit=q.limit, cursor=q.cursor)
    return json_response({"items": [_session_json(s, project.full_name) for s in page.items],
                          "next_cursor": page.next_cursor})


@routes.get(ONE, summary="One agent session", account=False, params=None, response=AgentSessionOut,
            description="Needs project:read in the session's project (else 404).")
async def get_session(request: web.Request) -> web.StreamResponse:
    session = await _session(request, "project:read")
    return json_response(_session_json(session, await _project_name(request, session)))


@routes.get(f"{ONE}/events", summary="The stored events of an agent session", account=False, params=EventsQuery,
            response=AgentEventList,
            description="Every message, tool call, tool result, milestone and status change, in order; they stay "
                        "queryable after the session ends. Needs project:read in the session's project.")
async def session_events(request: web.Request) -> web.StreamResponse:
    q = params_of(request, EventsQuery)
    session = await _session(request, "project:read")
    events = await _service(request).events(session.id, after=q.after or 0, limit=q.limit or 500)
    return json_response({"items": [_event_json(e) for e in events]})


def _resume_point(request: web.Request, after: int | None) -> int:
    header = request.headers.get("Last-Event-ID", "").strip()
    if header:
        if not header.isdigit():
            raise InvalidInput("Last-Event-ID must be an event id", field="Last-Event-ID")
        return int(header)
    return after or 0


async def _follow(service: AgentService, session_id: uuid.UUID, after: int) -> Any:
    """Yields batches of events after ``after`` until the session has finished and everything was yielded;
    an empty batch now and then (for keep-alives)."""
    last = after
    waited = 0.0
    while True:
        batch = await service.wait_events(session_id, after=last, timeout=_POLL_SECONDS)
        if batch:
            last = batch[-1].id
            waited = 0.0
            yield batch
            continue
        session = await service.get(session_id)
        if session.status.finished:
            tail = await service.events(session_id, after=last)
            if tail:
                last = tail[-1].id
                yield tail
                continue
            return
        waited += _POLL_SECONDS
        if waited >= _KEEPALIVE_SECONDS:
            waited = 0.0
            yield []


@routes.get(f"{ONE}/stream", summary="The live view of an agent session (WebSocket, or SSE)", account=False,
            params=StreamQuery, content_type="text/event-stream",
            response={"type": "string", "description": "an SSE stream, or WebSocket messages"},
            description="With `Accept: text/event-stream`: Server-Sent Events, one per event (`id:` the event id, "
                        "`event:` its type, `data:` the event as JSON); `Last-Event-ID` (or `after`) resumes after "
                        "an id; comments as keep-alives; `event: end` once the session has finished and every event "
                        "was sent. Otherwise a WebSocket upgrade: one JSON text message per event, then "
                        "`{\"type\": \"end\"}` and close. Needs project:read in the session's project.")
async def session_stream(request: web.Request) -> web.StreamResponse:
    q = params_of(request, StreamQuery)
    session = await _session(request, "project:read")
    service = _service(request)
    after = _resume_point(request, q.after)
    if "text/event-stream" not in request.headers.get("Accept", "") and \
            request.headers.get("Upgrade", "").lower() == "websocket":
        return await _websocket(request, service, session.id, after)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                           "X-Accel-Buffering": "no"})
    await response.prepare(request)
    async for batch in _follow(service, session.id, after):
        if not batch:
            await response.write(b": keep-alive\n\n")
            continue
        await response.write("".join(
            f"id: {e.id}\nevent: {e.type}\ndata: {json.dumps(_event_json(e), ensure_ascii=False)}\n\n"
            for e in batch).encode())
    await response.write(b"event: end\ndata: {}\n\n")
    await response.write_eof()
    return response


async def _websocket(request: web.Request, service: AgentService, session_id: uuid.UUID,
                     after: int) -> web.StreamResponse:
    ws = web.WebSocketResponse(heartbeat=_KEEPALIVE_SECONDS)
    await ws.prepare(request)

    async def drain() -> None:  # the client sends nothing we need; read so pings and close are handled
        async for message in ws:
            if message.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                return

    reader = asyncio.ensure_future(drain())
    try:
        async for batch in _follow(service, session_id, after):
            if ws.closed:
                return ws
            for e in batch:
                await ws.send_str(json.dumps(_event_json(e), ensure_ascii=False))
        await ws.send_str(json.dumps({"type": "end"}))
        await ws.close()
    finally:
        reader.cancel()
    return ws


@routes.post(f"{ONE}/messages", summary="Send an agent session a message", account=False, params=None,
             body=AgentMessage, response=AgentSessionCreated, status=202,
             description="To a running session: a follow-up on the provider's input. To a finished one: a resume "
                         "(the provider's --resume) under a new delegation and token. Needs agent:run in the "
                         "session's project.")
async def send_message(request: web.Request) -> web.StreamResponse:
    body = body_of(request, AgentMessage)
    session = await _session(request, "agent:run")
    updated = await _service(request).send_message(_principal(request), session.id, body)
    return json_response({"id": str(updated.id), "status": updated.status.value, "branch": updated.branch,
                          "agent_user": updated.agent_user_name, "expires_at": _ts(updated.expires_at)}, status=202)


@routes.post(f"{ONE}/interrupt", summary="Interrupt an agent's current turn", account=False, params=None,
             response=AgentSessionCreated, status=202,
             description="Sends the provider its interrupt (the session keeps running and takes messages). 409 "
                         "when it is not running here. Needs agent:run in the session's project.")
async def interrupt_session(request: web.Request) -> web.StreamResponse:
    session = await _session(request, "agent:run")
    updated = await _service(request).interrupt(_principal(request), session.id)
    return json_response({"id": str(updated.id), "status": updated.status.value, "branch": updated.branch,
                          "agent_user": updated.agent_user_name, "expires_at": _ts(updated.expires_at)}, status=202)


@routes.post(f"{ONE}/stop", summary="Stop an agent session", account=False, params=None, response=AgentSessionOut,
             description="Ends the provider's process; when this answers, the session is `stopped` and its "
                         "delegation and token are dead. A finished session is returned unchanged. Needs agent:run "
                         "in the session's project.")
async def stop_session(request: web.Request) -> web.StreamResponse:
    session = await _session(request, "agent:run")
    stopped = await _service(request).stop(_principal(request), session.id)
    return json_response(_session_json(stopped, await _project_name(request, stopped)))
