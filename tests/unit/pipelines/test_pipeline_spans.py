"""Every pipeline is a trace in Corral's own telemetry: a span per workflow (root) and per step (its child),
service ``pipeline``, the project in the envelope."""

from __future__ import annotations

import json
import logging
import uuid

from corral.entrypoints.observe_self import SelfTelemetry
from tests.unit.pipelines.engine_support import Script, make_engine

TWO_STEPS = """
steps:
  build:
    image: alpine
    commands: [make]
  test:
    image: alpine
    commands: [make test]
"""


async def test_a_pipeline_records_a_span_per_workflow_and_step() -> None:
    engine = await make_engine({"build": Script(seconds=0.05), "test": Script(exit_code=1)})
    handler = SelfTelemetry(pipeline=None)  # type: ignore[arg-type]  # nothing is flushed here
    logger = logging.getLogger("corral.pipelines.span")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        p = await engine.create(TWO_STEPS)
        await engine.run_all()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    spans = {row[9]: row for row in handler._batch.spans}
    assert set(spans) == {"workflow woodpecker", "clone", "build", "test"}
    assert handler._batch.logs == []  # spans only, not log records
    root = spans["workflow woodpecker"]
    assert root[4] is None and root[11] == "error"
    for name in ("clone", "build", "test"):
        row = spans[name]
        assert row[2] == p.id.hex == root[2]  # one trace per pipeline
        assert row[4] == root[3]  # child of the workflow span
        assert row[5] == engine.project.id and row[8] == "pipeline"
    assert spans["build"][11] == "ok" and spans["test"][11] == "error"
    assert spans["build"][12] >= 40  # milliseconds
    assert json.loads(spans["test"][13])["pipeline.exit_code"] == 1
    assert len({row[3] for row in spans.values()}) == 4


async def test_step_log_lines_are_masked_log_records_findable_by_project_and_trace() -> None:
    from corral.core.observe.ingest import IngestPipeline
    from corral.core.observe.model import LogQuery
    from corral.core.observe.query import ObserveQueries
    from corral.core.pipelines import workflow_run
    from corral.fakes.observe import InMemoryTelemetryStore

    class Secrets:
        async def read(self, user_id, user_name, project_id, names, reason):  # type: ignore[no-untyped-def]
            return {"token": "hunter2-very-secret"}

    many = "".join(f"line {i}\n" for i in range(workflow_run.TELEMETRY_LINES_PER_STEP + 50))
    engine = await make_engine({"show": Script(output="value=hunter2-very-secret\n"), "noisy": Script(output=many)})
    engine.scheduler.secrets = Secrets()
    store = InMemoryTelemetryStore()
    ingest = IngestPipeline(store)
    await ingest.start()
    handler = SelfTelemetry(ingest)
    logger = logging.getLogger("corral.pipelines")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        p = await engine.create("skip_clone: true\nsteps:\n  show:\n    image: x\n    commands: [echo]\n"
                                "    environment: {TOKEN: {from_secret: token}}\n"
                                "  noisy: {image: x, commands: [spam]}\n", actor=uuid.uuid4())
        await engine.run_all()
        await handler.flush_now()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        await ingest.stop()
    queries = ObserveQueries(store, engine.clock)
    page = await queries.search_logs(LogQuery(project_ids=(engine.project.id,), trace_id=p.id.hex,
                                              q="value=", limit=10))
    [item] = page.items
    assert item.message == "value=***" and item.service == "pipeline"
    assert "hunter2" not in json.dumps([row for row in store.logs], default=str)
    async with engine.uow_factory() as uow:
        show = next(s for s in await uow.pipelines.steps(p.id) if s.name == "show")
    assert item.span_id == show.id.hex[16:]  # beside the step's span in the waterfall
    assert not (await queries.search_logs(LogQuery(project_ids=(uuid.uuid4(),),
                                                   trace_id=p.id.hex))).items  # another project sees nothing
    noisy = await queries.search_logs(LogQuery(project_ids=(engine.project.id,), trace_id=p.id.hex,
                                               q="line", limit=1000))
    assert len(noisy.items) == workflow_run.TELEMETRY_LINES_PER_STEP + 1  # bounded, then one summary line
    assert noisy.items[0].message == "... 50 more lines in the step log"
