"""Observe pages like OpenObserve's: the log search (level, service, project, session, time range, paging) and a
trace as an SVG waterfall rendered here (span bars on a time axis; attributes on click with ui.js, or in the
details list below without it). The same queries and permission (observe:read) as the observe API."""

from __future__ import annotations

import json
import uuid
from html import escape as _escape
from typing import Any, Literal
from urllib.parse import urlencode

import attrs
from aiohttp import web
from markupsafe import Markup

from corral.core.errors import NotFound
from corral.core.observe.model import LEVELS
from corral.core.observe.query import TraceView
from corral.entrypoints.observe_runtime import ObserveRuntime
from corral.entrypoints.web.keys import PLATFORM, principal_of, project_id_of
from corral.entrypoints.web.operation import params_of, query_param
from corral.entrypoints.web.schemas.observe import LogParams, ProjectParams, trace_id_of
from corral.entrypoints.web.ui.pages import Crumb, page
from corral.entrypoints.web.ui.render import when
from corral.entrypoints.web.ui.table import page as page_route

__all__ = ["Bar", "trace_html", "waterfall"]

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
                              ("since", q.since), ("until", q.until)) if v}
    more = f"?{urlencode({**kept, 'cursor': found.next_cursor})}" if found.next_cursor else None
    return await page(request, "observe_logs.html", title="Logs", crumbs=[Crumb("Observe"), Crumb("Logs")],
                      rows=rows, filters=kept, more=more, levels=LEVELS)


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
