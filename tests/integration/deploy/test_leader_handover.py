"""Leader hand-over between two reconcilers on the PostgreSQL advisory lock: while one leads (its pass held in
the middle of an apply) the other does nothing; when the leader's database session dies (a crash, a lost
network: PostgreSQL ends it), the other's loop takes over within seconds and applies the pending desired states,
and the old leader stops its pass at the next deployment instead of going on as a second leader."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import asyncpg
import pytest

from corral.adapters.postgres.observe import PostgresLeaderLock
from corral.core.deploy.commands import DesiredState
from corral.core.deploy.model import Deployment, ObjectRef
from corral.fakes.deploy import FakeCluster
from tests.unit.deploy.test_reconciler import WEB
from tests.unit.deploy.world import ANN, make_world

pytestmark = pytest.mark.integration


class StuckCluster(FakeCluster):
    """The leader's view of the cluster: its applies wait for ``release``; ``namespaces`` records them."""

    entered: asyncio.Event
    release: asyncio.Event
    namespaces: list[str]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.entered, self.release, self.namespaces = asyncio.Event(), asyncio.Event(), []

    async def apply(self, obj: Mapping[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        self.entered.set()
        await self.release.wait()
        self.namespaces.append(obj["metadata"]["namespace"])
        return await super().apply(obj, dry_run=dry_run)


async def test_the_other_reconciler_takes_over_when_the_leaders_session_dies(pg_dsn: str) -> None:
    w = await make_world()
    assert w.cluster is not None
    stuck = StuckCluster(w.clock)
    leader = w.reconciler_twin()
    leader.leader, leader.cluster = PostgresLeaderLock(pg_dsn), stuck
    standby = w.reconciler_twin()
    standby.leader = PostgresLeaderLock(pg_dsn)
    applied = asyncio.Event()

    async def on_apply(_d: Deployment) -> None:
        applied.set()

    standby.on_apply = on_apply
    await w.deploy()
    second = await w.service.set_desired(ANN, w.project, "qa", DesiredState(
        ops_repo="ops", app_path="apps/web", image_ref="registry.example/web:1", namespace="qa"))
    admin = await asyncpg.connect(pg_dsn)
    leading = asyncio.create_task(leader.run_once())
    standby_loop: asyncio.Task[None] | None = None
    try:
        await asyncio.wait_for(stuck.entered.wait(), 10)  # the leader holds the lock, in the middle of its pass
        assert await standby.run_once() is None  # the standby does nothing meanwhile
        assert await w.cluster.get(WEB) is None
        standby_loop = asyncio.create_task(standby.loop(0.5))  # as `corral serve` runs it (a short interval)
        await asyncio.sleep(1.2)
        assert not applied.is_set()
        holders = await admin.fetch("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted")
        assert len(holders) == 1
        died = time.monotonic()
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", holders[0]["pid"]) is True
        await asyncio.wait_for(applied.wait(), 10)
        took = time.monotonic() - died
        assert took < 5, f"took over after {took:.1f} s"
        live = await w.cluster.get(WEB)
        assert live is not None and live["spec"]["template"]["spec"]["containers"][0]["image"] == \
            "registry.example/web:1"
        async with w.uow() as uow:
            d = await uow.deploy.get(w.project.id, "staging")
        assert d is not None and d.applied_revision == d.desired_revision
        # the old leader, unblocked, notices its session is gone and stops its pass: it never reaches "qa"
        stuck.release.set()
        assert await asyncio.wait_for(leading, 10) is not None
        assert "qa" not in stuck.namespaces
        qa = ObjectRef("apps/v1", "Deployment", "web", "qa")
        for _ in range(100):  # the standby applies it (bounded wait)
            if await w.cluster.get(qa) is not None:
                break
            await asyncio.sleep(0.1)
        assert await w.cluster.get(qa) is not None
        assert second[0].environment == "qa"
    finally:
        stuck.release.set()
        if standby_loop is not None:
            standby_loop.cancel()
        await asyncio.gather(leading, *( [standby_loop] if standby_loop else []), return_exceptions=True)
        await admin.close()
