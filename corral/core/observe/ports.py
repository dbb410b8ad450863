"""Ports of the observability domain."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AbstractAsyncContextManager
from datetime import date, datetime
from typing import Any, Protocol

import attrs

from corral.core.audit.model import AuditEntry
from corral.core.observe.model import (
    AlertEvent,
    AlertRule,
    Caller,
    LogItem,
    LogQuery,
    MetricName,
    MetricQuery,
    MetricSeries,
    SessionMessage,
    SpanItem,
    TelemetryBatch,
)

__all__ = [
    "SIGNALS",
    "AlertStore",
    "ColdCache",
    "ColdCompactionManifest",
    "ColdFile",
    "ColdGroup",
    "ColdManifest",
    "ColdMerger",
    "ColdPart",
    "ColdReader",
    "ColdWriter",
    "HotArchive",
    "HotPart",
    "HotWindow",
    "LeaderLock",
    "LiveTail",
    "ProjectDirectory",
    "RecentRequests",
    "SessionMessages",
    "TelemetryDecoder",
    "TelemetryReader",
    "TelemetryWriter",
]

SIGNALS = ("logs", "spans", "points")


class TelemetryWriter(Protocol):
    """Durable storage of decoded telemetry (the hot tier)."""

    async def write(self, batch: TelemetryBatch) -> None:
        """Store every row of ``batch`` atomically; return only once committed.

        Series rows may already exist (their ids are deterministic): they are
        then left as they are. Raises Unavailable when storage cannot be reached.
        """
        ...


class TelemetryDecoder(Protocol):
    """Turns an OTLP export request body into a TelemetryBatch (envelope resolved, rows ready).

    ``signal`` is "logs", "traces" or "metrics"; ``content_type`` the protobuf or JSON media
    type. Raises InvalidInput (naming the reason) for a malformed body. Records the caller may
    not write are counted in ``rejected`` with ``error_message``, never raised. Implementations
    may return rows already encoded for the writer's bulk load (``TelemetryBatch.encoded``);
    ``tail`` asks for a sample of the newest log rows in ``tail_logs`` as well.
    """

    async def decode(
        self, signal: str, body: bytes, content_type: str, caller: Caller, *, tail: bool = False
    ) -> TelemetryBatch: ...

    async def aclose(self) -> None:
        """Release worker processes, if any."""
        ...


class RecentRequests(Protocol):
    """A short-lived memory of the export requests already stored, by fingerprint, so a client
    retrying a request whose answer it lost does not store its records twice."""

    async def seen(self, key: str) -> bool:
        """True when ``key`` was remembered and has not expired. Never raises (False on trouble)."""
        ...

    async def remember(self, key: str, ttl_seconds: int) -> None:
        """Remember ``key`` for ``ttl_seconds``. Never raises."""
        ...


class TelemetryReader(Protocol):
    """Reads one tier. Every method filters by ``project_ids`` when given (None: all projects)."""

    async def search_logs(self, query: LogQuery) -> list[LogItem]:
        """Up to ``query.limit`` matching records strictly after ``query.cursor``,
        ordered newest first by (timestamp, id)."""
        ...

    async def trace_spans(self, trace_id: str, project_ids: tuple[uuid.UUID, ...] | None) -> list[SpanItem]:
        """Every span of the trace (any order)."""
        ...

    async def session_logs(
        self, session_id: str, project_ids: tuple[uuid.UUID, ...] | None, limit: int
    ) -> list[LogItem]:
        """Up to ``limit`` log records of the session, oldest first."""
        ...

    async def session_spans(
        self, session_id: str, project_ids: tuple[uuid.UUID, ...] | None, limit: int
    ) -> list[SpanItem]:
        """Up to ``limit`` spans of the session, oldest first."""
        ...

    async def metric_series(self, query: MetricQuery) -> dict[uuid.UUID, MetricSeries]:
        """The catalog entries named ``query.name`` whose labels include ``query.labels``
        (the catalog outlives the hot points: cold points are looked up through it)."""
        ...

    async def metric_points(self, query: MetricQuery) -> list[tuple[MetricSeries, list[tuple[datetime, float]]]]:
        """Raw points of every series named ``query.name`` whose labels include
        ``query.labels``, inside [since, until), each series' points in time order."""
        ...

    async def metric_names(self, project_ids: tuple[uuid.UUID, ...] | None, limit: int) -> list[MetricName]:
        """Up to ``limit`` distinct metric names of the catalog, in name order."""
        ...


