"""In-memory telemetry store, project directory and live tail (no I/O)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from datetime import UTC, date, datetime
from typing import Any

import attrs

from corral.core.audit.model import AuditEntry
from corral.core.clock import Clock
from corral.core.errors import Conflict, NotFound, Unavailable
from corral.core.observe.filters import log_matches
from corral.core.observe.model import (
    LOG_COLUMNS,
    POINT_COLUMNS,
    SERIES_COLUMNS,
    SPAN_COLUMNS,
    AlertEvent,
    AlertRule,
    LogItem,
    LogQuery,
    MetricName,
    MetricQuery,
    MetricSeries,
    SpanItem,
    TelemetryBatch,
    clean_batch,
)
from corral.core.observe.ports import ColdFile, ColdPart, HotPart
from corral.core.uow import UnitOfWorkFactory

__all__ = [
    "InMemoryColdTier",
    "InMemoryLeaderLock",
    "InMemoryLiveTail",
    "InMemoryProjectDirectory",
    "InMemoryRecentRequests",
    "InMemoryTelemetryStore",
    "log_item",
    "span_item",
]


def log_item(row: dict[str, Any]) -> LogItem:
    attrs = row["attributes"]
    return LogItem(
        id=row["id"],
        timestamp=row["ts"],
        level=row["level"],
        message=row["message"],
        service=row["service"],
        trace_id=row["trace_id"],
        span_id=row["span_id"],
        session_id=row["session_id"],
        project_id=row["project_id"],
        user_id=row["user_id"],
        attributes=json.loads(attrs) if isinstance(attrs, str) else dict(attrs or {}),
    )


def span_item(row: dict[str, Any]) -> SpanItem:
    attrs, events = row["attributes"], row["events"]
    return SpanItem(
        id=row["id"],
        start=row["ts"],
        trace_id=row["trace_id"],
        span_id=row["span_id"],
        parent_span_id=row["parent_span_id"],
        name=row["name"],
        service=row["service"],
        kind=row["kind"],
        status=row["status"],
        duration_ms=float(row["duration_ms"]),
        project_id=row["project_id"],
        session_id=row["session_id"],
        user_id=row["user_id"],
        attributes=json.loads(attrs) if isinstance(attrs, str) else dict(attrs or {}),
        events=json.loads(events) if isinstance(events, str) else list(events or []),
    )


class InMemoryTelemetryStore:
    """TelemetryWriter + TelemetryReader + HotArchive over lists of dict rows.

    ``fail_next`` makes the next ``write`` raise (to test the pipeline's error path);
    ``batches`` records the size of every committed write.
    """

    def __init__(self) -> None:
        self.logs: list[dict[str, Any]] = []
        self.spans: list[dict[str, Any]] = []
        self.points: list[dict[str, Any]] = []
        self.series: dict[uuid.UUID, dict[str, Any]] = {}
        self.manifest: dict[str, ColdFile] = {}
        self.cold_keys: dict[str, set[tuple[str, str]]] = {}
        self.retired: dict[str, datetime] = {}  # key -> when compaction retired the file (no longer listed)
        self.batches: list[int] = []
        self.fail_next: Exception | None = None
        self.fail_commit: Exception | None = None  # raised by the next rotation commit (a crash)
        self.windows_opened = 0
        self.delay: float = 0.0

    # ---------------------------------------------------------------- writer
    async def write(self, batch: TelemetryBatch) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_next is not None:
            exc, self.fail_next = self.fail_next, None
            raise exc
        if batch.encoded:
            raise Unavailable("the in-memory telemetry store takes rows, not encoded COPY data")
        batch = clean_batch(batch)  # as PostgreSQL: text holds no NUL / lone surrogate (U+FFFD instead)
        self.logs.extend(dict(zip(LOG_COLUMNS, r, strict=True)) for r in batch.logs)
        self.spans.extend(dict(zip(SPAN_COLUMNS, r, strict=True)) for r in batch.spans)
        self.points.extend(dict(zip(POINT_COLUMNS, r, strict=True)) for r in batch.points)
        for r in batch.series:
            self.series.setdefault(r[0], dict(zip(SERIES_COLUMNS, r, strict=True)))
        self.batches.append(len(batch))

    # ---------------------------------------------------------------- reader
    async def search_logs(self, query: LogQuery) -> list[LogItem]:
        items = [i for i in map(log_item, self.logs) if log_matches(i, query)]
        items.sort(key=lambda i: (i.timestamp, i.id), reverse=True)
        return items[: query.limit]

    @staticmethod
    def _in(project_id: uuid.UUID | None, project_ids: tuple[uuid.UUID, ...] | None) -> bool:
        return project_ids is None or project_id in project_ids

    async def trace_spans(self, trace_id: str, project_ids: tuple[uuid.UUID, ...] | None) -> list[SpanItem]:
        return [
            span_item(r) for r in self.spans if r["trace_id"] == trace_id and self._in(r["project_id"], project_ids)
        ]

    async def session_logs(
        self, session_id: str, project_ids: tuple[uuid.UUID, ...] | None, limit: int
    ) -> list[LogItem]:
        rows = [r for r in self.logs if r["session_id"] == session_id and self._in(r["project_id"], project_ids)]
        rows.sort(key=lambda r: (r["ts"], r["id"]))
        return [log_item(r) for r in rows[:limit]]

    async def session_spans(
        self, session_id: str, project_ids: tuple[uuid.UUID, ...] | None, limit: int
    ) -> list[SpanItem]:
        rows = [r for r in self.spans if r["session_id"] == session_id and self._in(r["project_id"], project_ids)]
        rows.sort(key=lambda r: (r["ts"], r["id"]))
        return [span_item(r) for r in rows[:limit]]

    async def metric_series(self, query: MetricQuery) -> dict[uuid.UUID, MetricSeries]:
        out = {}
        for sid, s in self.series.items():
            if s["name"] != query.name or not self._in(s["project_id"], query.project_ids):
                continue
            labels = json.loads(s["labels"])
            if all(str(labels.get(k)) == v for k, v in query.labels):
                out[sid] = MetricSeries(
                    id=sid,
                    name=s["name"],
                    labels={k: str(v) for k, v in labels.items()},
                    metric_type=s["metric_type"],
                    project_id=s["project_id"],
                )
        return out

    async def metric_names(self, project_ids: tuple[uuid.UUID, ...] | None, limit: int) -> list[MetricName]:
        """As PostgreSQL's GROUP BY name with min(metric_type) and min(unit) (NULL units ignored)."""
        types: dict[str, list[str]] = {}
        units: dict[str, list[str]] = {}
        for s in self.series.values():
            if self._in(s["project_id"], project_ids):
                types.setdefault(s["name"], []).append(s["metric_type"])
                if s["unit"]:
                    units.setdefault(s["name"], []).append(s["unit"])
        return [MetricName(name=n, metric_type=min(types[n]), unit=min(units[n]) if n in units else None)
                for n in sorted(types)][:limit]

    async def metric_points(self, query: MetricQuery) -> list[tuple[MetricSeries, list[tuple[datetime, float]]]]:
        wanted = await self.metric_series(query)
        pts: dict[uuid.UUID, list[tuple[datetime, float]]] = {sid: [] for sid in wanted}
        for p in self.points:
            if (
                p["series_id"] in pts
                and (query.since is None or p["ts"] >= query.since)
                and (query.until is None or p["ts"] < query.until)
            ):
                pts[p["series_id"]].append((p["ts"], p["value"]))
        return [(wanted[sid], sorted(v)) for sid, v in pts.items() if v]

    # ---------------------------------------------------------------- hot archive
    def _table(self, signal: str) -> list[dict[str, Any]]:
        return {"logs": self.logs, "spans": self.spans, "points": self.points}[signal]

    async def old_days(self, signal: str, older_than: datetime) -> list[date]:
        return sorted({r["ts"].astimezone(UTC).date() for r in self._table(signal) if r["ts"] < older_than})

    async def window(
        self, signal: str, start: datetime, end: datetime, max_rows: int | None
    ) -> InMemoryHotWindow | None:
        rows = [dict(r) for r in self._table(signal) if start <= r["ts"] < end]
        if max_rows is not None and len(rows) > max_rows:
            return None
        self.windows_opened += 1
        rows.sort(key=lambda r: (str(r["project_id"]), r["ts"], r.get("id", 0)))
        parts = []
        for project_id, group in itertools.groupby(rows, key=lambda r: r["project_id"]):
            members = list(group)
            first, last = members[0], members[-1]
            parts.append(
                HotPart(
                    project_id=project_id,
                    rows=len(members),
                    first=(first["ts"], first.get("id", 0)),
                    last=(last["ts"], last.get("id", 0)),
                    data=members,
                )
            )
        return InMemoryHotWindow(self, signal, parts)

    def _commit_window(self, signal: str, files: list[ColdFile], parts: list[HotPart]) -> bool:
        if self.fail_commit is not None:
            exc, self.fail_commit = self.fail_commit, None
            raise exc
        if any(f.key in self.manifest for f in files):
            return False
        gone: set[tuple[Any, ...]] = set()
        for file, part in zip(files, parts, strict=True):
            self.manifest[file.key] = file
            keys: set[tuple[str, str]] = set()
            for r in part.data:
                if r.get("trace_id"):
                    keys.add(("trace", r["trace_id"]))
                if r.get("session_id"):
                    keys.add(("session", r["session_id"]))
                gone.add(_row_key(signal, r))
            self.cold_keys[file.key] = keys
        table = self._table(signal)
        table[:] = [r for r in table if _row_key(signal, r) not in gone]
        return True

    async def drop_empty_partitions(self, older_than: datetime) -> int:
        del older_than  # nothing is partitioned in memory
        return 0

    # ---------------------------------------------------------------- cold manifest
    async def files(
        self,
        signal: str,
        project_ids: tuple[uuid.UUID, ...] | None,
        since: datetime | None,
        until: datetime | None,
        trace_id: str | None = None,
        session_id: str | None = None,
    ) -> list[ColdFile]:
        out = []
        for key, f in self.manifest.items():
            if key in self.retired or f.signal != signal or not self._in(f.project_id, project_ids):
                continue
            if (since and f.max_ts < since) or (until and f.min_ts >= until):
                continue
            if trace_id and ("trace", trace_id) not in self.cold_keys[key]:
                continue
            if session_id and ("session", session_id) not in self.cold_keys[key]:
                continue
            out.append(f)
        return out

    async def recorded(self, keys: list[str]) -> set[str]:
        return {k for k in keys if k in self.manifest}

    async def expire(self, before: date) -> list[ColdFile]:
        gone = [f for f in self.manifest.values() if f.day < before]
        for f in gone:
            del self.manifest[f.key]
            self.cold_keys.pop(f.key, None)
            self.retired.pop(f.key, None)
        return gone


def _row_key(signal: str, row: dict[str, Any]) -> tuple[Any, ...]:
    if signal == "points":
        return (row["series_id"], row["ts"], row["value"])
    return (row["id"], row["ts"])


class InMemoryHotWindow:
    """A rotation window of the in-memory store (rows copied when opened)."""

    def __init__(self, store: InMemoryTelemetryStore, signal: str, parts: list[HotPart]) -> None:
        self._store = store
        self._signal = signal
        self.parts = parts

    async def commit(self, files: list[ColdFile]) -> bool:
        return self._store._commit_window(self._signal, files, self.parts)

    async def close(self) -> None:
        return None


class InMemoryProjectDirectory:
    """ProjectDirectory over a dict ``owner/name`` → id; ``lookups`` counts resolve calls."""

    def __init__(self, projects: dict[str, uuid.UUID] | None = None) -> None:
        self.projects = dict(projects or {})
        self._cache: dict[str, uuid.UUID | None] = {}
        self.lookups = 0

    def cached(self, path: str) -> uuid.UUID | object | None:
        return self._cache.get(path, _UNKNOWN)

    async def resolve(self, paths: set[str]) -> None:
        self.lookups += 1
        for p in paths:
            self._cache[p] = self.projects.get(p)

    async def path_of(self, project_id: uuid.UUID) -> str | None:
        return next((p for p, i in self.projects.items() if i == project_id), None)

    async def id_of(self, path: str) -> uuid.UUID | None:
        return self.projects.get(path)


_UNKNOWN = object()


class InMemoryRecentRequests:
    """RecentRequests in a dict (one process); at most ``max_keys`` remembered (oldest forgotten).
    Time is ``clock.monotonic()`` when a clock is given (tests move it), else the real monotonic clock."""

    def __init__(self, max_keys: int = 10_000, clock: Clock | None = None) -> None:
        self.keys: dict[str, float] = {}
        self.max_keys = max_keys
        self._monotonic = clock.monotonic if clock is not None else time.monotonic

    async def seen(self, key: str) -> bool:
        expires = self.keys.get(key)
        return expires is not None and expires > self._monotonic()

    async def remember(self, key: str, ttl_seconds: int) -> None:
        now = self._monotonic()
        self.keys.pop(key, None)  # remembering again makes the key the newest
        if len(self.keys) >= self.max_keys:
            self.keys = {k: t for k, t in self.keys.items() if t > now}
            while len(self.keys) >= self.max_keys:
                del self.keys[next(iter(self.keys))]
        self.keys[key] = now + ttl_seconds


class InMemoryLiveTail:
    """LiveTail fan-out inside one process. Like Valkey, every subscriber gets its own copy of each item as
    JSON carries it (a subscriber rewriting its items does not change another's; datetimes become strings)."""

    def __init__(self) -> None:
        self._subscribers: list[asyncio.Queue[dict[str, Any]]] = []
        self.published: list[dict[str, Any]] = []

    async def listening(self) -> bool:
        return bool(self._subscribers)

    async def publish(self, items: list[dict[str, Any]]) -> None:
        self.published.extend(items)
        if not self._subscribers:
            return
        wire = json.dumps(items, default=str)
        for q in self._subscribers:
            for item in json.loads(wire):
                q.put_nowait(item)

    async def subscribe(self) -> AsyncIterator[dict[str, Any]]:
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._subscribers.append(q)
        try:
            while True:
                yield await q.get()
        finally:
            self._subscribers.remove(q)


class InMemoryColdTier:
    """ColdWriter + ColdReader keeping each file's rows in a dict; ``fail_after_write`` simulates
    a crash between writing an object and recording it."""

    def __init__(self) -> None:
        self.objects: dict[str, list[dict[str, Any]]] = {}
        self.written_at: dict[str, datetime] = {}  # tests may age an object by changing it
        self.deleted: list[str] = []
        self.evicted: set[str] = set()  # keys whose (notional) local copy was dropped

    async def write(self, key: str, signal: str, rows: Any) -> int:
        del signal
        self.objects[key] = [dict(r) for r in rows]
        self.written_at[key] = datetime.now(UTC)
        return 100 * len(rows)

    async def delete(self, key: str) -> None:
        self.objects.pop(key, None)
        self.written_at.pop(key, None)
        self.deleted.append(key)

    async def list_objects(self, token: str | None = None) -> tuple[list[tuple[str, datetime]], str | None]:
        keys = [k for k in sorted(self.objects) if token is None or k > token]
        page = keys[:2]  # tiny pages: callers must follow the token (the last key, as S3's start-after)
        return [(k, self.written_at[k]) for k in page], (page[-1] if len(keys) > 2 else None)

    async def merge(self, signal: str, files: list[ColdFile], max_rows: int) -> AsyncGenerator[ColdPart, None]:
        rows: list[dict[str, Any]] = []
        for f in files:
            if f.key not in self.objects:
                raise NotFound(f"cold object {f.key} not found")
            rows.extend(self.objects[f.key])
        tiebreak = "series_id" if signal == "points" else "id"
        rows.sort(key=lambda r: (r["ts"], r[tiebreak] if tiebreak == "id" else str(r[tiebreak])))
        for chunk in _chunks(rows, max_rows):
            columns = (("t", "trace_id"), ("s", "session_id"))
            keys = {(kind, r[col]) for r in chunk for kind, col in columns if r.get(col)}
            first, last = chunk[0], chunk[-1]
            yield ColdPart(
                rows=len(chunk),
                first=(first["ts"], first.get("id", 0)),
                last=(last["ts"], last.get("id", 0)),
                keys=frozenset(keys),
                data=chunk,
            )

    async def cached(self) -> list[str]:
        return sorted(self.objects)  # every object is "local" in memory

    async def evict(self, keys: list[str]) -> None:
        self.evicted.update(keys)

    def _rows(self, files: list[ColdFile]) -> list[dict[str, Any]]:
        return [r for f in files for r in self.objects.get(f.key, [])]

    async def search_logs(self, files: list[ColdFile], query: LogQuery) -> list[LogItem]:
        items = [i for i in map(log_item, self._rows(files)) if log_matches(i, query)]
        items.sort(key=lambda i: (i.timestamp, i.id), reverse=True)
        return items[: query.limit]

    async def trace_spans(self, files: list[ColdFile], trace_id: str) -> list[SpanItem]:
        return [span_item(r) for r in self._rows(files) if r["trace_id"] == trace_id]

    async def session_logs(self, files: list[ColdFile], session_id: str, limit: int) -> list[LogItem]:
        rows = sorted((r for r in self._rows(files) if r["session_id"] == session_id), key=lambda r: (r["ts"], r["id"]))
        return [log_item(r) for r in rows[:limit]]

    async def session_spans(self, files: list[ColdFile], session_id: str, limit: int) -> list[SpanItem]:
        rows = sorted((r for r in self._rows(files) if r["session_id"] == session_id), key=lambda r: (r["ts"], r["id"]))
        return [span_item(r) for r in rows[:limit]]

    async def metric_points(
        self, files: list[ColdFile], query: MetricQuery, series: dict[uuid.UUID, MetricSeries]
    ) -> dict[uuid.UUID, list[tuple[datetime, float]]]:
        out: dict[uuid.UUID, list[tuple[datetime, float]]] = {}
        for r in self._rows(files):
            if (
                r["series_id"] in series
                and (query.since is None or r["ts"] >= query.since)
                and (query.until is None or r["ts"] < query.until)
            ):
                out.setdefault(r["series_id"], []).append((r["ts"], r["value"]))
        return out


def _chunks(rows: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


class InMemoryLeaderLock:
    """LeaderLock within one process: the first holder of a name leads."""

    def __init__(self) -> None:
        self.held: set[str] = set()

    @contextlib.asynccontextmanager
    async def lead(self, name: str) -> AsyncIterator[bool]:
        if name in self.held:
            yield False
            return
        self.held.add(name)
        try:
            yield True
        finally:
            self.held.discard(name)


class InMemoryAlertStore:
    """AlertStore in dicts; ``audit`` collects the audit entries written with mutations (and, given
    ``audit_log`` — the platform's units of work on the memory profile — they are also recorded in its audit
    log, as PostgreSQL writes them to audit_log), ``notices`` the (rule, event) transitions handed to the
    notifications (the outbox). Set ``fail_transition`` to an exception to make the next ``record_transition``
    fail (as a crash would: nothing written)."""

    def __init__(self, audit_log: UnitOfWorkFactory | None = None) -> None:
        self.rules: dict[uuid.UUID, AlertRule] = {}
        self.events: list[AlertEvent] = []
        self.audit: list[AuditEntry] = []
        self.notices: list[tuple[AlertRule, AlertEvent]] = []
        self.fail_transition: Exception | None = None
        self._audit_log = audit_log

    async def _record(self, entry: AuditEntry) -> None:
        self.audit.append(entry)
        if self._audit_log is not None:
            async with self._audit_log() as uow:
                await uow.audit.record(entry)
                await uow.commit()

    async def add_rule(self, rule: AlertRule, audit: AuditEntry) -> None:
        self.rules[rule.id] = rule
        await self._record(audit)

    async def get_rule(self, rule_id: uuid.UUID) -> AlertRule:
        if rule_id not in self.rules:
            raise NotFound(f"alert rule {rule_id} not found")
        return self.rules[rule_id]

    async def list_rules(
        self, project_ids: tuple[uuid.UUID, ...] | None, *, enabled_only: bool = False
    ) -> list[AlertRule]:
        rules = [r for r in self.rules.values() if project_ids is None or r.project_id in project_ids]
        return sorted((r for r in rules if r.enabled or not enabled_only), key=lambda r: (r.created_at, r.id))

    async def update_rule(self, rule: AlertRule, audit: AuditEntry | None = None) -> None:
        await self.get_rule(rule.id)
        self.rules[rule.id] = rule
        if audit is not None:
            await self._record(audit)

    async def delete_rule(self, rule_id: uuid.UUID, audit: AuditEntry) -> None:
        await self.get_rule(rule_id)
        del self.rules[rule_id]
        self.events = [e for e in self.events if e.rule_id != rule_id]
        await self._record(audit)

    async def add_event(self, event: AlertEvent) -> None:
        self.events.append(event)

    async def record_transition(
        self, rule: AlertRule, event: AlertEvent, resolve_event_id: uuid.UUID | None = None
    ) -> None:
        stored = await self.get_rule(rule.id)
        if stored.firing_event_id != resolve_event_id:
            raise Conflict(f"alert rule {rule.id} changed state meanwhile")
        if self.fail_transition is not None:
            exc, self.fail_transition = self.fail_transition, None
            raise exc
        if resolve_event_id is not None:
            await self.resolve_event(resolve_event_id, event.created_at)
        self.events.append(event)
        self.rules[rule.id] = attrs.evolve(
            stored, pending_since=rule.pending_since, firing_event_id=rule.firing_event_id
        )
        self.notices.append((rule, event))

    async def resolve_event(self, event_id: uuid.UUID, resolved_at: datetime) -> None:
        self.events = [
            attrs.evolve(e, resolved_at=resolved_at) if e.id == event_id and e.resolved_at is None else e
            for e in self.events
        ]

    async def list_events(
        self, project_ids: tuple[uuid.UUID, ...] | None, status: str | None, limit: int
    ) -> list[AlertEvent]:
        events = [
            e
            for e in self.events
            if (project_ids is None or e.project_id in project_ids) and (status is None or e.status == status)
        ]
        return sorted(events, key=lambda e: (e.created_at, e.id), reverse=True)[:limit]
