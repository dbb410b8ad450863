"""The decoder processes' binary COPY rows land in PostgreSQL exactly as the in-process rows do."""

import uuid

import pytest

from corral.adapters.otlp.decoders import InProcessTelemetryDecoder, ProcessPoolTelemetryDecoder, decode_in_worker
from corral.adapters.postgres.observe import PostgresTelemetryStore, create_telemetry_pool
from corral.core.observe.model import Caller
from corral.fakes.observe import InMemoryProjectDirectory
from tests.otlp_payloads import kv, logs_request, metrics_request, traces_request

pytestmark = pytest.mark.integration
PB = "application/x-protobuf"
PROJECT = uuid.uuid4()

_SELECTS = {
    "logs": "SELECT ts, trace_id, span_id, project_id, session_id, user_id, service, level, message, attributes "
    "FROM log_entries WHERE session_id = $1 ORDER BY id",
    "traces": "SELECT ts, trace_id, span_id, parent_span_id, project_id, session_id, user_id, service, name, kind, "
    "status, duration_ms, attributes, events FROM spans WHERE session_id = $1 ORDER BY ts, span_id",
    "metrics": "SELECT s.series_id, s.ts, s.value, s.project_id, s.trace_id, s.span_id FROM metric_samples s "
    "JOIN metric_series m ON m.id = s.series_id WHERE m.name = $1 ORDER BY s.ts, s.series_id",
}


def _bodies(session: str) -> dict[str, bytes]:
    logs = logs_request(50, session_id=session, project="acme/web", seed=3)
    records = logs.resource_logs[0].scope_logs[0].log_records
    records[1].attributes.append(kv("session.id", "record-session"))  # a record's own envelope key
    records[2].attributes.append(kv("nested", {"a": [1, 2.5, "x"]}))  # not a plain scalar
    records[3].attributes.append(kv("ratio", float("nan")))
    del records[4].attributes[:]
    records[5].body.int_value = 42
    # a key seen with one type, then zero / empty / false / another type (the worker remembers kinds)
    changes = [("exit_code", 0), ("exit_code", "zero"), ("tool_name", ""), ("tool_name", 7), ("retry", False)]
    changes += [("duration_ms", 0.0), ("duration_ms", -0.0), ("duration_ms", 3), ("file_path", True)]
    for i, (key, value) in enumerate(changes, start=6):
        attrs = records[i].attributes
        for j in range(len(attrs)):
            if attrs[j].key == key:
                attrs[j].CopyFrom(kv(key, value))
    records[15].body.string_value = ""
    records[16].body.bool_value = True
    records[17].attributes.append(kv("", "empty key"))
    records[18].attributes.append(kv("nul", "a\x00b"))  # stored as U+FFFD (json operators refuse NUL)
    records[19].attributes.append(kv("nul", "\\u0000 is not a NUL"))
    records[20].attributes.append(kv("service.name", 1.5))  # an envelope key holding a double
    records[21].attributes.add()  # an empty KeyValue (serializes to no bytes)
    records[22].attributes.append(kv("ratio", float("inf")))
    return {
        "logs": logs.SerializeToString(),
        "traces": traces_request(bytes(range(1, 17)), session_id=session, spans=5).SerializeToString(),
        "metrics": metrics_request(session, [1.0, 2.5, 7.0], labels={"k": "v"}).SerializeToString(),
    }


@pytest.fixture
async def store(db_dsn):
    pool = await create_telemetry_pool(db_dsn)
    yield PostgresTelemetryStore(pool), pool
    await pool.close()


@pytest.mark.parametrize("signal", ["logs", "traces", "metrics"])
@pytest.mark.parametrize("tail", [False, True])
async def test_encoded_rows_equal_the_in_process_rows(store, signal, tail):
    writer, pool = store
    caller = Caller(user_id=uuid.uuid4())
    directory = InMemoryProjectDirectory({"acme/web": PROJECT})
    body = _bodies("in-process")[signal]
    batch = await InProcessTelemetryDecoder(directory).decode(signal, body, PB, caller)
    await writer.write(batch)
    status, value = decode_in_worker(
        signal, body.replace(b"in-process", b"encoded-xx"), PB, caller, {"acme/web": PROJECT}, tail
    )
    assert status == "ok"
    assert value.encoded and not value.logs and not value.spans and not value.points
    assert len(value) == len(batch)
    if signal == "logs":
        assert value.project_ids == {PROJECT}
        assert len(value.tail_logs) == (50 if tail else 0)
    await writer.write(value)
    async with pool.acquire() as conn:
        want = [tuple(r) for r in await conn.fetch(_SELECTS[signal], "in-process")]
        got = [tuple(r) for r in await conn.fetch(_SELECTS[signal], "encoded-xx")]
    assert want
    want = [tuple(None if v == "in-process" else v for v in r) for r in want]
    got = [tuple(None if v == "encoded-xx" else v for v in r) for r in got]
    if signal == "metrics":  # series ids derive from the name: compare the rest
        want = [r[1:] for r in want]
        got = [r[1:] for r in got]
    if signal == "traces":  # same spans under another session (span ids are random per request)
        want = [r[:2] + r[4:] for r in want]
        got = [r[:2] + r[4:] for r in got]
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        # the in-process path rounds ns/1e9 through a float; the encoded one truncates exactly
        assert abs((g[0] - w[0]).total_seconds()) <= 1e-6
        assert g[1:] == w[1:]


