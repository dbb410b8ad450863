"""Observe pages like OpenObserve's: the log search (level, service, project, session, time range, paging; a live
tail with ui.js), a trace as an SVG waterfall rendered here (span bars on a time axis; attributes on click with
ui.js, or in the details list below without it), metric charts (SVG line charts per series, label filters, a
time-range picker) and a session's timeline. The same queries and permission (observe:read) as the observe API."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from html import escape as _escape
from typing import Any, Literal
from urllib.parse import urlencode

import attrs
from aiohttp import web
from markupsafe import Markup

from corral.core.errors import InvalidInput, NotFound
from corral.core.observe.alerts import CHANNELS, Actor
from corral.core.observe.commands import AlertRuleChanges, Channel, NewAlertRule
from corral.core.observe.model import LEVELS, AlertCondition, AlertRule, AlertSeverity, MetricAgg
from corral.core.observe.query import TraceView
from corral.entrypoints.observe_runtime import ObserveRuntime
from corral.entrypoints.web.forwarded import client_ip
from corral.entrypoints.web.keys import (
    PLATFORM,
    PROJECT_LOOKUP,
    WEB_AUTH,
    principal_of,
    project_id_of,
    require_principal,
)
from corral.entrypoints.web.operation import params_of, query_param
from corral.entrypoints.web.schemas.observe import LogParams, MetricParams, ProjectParams, TimelineParams, trace_id_of
from corral.entrypoints.web.ui.charts import Series, label_text, line_chart
from corral.entrypoints.web.ui.pages import Crumb, form_data, holds, page, redirect, url_path
from corral.entrypoints.web.ui.render import when
from corral.entrypoints.web.ui.table import form
from corral.entrypoints.web.ui.table import page as page_route

__all__ = ["Bar", "auto_step", "trace_html", "waterfall"]

_READ: dict[str, Any] = {"permission": "observe:read", "project": "query"}
ROW = 22  # px per span row of the waterfall
LABEL = 260  # px for the span names
WIDTH = 1000
DETAILS = 500  # spans whose details a trace page lists unless asked for all (every span still has its bar)
_json = json.JSONEncoder(sort_keys=True, default=str).encode


def _runtime(request: web.Request) -> ObserveRuntime:
    rt: ObserveRuntime = request.app[PLATFORM].resolve(ObserveRuntime)
    return rt


def _projects(request: web.Request) -> tuple[uuid.UUID, ...] | None:
    pid = project_id_of(request)
    if pid is not None:
        return (pid,)
    restricted = getattr(principal_of(request), "token_project_id", None)
    return (restricted,) if restricted else None


@page_route("/ui/observe/logs", summary="Search logs: level, service, project, session, time range", **_READ,
            params=LogParams)
async def logs(request: web.Request) -> web.StreamResponse:
    rt = _runtime(request)
    q = params_of(request, LogParams)
    found = await rt.queries.search_logs(q.to_query(_projects(request), rt.clock.now()))
    rows = []
    for item in found.items:
        project = await rt.directory.path_of(item.project_id) if item.project_id else None
        rows.append((item, project, json.dumps(item.attributes, sort_keys=True, default=str)
                     if item.attributes else ""))
    kept = {k: v for k, v in (("project", q.project), ("level", q.level), ("service", q.service),
                              ("session_id", q.session_id), ("trace_id", q.trace_id), ("q", q.q),
                              ("since", q.since), ("until", q.until), ("limit", q.limit)) if v}
    more = f"?{urlencode({**kept, 'cursor': found.next_cursor})}" if found.next_cursor else None
    live = {k: v for k, v in kept.items() if k in ("project", "level", "service", "session_id", "trace_id", "q")}
    return await page(request, "observe_logs.html", title="Logs", crumbs=[Crumb("Observe"), Crumb("Logs")],
                      rows=rows, filters=kept, more=more, levels=LEVELS, paged=bool(q.cursor),
                      first=f"?{urlencode(kept)}" if kept else "", tail="/api/v1/observe/tail?" + urlencode(live))


@attrs.frozen
class Bar:
    """One span of the waterfall, placed on the SVG."""

    index: int
    span: Any
    depth: int
    x: float
    width: float
    y: int
    label: str
    error: bool
    offset_ms: float

    @property
    def attributes(self) -> str:
        """The span's attributes for its details, one key a line."""
        return _pretty(self.span.attributes)


