"""Decode OTLP export requests into rows (core.observe.model column order); encode responses.

The per-record loop is the hottest code in Corral: it avoids per-record
objects beyond the row tuple and the attribute dict, and resolves the
correlation envelope once per resource (records override it only when they
carry envelope keys themselves).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from corral.adapters.otlp.jsonbody import parse_json
from corral.core.errors import InvalidInput
from corral.core.observe.envelope import (
    ENVELOPE_KEYS,
    NUMBER_LEVELS,
    Envelope,
    ProjectRejected,
    level_from_severity,
    resolve_envelope,
    strip_envelope,
)
from corral.core.observe.model import Caller, TelemetryBatch
from corral.core.observe.rowids import RowIds
from corral.core.safetext import clean_json_text

__all__ = ["SIGNAL_MESSAGES", "OtlpCodec", "decode_request", "encode_response", "encode_status"]

SIGNAL_MESSAGES: dict[str, tuple[Any, Any]] = {
    "logs": (logs_service_pb2.ExportLogsServiceRequest, logs_service_pb2.ExportLogsServiceResponse),
    "traces": (trace_service_pb2.ExportTraceServiceRequest, trace_service_pb2.ExportTraceServiceResponse),
    "metrics": (
        metrics_service_pb2.ExportMetricsServiceRequest,
        metrics_service_pb2.ExportMetricsServiceResponse,
    ),
}
_SPAN_KINDS = ("internal", "internal", "server", "client", "producer", "consumer")
_SPAN_STATUS = ("unset", "ok", "error")
_ZERO16 = bytes(16)
_ZERO8 = bytes(8)
_SERIES_NS = uuid.UUID("6f1c1d1e-3b7a-4c55-9b8e-2f0e6c0a7d10")
_fromts = datetime.fromtimestamp
_strict_dumps = json.JSONEncoder(separators=(",", ":"), default=str, allow_nan=False).encode


def _finite(obj: Any) -> Any:
    if (isinstance(obj, float) and obj != obj) or obj in (_INF, -_INF):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def _dumps(obj: Any) -> str:
    """Compact JSON; NaN and infinities (which JSON and jsonb refuse) become strings."""
    try:
        return _strict_dumps(obj)
    except ValueError:
        return _strict_dumps(_finite(obj))


_INF = float("inf")


def no_nul(doc: str) -> str:
    """JSON text with every escaped U+0000 (and lone surrogate) in its strings turned into U+FFFD: PostgreSQL's
    json operators cannot return text holding NUL, so one such attribute would break every query reading it."""
    if "\\u0000" not in doc and "\\ud" not in doc:
        return doc
    return clean_json_text(doc)


def _value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    if kind == "string_value":
        return v.string_value
    if kind == "int_value":
        return v.int_value
    if kind == "bool_value":
        return v.bool_value
    if kind == "double_value":
        return v.double_value
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in v.kvlist_value.values}
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    if kind == "bytes_value":
        return base64.b64encode(v.bytes_value).decode()
    return None


_SCALARS = frozenset({"string_value", "int_value", "bool_value", "double_value"})


def _attrs(kvs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in kvs:
        v = kv.value
        kind = v.WhichOneof("value")
        out[kv.key] = getattr(v, kind) if kind in _SCALARS else _value(v)
    return out


def _hex(raw: bytes) -> str | None:
    return raw.hex() if raw and any(raw) else None


def _resource_extra(res: dict[str, Any]) -> dict[str, Any] | None:
    extra = {k: v for k, v in strip_envelope(res).items() if not k.startswith("telemetry.sdk.")}
    return extra or None


Lookup = Callable[[str], object]


def _one() -> int:
    return 1


def log_records_of(resource_logs: Any) -> int:
    return sum(len(sl.log_records) for sl in resource_logs.scope_logs)


def _spans_of(resource_spans: Any) -> int:
    return sum(len(ss.spans) for ss in resource_spans.scope_spans)


def _points_of(resource_metrics: Any) -> int:
    return sum(_count_points(m) for sm in resource_metrics.scope_metrics for m in sm.metrics)


def envelope_or_reject(
    out: Any, attrs: dict[str, Any], caller: Caller, lookup: Lookup, parent: Envelope | None = None,
    records: Callable[[], int] = _one,
) -> Envelope | None:
    """The envelope of ``attrs`` (a resource's, or a record's over ``parent``); None when its project is refused:
    then ``records()`` are counted as rejected on ``out`` (a TelemetryBatch or a COPY result, both with
    ``rejected`` and ``error_message``) and the reason is kept for ``partial_success``."""
    try:
        return resolve_envelope(attrs, caller, lookup, parent)
    except ProjectRejected as exc:
        out.rejected += records()
        out.error_message = str(exc)
        return None


class OtlpCodec:
    """Turns OTLP messages into TelemetryBatch rows. Keeps a cache of metric series ids."""

    def __init__(self, row_ids: RowIds | None = None, now: Callable[[], datetime] | None = None) -> None:
        self._ids = row_ids or RowIds()
        self._now = now or (lambda: datetime.now(UTC))
        self._series: dict[tuple[Any, ...], uuid.UUID] = {}

    # ------------------------------------------------------------- logs
    def logs(self, req: Any, caller: Caller, lookup: Lookup) -> TelemetryBatch:
        batch = TelemetryBatch()
        rows = batch.logs
        append = rows.append
        now_ns = 0
        envelope_keys = ENVELOPE_KEYS
        levels = NUMBER_LEVELS
        for rl in req.resource_logs:
            res = _attrs(rl.resource.attributes)
            env = envelope_or_reject(batch, res, caller, lookup,
                                     records=partial(log_records_of, rl))
            if env is None:
                continue
            extra = _resource_extra(res)
            # the resource's own attributes are the same for every record: encode them once
            tail = (',"resource":' + _dumps(extra) + "}") if extra else ""
            only = ('{"resource":' + _dumps(extra) + "}") if extra else "{}"
            for sl in rl.scope_logs:
                records = sl.log_records
                ids = self._ids.ids(len(records))
                for i, rec in enumerate(records):
                    kvs = rec.attributes
                    e = env
                    if kvs:
                        attrs = _attrs(kvs)
                        if not envelope_keys.isdisjoint(attrs):
                            found = envelope_or_reject(batch, attrs, caller, lookup, env)
                            if found is None:
                                continue
                            e = found
                            attrs = strip_envelope(attrs)
                        text = _dumps(attrs) if attrs else "{}"
                        attributes = (text[:-1] + tail if len(text) > 2 else only) if tail else text
                    else:
                        attributes = only
                    ts_ns = rec.time_unix_nano or rec.observed_time_unix_nano
                    if not ts_ns:
                        now_ns = now_ns or int(self._now().timestamp() * 1e9)
                        ts_ns = now_ns
                    body = rec.body
                    kind = body.WhichOneof("value")
                    if kind == "string_value":
                        message = body.string_value
                    elif kind is None:
                        message = ""
                    else:
                        value = _value(body)
                        message = value if isinstance(value, str) else _dumps(value)
                    trace = rec.trace_id
                    span = rec.span_id
                    number = rec.severity_number
                    append(
                        (
                            ids[i],
                            _fromts(ts_ns / 1e9, UTC),
                            trace.hex() if trace and trace != _ZERO16 else None,
                            span.hex() if span and span != _ZERO8 else None,
                            e.project_id,
                            e.session_id,
                            e.user_id,
                            e.service,
                            levels[number] if 0 < number < 25 else level_from_severity(number, rec.severity_text),
                            message,
                            no_nul(attributes),
                        )
                    )
        return batch

    # ------------------------------------------------------------- traces
    def traces(self, req: Any, caller: Caller, lookup: Lookup) -> TelemetryBatch:
        batch = TelemetryBatch()
        rows = batch.spans
        for rs in req.resource_spans:
            res = _attrs(rs.resource.attributes)
            env = envelope_or_reject(batch, res, caller, lookup,
                                     records=partial(_spans_of, rs))
            if env is None:
                continue
            extra = _resource_extra(res)
            extra_json = _dumps(extra) if extra else ""
            for ss in rs.scope_spans:
                ids = self._ids.ids(len(ss.spans))
                for i, sp in enumerate(ss.spans):
                    trace_id = _hex(sp.trace_id)
                    span_id = _hex(sp.span_id)
                    if trace_id is None or span_id is None:
                        batch.rejected += 1
                        batch.error_message = "a span without trace_id or span_id was refused"
                        continue
                    attrs = _attrs(sp.attributes)
                    e = env
                    if attrs:
                        found = envelope_or_reject(batch, attrs, caller, lookup, env)
                        if found is None:
                            continue
                        e = found
                        attrs = strip_envelope(attrs)
                    events = [
                        {
                            "name": ev.name,
                            "time": _fromts(ev.time_unix_nano / 1e9, UTC).isoformat(),
                            "attributes": _attrs(ev.attributes),
                        }
                        for ev in sp.events
                    ]
                    if sp.status.message:
                        attrs["status.message"] = sp.status.message
                    start = sp.start_time_unix_nano
                    end = sp.end_time_unix_nano or start
                    rows.append(
                        (
                            ids[i],
                            _fromts(start / 1e9, UTC),
                            trace_id,
                            span_id,
                            _hex(sp.parent_span_id),
                            e.project_id,
                            e.session_id,
                            e.user_id,
                            e.service,
                            sp.name,
                            _SPAN_KINDS[sp.kind] if 0 <= sp.kind < len(_SPAN_KINDS) else "internal",
                            _SPAN_STATUS[sp.status.code] if 0 <= sp.status.code < 3 else "unset",
                            max(end - start, 0) / 1e6,
                            _with_resource(_dumps(attrs), extra_json),
                            _dumps(events),
                        )
                    )
        return batch

    # ------------------------------------------------------------- metrics
    def _series_id(
        self, env: Envelope, name: str, mtype: str, unit: str, labels: dict[str, Any], batch: TelemetryBatch
    ) -> uuid.UUID:
        labels_json = clean_json_text(json.dumps(labels, sort_keys=True, separators=(",", ":"), default=str))
        key = (env.project_id, env.service, env.session_id, name, labels_json)
        sid = self._series.get(key)
        if sid is None:
            sid = uuid.uuid5(_SERIES_NS, "\x1f".join(str(p) for p in key))
            if len(self._series) > 200_000:
                self._series.clear()
            self._series[key] = sid
            batch.series.append(
                (
                    sid,
                    name,
                    labels_json,
                    mtype,
                    unit or None,
                    env.project_id,
                    env.service,
                    env.session_id,
                    env.user_id,
                )
            )
        elif not any(s[0] == sid for s in batch.series):
            # the store ignores known series; repeat it per batch so a batch is self-contained
            batch.series.append(
                (
                    sid,
                    name,
                    labels_json,
                    mtype,
                    unit or None,
                    env.project_id,
                    env.service,
                    env.session_id,
                    env.user_id,
                )
            )
        return sid

    def metrics(self, req: Any, caller: Caller, lookup: Lookup) -> TelemetryBatch:
        batch = TelemetryBatch()
        for rm in req.resource_metrics:
            res = _attrs(rm.resource.attributes)
            env = envelope_or_reject(
                batch, res, caller, lookup,
                records=partial(_points_of, rm))
            if env is None:
                continue
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    self._metric(metric, env, caller, lookup, batch)
        return batch

    def _metric(self, metric: Any, env: Envelope, caller: Caller, lookup: Lookup, batch: TelemetryBatch) -> None:
        kind = metric.WhichOneof("data")
        if kind == "gauge":
            mtype, points = "gauge", metric.gauge.data_points
        elif kind == "sum":
            mtype = "counter" if metric.sum.is_monotonic else "gauge"
            points = metric.sum.data_points
        elif kind == "histogram":
            mtype, points = "histogram", metric.histogram.data_points
        elif kind == "exponential_histogram":
            mtype, points = "histogram", metric.exponential_histogram.data_points
        elif kind == "summary":
            mtype, points = "summary", metric.summary.data_points
        else:
            return
        for p in points:
            labels = _attrs(p.attributes)
            e = env
            if labels:
                found = envelope_or_reject(batch, labels, caller, lookup, env)
                if found is None:
                    continue
                e = found
                labels = strip_envelope(labels)
            if mtype in ("histogram", "summary"):
                value = (p.sum / p.count) if p.count else 0.0  # the mean of the interval
            else:
                value = p.as_double if p.WhichOneof("value") == "as_double" else float(p.as_int)
            sid = self._series_id(e, metric.name, mtype, metric.unit, labels, batch)
            trace_id = span_id = None
            if p.exemplars:
                trace_id = _hex(p.exemplars[0].trace_id)
                span_id = _hex(p.exemplars[0].span_id)
            batch.points.append(
                (
                    sid,
                    _fromts((p.time_unix_nano or p.start_time_unix_nano) / 1e9, UTC),
                    value,
                    e.project_id,
                    trace_id,
                    span_id,
                )
            )


def _with_resource(attrs_json: str, resource_json: str) -> str:
    """Splice the (once-encoded) resource attributes into a record's attribute object."""
    if not resource_json:
        return attrs_json
    if len(attrs_json) <= 2:
        return '{"resource":' + resource_json + "}"
    return attrs_json[:-1] + ',"resource":' + resource_json + "}"


