"""One query API over both tiers: PostgreSQL (hot) and Parquet (cold) results merged."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

import attrs

from corral.core.clock import Clock
from corral.core.errors import InvalidInput
from corral.core.observe.filters import aggregate
from corral.core.observe.model import (
    LogItem,
    LogQuery,
    MetricName,
    MetricQuery,
    SeriesPoints,
    SessionMessage,
    SpanItem,
    TimelineItem,
)
from corral.core.observe.ports import ColdManifest, ColdReader, SessionMessages, TelemetryReader
from corral.core.pagination import cursor_int, cursor_str, decode_cursor, encode_cursor, invalid_cursor

__all__ = ["LogPage", "ObserveQueries", "TraceView", "WaterfallSpan", "cursor_of", "parse_cursor"]


@attrs.frozen
class LogPage:
    items: list[LogItem]
    next_cursor: str | None


@attrs.frozen
class WaterfallSpan:
    span: SpanItem
    depth: int
    offset_ms: float  # start relative to the trace's first span


@attrs.frozen
class TraceView:
    trace_id: str
    spans: list[WaterfallSpan]


def cursor_of(item: LogItem) -> str:
    return encode_cursor({"t": item.timestamp.isoformat(), "i": item.id})


def parse_cursor(cursor: str | None) -> tuple[datetime, int] | None:
    data = decode_cursor(cursor)
    if data is None:
        return None
    row_id = cursor_int(data, "i", minimum=-(2**63), maximum=2**63 - 1)
    try:
        when = datetime.fromisoformat(cursor_str(data, "t") or "")
    except ValueError as exc:
        raise invalid_cursor() from exc
    if when.tzinfo is None or row_id is None:
        raise invalid_cursor()
    return when, row_id


@attrs.define
class ObserveQueries:
    """Queries over the hot store and, when configured, the cold tier."""

    hot: TelemetryReader
    clock: Clock
    cold_manifest: ColdManifest | None = None
    cold_reader: ColdReader | None = None
    messages: SessionMessages | None = None  # agent sessions' messages (set by the domain running sessions)

    async def search_logs(self, query: LogQuery) -> LogPage:
        """Newest first; ``next_cursor`` continues after the last item (None at the end)."""
        tasks = [self.hot.search_logs(query)]
        if self.cold_manifest is not None and self.cold_reader is not None:
            tasks.append(self._cold_logs(query))
        results = await asyncio.gather(*tasks)
        merged: dict[tuple[datetime, int], LogItem] = {}
        for items in results:
            for item in items:
                merged[(item.timestamp, item.id)] = item
        items = sorted(merged.values(), key=lambda i: (i.timestamp, i.id), reverse=True)[: query.limit]
        nxt = cursor_of(items[-1]) if len(items) == query.limit else None
        return LogPage(items=items, next_cursor=nxt)

    async def _cold_logs(self, query: LogQuery) -> list[LogItem]:
        assert self.cold_manifest is not None
        assert self.cold_reader is not None
        until = query.until
        if query.cursor is not None and (until is None or query.cursor[0] < until):
            until = query.cursor[0] + timedelta(microseconds=1)
        files = await self.cold_manifest.files(
            "logs",
            query.project_ids,
            query.since,
            until,
            trace_id=query.trace_id,
            session_id=query.session_id,
        )
        if not files:
            return []
        return await self.cold_reader.search_logs(files, query)

    async def trace(self, trace_id: str, project_ids: tuple[uuid.UUID, ...] | None) -> TraceView:
        """Every span of the trace in tree order (depth-first, siblings by start time)."""
        hot, cold = await asyncio.gather(
            self.hot.trace_spans(trace_id, project_ids), self._cold_trace_spans(trace_id, project_ids)
        )
        return TraceView(trace_id=trace_id, spans=waterfall([*hot, *cold]))

    async def _cold_trace_spans(self, trace_id: str, project_ids: tuple[uuid.UUID, ...] | None) -> list[SpanItem]:
        if self.cold_manifest is None or self.cold_reader is None:
            return []
        files = await self.cold_manifest.files("spans", project_ids, None, None, trace_id=trace_id)
        return await self.cold_reader.trace_spans(files, trace_id) if files else []

    async def session_timeline(
        self, session_id: str, project_ids: tuple[uuid.UUID, ...] | None, limit: int = 1000
    ) -> list[TimelineItem]:
        """Every log record and span of the session, oldest first (at most ``limit`` of each)."""
        # the four reads are independent: run them together (latency is the slowest, not the sum)
        hot_logs, hot_spans, cold_logs, cold_spans = await asyncio.gather(
            self.hot.session_logs(session_id, project_ids, limit),
            self.hot.session_spans(session_id, project_ids, limit),
            self._cold_session_logs(session_id, project_ids, limit),
            self._cold_session_spans(session_id, project_ids, limit),
        )
        logs = [*hot_logs, *cold_logs]
        spans = [*hot_spans, *cold_spans]
        unique_logs = {(x.timestamp, x.id): x for x in logs}.values()
        unique_spans = {s.span_id: s for s in spans}.values()
        items = [TimelineItem(kind="log", timestamp=x.timestamp, log=x) for x in unique_logs]
        items += [TimelineItem(kind="span", timestamp=s.start, span=s) for s in unique_spans]
        items.sort(key=lambda t: t.timestamp)
        return items[: 2 * limit]

    async def session_messages(
        self, session_id: str, project_ids: tuple[uuid.UUID, ...] | None, limit: int = 1000
    ) -> list[SessionMessage]:
        """The agent session's messages oldest first (at most ``limit``); [] when no domain provides them."""
        if self.messages is None:
            return []
        return await self.messages.messages(session_id, project_ids, limit)

    async def _cold_session_logs(
        self, session_id: str, project_ids: tuple[uuid.UUID, ...] | None, limit: int
    ) -> list[LogItem]:
        if self.cold_manifest is None or self.cold_reader is None:
            return []
        files = await self.cold_manifest.files("logs", project_ids, None, None, session_id=session_id)
        return await self.cold_reader.session_logs(files, session_id, limit) if files else []

    async def _cold_session_spans(
        self, session_id: str, project_ids: tuple[uuid.UUID, ...] | None, limit: int
    ) -> list[SpanItem]:
        if self.cold_manifest is None or self.cold_reader is None:
            return []
        files = await self.cold_manifest.files("spans", project_ids, None, None, session_id=session_id)
        return await self.cold_reader.session_spans(files, session_id, limit) if files else []

    async def metric_names(self, project_ids: tuple[uuid.UUID, ...] | None, limit: int = 500) -> list[MetricName]:
        """The metric names of the catalog (which outlives the hot points, so cold-only metrics are there too)."""
        return await self.hot.metric_names(project_ids, limit)

    async def metrics(self, query: MetricQuery) -> list[SeriesPoints]:
        """Series named ``query.name`` with the labels, aggregated per ``step_seconds`` bucket."""
        until = query.until or self.clock.now()
        since = query.since or until - timedelta(hours=1)
        if since >= until:
            raise InvalidInput("since must be before until", field="since")
        if (until - since).total_seconds() / query.step_seconds > 11_000:
            raise InvalidInput("too many points: raise step or narrow the time range", field="step")
        q = attrs.evolve(query, since=since, until=until)
        catalog = await self.hot.metric_series(q)
        by_id: dict[uuid.UUID, list[tuple[datetime, float]]] = {sid: [] for sid in catalog}
        for series, pts in await self.hot.metric_points(q):
            by_id.setdefault(series.id, []).extend(pts)
            catalog.setdefault(series.id, series)
        if self.cold_manifest is not None and self.cold_reader is not None and catalog:
            files = await self.cold_manifest.files("points", query.project_ids, since, until)
            if files:
                for sid, pts in (await self.cold_reader.metric_points(files, q, catalog)).items():
                    by_id.setdefault(sid, []).extend(pts)
        out: list[SeriesPoints] = []
        for sid, pts in by_id.items():
            if not pts:
                continue
            pts.sort(key=lambda p: p[0])
            points = aggregate(pts, query.agg, since, until, query.step_seconds)
            out.append(SeriesPoints(labels=catalog[sid].labels, points=points))
        out.sort(key=lambda s: sorted(s.labels.items()))
        return out


