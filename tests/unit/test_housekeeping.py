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


async def test_one_pass_applies_every_retention_rule(monkeypatch) -> None:
    from corral.core.ids import uuid7
    from corral.core.notify.model import Channel, EventType, Notification, NotificationStatus
    from corral.core.projects.model import DeliveryStatus, WebhookDelivery

    monkeypatch.setattr(housekeeping, "PURGE_BATCH", 2)  # several batches per rule
    clock = FakeClock()
    factory = InMemoryUnitOfWorkFactory(clock=clock)
    now = clock.now()
    retention = housekeeping.Retention(outbox=timedelta(hours=1), notifications=timedelta(days=90),
                                       notification_deliveries=timedelta(days=30),
                                       webhook_deliveries=timedelta(days=30))

    def note(age_days: int, channel=Channel.IN_APP, status=NotificationStatus.SENT) -> Notification:
        return Notification(uuid7(), uuid7(), EventType.BUILD_FAILED, channel, status, "s", "b",
                            now - timedelta(days=age_days), target=None if channel is Channel.IN_APP else "x@y")

    def delivery(age_days: int, status=DeliveryStatus.DELIVERED) -> WebhookDelivery:
        return WebhookDelivery(uuid7(), uuid7(), uuid7(), "push", {}, status, now - timedelta(days=age_days), None)

    old_notes = [note(91), note(120), note(95), note(31, Channel.EMAIL), note(45, Channel.WEBHOOK,
                                                                             NotificationStatus.FAILED)]
    kept_notes = [note(89), note(10, Channel.EMAIL), note(200, Channel.EMAIL, NotificationStatus.PENDING)]
    old_hooks = [delivery(31), delivery(60, DeliveryStatus.FAILED), delivery(45)]
    kept_hooks = [delivery(29), delivery(90, DeliveryStatus.PENDING)]
    async with factory() as uow:
        for n in old_notes + kept_notes:
            await uow.notifications.add(n)
        for d in old_hooks + kept_hooks:
            await uow.webhook_deliveries.add(d)
        await uow.commit()

    deleted = await housekeeping.purge_old_rows_once(factory, clock, retention)
    assert deleted == {"outbox_events": 0, "notifications": len(old_notes), "webhook_deliveries": len(old_hooks)}
    async with factory() as uow:
        assert [await uow.notifications.get(n.id) for n in old_notes] == [None] * len(old_notes)
        assert [await uow.notifications.get(n.id) for n in kept_notes] == kept_notes
        assert [await uow.webhook_deliveries.get(d.id) for d in old_hooks] == [None] * len(old_hooks)
        assert [await uow.webhook_deliveries.get(d.id) for d in kept_hooks] == kept_hooks
    assert set((await housekeeping.purge_old_rows_once(factory, clock, retention)).values()) == {0}


def test_retention_comes_from_settings() -> None:
    from corral.entrypoints.config import Settings

    r = housekeeping.Retention.from_settings(Settings(notification_retention_days=7,
                                                      webhook_delivery_retention_days=3))
    assert r.notifications == timedelta(days=7) and r.webhook_deliveries == timedelta(days=3)
    assert r.notification_deliveries == timedelta(days=30) and r.outbox == timedelta(hours=168)
