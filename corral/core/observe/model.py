"""Telemetry rows, query filters, results and alert rules.

Ingest is the hottest path in Corral, so decoded records travel as plain
tuples in the column order fixed here (``LOG_COLUMNS`` ...): building one
attrs instance per record would cost more than decoding it. Query results
are attrs value objects.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

import attrs

from corral.core.safetext import clean_json_text, clean_text

__all__ = [
    "LEVELS",
    "LOG_COLUMNS",
    "POINT_COLUMNS",
    "SERIES_COLUMNS",
    "SPAN_COLUMNS",
    "AlertCondition",
    "AlertEvent",
    "AlertRule",
    "AlertSeverity",
    "Caller",
    "LogItem",
    "LogQuery",
    "MetricAgg",
    "MetricQuery",
    "MetricSeries",
    "SeriesPoints",
    "SessionMessage",
    "SpanItem",
    "TelemetryBatch",
    "TimelineItem",
    "clean_batch",
    "clean_rows",
]

LEVELS = ("trace", "debug", "info", "warn", "error", "fatal")

# Column order of the tuples the codec produces and the stores write (COPY order).
LOG_COLUMNS = (
    "id",  # int: time-ordered 64-bit id (tiebreaker for cursors)
    "ts",  # datetime (UTC)
    "trace_id",  # str | None, 32 hex
    "span_id",  # str | None, 16 hex
    "project_id",  # uuid.UUID | None
    "session_id",  # str | None
    "user_id",  # uuid.UUID | None
    "service",  # str
    "level",  # one of LEVELS
    "message",  # str
    "attributes",  # str: a JSON object (record attributes, plus non-envelope resource attributes)
)
SPAN_COLUMNS = (
    "id",
    "ts",  # start time
    "trace_id",
    "span_id",
    "parent_span_id",  # str | None
    "project_id",
    "session_id",
    "user_id",
    "service",
    "name",
    "kind",  # internal/server/client/producer/consumer
    "status",  # ok/error/unset
    "duration_ms",  # float
    "attributes",  # JSON text
    "events",  # JSON text (a list)
)
POINT_COLUMNS = (
    "series_id",  # uuid.UUID, derived deterministically from SERIES identity
    "ts",
    "value",  # float
    "project_id",
    "trace_id",  # from the first exemplar, if any
    "span_id",
)
SERIES_COLUMNS = (
    "id",
    "name",
    "labels",  # JSON text, keys sorted
    "metric_type",  # gauge/counter/histogram/summary
    "unit",
    "project_id",
    "service",
    "session_id",
    "user_id",
)


@attrs.frozen
class Caller:
    """Who is writing telemetry: the defaults and limits taken from the API token.

    ``project_id`` is the project the token is restricted to (None: any);
    ``default_project_id`` is used for records that name no project.
    """

    user_id: uuid.UUID | None = None
    project_id: uuid.UUID | None = None
    default_project_id: uuid.UUID | None = None


@attrs.define
class TelemetryBatch:
    """Rows decoded from one OTLP request (or merged from several)."""

    logs: list[tuple[Any, ...]] = attrs.Factory(list)
    spans: list[tuple[Any, ...]] = attrs.Factory(list)
    points: list[tuple[Any, ...]] = attrs.Factory(list)
    series: list[tuple[Any, ...]] = attrs.Factory(list)
    rejected: int = 0
    error_message: str = ""
    # Rows already encoded for the store's bulk load (PostgreSQL binary COPY, without header and
    # trailer) by a decoder process: signal ("logs", "spans", "points") -> chunks. Counted in
    # ``encoded_records``; ``project_ids`` names their projects (for authorization).
    encoded: dict[str, list[bytes]] = attrs.Factory(dict)
    encoded_records: int = 0
    project_ids: set[uuid.UUID | None] = attrs.Factory(set)
    # A sample of the newest log rows (LOG_COLUMNS order) for the live tail only: never written.
    tail_logs: list[tuple[Any, ...]] = attrs.Factory(list)

    def __len__(self) -> int:
        return len(self.logs) + len(self.spans) + len(self.points) + self.encoded_records

    def extend(self, other: TelemetryBatch) -> None:
        self.logs.extend(other.logs)
        self.spans.extend(other.spans)
        self.points.extend(other.points)
        self.series.extend(other.series)
        for signal, chunks in other.encoded.items():
            self.encoded.setdefault(signal, []).extend(chunks)
        self.encoded_records += other.encoded_records
        self.project_ids.update(other.project_ids)
        self.tail_logs.extend(other.tail_logs)

    def copy(self) -> TelemetryBatch:
        """A batch with its own lists (merging into it leaves this one unchanged)."""
        out = TelemetryBatch(rejected=self.rejected, error_message=self.error_message)
        out.extend(self)
        return out


# ---------------------------------------------------------------- queries


@attrs.frozen
class LogQuery:
    """Log search filters; every given filter must hold. Newest first."""

    project_ids: tuple[uuid.UUID, ...] | None = None  # None: every project (admin)
    trace_id: str | None = None
    session_id: str | None = None
    service: str | None = None
    levels: tuple[str, ...] = ()  # any of these levels
    q: str | None = None  # case-insensitive substring of the message
    attributes: tuple[tuple[str, str], ...] = ()  # equality on attributes (dotted path into nested objects)
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100
    cursor: tuple[datetime, int] | None = None  # (ts, id) of the last item already returned


@attrs.frozen
class LogItem:
    id: int
    timestamp: datetime
    level: str
    message: str
    service: str
    trace_id: str | None
    span_id: str | None
    session_id: str | None
    project_id: uuid.UUID | None
    user_id: uuid.UUID | None
    attributes: dict[str, Any]


@attrs.frozen
class SpanItem:
    id: int
    start: datetime
    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    service: str
    kind: str
    status: str
    duration_ms: float
    project_id: uuid.UUID | None
    session_id: str | None
    user_id: uuid.UUID | None
    attributes: dict[str, Any]
    events: list[Any]


@attrs.frozen(kw_only=True)
class SessionMessage:
    """One message of an agent session (what the agent and its users said and did), for the session timeline.
    ``id`` numbers the session's messages from 1."""

    id: int
    timestamp: datetime
    type: str
    role: str
    content: str
    metadata: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class TimelineItem:
    """One log or span of a session, for the session timeline."""

    kind: str  # 'log' or 'span'
    timestamp: datetime
    log: LogItem | None = None
    span: SpanItem | None = None


