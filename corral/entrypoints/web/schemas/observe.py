"""Query parameters, bodies and response shapes of the telemetry query API, the live tail and the alert rules.

The query classes accept the spellings the API has always documented (durations like ``15m`` beside ISO-8601
times, ``level=warn,error``, repeated ``attr=key:value``, ``labels=k:v,k2:v2``, ``step=30s`` or ``step=30``);
a malformed value is a 400 naming its parameter, raised when the class is built from the query string.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import attrs

from corral.core.errors import InvalidInput
from corral.core.observe.commands import Channel
from corral.core.observe.model import LEVELS, AlertCondition, AlertSeverity, LogQuery, MetricAgg, MetricQuery
from corral.core.observe.query import parse_cursor
from corral.core.pagination import clamp_limit
from corral.entrypoints.web.operation import query_param

__all__ = [
    "AlertEventOut", "AlertEventParams", "AlertRuleCreate", "AlertRuleOut", "CompactionOut", "LogParams",
    "LogRecordOut", "MetricParams", "MetricSeriesOut", "MetricsOut", "ProjectParams", "RotateParams",
    "RotationOut", "SessionTimelineOut", "SpanOut", "TailParams", "TimelineLogOut", "TimelineMessageOut",
    "TimelineParams",
    "TimelineSpanOut", "TraceOut", "WaterfallSpanOut", "duration", "trace_id_of",
]

Level = Literal["trace", "debug", "info", "warn", "error", "fatal"]
_HEX32 = re.compile(r"^[0-9a-fA-F]{32}$")
_DURATION = re.compile(r"^(\d{1,9})(s|m|h|d)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_TIME_DOC = "ISO-8601 time or a duration back from now (15m, 2h, 7d)"


def duration(text: str) -> timedelta | None:
    """``15m`` → 15 minutes; None when ``text`` is not a duration (s, m, h or d)."""
    m = _DURATION.match(text)
    return timedelta(seconds=int(m.group(1)) * _UNIT_SECONDS[m.group(2)]) if m else None


def trace_id_of(value: str | None, field: str = "trace_id") -> str | None:
    """A trace id in its canonical lower-case form; anything but 32 hex characters is a 400 naming ``field``."""
    if not value:
        return None
    if not _HEX32.match(value):
        raise InvalidInput(f"{field} must be 32 hexadecimal characters", field=field)
    return value.lower()


def _check_time(_instance: object, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value:
        _time_of(value, attribute.name, datetime.now(UTC))


def _time_of(raw: str | None, name: str, now: datetime) -> datetime | None:
    if not raw:
        return None
    back = duration(raw)
    if back is not None:
        return now - back
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{name} must be an ISO-8601 time or a duration like 15m", field=name) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _check_trace_id(_instance: object, attribute: attrs.Attribute[Any], value: str | None) -> None:
    trace_id_of(value, attribute.name)


def _levels(raw: str | None) -> tuple[str, ...]:
    levels = tuple(v.strip() for v in (raw or "").split(",") if v.strip())
    if any(v not in LEVELS for v in levels):
        raise InvalidInput(f"level must be among {', '.join(LEVELS)}", field="level")
    return levels


def _check_levels(_instance: object, _attribute: attrs.Attribute[Any], value: str | None) -> None:
    _levels(value)


def _time_param(doc: str = _TIME_DOC) -> Any:
    return attrs.field(default=None, metadata=query_param(doc=doc).metadata, validator=_check_time)


@attrs.frozen
class ProjectParams:
    """The project a telemetry read is about."""

    project: str | None = query_param(
        doc="owner/name (or id); without it the platform-wide permission is needed")


@attrs.frozen
class LogFilterParams(ProjectParams):
    """Filters shared by the log search and the live tail."""

    trace_id: str | None = attrs.field(default=None, validator=_check_trace_id,
                                       metadata=query_param(doc="32 hex characters").metadata)
    session_id: str | None = query_param(doc="agent session id")
    service: str | None = query_param(doc="service.name")
    level: str | None = attrs.field(default=None, validator=_check_levels, metadata=query_param(
        doc="one or more levels, comma-separated: " + ", ".join(LEVELS)).metadata)
    q: str | None = query_param(doc="case-insensitive text in the message")

    def levels(self) -> tuple[str, ...]:
        return _levels(self.level)


@attrs.frozen
class TailParams(LogFilterParams):
    """Which new log records the live tail sends."""


def _check_attrs(_instance: object, _attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    for raw in value:
        key, sep, _ = raw.partition(":")
        if not sep or not key:
            raise InvalidInput("attr must be key:value (key may be a/b/c for nested objects)", field="attr")


@attrs.frozen
class LogParams(LogFilterParams):
    """The log search: every given filter must hold."""

    attr: tuple[str, ...] = attrs.field(default=(), validator=_check_attrs, metadata=query_param(
        doc="key:value attribute equality (repeatable; a/b/c reaches nested keys)").metadata)
    since: str | None = _time_param()
    until: str | None = _time_param()
    limit: int | None = query_param(doc="1-500, default 100", minimum=1, maximum=500)
    cursor: str | None = query_param(doc="next_cursor of the previous page")

    def to_query(self, project_ids: tuple[uuid.UUID, ...] | None, now: datetime) -> LogQuery:
        """The core query; a cursor that was not made by Corral is a 400 naming ``cursor``."""
        return LogQuery(
            project_ids=project_ids,
            trace_id=trace_id_of(self.trace_id),
            session_id=self.session_id or None,
            service=self.service or None,
            levels=self.levels(),
            q=self.q or None,
            attributes=tuple((k, v) for k, _, v in (a.partition(":") for a in self.attr)),
            since=_time_of(self.since, "since", now),
            until=_time_of(self.until, "until", now),
            limit=clamp_limit(self.limit if self.limit is not None else 100),
            cursor=parse_cursor(self.cursor or None),
        )


def _labels(raw: str | None) -> tuple[tuple[str, str], ...]:
    out = []
    for pair in filter(None, (raw or "").split(",")):
        key, sep, value = pair.partition(":")
        if not sep or not key:
            raise InvalidInput("labels must be k:v,k2:v2", field="labels")
        out.append((key.strip(), value.strip()))
    return tuple(out)


def _step(raw: str | None) -> int:
    if not raw:
        return 60
    back = duration(raw)
    if back is not None:
        step = int(back.total_seconds())
    elif raw.isascii() and raw.lstrip("-").isdigit() and len(raw) <= 10:
        step = int(raw)
    else:
        raise InvalidInput("step must be a number of seconds or a duration like 30s, 5m or 1h", field="step")
    if step < 1:
        raise InvalidInput("step must be at least 1 second", field="step")
    return step


@attrs.frozen(kw_only=True)
class MetricParams(ProjectParams):
    """A metric's series, aggregated per step."""

    name: str = attrs.field(metadata={"doc": "metric name"})
    labels: str | None = attrs.field(default=None, validator=lambda _i, _a, v: _labels(v),
                                     metadata=query_param(doc="k:v,k2:v2 label filters").metadata)
    agg: MetricAgg | None = query_param(doc="aggregation per step (default avg)")
    step: str | None = attrs.field(default=None, validator=lambda _i, _a, v: _step(v), metadata=query_param(
        doc="bucket size: seconds, or a duration like 30s, 5m, 1h (default 60)").metadata)
    since: str | None = _time_param()
    until: str | None = _time_param()

    def to_query(self, project_ids: tuple[uuid.UUID, ...] | None, now: datetime) -> MetricQuery:
        if not self.name:
            raise InvalidInput("name is required", field="name")
        return MetricQuery(
            name=self.name, project_ids=project_ids, labels=_labels(self.labels), agg=self.agg or MetricAgg.AVG,
            step_seconds=_step(self.step), since=_time_of(self.since, "since", now),
            until=_time_of(self.until, "until", now),
        )


