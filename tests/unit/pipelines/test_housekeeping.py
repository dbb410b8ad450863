"""Housekeeping: leftovers of a crashed server stopped and marked error; kept workspaces deleted after the
retention."""

from __future__ import annotations

import asyncio

import attrs

from corral.core.pipelines.housekeeping import PipelineHousekeeping
from corral.core.workloads.model import WorkloadHandle
from corral.fakes.executor import InMemoryExecutor, InMemoryExecutorWorld
from tests.unit.pipelines.engine_support import make_engine


@attrs.define
class _Crashing(InMemoryExecutor):
    dead: bool = False

    async def stop(self, handle: WorkloadHandle, grace_seconds: float = 5.0) -> None:
        if not self.dead:
            await super().stop(handle, grace_seconds)


SLOW = """
skip_clone: true
steps:
  slow:
    image: alpine
    commands: [sleep 30]
  after:
    image: alpine
    commands: [echo never]
"""

FAILING = """
skip_clone: true
steps:
  broken:
    image: alpine
    commands: [exit 2]
"""


async def test_leftovers_of_a_crashed_process_are_stopped_and_their_steps_marked_error() -> None:
    world = InMemoryExecutorWorld()
    crashed = _Crashing(world=world)
    engine = await make_engine(executor=crashed, owner="host-a:100:old")
    p = await engine.create(SLOW)
    await engine.scheduler.run_once()

    async def running() -> None:
        while (await engine.statuses(p.number))["slow"] != "running":
            await asyncio.sleep(0.01)
    await asyncio.wait_for(running(), 5)

    crashed.dead = True  # the process dies: its workloads keep running
    await engine.scheduler.shutdown()
    assert (await engine.statuses(p.number))["slow"] == "running"

    restarted = InMemoryExecutor(world=world)  # the next process on the same host
    assert len(await restarted.running({"corral.pipeline": str(p.id)})) == 1
    housekeeping = PipelineHousekeeping(engine.uow_factory, restarted, engine.clock, "host-a:200:new")
    assert await housekeeping.recover() == 1
    assert await restarted.running({}) == []
    assert await engine.statuses(p.number) == {"pipeline": "error", "slow": "error", "after": "skipped"}
    async with engine.uow_factory() as uow:
        steps = {s.name: s for s in await uow.pipelines.steps(p.id)}
    assert "server running it stopped" in steps["slow"].error


async def test_a_workload_of_a_live_replica_on_another_host_is_left_alone() -> None:
    world = InMemoryExecutorWorld()
    engine = await make_engine(executor=InMemoryExecutor(world=world), owner="host-b:1:live")
    p = await engine.create(SLOW)
    await engine.scheduler.run_once()
    await asyncio.wait_for(_until_running(engine, p.number), 5)
    other = PipelineHousekeeping(engine.uow_factory, InMemoryExecutor(world=world), engine.clock, "host-c:1:x")
    assert await other.recover() == 0
    assert (await engine.statuses(p.number))["slow"] == "running"
    await engine.scheduler.shutdown()


async def _until_running(engine: object, number: int) -> None:
    while (await engine.statuses(number))["slow"] != "running":  # type: ignore[attr-defined]
        await asyncio.sleep(0.01)


async def test_kept_workspaces_are_deleted_after_the_retention() -> None:
    world = InMemoryExecutorWorld()
    executor = InMemoryExecutor(world=world)
    engine = await make_engine(executor=executor)
    p = await engine.create(FAILING)
    await engine.run_all()
    assert (await engine.statuses(p.number))["pipeline"] == "failure"
    async with engine.uow_factory() as uow:
        (workflow,) = await uow.pipelines.workflows(p.id)
    assert not workflow.workspace_deleted and workflow.workspace_key in world.workspaces  # kept for a restart
    housekeeping = PipelineHousekeeping(engine.uow_factory, executor, engine.clock, "host:1:x",
                                        workspace_retention_hours=24)
    assert await housekeeping.sweep() == (0, 0)
    engine.clock.advance(24 * 3600 + 1)
    assert await housekeeping.sweep() == (1, 0)
    assert workflow.workspace_key not in world.workspaces
    async with engine.uow_factory() as uow:
        (workflow,) = await uow.pipelines.workflows(p.id)
    assert workflow.workspace_deleted
    assert await housekeeping.sweep() == (0, 0)
