"""Query API over both telemetry tiers, the live tail, and the alert rules.

Reading needs ``observe:read`` on ``?project=owner/name`` (without it: on the whole
platform). Alert rules need ``alert:manage`` on their project to change them.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any, Literal

from aiohttp import WSMsgType, web

from corral.core.errors import NotFound
from corral.core.observe.alerts import Actor
from corral.core.observe.commands import AlertRuleChanges, NewAlertRule
from corral.core.observe.model import AlertRule, LogItem, SpanItem
from corral.core.observe.query import WaterfallSpan
from corral.core.pagination import Page, clamp_limit
from corral.entrypoints.observe_runtime import ObserveRuntime
from corral.entrypoints.web.forwarded import client_ip
from corral.entrypoints.web.jsonio import json_response
from corral.entrypoints.web.keys import (
    PLATFORM,
    PROJECT_LOOKUP,
    WEB_AUTH,
    principal_of,
    project_id_of,
    require_principal,
)
from corral.entrypoints.web.operation import body_of, params_of
from corral.entrypoints.web.routing import RouteTable
from corral.entrypoints.web.schemas.observe import (
    AlertEventOut,
    AlertEventParams,
    AlertRuleCreate,
    AlertRuleOut,
    CompactionOut,
    LogParams,
    LogRecordOut,
    MetricParams,
    MetricSeriesOut,
    MetricsOut,
    ProjectParams,
    RotateParams,
    RotationOut,
    SessionTimelineOut,
    TailParams,
    TimelineLogOut,
    TimelineMessageOut,
    TimelineParams,
    TimelineSpanOut,
    TraceOut,
    duration,
    trace_id_of,
)

__all__ = ["routes"]

routes = RouteTable(tag="observe")

_READ: dict[str, Any] = {"permission": "observe:read", "project": "query"}


def runtime(request: web.Request) -> ObserveRuntime:
    rt: ObserveRuntime = request.app[PLATFORM].resolve(ObserveRuntime)
    return rt


def _projects(request: web.Request) -> tuple[uuid.UUID, ...] | None:
    pid = project_id_of(request)
    if pid is not None:
        return (pid,)
    restricted = getattr(principal_of(request), "token_project_id", None)
    return (restricted,) if restricted else None


async def _path(rt: ObserveRuntime, project_id: uuid.UUID | None) -> str | None:
    return await rt.directory.path_of(project_id) if project_id else None


async def _log_fields(rt: ObserveRuntime, item: LogItem) -> dict[str, Any]:
    return {
        "timestamp": item.timestamp, "level": item.level, "message": item.message, "service": item.service,
        "trace_id": item.trace_id, "span_id": item.span_id, "session_id": item.session_id,
        "project": await _path(rt, item.project_id), "attributes": item.attributes,
    }


def _span_fields(s: SpanItem) -> dict[str, Any]:
    return {
        "trace_id": s.trace_id, "span_id": s.span_id, "parent_span_id": s.parent_span_id, "name": s.name,
        "service": s.service, "kind": s.kind, "status": s.status, "start": s.start, "duration_ms": s.duration_ms,
        "session_id": s.session_id, "attributes": s.attributes, "events": s.events,
    }


def waterfall_json(w: WaterfallSpan) -> dict[str, Any]:
    """A span of a trace as its WaterfallSpanOut would be written (its fields in order), built directly:
    the attrs instance and its generic unstructuring cost more than everything else of a trace of thousands of
    spans (tests/unit/observe/test_observe_api.py checks the two agree)."""
    s = w.span
    return {
        "trace_id": s.trace_id, "span_id": s.span_id, "parent_span_id": s.parent_span_id, "name": s.name,
        "service": s.service, "kind": s.kind, "status": s.status, "start": s.start.isoformat(),
        "duration_ms": s.duration_ms, "session_id": s.session_id, "attributes": s.attributes, "events": s.events,
        "depth": w.depth, "offset_ms": round(w.offset_ms, 3),
    }


@routes.get("/api/v1/observe/logs", summary="Search logs across the hot and cold tiers, newest first", **_READ,
            params=LogParams, response=Page[LogRecordOut])
async def search_logs(request: web.Request) -> web.StreamResponse:
    rt = runtime(request)
    query = params_of(request, LogParams).to_query(_projects(request), rt.clock.now())
    page = await rt.queries.search_logs(query)
    items = [LogRecordOut(**await _log_fields(rt, i)) for i in page.items]
    return json_response(Page(items=items, next_cursor=page.next_cursor))


@routes.get("/api/v1/observe/traces/{trace_id}", summary="All spans of a trace in tree order (waterfall)",
            **_READ, params=ProjectParams, response=TraceOut)
async def get_trace(request: web.Request) -> web.StreamResponse:
    rt = runtime(request)
    trace_id = trace_id_of(request.match_info["trace_id"]) or ""
    view = await rt.queries.trace(trace_id, _projects(request))
    if not view.spans:
        raise NotFound(f"no spans of trace {trace_id}")
    return json_response({"trace_id": trace_id, "spans": [waterfall_json(w) for w in view.spans]})  # a TraceOut


@routes.get("/api/v1/observe/metrics", summary="Metric series aggregated per step", **_READ,
            params=MetricParams, response=MetricsOut)
async def get_metrics(request: web.Request) -> web.StreamResponse:
    rt = runtime(request)
    query = params_of(request, MetricParams).to_query(_projects(request), rt.clock.now())
    series = await rt.queries.metrics(query)
    return json_response(MetricsOut(name=query.name, series=[
        MetricSeriesOut(labels=s.labels, points=[[ts, v] for ts, v in s.points]) for s in series]))


@routes.get("/api/v1/observe/sessions/{session_id}/timeline",
            summary="Every log record and span of an agent session, oldest first, and its messages", **_READ,
            params=TimelineParams, response=SessionTimelineOut)
async def session_timeline(request: web.Request) -> web.StreamResponse:
    rt = runtime(request)
    session_id = request.match_info["session_id"]
    limit = params_of(request, TimelineParams).limit or 1000
    projects = _projects(request)
    timeline, messages = await asyncio.gather(rt.queries.session_timeline(session_id, projects, limit),
                                              rt.queries.session_messages(session_id, projects, limit))
    items: list[TimelineLogOut | TimelineSpanOut] = []
    for t in timeline:
        if t.log is not None:
            items.append(TimelineLogOut(**await _log_fields(rt, t.log)))
        elif t.span is not None:
            items.append(TimelineSpanOut(**_span_fields(t.span), timestamp=t.span.start))
    return json_response(SessionTimelineOut(session_id=session_id, items=items, messages=[
        TimelineMessageOut(id=m.id, timestamp=m.timestamp, type=m.type, role=m.role, content=m.content,
                           metadata=m.metadata) for m in messages]))


_TAIL_DOC = (
    "A WebSocket: connect with an Upgrade request (101 Switching Protocols). The server then sends one JSON "
    "text frame per new log record matching the filters (the schema below), as they are committed, from "
    "every replica; the client sends nothing (a close frame ends the tail). Best effort: a slow client may "
    "miss records, search the logs for completeness."
)


@routes.get("/api/v1/observe/tail", summary="Live tail of log records (WebSocket; JSON text frames)", **_READ,
            params=TailParams, status=101, response=LogRecordOut, description=_TAIL_DOC)
async def tail(request: web.Request) -> web.StreamResponse:
    rt = runtime(request)
    projects = _projects(request)
    wanted = {str(p) for p in projects} if projects is not None else None
    params = params_of(request, TailParams)
    service, session_id, q = params.service or None, params.session_id or None, (params.q or "").lower()
    levels, trace_id = params.levels(), trace_id_of(params.trace_id)
    ws = web.WebSocketResponse(heartbeat=30)
    await ws.prepare(request)

    def matches(item: dict[str, Any]) -> bool:
        if wanted is not None and item.get("project_id") not in wanted:
            return False
        if service and item.get("service") != service:
            return False
        if levels and item.get("level") not in levels:
            return False
        if session_id and item.get("session_id") != session_id:
            return False
        if trace_id and item.get("trace_id") != trace_id:
            return False
        return not (q and q not in str(item.get("message", "")).lower())

    async def pump() -> None:
        async for item in rt.tail.subscribe():
            if matches(item):
                pid = item.pop("project_id", None)
                item["project"] = await _path(rt, uuid.UUID(pid)) if pid else None
                await ws.send_json(item)

    task = asyncio.create_task(pump())
    try:
        async for msg in ws:
            if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                break
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    return ws


@routes.post("/api/v1/observe/rotate", summary="Force a cold-tier rotation now (operators)",
             permission="admin:settings", params=RotateParams, response=RotationOut,
             description="409 when another replica is rotating.")
async def force_rotation(request: web.Request) -> web.StreamResponse:
    rt = runtime(request)
    older_than = params_of(request, RotateParams).older_than
    report = await rt.force_rotation(_actor(request), duration(older_than) if older_than else None)
    if report is None:
        return json_response({"status": "skipped", "detail": "another replica is rotating"}, status=409)
    c = report.compaction
    compaction = None if c is None else CompactionOut(
        files_in=c.files_in, files_out=c.files_out, rows=c.rows, bytes_in=c.bytes_in, bytes_out=c.bytes_out,
        abandoned=c.abandoned, retired_deleted=c.retired_deleted)
    return json_response(RotationOut(status="done", files=report.files, rows=report.rows,
                                     expired_files=report.expired_files, compaction=compaction))


# ------------------------------------------------------------------------------------------ alerts


async def _rule_out(rt: ObserveRuntime, rule: AlertRule) -> AlertRuleOut:
    state: Literal["ok", "pending", "firing"] = (
        "firing" if rule.firing_event_id else ("pending" if rule.pending_since else "ok"))
    return AlertRuleOut(
        id=rule.id, name=rule.name, description=rule.description, query=rule.query, condition=rule.condition,
        threshold=rule.threshold, for_seconds=rule.for_seconds, severity=rule.severity,
        notify_channels=list(rule.notify_channels),  # type: ignore[arg-type]  # validated when stored
        project=await _path(rt, rule.project_id), project_id=rule.project_id, enabled=rule.enabled,
        created_at=rule.created_at, state=state,
    )


def _actor(request: web.Request) -> Actor:
    principal = require_principal(request)
    return Actor(user_id=principal.user_id, name=getattr(principal, "name", "unknown"), ip_addr=client_ip(request))


async def _authorize(request: web.Request, permission: str, project_id: uuid.UUID | None) -> None:
    await request.app[WEB_AUTH].authorize(request, principal_of(request), permission, project_id)


async def _rule_for(request: web.Request, permission: str) -> AlertRule:
    try:
        rule_id = uuid.UUID(request.match_info["rule_id"])
    except ValueError:
        raise NotFound("alert rule not found") from None
    rule = await runtime(request).alert_store.get_rule(rule_id)
    try:
        await _authorize(request, permission, rule.project_id)
    except Exception:
        raise NotFound("alert rule not found") from None  # do not reveal rules of other projects
    return rule


@routes.get("/api/v1/alert-rules", summary="Alert rules of a project (or every rule)", **_READ,
            params=ProjectParams, response=Page[AlertRuleOut])
async def list_rules(request: web.Request) -> web.StreamResponse:
    rt = runtime(request)
    rules = await rt.alert_store.list_rules(_projects(request))
    return json_response(Page(items=[await _rule_out(rt, r) for r in rules], next_cursor=None))


@routes.post("/api/v1/alert-rules", summary="Create an alert rule", status=201, params=None, body=AlertRuleCreate,
             response=AlertRuleOut, description="Needs alert:manage on the rule's project (platform-wide if none).",
             account=False)  # checked in the handler against the rule's project
async def create_rule(request: web.Request) -> web.StreamResponse:
    rt = runtime(request)
    body = body_of(request, AlertRuleCreate)
    project_id = None
    if body.project:
        project_id = await request.app[PROJECT_LOOKUP].project_ref(body.project)
    restricted = getattr(principal_of(request), "token_project_id", None)
    project_id = project_id or restricted
    await _authorize(request, "alert:manage", project_id)
    new = NewAlertRule(
        name=body.name, query=body.query, condition=body.condition, threshold=body.threshold,
        for_seconds=body.for_seconds, severity=body.severity, notify_channels=body.notify_channels,
        enabled=body.enabled, description=body.description, project_id=project_id,
    )
    rule = await rt.alerts.create(_actor(request), new)
    return json_response(await _rule_out(rt, rule), status=201)


@routes.get("/api/v1/alert-rules/{rule_id}", summary="One alert rule", params=None, response=AlertRuleOut,
            account=False)
async def get_rule(request: web.Request) -> web.StreamResponse:
    return json_response(await _rule_out(runtime(request), await _rule_for(request, "observe:read")))


@routes.patch("/api/v1/alert-rules/{rule_id}", summary="Change an alert rule", params=None, body=AlertRuleChanges,
              response=AlertRuleOut, account=False)
async def patch_rule(request: web.Request) -> web.StreamResponse:
    rt = runtime(request)
    rule = await _rule_for(request, "alert:manage")
    updated = await rt.alerts.update(_actor(request), rule.id, body_of(request, AlertRuleChanges))
    return json_response(await _rule_out(rt, updated))


@routes.delete("/api/v1/alert-rules/{rule_id}", summary="Delete an alert rule and its events", status=204,
               params=None, account=False)
async def delete_rule(request: web.Request) -> web.StreamResponse:
    rt = runtime(request)
    rule = await _rule_for(request, "alert:manage")
    await rt.alerts.delete(_actor(request), rule.id)
    return web.Response(status=204)


@routes.get("/api/v1/alerts", summary="Alert events (firing and resolved), newest first", **_READ,
            params=AlertEventParams, response=Page[AlertEventOut])
async def list_alerts(request: web.Request) -> web.StreamResponse:
    rt = runtime(request)
    params = params_of(request, AlertEventParams)
    limit = clamp_limit(params.limit if params.limit is not None else 100)
    events = await rt.alert_store.list_events(_projects(request), params.status, limit)
    items = [
        AlertEventOut(
            id=e.id, rule_id=e.rule_id, status=e.status,  # type: ignore[arg-type]  # 'firing' | 'resolved'
            value=e.value, message=e.message, created_at=e.created_at, resolved_at=e.resolved_at,
            project=await _path(rt, e.project_id),
        )
        for e in events
    ]
    return json_response(Page(items=items, next_cursor=None))