class MetricAgg(enum.StrEnum):
    AVG = "avg"
    SUM = "sum"
    MIN = "min"
    MAX = "max"
    RATE = "rate"
    P50 = "p50"
    P95 = "p95"
    P99 = "p99"


@attrs.frozen
class MetricQuery:
    name: str
    project_ids: tuple[uuid.UUID, ...] | None = None
    labels: tuple[tuple[str, str], ...] = ()
    agg: MetricAgg = MetricAgg.AVG
    step_seconds: int = 60
    since: datetime | None = None
    until: datetime | None = None


@attrs.frozen
class MetricSeries:
    """A series' identity: its name, labels and envelope."""

    id: uuid.UUID
    name: str
    labels: dict[str, str]
    metric_type: str
    project_id: uuid.UUID | None


@attrs.frozen
class MetricName:
    """A metric name the catalog knows, with its type and unit (of its first series)."""

    name: str
    metric_type: str
    unit: str | None


@attrs.frozen
class SeriesPoints:
    labels: dict[str, str]
    points: list[tuple[datetime, float]]


# ---------------------------------------------------------------- alerts


class AlertCondition(enum.StrEnum):
    GT = "gt"
    LT = "lt"
    EQ = "eq"
    ABSENT = "absent"


class AlertSeverity(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


@attrs.frozen
class AlertRule:
    """A threshold rule over a metric or log query.

    ``query`` is ``metric:<name>[{k=v,...}][ agg]`` (value: the aggregate of the
    metric over the last ``window_seconds``) or ``logs:<filter>`` (value: the
    number of matching log records in the window), see alerts.parse_rule_query.
    """

    id: uuid.UUID
    name: str
    query: str
    condition: AlertCondition
    threshold: float | None
    for_seconds: int
    severity: AlertSeverity
    notify_channels: tuple[str, ...]
    project_id: uuid.UUID | None
    enabled: bool
    created_at: datetime
    description: str | None = None
    created_by: uuid.UUID | None = None
    # evaluator state
    pending_since: datetime | None = None
    firing_event_id: uuid.UUID | None = None


@attrs.frozen
class AlertEvent:
    id: uuid.UUID
    rule_id: uuid.UUID
    status: str  # 'firing' | 'resolved'
    value: float | None
    message: str
    created_at: datetime
    resolved_at: datetime | None = None
    project_id: uuid.UUID | None = None


_JSON_COLUMNS = frozenset({"attributes", "events", "labels"})


def clean_rows(rows: list[tuple[Any, ...]], columns: tuple[str, ...]) -> list[tuple[Any, ...]]:
    """``rows`` with every text value storable: NUL and unpaired surrogates (raw, or escaped in the JSON
    columns) become U+FFFD. PostgreSQL refuses both, and one such value would fail its whole batch."""
    json_at = frozenset(i for i, c in enumerate(columns) if c in _JSON_COLUMNS)
    out: list[tuple[Any, ...]] = []
    for row in rows:
        out.append(tuple(
            (clean_json_text(v) if i in json_at else clean_text(v)) if isinstance(v, str) else v
            for i, v in enumerate(row)
        ))
    return out


def clean_batch(batch: TelemetryBatch) -> TelemetryBatch:
    """A copy of ``batch`` whose row tuples hold only storable text (``clean_rows``); encoded chunks are shared."""
    return attrs.evolve(
        batch,
        logs=clean_rows(batch.logs, LOG_COLUMNS),
        spans=clean_rows(batch.spans, SPAN_COLUMNS),
        points=clean_rows(batch.points, POINT_COLUMNS),
        series=clean_rows(batch.series, SERIES_COLUMNS),
        encoded={k: list(v) for k, v in batch.encoded.items()},
        project_ids=set(batch.project_ids),
        tail_logs=list(batch.tail_logs),
    )
