"""The observability domain wired on the memory profile (corral serve --memory): ingest and query work."""

from corral.adapters.otlp.codec import decode_request
from corral.core.observe.model import Caller, LogQuery
from corral.entrypoints.bootstrap import start_platform
from corral.entrypoints.config import Settings
from corral.entrypoints.observe_runtime import ObserveRuntime
from tests.otlp_payloads import logs_request


async def test_memory_profile_ingests_and_queries(tmp_path):
    platform = await start_platform(Settings(profile="memory", data_dir=tmp_path))
    try:
        rt: ObserveRuntime = platform.resolve(ObserveRuntime)
        message = decode_request("logs", logs_request(3, session_id="mem", message="in memory").SerializeToString(),
                                 "application/x-protobuf")
        await rt.pipeline.ingest(lambda lookup: rt.codec.logs(message, Caller(), lookup), rt.directory)
        page = await rt.queries.search_logs(LogQuery(session_id="mem"))
        assert [i.message for i in page.items] == ["in memory"] * 3
        report = await rt.rotate()
        assert report is not None
        assert report.rows == 0  # nothing is older than the hot retention
    finally:
        await platform.aclose()