class SessionMessages(Protocol):
    """The messages of an agent session, provided by the domain that runs sessions (observe does not know it).

    ``messages`` answers the first ``limit`` messages of the session oldest first, or [] when there is no such
    session or it is not in ``project_ids`` (None: any project).
    """

    async def messages(self, session_id: str, project_ids: tuple[uuid.UUID, ...] | None,
                       limit: int) -> list[SessionMessage]: ...


class ProjectDirectory(Protocol):
    """Maps ``owner/name`` paths to project ids and back (cached: it is asked on the ingest path)."""

    def cached(self, path: str) -> uuid.UUID | object | None:
        """The id if known, None if known not to exist, any other object if not looked up yet."""
        ...

    async def resolve(self, paths: set[str]) -> None:
        """Look the paths up so that ``cached`` answers them."""
        ...

    async def path_of(self, project_id: uuid.UUID) -> str | None:
        """``owner/name`` of a project id, or None when unknown."""
        ...

    async def id_of(self, path: str) -> uuid.UUID | None:
        """The project id of ``owner/name``, or None when there is no such project."""
        ...


@attrs.frozen
class ColdFile:
    """One Parquet file of the cold tier, as recorded in the manifest."""

    id: uuid.UUID
    signal: str
    day: date
    project_id: uuid.UUID | None
    key: str
    rows: int
    min_ts: datetime
    max_ts: datetime
    bytes: int


@attrs.frozen
class HotPart:
    """The rows of one project within a hot window, sorted by time (ts, then id).

    ``data`` is the archive adapter's own batch of those rows (opaque to the core: a list of
    dict rows, an Arrow table ...), handed unchanged to ``ColdWriter.write``. ``first`` and
    ``last`` are the (ts, id) of the first and last row (id 0 for metric points)."""

    project_id: uuid.UUID | None
    rows: int
    first: tuple[datetime, int]
    last: tuple[datetime, int]
    data: Any = attrs.field(repr=False, eq=False)


class HotWindow(Protocol):
    """Every row of one signal in a time range, read in ONE database snapshot and held open until
    ``commit`` or ``close``, grouped by project."""

    parts: list[HotPart]

    async def commit(self, files: list[ColdFile]) -> bool:
        """``files[i]`` holds ``parts[i]``. In the snapshot's transaction: record every file in the
        manifest with its trace/session lookup keys and delete exactly the rows read (rows
        written into the range since the snapshot stay hot), then commit. Returns False (and
        changes nothing) when a file was already recorded."""
        ...

    async def close(self) -> None:
        """Release the snapshot; without a commit nothing changes. Safe to call twice."""
        ...


class HotArchive(Protocol):
    """The rotation side of the hot tier: what is old, and moving it out atomically."""

    async def old_days(self, signal: str, older_than: datetime) -> list[date]:
        """The UTC days that still hold rows of ``signal`` older than ``older_than``, oldest first."""
        ...

    async def window(self, signal: str, start: datetime, end: datetime, max_rows: int | None) -> HotWindow | None:
        """Open a snapshot of every row of ``signal`` with ``start <= ts < end`` (the caller must
        ``close`` it). None (and nothing held) when the range holds more than ``max_rows`` rows."""
        ...

    async def drop_empty_partitions(self, older_than: datetime) -> int:
        """Drop hot time partitions that lie wholly before ``older_than`` and are empty."""
        ...