def _tree_order(s: SpanItem) -> tuple[datetime, str]:
    return s.start, s.span_id


def _start(s: SpanItem) -> datetime:
    return s.start


def waterfall(spans: list[SpanItem]) -> list[WaterfallSpan]:
    """Spans in tree order with depth and start offset; spans whose parent is missing are roots. Spans that a
    parent cycle hides from every root follow, each cycle from its earliest span as a root.

    One sort of the whole trace puts every sibling group in order as it is built (thousands of spans: no sort per
    group), and the walk checks nothing per span but the cycle guard."""
    unique = {s.span_id: s for s in spans}
    if not unique:
        return []
    ordered = sorted(unique.values(), key=_tree_order)
    t0 = ordered[0].start
    children: dict[str | None, list[SpanItem]] = {}
    for s in ordered:
        parent = s.parent_span_id
        children.setdefault(parent if parent in unique else None, []).append(s)
    out: list[WaterfallSpan] = []
    seen: set[str] = set()
    _walk(children.get(None, []), children, t0, out, seen)
    while len(seen) < len(unique):  # a parent cycle hides spans from every root: show them as roots
        _walk([min((s for s in unique.values() if s.span_id not in seen), key=_start)], children, t0, out, seen)
    return out


def _walk(
    roots: list[SpanItem],
    children: dict[str | None, list[SpanItem]],
    t0: datetime,
    out: list[WaterfallSpan],
    seen: set[str],
) -> None:
    """Depth first from ``roots`` (in order), each span once."""
    stack: list[tuple[SpanItem, int]] = [(s, 0) for s in reversed(roots)]
    pop, append, add = stack.pop, out.append, seen.add
    while stack:
        span, depth = pop()
        span_id = span.span_id
        if span_id in seen:
            continue
        add(span_id)
        append(WaterfallSpan(span, depth, (span.start - t0).total_seconds() * 1000))
        kids = children.get(span_id)
        if kids:
            depth += 1
            stack.extend([(c, depth) for c in reversed(kids)])
