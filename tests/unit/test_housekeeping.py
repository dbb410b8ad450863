"""Outbox retention: processed events older than the retention are purged, pending and recent ones stay."""

from __future__ import annotations

from datetime import timedelta

from corral.entrypoints import housekeeping
from corral.fakes.clock import FakeClock
from corral.fakes.uow import InMemoryUnitOfWorkFactory


async def test_purge_keeps_pending_and_recent_events(monkeypatch) -> None:
    monkeypatch.setattr(housekeeping, "PURGE_BATCH", 2)  # several batches
    clock = FakeClock()
    factory = InMemoryUnitOfWorkFactory(clock=clock)
    async with factory() as uow:
        for n in range(5):
            await uow.outbox.add("old", {"n": n})
        await uow.commit()
    async with factory() as uow:
        await uow.outbox.mark_processed([e.id for e in await uow.outbox.claim(10)])
        await uow.commit()
    clock.advance(3 * 3600)
    async with factory() as uow:
        recent = await uow.outbox.add("recent", {})
        pending = await uow.outbox.add("pending", {})
        await uow.commit()
    async with factory() as uow:
        claimed = await uow.outbox.claim(1)
        assert claimed[0].id == recent.id
        await uow.outbox.mark_processed([recent.id])
        await uow.commit()

    deleted = await housekeeping.purge_outbox_once(factory, clock, timedelta(hours=1))
    assert deleted == 5
    async with factory() as uow:
        assert [e.id for e in await uow.outbox.claim(10)] == [pending.id]
    assert await housekeeping.purge_outbox_once(factory, clock, timedelta(hours=1)) == 0