class ColdManifest(Protocol):
    """Which Parquet files hold what (PostgreSQL table; small)."""

    async def files(
        self,
        signal: str,
        project_ids: tuple[uuid.UUID, ...] | None,
        since: datetime | None,
        until: datetime | None,
        trace_id: str | None = None,
        session_id: str | None = None,
    ) -> list[ColdFile]:
        """Files that may hold matching rows (a trace/session id narrows by the lookup index)."""
        ...

    async def expire(self, before: date) -> list[ColdFile]:
        """Forget every file of a day before ``before`` and return them (to delete the objects)."""
        ...

    async def recorded(self, keys: list[str]) -> set[str]:
        """Which of ``keys`` the manifest lists (the others are no file of the cold tier)."""
        ...


@attrs.frozen
class ColdGroup:
    """The files of one (signal, UTC day, project) worth compacting, ordered by ``min_ts`` (then key)."""

    signal: str
    day: date
    project_id: uuid.UUID | None
    files: tuple[ColdFile, ...]


@attrs.frozen
class ColdPart:
    """Rows merged from cold files, sorted by time as a rotation sorts them, to become one file.

    ``data`` is the merger's own batch (opaque to the core), handed unchanged to
    ``ColdWriter.write``; ``first``/``last`` are the (ts, id) of its first and last row (id 0 for
    metric points); ``keys`` its lookup keys: ("t", trace id) and ("s", session id) of its rows."""

    rows: int
    first: tuple[datetime, int]
    last: tuple[datetime, int]
    keys: frozenset[tuple[str, str]]
    data: Any = attrs.field(repr=False, eq=False)


class ColdCompactionManifest(Protocol):
    """The manifest side of compacting the cold tier: which files to merge, swapping them for the
    merged files atomically, and forgetting retired files once no query can still be reading them.

    A RETIRED file is no longer listed by ``ColdManifest.files`` (nor found through its lookup
    keys) but ``ColdManifest.recorded`` still knows its key, so the orphan sweep leaves its object
    alone; ``ColdManifest.expire`` forgets retired files of expired days like any other."""

    async def compactable(
        self, signal: str, before: date, max_rows: int, min_files: int, limit: int
    ) -> list[ColdGroup]:
        """Up to ``limit`` groups of ``signal`` (oldest day first), each holding the listed files of
        one (day, project) with a day before ``before`` and fewer than ``max_rows`` rows, when
        there are at least ``min_files`` of them."""
        ...

    async def replace(
        self, old: list[ColdFile], new: list[ColdFile], keys: list[frozenset[tuple[str, str]]], retired_at: datetime
    ) -> bool:
        """In ONE transaction: lock the ``old`` files, record every ``new`` file (``keys[i]`` are
        the lookup keys of ``new[i]``) and retire the old ones as of ``retired_at``. Returns False,
        changing nothing, when an old file is no longer listed (expired or retired meanwhile) or a
        new key is already recorded. With ``old`` empty it just records the new files."""
        ...

    async def purge_retired(self, retired_before: datetime) -> list[ColdFile]:
        """Forget (with their lookup keys) the files retired before ``retired_before`` and return
        them, so their objects can be deleted."""
        ...


class ColdMerger(Protocol):
    """Reads cold files back to merge them (off the event loop)."""

    def merge(self, signal: str, files: list[ColdFile], max_rows: int) -> AsyncGenerator[ColdPart, None]:
        """The rows of ``files`` (given by ``min_ts``) as parts of exactly ``max_rows`` rows but the
        last, each sorted by time (ts, then id; series id for points), yielded as soon as they
        fill. Parts follow one another in time (no overlap) unless that would mean holding more
        than about twice ``max_rows`` rows (files overlapping in time); memory stays within that.
        Every row of every file comes out exactly once. Raises NotFound when an object is missing."""
        ...


class ColdCache(Protocol):
    """This replica's local copies of cold objects (kept to answer queries without a download)."""

    async def cached(self) -> list[str]:
        """The keys of the objects with a local copy."""
        ...

    async def evict(self, keys: list[str]) -> None:
        """Drop the local copies of ``keys`` (missing ones are fine)."""
        ...