def _count_points(metric: Any) -> int:
    kind = metric.WhichOneof("data")
    return len(getattr(metric, kind).data_points) if kind else 0


def decode_request(signal: str, body: bytes, content_type: str) -> Message:
    """Parse an export request body (protobuf or JSON); InvalidInput with the reason if malformed."""
    request_cls, _ = SIGNAL_MESSAGES[signal]
    message = request_cls()
    if content_type == "application/json":
        parse_json(body, message)
        return message
    try:
        message.ParseFromString(body)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise InvalidInput(f"body is not a protobuf {request_cls.__name__}: {exc}", field="body") from exc
    return message


def encode_response(signal: str, rejected: int, error_message: str, as_json: bool) -> bytes:
    """An Export*ServiceResponse, with partial_success when records were refused."""
    _, response_cls = SIGNAL_MESSAGES[signal]
    response = response_cls()
    if rejected:
        field = {
            "logs": "rejected_log_records",
            "traces": "rejected_spans",
            "metrics": "rejected_data_points",
        }[signal]
        setattr(response.partial_success, field, rejected)
        response.partial_success.error_message = error_message
    if as_json:
        from google.protobuf import json_format

        return json.dumps(json_format.MessageToDict(response)).encode()
    return bytes(response.SerializeToString())


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def encode_status(code: int, message: str, as_json: bool) -> bytes:
    """A google.rpc.Status (code, message) — hand-encoded: it has two scalar fields here."""
    if as_json:
        return json.dumps({"code": code, "message": message}).encode()
    text = message.encode()
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text
