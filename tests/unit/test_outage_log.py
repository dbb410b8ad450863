"""Core loops across a dependency outage: one WARNING when it starts, one INFO when it ends, bounded backoff."""

from __future__ import annotations

import asyncio
import logging

import pytest

from corral.core.errors import Unavailable
from corral.core.outage import OutageLog
from corral.core.outbox.relay import OutboxRelay
from corral.core.pipelines.scheduler import PipelineScheduler
from tests.unit.pipelines.engine_support import make_engine

DOWN = Unavailable("PostgreSQL is unavailable (connection refused); retry shortly", retry_after=1)


def test_an_outage_is_one_warning_and_one_resume_line(caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    outage = OutageLog("the loop", logging.getLogger("corral.test"), base_delay=1.0, max_delay=8.0,
                       monotonic=lambda: now[0])
    caplog.set_level(logging.DEBUG, logger="corral.test")
    delays = [outage.failed(DOWN) for _ in range(6)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]  # growing, bounded
    assert outage.in_outage
    now[0] += 31.0
    outage.succeeded()
    outage.succeeded()  # nothing to end twice
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", f"the loop paused: a dependency is unavailable ({DOWN}); retrying with backoff"),
        ("INFO", "the loop resumed after 31.0 s"),
    ]
    assert all(r.exc_info is None for r in caplog.records)  # no traceback for an outage
    assert outage.failed(DOWN) == 1.0  # a new outage starts from the base delay


def test_a_bug_is_not_an_outage() -> None:
    outage = OutageLog("the loop", logging.getLogger("corral.test"))
    assert outage.failed(ValueError("bug")) is None
    assert not outage.in_outage


async def test_the_scheduler_loop_logs_an_outage_once(caplog: pytest.LogCaptureFixture,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    engine = await make_engine(poll_seconds=0.01)
    engine.scheduler._outage = OutageLog("pipeline scheduler", logging.getLogger("corral.pipelines"),
                                         base_delay=0.001, max_delay=0.002)
    calls = 0
    resumed = asyncio.Event()

    async def run_once(self: PipelineScheduler) -> int:
        nonlocal calls
        calls += 1
        if calls <= 20:
            raise DOWN
        resumed.set()
        return 0

    monkeypatch.setattr(PipelineScheduler, "run_once", run_once)
    caplog.set_level(logging.DEBUG)
    task = asyncio.create_task(engine.scheduler.loop())
    try:
        await asyncio.wait_for(resumed.wait(), 10)
        await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    mine = [r for r in caplog.records if r.name == "corral.pipelines" and r.levelno >= logging.INFO]
    assert [r.levelname for r in mine] == ["WARNING", "INFO"], [r.getMessage() for r in mine]
    assert "pipeline scheduler paused" in mine[0].getMessage() and mine[0].exc_info is None
    assert mine[1].getMessage().startswith("pipeline scheduler resumed after")


async def test_the_outbox_relay_leaves_an_outage_to_its_loop(caplog: pytest.LogCaptureFixture) -> None:
    def factory() -> object:
        raise DOWN

    relay = OutboxRelay(factory, [])  # type: ignore[arg-type]
    caplog.set_level(logging.DEBUG, logger="corral.outbox")
    with pytest.raises(Unavailable):
        await relay.run_once()
    assert not caplog.records  # no "retrying its events one by one" with a traceback per pass


async def test_the_deployer_loop_logs_an_outage_once(caplog: pytest.LogCaptureFixture,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """While PostgreSQL is down every pass fails: one WARNING naming why, one INFO when it is back, no
    traceback per pass; a pass that fails for another reason still logs its traceback."""
    from corral.core.deploy.reconciler import Reconciler
    from tests.unit.deploy.world import make_world

    world = await make_world()
    world.reconciler._outage = OutageLog("deployer", logging.getLogger("corral.deploy"), base_delay=0.001,
                                         max_delay=0.002)
    calls = 0
    resumed, bugged = asyncio.Event(), asyncio.Event()

    async def run_once(self: Reconciler) -> None:
        nonlocal calls
        calls += 1
        if calls <= 20:
            raise DOWN
        if calls == 21:
            resumed.set()
            return
        if calls == 22:
            raise ValueError("a bug in a pass")
        bugged.set()

    monkeypatch.setattr(Reconciler, "run_once", run_once)
    caplog.set_level(logging.DEBUG)
    task = asyncio.create_task(world.reconciler.loop(0.01))
    try:
        await asyncio.wait_for(bugged.wait(), 10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    mine = [r for r in caplog.records if r.name == "corral.deploy" and r.levelno >= logging.INFO]
    assert [r.levelname for r in mine] == ["WARNING", "INFO", "ERROR"], [r.getMessage() for r in mine]
    assert mine[0].getMessage().startswith("deployer paused: a dependency is unavailable (PostgreSQL is unavailable")
    assert mine[0].exc_info is None
    assert mine[1].getMessage().startswith("deployer resumed after") and mine[1].exc_info is None
    assert mine[2].getMessage() == "deployer pass failed; retrying next period" and mine[2].exc_info is not None