class ColdWriter(Protocol):
    """Encodes rows into one zstd Parquet object."""

    async def write(self, key: str, signal: str, rows: Any) -> int:
        """Write ``rows`` (sorted by time: a ``HotPart.data`` of the archive) as Parquet under
        ``key``, replacing any object of that key; returns the size in bytes."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object (missing is fine)."""
        ...

    async def list_objects(self, token: str | None = None) -> tuple[list[tuple[str, datetime]], str | None]:
        """One page of the cold tier's objects as (key, last modified), and the token of the next
        page (None on the last). Paging visits every object once."""
        ...


class ColdReader(Protocol):
    """Queries over a set of Parquet files (off the event loop)."""

    async def search_logs(self, files: list[ColdFile], query: LogQuery) -> list[LogItem]: ...

    async def trace_spans(self, files: list[ColdFile], trace_id: str) -> list[SpanItem]: ...

    async def session_logs(self, files: list[ColdFile], session_id: str, limit: int) -> list[LogItem]: ...

    async def session_spans(self, files: list[ColdFile], session_id: str, limit: int) -> list[SpanItem]: ...

    async def metric_points(
        self, files: list[ColdFile], query: MetricQuery, series: dict[uuid.UUID, MetricSeries]
    ) -> dict[uuid.UUID, list[tuple[datetime, float]]]: ...


class LeaderLock(Protocol):
    """At most one holder across every replica (PostgreSQL advisory lock)."""

    def lead(self, name: str) -> AbstractAsyncContextManager[bool]:
        """Async context: True while this process is the leader for ``name``,
        False when another process is; released on exit or when the process dies."""
        ...


class LiveTail(Protocol):
    """Fan-out of freshly committed log records to live subscribers (Valkey pub/sub)."""

    async def listening(self) -> bool:
        """Whether anyone subscribes anywhere (cheap; may be a second stale), so that a busy
        ingest builds no tail items for nobody."""
        ...

    async def publish(self, items: list[dict[str, Any]]) -> None:
        """Publish records (already committed) to every subscriber; best effort."""
        ...

    def subscribe(self) -> AsyncIterator[dict[str, Any]]:
        """Records published from now on, from any replica."""
        ...


class AlertStore(Protocol):
    """Alert rules, their evaluator state and their events."""

    async def add_rule(self, rule: AlertRule, audit: AuditEntry) -> None:
        """Store a new rule and its audit entry atomically."""
        ...

    async def get_rule(self, rule_id: uuid.UUID) -> AlertRule:
        """NotFound if absent."""
        ...

    async def list_rules(
        self, project_ids: tuple[uuid.UUID, ...] | None, *, enabled_only: bool = False
    ) -> list[AlertRule]:
        """Rules of these projects plus (when project_ids is None) platform-wide ones, oldest first."""
        ...

    async def update_rule(self, rule: AlertRule, audit: AuditEntry | None = None) -> None:
        """Replace the stored rule (same id), with its audit entry when given (evaluator state
        changes are not audited). NotFound if absent."""
        ...

    async def delete_rule(self, rule_id: uuid.UUID, audit: AuditEntry) -> None:
        """NotFound if absent; its events go with it. Audited atomically."""
        ...

    async def add_event(self, event: AlertEvent) -> None: ...

    async def record_transition(
        self, rule: AlertRule, event: AlertEvent, resolve_event_id: uuid.UUID | None = None
    ) -> None:
        """One alert transition as a single unit of work, all or nothing: mark ``resolve_event_id``
        (the firing event being resolved) resolved at ``event.created_at``, add ``event``, save the
        rule's evaluation state (``pending_since``, ``firing_event_id`` of ``rule``) and add the
        ``alert_firing`` / ``alert_resolved`` outbox event that hands it to the notifications.

        Raises Conflict, writing nothing, when the stored rule's ``firing_event_id`` is no longer
        ``resolve_event_id`` (another evaluator got there first, or the rule was edited)."""
        ...

    async def resolve_event(self, event_id: uuid.UUID, resolved_at: datetime) -> None: ...

    async def list_events(
        self, project_ids: tuple[uuid.UUID, ...] | None, status: str | None, limit: int
    ) -> list[AlertEvent]:
        """Newest first."""
        ...