async def test_process_pool_resolves_project_paths_and_refuses_garbage(store):
    writer, pool = store
    directory = InMemoryProjectDirectory({"acme/web": PROJECT})
    decoder = ProcessPoolTelemetryDecoder(directory, processes=1)
    try:
        await decoder.start()
        batch = await decoder.decode("logs", _bodies("pooled")["logs"], PB, Caller())
        assert batch.encoded_records == 50 and batch.project_ids == {PROJECT}
        assert directory.lookups == 1
        await writer.write(batch)
        req = logs_request(3, session_id="nul", project="acme/web")
        req.resource_logs[0].scope_logs[0].log_records[0].body.string_value = "nul \x00 inside"
        nul = await decoder.decode("logs", req.SerializeToString(), PB, Caller())
        await writer.write(nul)  # PostgreSQL text cannot hold NUL: replaced, not a failed batch
        again = await decoder.decode("logs", _bodies("pooled")["logs"], PB, Caller())
        assert directory.lookups == 1  # the worker kept the answer
        assert again.encoded_records == 50
        refused = await decoder.decode("logs", _bodies("pooled")["logs"], PB, Caller(project_id=uuid.uuid4()))
        assert refused.encoded_records == 0 and refused.rejected == 50 and refused.error_message
        from corral.core.errors import InvalidInput

        with pytest.raises(InvalidInput):
            await decoder.decode("logs", b"\xff\xff not protobuf", PB, Caller())
    finally:
        await decoder.aclose()
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM log_entries WHERE project_id = $1", PROJECT) == 53
        assert await conn.fetchval("SELECT count(*) FROM log_entries WHERE message = 'nul \ufffd inside'") == 1


async def test_a_killed_decoder_process_answers_unavailable_then_the_pool_recovers():
    import os
    import signal

    from corral.core.errors import Unavailable

    decoder = ProcessPoolTelemetryDecoder(InMemoryProjectDirectory(), processes=1)
    try:
        await decoder.start()
        [pid] = list(decoder._executor()._processes)  # the one worker
        os.kill(pid, signal.SIGKILL)
        body = logs_request(2).SerializeToString()
        refused = None
        for _ in range(50):  # the pool notices the death on the next submission
            try:
                await decoder.decode("logs", body, PB, Caller())
            except Unavailable as exc:
                refused = exc
                break
        assert refused is not None and refused.retry_after == 1
        batch = await decoder.decode("logs", logs_request(2).SerializeToString(), PB, Caller())
        assert batch.encoded_records == 2
    finally:
        await decoder.aclose()


@pytest.mark.parametrize("value", ["v", 2.5])
def test_an_attribute_that_is_not_a_valid_key_value_is_refused(value):
    req = logs_request(2, seed=1)
    req.resource_logs[0].scope_logs[0].log_records[1].attributes.append(kv("k\u00e9y", value))
    body = req.SerializeToString()
    assert b"k\xc3\xa9y" in body
    status, reason = decode_in_worker("logs", body.replace(b"k\xc3\xa9y", b"k\xff\xfey"), PB, Caller(), {}, False)
    assert status == "invalid" and "attribute" in reason
    status, _ = decode_in_worker("logs", body, PB, Caller(), {}, False)
    assert status == "ok"


def test_an_empty_attribute_and_envelope_keys_with_double_values_take_the_general_path():
    from opentelemetry.proto.common.v1.common_pb2 import KeyValue

    req = logs_request(3, seed=2, session_id="s")
    records = req.resource_logs[0].scope_logs[0].log_records
    records[0].attributes.append(KeyValue())  # serializes to no bytes at all
    records[1].attributes.append(kv("service.name", 1.5))  # an envelope key, read by the general path
    status, batch = decode_in_worker("logs", req.SerializeToString(), PB, Caller(), {}, False)
    assert status == "ok" and batch.encoded_records == 3
