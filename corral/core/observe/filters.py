"""Pure predicates and aggregations shared by the query service and the in-memory stores."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from corral.core.observe.model import LogItem, LogQuery, MetricAgg

__all__ = ["aggregate", "attr_path", "attr_text", "log_matches", "percentile"]


def attr_path(key: str) -> list[str]:
    """A filter key: a top-level attribute name, or ``a/b/c`` to reach into nested objects."""
    return key.split("/") if "/" in key else [key]


def attr_text(value: Any) -> str | None:
    """The text PostgreSQL's ``#>>`` gives for a JSON value (what equality filters compare)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(", ", ": "))
    return str(value)


def _lookup(attrs: dict[str, Any], path: list[str]) -> Any:
    cur: Any = attrs
    for seg in path:
        if not isinstance(cur, dict) or seg not in cur:
            return None
        cur = cur[seg]
    return cur


def log_matches(item: LogItem, q: LogQuery) -> bool:
    """Whether ``item`` satisfies every filter of ``q`` (cursor included)."""
    if q.project_ids is not None and item.project_id not in q.project_ids:
        return False
    if q.trace_id and item.trace_id != q.trace_id:
        return False
    if q.session_id and item.session_id != q.session_id:
        return False
    if q.service and item.service != q.service:
        return False
    if q.levels and item.level not in q.levels:
        return False
    if q.since and item.timestamp < q.since:
        return False
    if q.until and item.timestamp >= q.until:
        return False
    if q.q and q.q.lower() not in item.message.lower():
        return False
    for key, value in q.attributes:
        if attr_text(_lookup(item.attributes, attr_path(key))) != value:
            return False
    return not (q.cursor and (item.timestamp, item.id) >= q.cursor)


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Linear interpolation between closest ranks (PostgreSQL's percentile_cont)."""
    if not sorted_values:
        return math.nan
    pos = (len(sorted_values) - 1) * p
    lo = math.floor(pos)
    hi = math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def aggregate(
    points: Sequence[tuple[datetime, float]], agg: MetricAgg, since: datetime, until: datetime, step: int
) -> list[tuple[datetime, float]]:
    """Bucket time-ordered points into ``step``-second buckets from ``since``; one value per non-empty bucket.

    ``rate`` is the per-second increase of a counter inside the bucket (a drop is
    a counter reset: the new value counts as the increase).
    """
    from datetime import timedelta

    start = since.timestamp()
    buckets: dict[int, list[float]] = {}
    increases: dict[int, float] = {}
    prev: float | None = None
    for ts, value in points:
        if ts < since or ts >= until:
            continue
        b = int((ts.timestamp() - start) // step)
        buckets.setdefault(b, []).append(value)
        if agg is MetricAgg.RATE:
            if prev is not None:
                increases[b] = increases.get(b, 0.0) + (value - prev if value >= prev else value)
            else:
                increases.setdefault(b, 0.0)
            prev = value
    out: list[tuple[datetime, float]] = []
    for b in sorted(buckets):
        values = buckets[b]
        if agg is MetricAgg.AVG:
            v = sum(values) / len(values)
        elif agg is MetricAgg.SUM:
            v = sum(values)
        elif agg is MetricAgg.MIN:
            v = min(values)
        elif agg is MetricAgg.MAX:
            v = max(values)
        elif agg is MetricAgg.RATE:
            v = increases.get(b, 0.0) / step
        else:
            p = {MetricAgg.P50: 0.5, MetricAgg.P95: 0.95, MetricAgg.P99: 0.99}[agg]
            v = percentile(sorted(values), p)
        out.append((since + timedelta(seconds=b * step), v))
    return out
