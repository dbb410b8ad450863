"""Real OpenTelemetry SDK exporters and raw JSON bodies against a running Corral, found again
through the query API in the hot tier and, after a forced rotation, in the cold tier."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.request
import uuid

import pytest
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from tests.e2e.observe.conftest import TOKEN
from tests.otlp_payloads import logs_request

pytestmark = pytest.mark.e2e


def send_with_sdk(
    otlp: str, session_id: str, needle: str, token: str = TOKEN, extra_resource: dict[str, str] | None = None
) -> str:
    """Export one trace (2 spans), 3 log records inside it and a counter + histogram; returns the trace id."""
    headers = {"Authorization": f"Bearer {token}"}
    resource = Resource.create({"service.name": "e2e-agent", "corral.session_id": session_id, **(extra_resource or {})})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(
        SimpleSpanProcessor(
            OTLPSpanExporter(endpoint=f"{otlp}/v1/traces", headers=headers, compression=Compression.Gzip)
        )
    )
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(
        SimpleLogRecordProcessor(
            OTLPLogExporter(endpoint=f"{otlp}/v1/logs", headers=headers, compression=Compression.Gzip)
        )
    )
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=f"{otlp}/v1/metrics", headers=headers, compression=Compression.Gzip),
        export_interval_millis=3_600_000,
    )
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    pylog = logging.getLogger(f"e2e.{uuid.uuid4().hex}")
    pylog.propagate = False
    pylog.setLevel(logging.INFO)
    pylog.addHandler(LoggingHandler(logger_provider=logger_provider))
    tracer = tracer_provider.get_tracer("e2e")
    meter = meter_provider.get_meter("e2e")
    counter = meter.create_counter("e2e_tool_calls")
    histogram = meter.create_histogram("e2e_latency_ms")
    with tracer.start_as_current_span("agent-session") as root:
        trace_id = format(root.get_span_context().trace_id, "032x")
        with tracer.start_as_current_span("tool_call:bash"):
            pylog.info("running %s", needle, extra={"tool_name": "bash", "exit_code": 0})
            pylog.warning("slow command %s", needle)
        pylog.error("session failed %s", needle)
        counter.add(3, {"tool": "bash"})
        histogram.record(12.5, {"tool": "bash"})
    tracer_provider.force_flush()
    logger_provider.force_flush()
    meter_provider.force_flush()
    for provider in (tracer_provider, logger_provider, meter_provider):
        provider.shutdown()
    return trace_id


def json_logs_body(session_id: str, trace_id: str, needle: str) -> bytes:
    return json.dumps(
        {
            "resourceLogs": [
                {
                    "resource": {
                        "attributes": [
                            {"key": "service.name", "value": {"stringValue": "json-client"}},
                            {"key": "corral.session_id", "value": {"stringValue": session_id}},
                        ]
                    },
                    "scopeLogs": [
                        {
                            "logRecords": [
                                {
                                    "timeUnixNano": str(1_000_000_000 * int(time.time())),
                                    "severityNumber": 13,
                                    "severityText": "WARN",
                                    "traceId": trace_id,
                                    "spanId": "0102030405060708",
                                    "body": {"stringValue": f"json record {needle}"},
                                    "attributes": [{"key": "http.status_code", "value": {"intValue": "503"}}],
                                }
                            ]
                        }
                    ],
                }
            ]
        }
    ).encode()


def find(corral, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    status, body = corral.get(f"/api/v1/observe/logs?{query}")
    assert status == 200, body
    return body["items"]


def check_everything_is_found(corral, session_id: str, trace_id: str, json_trace: str, needle: str) -> None:
    by_trace = find(corral, trace_id=trace_id)
    assert sorted(i["message"] for i in by_trace) == sorted(
        [f"running {needle}", f"slow command {needle}", f"session failed {needle}"]
    )
    assert {i["session_id"] for i in by_trace} == {session_id}
    assert {i["service"] for i in by_trace} == {"e2e-agent"}
    assert next(i for i in by_trace if i["message"].startswith("running"))["attributes"]["tool_name"] == "bash"
    by_session = find(corral, session_id=session_id)
    assert len(by_session) == 4
    warnings = find(corral, q=needle.upper(), session_id=session_id, level="warn")
    assert sorted(i["message"] for i in warnings) == [f"json record {needle}", f"slow command {needle}"]
    json_hits = find(corral, trace_id=json_trace)
    assert [i["message"] for i in json_hits] == [f"json record {needle}"]
    assert json_hits[0]["attributes"] == {"http.status_code": 503}
    assert json_hits[0]["level"] == "warn"
    assert len(find(corral, q=needle)) == 4
    status, trace = corral.get(f"/api/v1/observe/traces/{trace_id}")
    assert status == 200
    assert [(s["name"], s["depth"]) for s in trace["spans"]] == [("agent-session", 0), ("tool_call:bash", 1)]
    assert trace["spans"][1]["parent_span_id"] == trace["spans"][0]["span_id"]
    status, timeline = corral.get(f"/api/v1/observe/sessions/{session_id}/timeline")
    assert status == 200
    assert sorted(i["type"] for i in timeline["items"]) == ["log"] * 4 + ["span"] * 2
    status, metrics = corral.get("/api/v1/observe/metrics?name=e2e_tool_calls&since=1d&step=1d&agg=max")
    assert status == 200
    assert [(s["labels"], [p[1] for p in s["points"]]) for s in metrics["series"]] == [({"tool": "bash"}, [3.0])]


async def test_sdk_and_json_telemetry_is_found_in_hot_then_cold(corral):
    session_id = f"sess-{uuid.uuid4().hex[:8]}"
    needle = uuid.uuid4().hex
    trace_id = await asyncio.to_thread(send_with_sdk, corral.otlp, session_id, needle)
    json_trace = uuid.uuid4().hex
    status, body, headers = corral.post("/v1/logs", json_logs_body(session_id, json_trace, needle))
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    assert json.loads(body) == {}
    check_everything_is_found(corral, session_id, trace_id, json_trace, needle)

    status, report, _ = corral.post("/api/v1/observe/rotate?older_than=0s", b"")
    assert status == 200, report
    assert json.loads(report)["rows"] > 0
    import asyncpg

    conn = await asyncpg.connect(corral.dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM log_entries WHERE session_id = $1", session_id) == 0
        assert await conn.fetchval("SELECT count(*) FROM spans WHERE session_id = $1", session_id) == 0
        assert await conn.fetchval("SELECT count(*) FROM observe_cold_files") > 0
    finally:
        await conn.close()
    check_everything_is_found(corral, session_id, trace_id, json_trace, needle)


def test_malformed_oversized_and_unauthenticated_requests(corral):
    status, body, _ = corral.post("/v1/logs", b"\x0a\xff\xff\xff", "application/x-protobuf", base=corral.otlp)
    assert status == 400
    reason = status_pb2.Status.FromString(body)
    assert "protobuf" in reason.message
    status, body, _ = corral.post("/v1/traces", b"{not json", base=corral.otlp)
    assert status == 400
    assert "JSON" in json.loads(body)["message"]
    status, _, _ = corral.post("/v1/logs", b"x" * (21 * 1024 * 1024), "application/x-protobuf")
    assert status == 413
    status, _, _ = corral.post("/v1/logs", logs_request(1).SerializeToString(), "application/x-protobuf", token=None)
    assert status == 401
    status, _, _ = corral.post("/v1/logs", b"{}", "text/plain")
    assert status == 415


def test_a_project_restricted_token_only_writes_its_project(corral_factory):
    mine = uuid.uuid4()
    corral = corral_factory(restricted=[f"agent-token={mine}"])
    other = logs_request(2)
    other.resource_logs[0].resource.attributes.add(key="corral.project_id").value.string_value = str(uuid.uuid4())
    status, body, _ = corral.post("/v1/logs", other.SerializeToString(), "application/x-protobuf", token="agent-token")
    assert status == 200
    response = ExportLogsServiceResponse.FromString(body)
    assert response.partial_success.rejected_log_records == 2
    assert "restricted" in response.partial_success.error_message
    ok = logs_request(3, message="mine")
    status, body, _ = corral.post("/v1/logs", ok.SerializeToString(), "application/x-protobuf", token="agent-token")
    assert status == 200
    assert not ExportLogsServiceResponse.FromString(body).HasField("partial_success")
    status, page = corral.get(f"/api/v1/observe/logs?project={mine}&q=mine")
    assert status == 200
    assert len(page["items"]) == 3


async def test_live_tail_streams_new_records(corral):
    import aiohttp

    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http,
        http.ws_connect(f"{corral.base}/api/v1/observe/tail?service=tail-svc&level=error") as ws,
    ):
        # no fixed pause for the publisher to notice the listener (it looks at most once a second): post new
        # records until one arrives, within a deadline
        got: list[dict] = []
        deadline = time.monotonic() + 30
        attempt = 0
        while not got and time.monotonic() < deadline:
            attempt += 1
            # a new body each time: a repeated identical body is acknowledged as a retry, not stored again
            body = logs_request(20, service="tail-svc", message="tailed record", seed=attempt).SerializeToString()
            status, _, _ = await asyncio.to_thread(corral.post, "/v1/logs", body, "application/x-protobuf")
            assert status == 200
            try:
                got.append(await ws.receive_json(timeout=0.5))
            except TimeoutError:
                continue
        assert got, "no record arrived on the live tail within 30 s"
        assert got[0]["service"] == "tail-svc"
        assert got[0]["level"] == "error"
        assert got[0]["message"] == "tailed record"


async def test_alert_rule_fires_and_resolves(corral):
    rule_body = {
        "name": "errors of alert-svc",
        "query": "logs: level=error service=alert-svc window=10m",
        "condition": "gt",
        "threshold": 0,
        "for_seconds": 0,
        "severity": "critical",
    }
    status, body, _ = corral.post("/api/v1/alert-rules", json.dumps(rule_body).encode())
    assert status == 201, body
    rule = json.loads(body)
    assert rule["state"] == "ok"
    errors = logs_request(30, service="alert-svc", message="boom", seed=3)
    for rec in errors.resource_logs[0].scope_logs[0].log_records:
        rec.severity_number = 17
    status, _, _ = corral.post("/v1/logs", errors.SerializeToString(), "application/x-protobuf")
    assert status == 200

    async def wait_for(status_wanted: str) -> dict:
        for _ in range(100):
            code, page = corral.get(f"/api/v1/alerts?status={status_wanted}")
            assert code == 200
            mine = [e for e in page["items"] if e["rule_id"] == rule["id"]]
            if mine:
                return mine[0]
            await asyncio.sleep(0.2)
        raise AssertionError(f"no {status_wanted} event")

    fired = await wait_for("firing")
    assert fired["value"] == 30
    code, current = corral.get(f"/api/v1/alert-rules/{rule['id']}")
    assert (code, current["state"]) == (200, "firing")
    req = urllib.request.Request(
        f"{corral.base}/api/v1/alert-rules/{rule['id']}",
        data=json.dumps({"threshold": 1000}).encode(),
        method="PATCH",
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req) as r:
        assert r.status == 200
    resolved = await wait_for("resolved")
    assert resolved["rule_id"] == rule["id"]
    status, body, _ = corral.post("/api/v1/alert-rules", json.dumps({**rule_body, "condition": "above"}).encode())
    assert status == 400
    assert "condition" in body.decode()


async def test_a_retried_request_is_acknowledged_but_stored_once(corral_factory):
    import asyncpg

    mine = uuid.uuid4()
    corral = corral_factory(restricted=[f"agent-token={mine}"])
    body = logs_request(7, service="retry-svc", message="sent twice").SerializeToString()
    for _ in range(2):  # the client lost the first answer and retries the same bytes
        status, _, _ = corral.post("/v1/logs", body, "application/x-protobuf", base=corral.otlp)
        assert status == 200
    other = logs_request(7, service="retry-svc", message="sent twice").SerializeToString()  # new timestamps
    status, _, _ = corral.post("/v1/logs", other, "application/x-protobuf", base=corral.otlp)
    assert status == 200
    status, _, _ = corral.post("/v1/logs", body, "application/x-protobuf", token="agent-token", base=corral.otlp)
    assert status == 200  # another caller's identical bytes are not its retry: judged on their own
    conn = await asyncpg.connect(corral.dsn)
    try:
        rows = await conn.fetch(
            "SELECT project_id, count(*) FROM log_entries WHERE service = 'retry-svc' GROUP BY 1 ORDER BY 2"
        )
    finally:
        await conn.close()
    assert [(r[0], r[1]) for r in rows] == [(mine, 7), (None, 14)]
