"""A live tail gets rows for the last records of a request; the COPY data holds every record."""

from corral.adapters.otlp.decoders import TAIL_ROWS, _last_records, decode_in_worker
from corral.core.observe.model import Caller
from tests.otlp_payloads import logs_request


def _request(*sizes: int):
    req = logs_request(0)
    for i, size in enumerate(sizes):
        part = logs_request(size, service=f"svc{i}", message=f"group {i}")
        req.resource_logs.extend(part.resource_logs)
    del req.resource_logs[0]
    return req


def test_last_records_keep_order_resources_and_scopes():
    req = _request(3, 4, 2)
    last = _last_records(req, 5)
    groups = [
        (rl.resource.attributes[0].value.string_value, [r.body.string_value for r in sl.log_records])
        for rl in last.resource_logs
        for sl in rl.scope_logs
    ]
    assert groups == [("svc1", ["group 1"] * 3), ("svc2", ["group 2"] * 2)]
    assert [r.time_unix_nano for r in last.resource_logs[0].scope_logs[0].log_records] == [
        r.time_unix_nano for r in req.resource_logs[1].scope_logs[0].log_records[1:]
    ]
    assert len(_last_records(req, 100).resource_logs) == 3
    assert not _last_records(req, 0).resource_logs


def test_a_tailed_request_stores_every_record_and_tails_the_last_ones():
    req = _request(TAIL_ROWS, 7)
    status, batch = decode_in_worker("logs", req.SerializeToString(), "application/x-protobuf", Caller(), {}, True)
    assert status == "ok"
    assert batch.encoded_records == TAIL_ROWS + 7
    assert len(batch.tail_logs) == TAIL_ROWS
    assert [r[7] for r in batch.tail_logs[-7:]] == ["svc1"] * 7 and batch.tail_logs[0][7] == "svc0"
