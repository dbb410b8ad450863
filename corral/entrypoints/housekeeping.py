"""Housekeeping loops: old rows are deleted in small batches so no table grows forever.

- processed outbox events after ``CORRAL_OUTBOX_RETENTION_HOURS`` (kept a while for debugging);
- in-app notifications after ``CORRAL_NOTIFICATION_RETENTION_DAYS``, sent or failed email/webhook
  notifications after ``CORRAL_NOTIFICATION_DELIVERY_RETENTION_DAYS``;
- delivered or failed project webhook deliveries (the delivery log) after
  ``CORRAL_WEBHOOK_DELIVERY_RETENTION_DAYS``.

Anything still pending is never deleted. Every replica may run the loop (corral.entrypoints.housekeeping_wiring):
batches skip rows another unit of work holds (SKIP LOCKED), and each batch is its own short transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import attrs

from corral.core.clock import Clock
from corral.core.uow import UnitOfWork, UnitOfWorkFactory

__all__ = ["Retention", "purge_old_rows_once", "purge_outbox_once"]

PURGE_BATCH = 1000

Batch = Callable[[UnitOfWork], Awaitable[int]]  # deletes at most PURGE_BATCH rows, returns how many


@attrs.frozen
class Retention:
    """How long each kind of finished row is kept."""

    outbox: timedelta = timedelta(hours=168)
    notifications: timedelta = timedelta(days=90)
    notification_deliveries: timedelta = timedelta(days=30)
    webhook_deliveries: timedelta = timedelta(days=30)

    @classmethod
    def from_settings(cls, settings: Any) -> Retention:
        return cls(
            outbox=timedelta(hours=settings.outbox_retention_hours),
            notifications=timedelta(days=settings.notification_retention_days),
            notification_deliveries=timedelta(days=settings.notification_delivery_retention_days),
            webhook_deliveries=timedelta(days=settings.webhook_delivery_retention_days),
        )


async def _in_batches(uow_factory: UnitOfWorkFactory, batch: Batch) -> int:
    total = 0
    while True:
        async with uow_factory() as uow:
            deleted = await batch(uow)
            await uow.commit()
        total += deleted
        if deleted < PURGE_BATCH:
            return total


async def purge_outbox_once(uow_factory: UnitOfWorkFactory, clock: Clock, retention: timedelta) -> int:
    """Delete every processed outbox event older than ``retention``, in small transactions."""
    cutoff = clock.now() - retention
    return await _in_batches(uow_factory, lambda uow: uow.outbox.purge_processed(cutoff, PURGE_BATCH))


async def purge_old_rows_once(
    uow_factory: UnitOfWorkFactory, clock: Clock, retention: Retention
) -> dict[str, int]:
    """One pass over every retention rule; returns how many rows each deleted."""
    now = clock.now()
    in_app, delivered, hooks = (
        now - retention.notifications, now - retention.notification_deliveries, now - retention.webhook_deliveries
    )
    return {
        "outbox_events": await purge_outbox_once(uow_factory, clock, retention.outbox),
        "notifications": await _in_batches(uow_factory, lambda uow: uow.notifications.purge_old(
            in_app_before=in_app, delivery_before=delivered, limit=PURGE_BATCH)),
        "webhook_deliveries": await _in_batches(
            uow_factory, lambda uow: uow.webhook_deliveries.purge_finished(hooks, PURGE_BATCH)),
    }