def _pretty(value: dict[str, Any]) -> str:
    """A span's attributes one key a line (like ``json.dumps(indent=1)`` for the usual flat map; nested values stay
    on their key's line), with the C encoder: the indenting encoder is pure Python, slow over thousands of spans."""
    if not value:
        return "{}"
    return "{\n" + ",\n".join(f" {_json(k)}: {_json(v)}" for k, v in sorted(value.items())) + "\n}"


def waterfall(view: TraceView) -> tuple[list[Bar], float, list[tuple[float, str]]]:
    """Span bars on a time axis (x in px of the SVG; the labels column on the left), the trace's length in ms
    and the axis ticks."""
    spans = view.spans
    total = max((w.offset_ms + w.span.duration_ms for w in spans), default=0.0) or 1.0
    scale = (WIDTH - LABEL - 10) / total
    bars = []
    for i, w in enumerate(spans):
        x = LABEL + w.offset_ms * scale
        width = max(w.span.duration_ms * scale, 1.5)
        name = f"{w.span.service}: {w.span.name}"
        label = ("\u00a0" * min(w.depth, 12) * 2) + (name if len(name) <= 38 else name[:37] + "…")
        bars.append(Bar(i, w.span, w.depth, round(x, 2), round(width, 2), 20 + i * ROW, label,
                        w.span.status.lower() == "error", round(w.offset_ms, 2)))
    ticks = [(round(LABEL + total * f * scale, 2), f"{total * f:.1f} ms") for f in (0, 0.25, 0.5, 0.75, 1)]
    return bars, total, ticks


def trace_html(bars: list[Bar], details_of: int | None = None) -> tuple[Markup, Markup]:
    """The waterfall's SVG bars and the details of the first ``details_of`` spans (all when None), built in one
    pass here: a template loop with a dozen autoescaped expressions per span is what made a trace of thousands of
    spans slow."""
    svg: list[str] = []
    details: list[str] = []
    for b in bars:
        s = b.span
        name, service, ms = _escape(s.name), _escape(s.service), round(s.duration_ms, 2)
        svg.append(f'<g data-span="{b.index}" tabindex="0"><title>{service}: {name} ({ms} ms)</title>\n'
                   f'<text x="4" y="{b.y + 14}">{_escape(b.label)}</text>\n'
                   f'<rect class="{"bar-err" if b.error else "bar"}" x="{b.x}" y="{b.y + 3}" width="{b.width}" '
                   'height="14" rx="2"></rect></g>')
        if details_of is not None and b.index >= details_of:
            continue
        parent = f" (parent <code>{_escape(s.parent_span_id)}</code>)" if s.parent_span_id else ""
        session = f"<dt>Session</dt><dd>{_escape(s.session_id)}</dd>\n" if s.session_id else ""
        events = (f"<dt>Events</dt><dd><pre>{_escape(json.dumps(s.events, indent=1, default=str))}</pre></dd>"
                  if s.events else "")
        details.append(
            f'<details id="span-{b.index}" class="card"><summary><strong>{name}</strong> <span class="muted">'
            f"{service} · {_escape(s.kind)} · {_escape(s.status)} · {ms} ms · at +{b.offset_ms} ms</span></summary>\n"
            f"<dl><dt>Span</dt><dd><code>{_escape(s.span_id)}</code>{parent}</dd>\n"
            f"<dt>Started</dt><dd>{when(s.start)}</dd>\n{session}"
            f"<dt>Attributes</dt><dd><pre>{_escape(b.attributes)}</pre></dd>\n{events}</dl>\n</details>")
    # every text above is escaped; the numbers and classes are ours
    return Markup("\n".join(svg)), Markup("\n".join(details))  # noqa: S704


@attrs.frozen
class TraceParams(ProjectParams):
    spans: Literal["all"] | None = query_param(doc=f"all: the details of every span (else of the first {DETAILS})")


@page_route("/ui/observe/traces/{trace_id}", summary="A trace as a waterfall", **_READ, params=TraceParams)
async def trace(request: web.Request) -> web.StreamResponse:
    rt = _runtime(request)
    trace_id = trace_id_of(request.match_info["trace_id"]) or ""
    view = await rt.queries.trace(trace_id, _projects(request))
    if not view.spans:
        raise NotFound(f"no spans of trace {trace_id}")
    bars, total, ticks = waterfall(view)
    q = params_of(request, TraceParams)
    shown = len(bars) if q.spans == "all" else min(len(bars), DETAILS)
    svg_bars, span_details = trace_html(bars, shown)
    project = q.project
    logs_href = "/ui/observe/logs?" + urlencode({"trace_id": trace_id, **({"project": project} if project else {})})
    all_href = f"{request.path}?" + urlencode({**({"project": project} if project else {}), "spans": "all"})
    return await page(request, "observe_trace.html", title=f"Trace {trace_id[:12]}",
                      crumbs=[Crumb("Observe"), Crumb("Logs", "/ui/observe/logs"), Crumb(f"Trace {trace_id[:12]}")],
                      trace_id=trace_id, bars=bars, total=total, ticks=ticks, width=WIDTH, label_width=LABEL,
                      height=30 + len(bars) * ROW, logs_href=logs_href, svg_bars=svg_bars, span_details=span_details,
                      shown=shown, all_href=all_href)


