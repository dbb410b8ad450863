"""Every pipeline is a trace in Corral's own telemetry: a span per workflow (root) and per step (its child),
service ``pipeline``, the project in the envelope."""

from __future__ import annotations

import json
import logging

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
