"""Corral's own log records hold only storable text: a request for ``/api/v1/nothing%00x`` (NUL in the path,
the access log line and its attributes) once failed a whole self-telemetry batch in PostgreSQL."""

from __future__ import annotations

import json
import logging

from corral.entrypoints.observability import bind_context, reset_context
from corral.entrypoints.observe_self import SelfTelemetry


def test_nul_and_lone_surrogates_in_a_record_become_replacement_characters() -> None:
    handler = SelfTelemetry(pipeline=None)  # type: ignore[arg-type]  # nothing is flushed here
    token = bind_context(request_id="r1", trace_id="a" * 32, span_id="b" * 16, session_id="s\x00")
    try:
        record = logging.LogRecord("corral.http", logging.INFO, __file__, 1, "%s %s %s",
                                   ("GET", "/api/v1/nothing\x00x\ud800", 404), None)
        record.http_method, record.http_path, record.http_status = "GET", "/api/v1/nothing\x00x\ud800", 404
        record.duration_ms, record.odd = 1.5, {"k\x00": "v\x00"}
        handler.emit(record)
    finally:
        reset_context(token)
    [log_row] = handler._batch.logs
    [span_row] = handler._batch.spans
    assert log_row[9] == "GET /api/v1/nothing\ufffdx\ufffd 404"
    assert log_row[5] == "s\ufffd"
    attributes = json.loads(log_row[10])
    assert attributes["http_path"] == "/api/v1/nothing\ufffdx\ufffd"
    for text in (log_row[10], span_row[13]):
        assert "\\u0000" not in text and "\\ud800" not in text
    assert span_row[9] == "GET /api/v1/nothing\ufffdx\ufffd"
    for row in (log_row, span_row):
        for value in row:
            if isinstance(value, str):
                value.encode()  # storable as UTF-8 (raises on a lone surrogate)
                assert "\x00" not in value
