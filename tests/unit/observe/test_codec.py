import json
import uuid

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse

from corral.adapters.otlp.codec import OtlpCodec, decode_request, encode_response, encode_status
from corral.core.errors import InvalidInput
from corral.core.observe.envelope import UnknownProjects
from corral.core.observe.model import LOG_COLUMNS, SPAN_COLUMNS, Caller
from tests.otlp_payloads import logs_request, metrics_request, traces_request

PID = uuid.uuid4()
UID = uuid.uuid4()


def lookup(path):
    return {"acme/app": PID}.get(path)


def test_protobuf_logs_become_rows_with_the_envelope():
    req = logs_request(3, service="agent", session_id="sess-1", project="acme/app", trace_id=b"\x01" * 16, seed=1)
    msg = decode_request("logs", req.SerializeToString(), "application/x-protobuf")
    batch = OtlpCodec().logs(msg, Caller(user_id=UID), lookup)
    assert len(batch.logs) == 3
    row = dict(zip(LOG_COLUMNS, batch.logs[0], strict=True))
    assert row["trace_id"] == "01" * 16
    assert (row["project_id"], row["session_id"], row["user_id"], row["service"]) == (
        PID,
        "sess-1",
        UID,
        "agent",
    )
    attrs = json.loads(row["attributes"])
    assert "tool_name" in attrs
    assert attrs["resource"] == {"host.name": "worker-3"}
    assert "corral.session_id" not in attrs
    assert len({r[0] for r in batch.logs}) == 3


def test_json_body_with_hex_ids_and_string_ints():
    body = {
        "resourceLogs": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "js"}}]},
                "scopeLogs": [
                    {
                        "logRecords": [
                            {
                                "timeUnixNano": "1700000000000000000",
                                "severityNumber": 17,
                                "traceId": "ab" * 16,
                                "spanId": "cd" * 8,
                                "body": {"stringValue": "boom"},
                                "unknownField": 1,
                                "attributes": [{"key": "n", "value": {"intValue": "42"}}],
                            }
                        ]
                    }
                ],
            }
        ]
    }
    msg = decode_request("logs", json.dumps(body).encode(), "application/json")
    batch = OtlpCodec().logs(msg, Caller(), lookup)
    row = dict(zip(LOG_COLUMNS, batch.logs[0], strict=True))
    assert (row["trace_id"], row["span_id"], row["level"], row["message"]) == (
        "ab" * 16,
        "cd" * 8,
        "error",
        "boom",
    )
    assert json.loads(row["attributes"]) == {"n": 42}
    assert row["ts"].year == 2023


@pytest.mark.parametrize(
    ("body", "ctype", "reason"),
    [
        (b"\xff\xff\xff", "application/x-protobuf", "protobuf"),
        (b"{nope", "application/json", "JSON"),
        (b"[]", "application/json", "object"),
        (
            b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"traceId": "zz"}]}]}]}',
            "application/json",
            "hex",
        ),
    ],
)
def test_malformed_bodies_raise_invalid_input_with_a_reason(body, ctype, reason):
    with pytest.raises(InvalidInput, match=reason):
        decode_request("logs", body, ctype)


def test_unknown_project_path_asks_for_resolution_and_bad_project_is_partial():
    req = logs_request(2, project="acme/new")
    msg = decode_request("logs", req.SerializeToString(), "application/x-protobuf")
    with pytest.raises(UnknownProjects):
        OtlpCodec().logs(msg, Caller(), lambda p: object())
    batch = OtlpCodec().logs(msg, Caller(), lambda p: None)
    assert (len(batch.logs), batch.rejected) == (0, 2)
    assert "acme/new" in batch.error_message


def test_traces_rows():
    req = traces_request(b"\x02" * 16, spans=3, session_id="s")
    batch = OtlpCodec().traces(decode_request("traces", req.SerializeToString(), ""), Caller(), lookup)
    rows = [dict(zip(SPAN_COLUMNS, r, strict=True)) for r in batch.spans]
    assert [r["parent_span_id"] is None for r in rows] == [True, False, False]
    assert rows[0]["kind"] == "server"
    assert rows[1]["duration_ms"] == 0.5
    assert {r["session_id"] for r in rows} == {"s"}


def test_metrics_series_ids_are_deterministic():
    req = metrics_request("cpu", [1.0, 2.0], labels={"host": "a"})
    msg = decode_request("metrics", req.SerializeToString(), "")
    b1 = OtlpCodec().metrics(msg, Caller(), lookup)
    b2 = OtlpCodec().metrics(msg, Caller(), lookup)
    assert len(b1.points) == 2
    assert len(b1.series) == 1
    assert b1.series[0][0] == b2.series[0][0] == b1.points[0][0]
    assert json.loads(b1.series[0][2]) == {"host": "a"}


def test_responses_and_status():
    ok = ExportLogsServiceResponse.FromString(encode_response("logs", 0, "", False))
    assert not ok.HasField("partial_success")
    partial = ExportLogsServiceResponse.FromString(encode_response("logs", 3, "bad project", False))
    assert partial.partial_success.rejected_log_records == 3
    as_json = json.loads(encode_response("logs", 3, "bad", True))
    assert as_json == {"partialSuccess": {"rejectedLogRecords": "3", "errorMessage": "bad"}}
    from google.rpc import status_pb2

    status = status_pb2.Status.FromString(encode_status(3, "body is not protobuf", False))
    assert (status.code, status.message) == (3, "body is not protobuf")
    assert json.loads(encode_status(3, "x", True)) == {"code": 3, "message": "x"}
