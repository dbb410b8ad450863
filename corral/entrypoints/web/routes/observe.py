"""Query API over both telemetry tiers, the live tail, and the alert rules.

Reading needs ``observe:read`` on ``?project=owner/name`` (without it: on the whole
platform). Alert rules need ``alert:manage`` on their project to change them.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import attrs
from aiohttp import WSMsgType, web

from corral.core.errors import InvalidInput, NotFound, Unauthenticated
from corral.core.observe.alerts import Actor, AlertRuleChanges, NewAlertRule
from corral.core.observe.model import (
    LEVELS,
    AlertCondition,
    AlertRule,
    AlertSeverity,
    LogItem,
    LogQuery,
    MetricAgg,
    MetricQuery,
    SpanItem,
)
from corral.core.observe.query import WaterfallSpan, parse_cursor
from corral.core.pagination import clamp_limit
from corral.entrypoints.observe_runtime import ObserveRuntime
from corral.entrypoints.web.forwarded import client_ip
from corral.entrypoints.web.jsonio import json_response, read_json, structure
from corral.entrypoints.web.keys import PLATFORM, PROJECT_LOOKUP, WEB_AUTH, principal_of, project_id_of
from corral.entrypoints.web.routing import RouteTable

routes = RouteTable(tag="observe")

_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_REL = re.compile(r"^(\d+)(s|m|h|d)$")
_LOG_ITEM = {
    "type": "object",
    "properties": {
        "timestamp": {"type": "string", "format": "date-time"},
        "level": {"enum": list(LEVELS)},
        "message": {"type": "string"},
        "service": {"type": "string"},
        "trace_id": {"type": ["string", "null"]},
        "span_id": {"type": ["string", "null"]},
        "session_id": {"type": ["string", "null"]},
        "project": {"type": ["string", "null"]},
        "attributes": {"type": "object"},
    },
}
_LOGS = {
    "type": "object",
    "properties": {"items": {"type": "array", "items": _LOG_ITEM}, "next_cursor": {"type": ["string", "null"]}},
}
_TIME_Q = (
    ("since", "string", "ISO-8601 time or a duration back from now (15m, 2h, 7d)"),
    ("until", "string", "ISO-8601 time or a duration back from now"),
)
_PROJECT_Q = (("project", "string", "owner/name (or id); without it the platform-wide permission is needed"),)


def runtime(request: web.Request) -> ObserveRuntime:
    rt: ObserveRuntime = request.app[PLATFORM].resolve(ObserveRuntime)
    return rt


def _time(request: web.Request, name: str, now: datetime) -> datetime | None:
    raw = request.query.get(name)
    if not raw:
        return None
    m = _REL.match(raw)
    if m:
        n = int(m.group(1))
        return now - timedelta(seconds=n * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)])
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{name} must be an ISO-8601 time or a duration like 15m", field=name) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _int(request: web.Request, name: str, default: int | None) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be an integer", field=name) from None


def _projects(request: web.Request) -> tuple[uuid.UUID, ...] | None:
    pid = project_id_of(request)
    if pid is not None:
        return (pid,)
    restricted = getattr(principal_of(request), "token_project_id", None)
    return (restricted,) if restricted else None


def _trace_id(value: str | None, field: str = "trace_id") -> str | None:
    if not value:
        return None
    value = value.lower()
    if not _HEX32.match(value):
        raise InvalidInput(f"{field} must be 32 hexadecimal characters", field=field)
    return value


async def _path(rt: ObserveRuntime, project_id: uuid.UUID | None) -> str | None:
    return await rt.directory.path_of(project_id) if project_id else None


async def _log_json(rt: ObserveRuntime, item: LogItem) -> dict[str, Any]:
    return {
        "timestamp": item.timestamp.isoformat(),
        "level": item.level,
        "message": item.message,
        "service": item.service,
        "trace_id": item.trace_id,
        "span_id": item.span_id,
        "session_id": item.session_id,
        "project": await _path(rt, item.project_id),
        "attributes": item.attributes,
    }


def _span_json(s: SpanItem, w: WaterfallSpan | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "trace_id": s.trace_id,
        "span_id": s.span_id,
        "parent_span_id": s.parent_span_id,
        "name": s.name,
        "service": s.service,
        "kind": s.kind,
        "status": s.status,
        "start": s.start.isoformat(),
        "duration_ms": s.duration_ms,
        "session_id": s.session_id,
        "attributes": s.attributes,
        "events": s.events,
    }
    if w is not None:
        out["depth"] = w.depth
        out["offset_ms"] = round(w.offset_ms, 3)
    return out


def log_query(request: web.Request, now: datetime) -> LogQuery:
    q = request.query
    levels = tuple(v.strip() for v in q.get("level", "").split(",") if v.strip())
    bad = [v for v in levels if v not in LEVELS]
    if bad:
        raise InvalidInput(f"level must be among {', '.join(LEVELS)}", field="level")
    attributes = []
    for raw in q.getall("attr", []):
        key, sep, value = raw.partition(":")
        if not sep or not key:
            raise InvalidInput("attr must be key:value (key may be a/b/c for nested objects)", field="attr")
        attributes.append((key, value))
    return LogQuery(
        project_ids=_projects(request),
        trace_id=_trace_id(q.get("trace_id")),
        session_id=q.get("session_id") or None,
        service=q.get("service") or None,
        levels=levels,
        q=q.get("q") or None,
        attributes=tuple(attributes),
        since=_time(request, "since", now),
        until=_time(request, "until", now),
        limit=clamp_limit(_int(request, "limit", 100)),
        cursor=parse_cursor(q.get("cursor")),
    )


@routes.get(
    "/api/v1/observe/logs",
    summary="Search logs across the hot and cold tiers, newest first",
    permission="observe:read",
    project="query",
    response=_LOGS,
    query=(
        *_PROJECT_Q,
        ("trace_id", "string", "32 hex"),
        ("session_id", "string", ""),
        ("service", "string", ""),
        ("level", "string", "one or more levels, comma-separated"),
        ("q", "string", "case-insensitive text in the message"),
        ("attr", "string", "key:value attribute equality (repeatable; a/b/c reaches nested keys)"),
        *_TIME_Q,
        ("limit", "integer", "1-500, default 100"),
        ("cursor", "string", "next_cursor"),
    ),
)
async def search_logs(request: web.Request) -> web.StreamResponse:
    rt = runtime(request)
    page = await rt.queries.search_logs(log_query(request, rt.clock.now()))
    return json_response({"items": [await _log_json(rt, i) for i in page.items], "next_cursor": page.next_cursor})


@routes.get(
    "/api/v1/observe/traces/{trace_id}",
    summary="All spans of a trace in tree order (waterfall)",
    permission="observe:read",
    project="query",
    query=_PROJECT_Q,
)
async def get_trace(request: web.Request) -> web.StreamResponse:
    rt = runtime(request)
    trace_id = _trace_id(request.match_info["trace_id"]) or ""
    view = await rt.queries.trace(trace_id, _projects(request))
    if not view.spans:
        raise NotFound(f"no spans of trace {trace_id}")
    return json_response({"trace_id": trace_id, "spans": [_span_json(w.span, w) for w in view.spans]})


@routes.get(
    "/api/v1/observe/metrics",
    summary="Metric series aggregated per step",
    permission="observe:read",
    project="query",
    query=(
        ("name", "string", "metric name (required)"),
        *_PROJECT_Q,
        ("labels", "string", "k:v,k2:v2 label filters"),
        ("agg", "string", "avg, sum, min, max, rate, p50, p95, p99 (default avg)"),
        ("step", "string", "bucket size in seconds or 30s/5m/1h (default 60)"),
        *_TIME_Q,
    ),
)
async def get_metrics(request: web.Request) -> web.StreamResponse:
    rt = runtime(request)
    q = request.query
    name = q.get("name")
    if not name:
        raise InvalidInput("name is required", field="name")
    labels = []
    for pair in filter(None, q.get("labels", "").split(",")):
        key, sep, value = pair.partition(":")
        if not sep or not key:
            raise InvalidInput("labels must be k:v,k2:v2", field="labels")
        labels.append((key.strip(), value.strip()))
    try:
        agg = MetricAgg(q.get("agg", "avg"))
    except ValueError:
        raise InvalidInput(f"agg must be one of {', '.join(a.value for a in MetricAgg)}", field="agg") from None
    step_raw = q.get("step", "60")
    m = _REL.match(step_raw)
    step = int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)] if m else None
    if step is None:
        step = _int(request, "step", 60) or 60
    if step < 1:
        raise InvalidInput("step must be at least 1 second", field="step")
    now = rt.clock.now()
    series = await rt.queries.metrics(
        MetricQuery(
            name=name,
            project_ids=_projects(request),
            labels=tuple(labels),
            agg=agg,
            step_seconds=step,
            since=_time(request, "since", now),
            until=_time(request, "until", now),
        )
    )
    return json_response(
        {
            "name": name,
            "series": [{"labels": s.labels, "points": [[ts.isoformat(), v] for ts, v in s.points]} for s in series],
        }
    )


@routes.get(
    "/api/v1/observe/sessions/{session_id}/timeline",
    summary="Every log record and span of an agent session, oldest first",
    permission="observe:read",
    project="query",
    query=(*_PROJECT_Q, ("limit", "integer", "per kind, default 1000")),
)
async def session_timeline(request: web.Request) -> web.StreamResponse:
    rt = runtime(request)
    session_id = request.match_info["session_id"]
    limit = _int(request, "limit", 1000) or 1000
    if not 1 <= limit <= 10_000:
        raise InvalidInput("limit must be between 1 and 10000", field="limit")
    items = await rt.queries.session_timeline(session_id, _projects(request), limit)
    out = []
    for t in items:
        if t.log is not None:
            out.append({"type": "log", **await _log_json(rt, t.log)})
        elif t.span is not None:
            out.append({"type": "span", "timestamp": t.span.start.isoformat(), **_span_json(t.span)})
    return json_response({"session_id": session_id, "items": out})


@routes.get(
    "/api/v1/observe/tail",
    summary="Live tail of log records (WebSocket; JSON text frames)",
    permission="observe:read",
    project="query",
    query=(
        *_PROJECT_Q,
        ("service", "string", ""),
        ("level", "string", ""),
        ("session_id", "string", ""),
        ("trace_id", "string", ""),
        ("q", "string", ""),
    ),
)
async def tail(request: web.Request) -> web.StreamResponse:
    rt = runtime(request)
    projects = _projects(request)
    wanted = {str(p) for p in projects} if projects is not None else None
    query = log_query(request, rt.clock.now())
    ws = web.WebSocketResponse(heartbeat=30)
    await ws.prepare(request)

    def matches(item: dict[str, Any]) -> bool:
        if wanted is not None and item.get("project_id") not in wanted:
            return False
        if query.service and item.get("service") != query.service:
            return False
        if query.levels and item.get("level") not in query.levels:
            return False
        if query.session_id and item.get("session_id") != query.session_id:
            return False
        if query.trace_id and item.get("trace_id") != query.trace_id:
            return False
        return not (query.q and query.q.lower() not in str(item.get("message", "")).lower())

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


@routes.post(
    "/api/v1/observe/rotate",
    summary="Force a cold-tier rotation now (operators)",
    permission="admin:settings",
    query=(("older_than", "string", "rotate rows older than this (e.g. 0s, 1h); default: the hot retention"),),
)
async def force_rotation(request: web.Request) -> web.StreamResponse:
    rt = runtime(request)
    raw = request.query.get("older_than")
    older = None
    if raw:
        m = _REL.match(raw)
        if not m:
            raise InvalidInput("older_than must look like 0s, 15m or 2h", field="older_than")
        older = timedelta(seconds=int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)])
    report = await rt.rotate(older)
    if report is None:
        return json_response({"status": "skipped", "detail": "another replica is rotating"}, status=409)
    body = {"status": "done", "files": report.files, "rows": report.rows, "expired_files": report.expired_files}
    if report.compaction is not None:
        c = report.compaction
        body["compaction"] = {
            "files_in": c.files_in, "files_out": c.files_out, "rows": c.rows, "bytes_in": c.bytes_in,
            "bytes_out": c.bytes_out, "abandoned": c.abandoned, "retired_deleted": c.retired_deleted,
        }
    return json_response(body)


# ------------------------------------------------------------------------------------------ alerts

_RULE = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "name": {"type": "string"},
        "description": {"type": ["string", "null"]},
        "query": {"type": "string", "description": "metric:name{k=v} agg window | logs: level=error window=5m"},
        "condition": {"enum": ["gt", "lt", "eq", "absent"]},
        "threshold": {"type": ["number", "null"]},
        "for_seconds": {"type": "integer"},
        "severity": {"enum": ["info", "warning", "critical"]},
        "notify_channels": {"type": "array", "items": {"enum": ["in_app", "email", "webhook"]}},
        "project": {"type": ["string", "null"]},
        "enabled": {"type": "boolean"},
        "state": {"enum": ["ok", "pending", "firing"]},
    },
}


Channel = Literal["in_app", "email", "webhook"]


@attrs.frozen
class AlertRuleCreate:
    """An alert rule to create (query: metric:name{k=v} agg window | logs: level=error window=5m)."""

    name: str
    query: str
    condition: AlertCondition
    threshold: float | None = None
    for_seconds: int = 60
    severity: AlertSeverity = AlertSeverity.WARNING
    notify_channels: list[Channel] = attrs.Factory(lambda: ["in_app"])
    enabled: bool = True
    description: str | None = None
    project: str | None = None


@attrs.frozen
class AlertRulePatch:
    """Changes to an alert rule: absent fields stay as they are; description and threshold may be null."""

    name: str | None = None
    description: str | None = None
    query: str | None = None
    condition: AlertCondition | None = None
    threshold: float | None = None
    for_seconds: int | None = None
    severity: AlertSeverity | None = None
    notify_channels: list[Channel] | None = None
    enabled: bool | None = None


async def _rule_json(rt: ObserveRuntime, rule: AlertRule) -> dict[str, Any]:
    state = "firing" if rule.firing_event_id else ("pending" if rule.pending_since else "ok")
    return {
        "id": str(rule.id),
        "name": rule.name,
        "description": rule.description,
        "query": rule.query,
        "condition": rule.condition.value,
        "threshold": rule.threshold,
        "for_seconds": rule.for_seconds,
        "severity": rule.severity.value,
        "notify_channels": list(rule.notify_channels),
        "project": await _path(rt, rule.project_id),
        "project_id": str(rule.project_id) if rule.project_id else None,
        "enabled": rule.enabled,
        "created_at": rule.created_at.isoformat(),
        "state": state,
    }


def _actor(request: web.Request) -> Actor:
    principal = principal_of(request)
    if principal is None:
        raise Unauthenticated("authentication required")
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


@routes.get(
    "/api/v1/alert-rules",
    summary="Alert rules of a project (or every rule)",
    permission="observe:read",
    project="query",
    query=_PROJECT_Q,
)
async def list_rules(request: web.Request) -> web.StreamResponse:
    rt = runtime(request)
    rules = await rt.alert_store.list_rules(_projects(request))
    return json_response({"items": [await _rule_json(rt, r) for r in rules], "next_cursor": None})


@routes.post(
    "/api/v1/alert-rules",
    summary="Create an alert rule",
    status=201,
    response=_RULE,
    request_body=AlertRuleCreate,
    description="Needs alert:manage on the rule's project (platform-wide if none).",
    account=False,  # checked in the handler against the rule's project
)
async def create_rule(request: web.Request) -> web.StreamResponse:
    rt = runtime(request)
    body = structure(await read_json(request), AlertRuleCreate)
    project_id = None
    if body.project:
        project_id = await request.app[PROJECT_LOOKUP].project_ref(body.project)
    restricted = getattr(principal_of(request), "token_project_id", None)
    project_id = project_id or restricted
    await _authorize(request, "alert:manage", project_id)
    new = NewAlertRule(
        name=body.name, query=body.query, condition=body.condition, threshold=body.threshold,
        for_seconds=body.for_seconds, severity=body.severity, notify_channels=tuple(body.notify_channels),
        enabled=body.enabled, description=body.description, project_id=project_id,
    )
    rule = await rt.alerts.create(_actor(request), new)
    return json_response(await _rule_json(rt, rule), status=201)


@routes.get("/api/v1/alert-rules/{rule_id}", summary="One alert rule", response=_RULE, account=False)
async def get_rule(request: web.Request) -> web.StreamResponse:
    return json_response(await _rule_json(runtime(request), await _rule_for(request, "observe:read")))


@routes.patch("/api/v1/alert-rules/{rule_id}", summary="Change an alert rule", response=_RULE,
               request_body=AlertRulePatch, account=False)
async def patch_rule(request: web.Request) -> web.StreamResponse:
    rt = runtime(request)
    rule = await _rule_for(request, "alert:manage")
    data = await read_json(request)
    patch = structure(data, AlertRulePatch)
    changes = AlertRuleChanges(
        **{f.name: getattr(patch, f.name) for f in attrs.fields(AlertRulePatch) if f.name != "notify_channels"},
        notify_channels=None if patch.notify_channels is None else tuple(patch.notify_channels),
        clear=frozenset(k for k, v in data.items() if v is None),
    )
    updated = await rt.alerts.update(_actor(request), rule.id, changes)
    return json_response(await _rule_json(rt, updated))


@routes.delete("/api/v1/alert-rules/{rule_id}", summary="Delete an alert rule and its events", status=204,
                account=False)
async def delete_rule(request: web.Request) -> web.StreamResponse:
    rt = runtime(request)
    rule = await _rule_for(request, "alert:manage")
    await rt.alerts.delete(_actor(request), rule.id)
    return web.Response(status=204)


@routes.get(
    "/api/v1/alerts",
    summary="Alert events (firing and resolved), newest first",
    permission="observe:read",
    project="query",
    query=(*_PROJECT_Q, ("status", "string", "firing or resolved"), ("limit", "integer", "1-500, default 100")),
)
async def list_alerts(request: web.Request) -> web.StreamResponse:
    rt = runtime(request)
    status = request.query.get("status") or None
    if status not in (None, "firing", "resolved"):
        raise InvalidInput("status must be firing or resolved", field="status")
    events = await rt.alert_store.list_events(_projects(request), status, clamp_limit(_int(request, "limit", 100)))
    return json_response(
        {
            "items": [
                {
                    "id": str(e.id),
                    "rule_id": str(e.rule_id),
                    "status": e.status,
                    "value": e.value,
                    "message": e.message,
                    "created_at": e.created_at.isoformat(),
                    "resolved_at": e.resolved_at.isoformat() if e.resolved_at else None,
                    "project": await _path(rt, e.project_id),
                }
                for e in events
            ],
            "next_cursor": None,
        }
    )
