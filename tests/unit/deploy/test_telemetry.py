"""The reconciler's spans and logs reach Corral's own telemetry with the project in the envelope: a pass
span, a span per deployment applied (child of the pass), and the reconciler's log lines, all through the real
ingest pipeline into the (in-memory) telemetry store, found by project."""

from __future__ import annotations

import json
import logging

from corral.core.observe.ingest import IngestPipeline
from corral.core.observe.model import LogQuery
from corral.entrypoints.observe_self import SelfTelemetry
from corral.fakes.observe import InMemoryTelemetryStore
from tests.unit.deploy.world import make_world


async def test_pass_and_apply_spans_and_logs_carry_the_project() -> None:
    w = await make_world()
    store = InMemoryTelemetryStore()
    pipeline = IngestPipeline(writer=store)
    await pipeline.start()
    handler = SelfTelemetry(pipeline)
    logger = logging.getLogger("corral")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    w.reconciler.spans = handler
    try:
        await w.deploy()
        await w.reconciler.run_once()  # applies
        await w.reconciler.run_once()  # nothing to change: a pass span, no apply span
        await handler.flush_now()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        await pipeline.stop()
    passes = [s for s in store.spans if s["name"] == "deploy.pass"]
    applies = [s for s in store.spans if s["name"] == "deploy.apply"]
    assert len(passes) == 2 and len(applies) == 1
    [apply] = applies
    assert apply["project_id"] == w.project.id
    assert apply["parent_span_id"] == passes[0]["span_id"] and apply["trace_id"] == passes[0]["trace_id"]
    assert apply["status"] == "ok" and apply["duration_ms"] >= 0
    assert json.loads(apply["attributes"])["deploy.environment"] == "staging"
    assert json.loads(apply["attributes"])["corral.project"] == "acme/web"
    assert json.loads(passes[0]["attributes"])["deploy.applied"] == 1
    assert json.loads(passes[1]["attributes"])["deploy.applied"] == 0
    # found by project, like any application's spans
    found = await store.trace_spans(apply["trace_id"], (w.project.id,))
    assert [s.name for s in found] == ["deploy.apply"]
    # the reconciler's log lines of that deployment carry the project and link to the apply span
    logs = await store.search_logs(LogQuery(project_ids=(w.project.id,)))
    applied = [entry for entry in logs if entry.message == "applied"]
    assert applied and applied[0].span_id == apply["span_id"]


async def test_a_failed_deployment_is_an_error_span() -> None:
    w = await make_world()
    w.push({"apps/web/service.yaml": b"apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ values.nope }}\n"})
    handler = SelfTelemetry(pipeline=None)  # type: ignore[arg-type]  # the batch is inspected, not flushed
    w.reconciler.spans = handler
    await w.deploy()
    await w.reconciler.run_once()
    rows = {row[9]: row for row in handler._batch.spans}
    apply, pass_ = rows["deploy.apply"], rows["deploy.pass"]
    assert apply[5] == w.project.id and apply[11] == "error" and pass_[11] == "error"
    assert "apps/web/service.yaml:4" in apply[13]