# ---- metrics ---------------------------------------------------------------------------------------------------
RANGES = (("15m", "last 15 min"), ("1h", "last 1 h"), ("6h", "last 6 h"), ("24h", "last 24 h"), ("7d", "last 7 d"),
          ("custom", "custom (from/to)"))
_RANGE_SECONDS = {"15m": 900, "1h": 3600, "6h": 21600, "24h": 86400, "7d": 604800}
_STEPS = (10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def auto_step(seconds: float, points: int = 120) -> int:
    """A round bucket size giving about ``points`` points over ``seconds``."""
    return next((s for s in _STEPS if seconds / s <= points), _STEPS[-1])


@attrs.frozen
class MetricsPageParams:
    project: str | None = query_param(doc="owner/name")
    name: str | None = query_param(doc="metric name")
    labels: str | None = query_param(doc="k:v,k2:v2 label filters")
    agg: str | None = query_param(doc="aggregation per step: " + ", ".join(a.value for a in MetricAgg))
    last: str | None = query_param(doc="15m, 1h, 6h, 24h, 7d or custom (then from/to)")
    since: str | None = query_param(doc="custom range: from (ISO-8601 time or a duration back like 2h)")
    until: str | None = query_param(doc="custom range: to (ISO-8601 time or a duration back)")
    step: str | None = query_param(doc="bucket size (30s, 5m...); default: about 120 points over the range")


@page_route("/ui/observe/metrics", summary="Metric charts: a line per series, label filters, a time range",
            **_READ, params=MetricsPageParams)
async def metrics(request: web.Request) -> web.StreamResponse:
    rt = _runtime(request)
    q = params_of(request, MetricsPageParams)
    projects = _projects(request)
    names = await rt.queries.metric_names(projects)
    last = q.last if q.last in _RANGE_SECONDS or q.last == "custom" else ("custom" if q.since else "1h")
    name = q.name or (names[0].name if names else None)
    unit = next((n.unit for n in names if n.name == name), None)
    error: str | None = None
    chart = None
    series_count = 0
    if name:
        now = rt.clock.now()
        since, until = (q.since or "1h", q.until or None) if last == "custom" else (last, None)
        try:
            agg = MetricAgg(q.agg) if q.agg else None
            query = MetricParams(name=name, labels=q.labels or None, agg=agg, step=q.step or None, since=since,
                                 until=until).to_query(projects, now)
            if not q.step:
                span = ((query.until or now) - (query.since or now - timedelta(hours=1))).total_seconds()
                query = attrs.evolve(query, step_seconds=auto_step(span))
            found = await rt.queries.metrics(query)
        except (InvalidInput, ValueError) as exc:
            error = getattr(exc, "message", None) or str(exc)
        else:
            series_count = len(found)
            chart = line_chart([Series(label_text(s.labels, name), s.points) for s in found],
                               step_seconds=query.step_seconds, unit=unit, since=query.since, until=query.until or now,
                               title=f"{name} ({query.agg.value} per {query.step_seconds} s)")
    filters = {"project": q.project or "", "name": name or "", "labels": q.labels or "", "agg": q.agg or "",
               "last": last, "since": q.since or "", "until": q.until or "", "step": q.step or ""}
    return await page(request, "observe_metrics.html", title="Metrics", crumbs=[Crumb("Observe"), Crumb("Metrics")],
                      names=names, filters=filters, chart=chart, error=error, ranges=RANGES,
                      aggs=[a.value for a in MetricAgg], series_count=series_count, unit=unit)


# ---- alerts ----------------------------------------------------------------------------------------------------
MANAGE = "alert:manage"


@attrs.frozen
class AlertsPageParams:
    project: str | None = query_param(doc="owner/name")
    status: str | None = query_param(doc="events: firing or resolved (default: both)")
    done: str | None = query_param(doc="what the last action did (shown once)")


def _actor(request: web.Request) -> Actor:
    principal = require_principal(request)
    return Actor(user_id=principal.user_id, name=getattr(principal, "name", "unknown"), ip_addr=client_ip(request))


async def _rule(request: web.Request) -> AlertRule:
    """The rule of the URL, when the caller may read its project (404 otherwise, as the API: rules of other
    projects are not revealed)."""
    try:
        rule_id = uuid.UUID(request.match_info["rule_id"])
    except ValueError:
        raise NotFound("alert rule not found") from None
    rule = await _runtime(request).alert_store.get_rule(rule_id)
    if not await holds(request, "observe:read", rule.project_id):
        raise NotFound("alert rule not found")
    return rule


async def _managed_rule(request: web.Request) -> AlertRule:
    """The rule of the URL, when the caller holds alert:manage in its project (403 naming it otherwise)."""
    rule = await _rule(request)
    await request.app[WEB_AUTH].authorize(request, principal_of(request), MANAGE, rule.project_id)
    return rule


def _number(text: str | None, field: str, kind: type[float] | type[int] = float) -> Any:
    if text is None or not text.strip():
        return None
    try:
        return kind(text.strip())
    except ValueError:
        raise InvalidInput(f"{field} must be a number", field=field) from None


def _choice(text: str | None, kind: Any, field: str) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise InvalidInput(f"{field} must be one of {', '.join(k.value for k in kind)}", field=field) from None


def _channels(data: Any) -> tuple[Channel, ...]:
    chosen = tuple(c for c in data.getall("notify_channels", []) if c in CHANNELS)
    return chosen or ("in_app",)


@page_route("/ui/observe/alerts", summary="Alert rules (create, edit, enable, delete) and alert events", **_READ,
            params=AlertsPageParams)
async def alerts(request: web.Request) -> web.StreamResponse:
    rt = _runtime(request)
    q = params_of(request, AlertsPageParams)
    projects = _projects(request)
    status = q.status if q.status in ("firing", "resolved") else None
    rules = await rt.alert_store.list_rules(projects)
    events = await rt.alert_store.list_events(projects, status, 100)
    paths: dict[uuid.UUID, str | None] = {}
    for pid in {r.project_id for r in rules} | {e.project_id for e in events}:
        if pid is not None:
            paths[pid] = await rt.directory.path_of(pid)
    manage = {r.id: await holds(request, MANAGE, r.project_id) for r in rules}
    can_create = await holds(request, MANAGE, project_id_of(request))
    names = {r.id: r.name for r in rules}
    return await page(request, "observe_alerts.html", title="Alerts", crumbs=[Crumb("Observe"), Crumb("Alerts")],
                      rules=rules, events=events, paths=paths, manage=manage, can_create=can_create, names=names,
                      project=q.project or "", event_status=status or "", done=q.done, conditions=list(AlertCondition),
                      severities=list(AlertSeverity), channels=sorted(CHANNELS), rule=None)


@form("/ui/observe/alerts", summary="Create an alert rule", account=False)  # alert:manage on the rule's project
async def create_alert(request: web.Request) -> web.StreamResponse:
    rt = _runtime(request)
    data = await form_data(request)
    project = (data.get("project") or "").strip()
    project_id = await request.app[PROJECT_LOOKUP].project_ref(project) if project else None
    project_id = project_id or getattr(principal_of(request), "token_project_id", None)
    await request.app[WEB_AUTH].authorize(request, principal_of(request), MANAGE, project_id)
    condition = _choice(data.get("condition", ""), AlertCondition, "condition")
    rule = await rt.alerts.create(_actor(request), NewAlertRule(
        name=data.get("name", ""), query=data.get("query", ""), condition=condition,
        threshold=_number(data.get("threshold"), "threshold"),
        for_seconds=_number(data.get("for_seconds"), "for_seconds", int) or 0,
        severity=_choice(data.get("severity") or "warning", AlertSeverity, "severity"),
        notify_channels=_channels(data), enabled=data.get("enabled") == "on",
        description=(data.get("description") or "").strip() or None, project_id=project_id))
    back = f"?project={url_path(project)}&" if project else "?"
    return redirect(f"/ui/observe/alerts{back}done=created+{url_path(rule.name)}")


@page_route("/ui/observe/alerts/{rule_id}", summary="One alert rule: its settings (edit) and its events",
            params=None, account=False)  # observe:read on the rule's project, checked in the handler
async def alert_rule(request: web.Request) -> web.StreamResponse:
    rt = _runtime(request)
    rule = await _rule(request)
    events = [e for e in await rt.alert_store.list_events(
        (rule.project_id,) if rule.project_id else None, None, 500) if e.rule_id == rule.id]
    path = await rt.directory.path_of(rule.project_id) if rule.project_id else None
    return await page(request, "observe_alert.html", title=f"Alert rule {rule.name}",
                      crumbs=[Crumb("Observe"), Crumb("Alerts", "/ui/observe/alerts"), Crumb(rule.name)],
                      rule=rule, events=events, path=path, can_manage=await holds(request, MANAGE, rule.project_id),
                      conditions=list(AlertCondition), severities=list(AlertSeverity), channels=sorted(CHANNELS))


@form("/ui/observe/alerts/{rule_id}", summary="Change an alert rule", account=False)
async def edit_alert(request: web.Request) -> web.StreamResponse:
    rule = await _managed_rule(request)
    data = await form_data(request)
    changes = AlertRuleChanges(
        name=data.get("name", ""), query=data.get("query", ""),
        condition=_choice(data.get("condition", ""), AlertCondition, "condition"),
        threshold=_number(data.get("threshold"), "threshold"),
        for_seconds=_number(data.get("for_seconds"), "for_seconds", int) or 0,
        severity=_choice(data.get("severity") or "warning", AlertSeverity, "severity"),
        notify_channels=_channels(data), enabled=data.get("enabled") == "on",
        description=(data.get("description") or "").strip() or None)
    await _runtime(request).alerts.update(_actor(request), rule.id, changes)
    return redirect(f"/ui/observe/alerts/{rule.id}")


@form("/ui/observe/alerts/{rule_id}/enabled", summary="Enable or disable an alert rule", account=False)
async def toggle_alert(request: web.Request) -> web.StreamResponse:
    rule = await _managed_rule(request)
    enabled = (await form_data(request)).get("enabled") == "true"
    await _runtime(request).alerts.update(_actor(request), rule.id, AlertRuleChanges(enabled=enabled))
    return redirect(f"/ui/observe/alerts?done={'enabled' if enabled else 'disabled'}+{url_path(rule.name)}")


@form("/ui/observe/alerts/{rule_id}/delete", summary="Delete an alert rule and its events", account=False)
async def delete_alert(request: web.Request) -> web.StreamResponse:
    rule = await _managed_rule(request)
    await _runtime(request).alerts.delete(_actor(request), rule.id)
    return redirect(f"/ui/observe/alerts?done=deleted+{url_path(rule.name)}")


# ---- a session's timeline --------------------------------------------------------------------------------------
@attrs.frozen
class Moment:
    """One entry of a session's timeline: an agent message, a log record or a span."""

    kind: str  # 'message' | 'log' | 'span'
    timestamp: Any
    item: Any
    detail: str = ""


@page_route("/ui/observe/sessions/{session_id}", summary="A session's timeline: messages, logs and spans in time "
            "order", **_READ, params=TimelineParams)
async def session_timeline(request: web.Request) -> web.StreamResponse:
    rt = _runtime(request)
    session_id = request.match_info["session_id"]
    q = params_of(request, TimelineParams)
    limit = q.limit or 1000
    projects = _projects(request)
    timeline, messages = await asyncio.gather(rt.queries.session_timeline(session_id, projects, limit),
                                              rt.queries.session_messages(session_id, projects, limit))
    moments = [Moment("message", m.timestamp, m, json.dumps(m.metadata, sort_keys=True, default=str)
                      if m.metadata else "") for m in messages]
    for t in timeline:
        if t.log is not None:
            moments.append(Moment("log", t.timestamp, t.log, json.dumps(t.log.attributes, sort_keys=True, default=str)
                                  if t.log.attributes else ""))
        elif t.span is not None:
            moments.append(Moment("span", t.timestamp, t.span))
    moments.sort(key=lambda m: (m.timestamp, {"message": 0, "span": 1, "log": 2}[m.kind]))
    counts = {k: sum(1 for m in moments if m.kind == k) for k in ("message", "log", "span")}
    project = q.project or ""
    return await page(request, "observe_session.html", title=f"Session {session_id[:12]}",
                      crumbs=[Crumb("Observe"), Crumb("Logs", "/ui/observe/logs"), Crumb(f"Session {session_id[:12]}")],
                      session_id=session_id, moments=moments, counts=counts, project=project,
                      agent_href=f"/ui/agent-sessions/{url_path(session_id)}" if messages else None)