@attrs.frozen
class TimelineParams(ProjectParams):
    """How much of a session's timeline."""

    limit: int | None = query_param(doc="per kind (logs, spans), 1-10000, default 1000", minimum=1, maximum=10_000)


def _check_older_than(_instance: object, _attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value and duration(value) is None:
        raise InvalidInput("older_than must look like 0s, 15m or 2h", field="older_than")


@attrs.frozen
class RotateParams:
    """What a forced rotation moves to the cold tier."""

    older_than: str | None = attrs.field(default=None, validator=_check_older_than, metadata=query_param(
        doc="rotate rows older than this (e.g. 0s, 1h); default: the hot retention").metadata)


@attrs.frozen
class AlertEventParams(ProjectParams):
    """Which alert events."""

    status: Literal["firing", "resolved"] | None = query_param(doc="firing or resolved (default: both)")
    limit: int | None = query_param(doc="1-500, default 100", minimum=1, maximum=500)


# ------------------------------------------------------------------------------------------- bodies


@attrs.frozen(kw_only=True)
class AlertRuleCreate:
    """Create an alert rule (query: metric:name{k=v} agg window | logs: level=error window=5m)."""

    name: str
    query: str = attrs.field(metadata={"doc": "metric:name{k=v} agg window | logs: level=error service=api "
                                              "window=5m"})
    condition: AlertCondition
    threshold: float | None = attrs.field(default=None, metadata={"doc": "required unless the condition is absent"})
    for_seconds: int = attrs.field(default=60, metadata={"doc": "0-86400: how long the condition holds first"})
    severity: AlertSeverity = AlertSeverity.WARNING
    notify_channels: tuple[Channel, ...] = ("in_app",)
    enabled: bool = True
    description: str | None = None
    project: str | None = attrs.field(default=None, metadata={
        "doc": "owner/name (or id); default: the token's project, else platform-wide"})


# ---------------------------------------------------------------------------------------- responses


@attrs.frozen
class LogRecordOut:
    """A log record (also the JSON text frame of each record on the live tail)."""

    timestamp: datetime
    level: Level
    message: str
    service: str
    trace_id: str | None
    span_id: str | None
    session_id: str | None
    project: str | None
    attributes: dict[str, Any]


@attrs.frozen
class SpanOut:
    """A span."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    service: str
    kind: str
    status: str
    start: datetime
    duration_ms: float
    session_id: str | None
    attributes: dict[str, Any]
    events: list[Any]


@attrs.frozen
class WaterfallSpanOut(SpanOut):
    """A span of a trace waterfall: its depth in the tree and its start after the trace's first span."""

    depth: int
    offset_ms: float


@attrs.frozen
class TraceOut:
    """Every span of a trace in tree order (depth first, siblings by start time)."""

    trace_id: str
    spans: list[WaterfallSpanOut]


@attrs.frozen(kw_only=True)
class TimelineLogOut(LogRecordOut):
    """A log record on a session timeline."""

    type: Literal["log"] = "log"


@attrs.frozen(kw_only=True)
class TimelineSpanOut(SpanOut):
    """A span on a session timeline (timestamp: its start)."""

    type: Literal["span"] = "span"
    timestamp: datetime


@attrs.frozen(kw_only=True)
class TimelineMessageOut:
    """An agent session's message on its timeline (the items of ``GET /api/v1/agent-sessions/{id}/events``)."""

    id: int = attrs.field(metadata={"doc": "the message's number in the session, from 1"})
    timestamp: datetime
    type: str = attrs.field(metadata={"doc": "message, text, tool_use, tool_result, milestone, status, ..."})
    role: str = attrs.field(metadata={"doc": "user, assistant, system or tool"})
    content: str
    metadata: dict[str, Any]


@attrs.frozen
class SessionTimelineOut:
    """Every log record and span of a session, oldest first; beside them the agent session's messages."""

    session_id: str
    items: list[TimelineLogOut | TimelineSpanOut]
    messages: list[TimelineMessageOut] = attrs.field(
        factory=list, metadata={"doc": "the agent session's messages, oldest first (empty for other sessions)"})


@attrs.frozen
class MetricSeriesOut:
    """One series: its labels and its points, each ``[time, value]``."""

    labels: dict[str, str]
    points: list[list[datetime | float]] = attrs.field(metadata={"doc": "[ISO-8601 time, value] per step"})


@attrs.frozen
class MetricsOut:
    """The series of a metric, aggregated per step."""

    name: str
    series: list[MetricSeriesOut]


@attrs.frozen
class CompactionOut:
    """What the compaction pass after the rotation did."""

    files_in: int
    files_out: int
    rows: int
    bytes_in: int
    bytes_out: int
    abandoned: int
    retired_deleted: int


@attrs.frozen
class RotationOut:
    """What a forced rotation moved (compaction: null when no compaction ran)."""

    status: Literal["done"]
    files: int
    rows: int
    expired_files: int
    compaction: CompactionOut | None


@attrs.frozen
class AlertRuleOut:
    """An alert rule and its evaluation state."""

    id: uuid.UUID
    name: str
    description: str | None
    query: str
    condition: AlertCondition
    threshold: float | None
    for_seconds: int
    severity: AlertSeverity
    notify_channels: list[Channel]
    project: str | None
    project_id: uuid.UUID | None
    enabled: bool
    created_at: datetime
    state: Literal["ok", "pending", "firing"]


@attrs.frozen
class AlertEventOut:
    """An alert event: a rule started firing, or a firing rule resolved."""

    id: uuid.UUID
    rule_id: uuid.UUID
    status: Literal["firing", "resolved"]
    value: float | None
    message: str
    created_at: datetime
    resolved_at: datetime | None
    project: str | None
