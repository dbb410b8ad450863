"""Builders of realistic OTLP export requests, shared by tests and the ingest benchmark."""

from __future__ import annotations

import os
import random
import time
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

_TOOLS = ["bash", "read_file", "write_file", "grep", "git", "http_request"]
_WORDS = [
    "deploying",
    "build",
    "finished",
    "cache",
    "miss",
    "request",
    "handled",
    "retrying",
    "timeout",
    "compiling",
    "module",
    "tests",
    "passed",
    "pushing",
    "image",
    "layer",
]


def kv(key: str, value: Any) -> KeyValue:
    item = KeyValue(key=key)
    if isinstance(value, bool):
        item.value.bool_value = value
    elif isinstance(value, int):
        item.value.int_value = value
    elif isinstance(value, float):
        item.value.double_value = value
    else:
        item.value.string_value = str(value)
    return item


def logs_request(
    n: int,
    *,
    service: str = "agent-runner",
    session_id: str | None = None,
    project: str | None = None,
    trace_id: bytes | None = None,
    message: str | None = None,
    start_ns: int | None = None,
    seed: int | None = None,
) -> ExportLogsServiceRequest:
    """One resource with ``n`` log records carrying ~6 realistic attributes each (~300 B encoded)."""
    rnd = random.Random(seed)
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    rl.resource.attributes.extend(
        [kv("service.name", service), kv("telemetry.sdk.language", "python"), kv("host.name", "worker-3")]
    )
    if session_id:
        rl.resource.attributes.append(kv("corral.session_id", session_id))
    if project:
        rl.resource.attributes.append(kv("corral.project", project))
    sl = rl.scope_logs.add()
    sl.scope.name = "corral.agent"
    t0 = start_ns or time.time_ns()
    for i in range(n):
        rec = sl.log_records.add()
        rec.time_unix_nano = t0 + i * 1000
        rec.observed_time_unix_nano = rec.time_unix_nano
        rec.severity_number = rnd.choice((9, 9, 9, 9, 5, 13, 17))
        rec.severity_text = {5: "DEBUG", 9: "INFO", 13: "WARN", 17: "ERROR"}[rec.severity_number]
        rec.body.string_value = message or " ".join(rnd.choice(_WORDS) for _ in range(8)) + f" #{i}"
        rec.trace_id = trace_id or os.urandom(16)
        rec.span_id = os.urandom(8)
        rec.attributes.extend(
            [
                kv("tool_name", rnd.choice(_TOOLS)),
                kv("file_path", f"src/app/module_{rnd.randrange(200)}.py"),
                kv("exit_code", rnd.randrange(3)),
                kv("duration_ms", rnd.random() * 500),
                kv("environment", "production"),
                kv("retry", rnd.random() < 0.1),
            ]
        )
    return req


def traces_request(
    trace_id: bytes,
    *,
    service: str = "agent-runner",
    session_id: str | None = None,
    spans: int = 3,
    start_ns: int | None = None,
) -> ExportTraceServiceRequest:
    """A root span and ``spans - 1`` children, each child starting 1 ms after the previous."""
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(kv("service.name", service))
    if session_id:
        rs.resource.attributes.append(kv("corral.session_id", session_id))
    ss = rs.scope_spans.add()
    t0 = start_ns or time.time_ns()
    root = os.urandom(8)
    for i in range(spans):
        sp = ss.spans.add()
        sp.trace_id = trace_id
        sp.span_id = root if i == 0 else os.urandom(8)
        if i:
            sp.parent_span_id = root
        sp.name = "session" if i == 0 else f"tool_call:{_TOOLS[i % len(_TOOLS)]}"
        sp.kind = 2 if i == 0 else 1
        sp.start_time_unix_nano = t0 + i * 1_000_000
        sp.end_time_unix_nano = t0 + (spans + 1) * 1_000_000 if i == 0 else sp.start_time_unix_nano + 500_000
        sp.attributes.append(kv("step", i))
        sp.status.code = 1
    return req


def metrics_request(
    name: str,
    values: list[float],
    *,
    labels: dict[str, str] | None = None,
    service: str = "agent-runner",
    start_ns: int | None = None,
    step_ns: int = 10_000_000_000,
) -> ExportMetricsServiceRequest:
    """One gauge with one point per value, ``step_ns`` apart."""
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.attributes.append(kv("service.name", service))
    metric = rm.scope_metrics.add().metrics.add()
    metric.name = name
    t0 = start_ns or time.time_ns()
    for i, v in enumerate(values):
        p = metric.gauge.data_points.add()
        p.time_unix_nano = t0 + i * step_ns
        p.as_double = v
        for k, lv in (labels or {}).items():
            p.attributes.append(kv(k, lv))
    return req
