"""What a pipeline tells the world: ``pipeline`` outbox events (webhooks) at each status change, and a
``build_failed`` notification to whoever started a failed pipeline (through the notification planner)."""

from __future__ import annotations

import uuid

from corral.core.notify.model import Channel, EventType, Recipient
from corral.core.notify.planner import NotificationPlanner
from corral.core.outbox import topics
from corral.fakes.notify import InMemoryRecipientDirectory, PlainRenderer
from tests.unit.pipelines.engine_support import Script, make_engine

ONE_STEP = """
steps:
  build:
    image: alpine
    commands: [make]
"""


async def test_a_failed_pipeline_emits_pipeline_events_and_notifies_its_author() -> None:
    engine = await make_engine({"build": Script(exit_code=2)})
    ann = uuid.uuid4()
    p = await engine.create(ONE_STEP, actor=ann)
    await engine.run_all()
    assert (await engine.statuses(p.number))["pipeline"] == "failure"
    events = [e for e in engine.uow_factory.db.outbox.events.values() if e.project_id == engine.project.id]
    actions = [e.payload["action"] for e in sorted(events, key=lambda e: e.id) if e.topic == topics.PIPELINE]
    assert actions == ["created", "running", "failure"]
    [failed] = [e for e in events if e.topic == topics.BUILD_FAILED]
    assert failed.payload["number"] == p.number and failed.payload["user_ids"] == [str(ann)]

    InMemoryRecipientDirectory(engine.uow_factory.db.notify).add_user(Recipient(ann, "ann", "ann@example.org"))
    planner = NotificationPlanner(PlainRenderer(), engine.clock)
    async with engine.uow_factory() as uow:
        assert await planner.fan_out(uow, failed) >= 1
        await uow.commit()
    rows = [n for n in engine.uow_factory.db.notify.notifications.values() if n.user_id == ann]
    assert {(n.type, n.channel) for n in rows} >= {(EventType.BUILD_FAILED, Channel.IN_APP)}


async def test_a_successful_pipeline_notifies_nobody() -> None:
    engine = await make_engine()
    p = await engine.create(ONE_STEP, actor=uuid.uuid4())
    await engine.run_all()
    assert (await engine.statuses(p.number))["pipeline"] == "success"
    topics_seen = {e.topic for e in engine.uow_factory.db.outbox.events.values()}
    assert topics.BUILD_FAILED not in topics_seen and topics.PIPELINE in topics_seen
