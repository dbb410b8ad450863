"""Housekeeping loops: processed outbox events are kept for a while (for debugging), then deleted in batches."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from corral.core.clock import Clock
from corral.core.uow import UnitOfWorkFactory

__all__ = ["purge_outbox_once", "wire_housekeeping"]

log = logging.getLogger("corral.housekeeping")
PURGE_BATCH = 1000
PURGE_INTERVAL_SECONDS = 3600.0


async def purge_outbox_once(uow_factory: UnitOfWorkFactory, clock: Clock, retention: timedelta) -> int:
    """Delete every processed outbox event older than ``retention``, in small transactions."""
    cutoff = clock.now() - retention
    total = 0
    while True:
        async with uow_factory() as uow:
            deleted = await uow.outbox.purge_processed(cutoff, PURGE_BATCH)
            await uow.commit()
        total += deleted
        if deleted < PURGE_BATCH:
            return total


async def wire_housekeeping(platform: Any) -> None:
    """Register the outbox retention loop (every replica may run it: batches lock rows with SKIP LOCKED)."""
    uow_factory: UnitOfWorkFactory = platform.resolve(UnitOfWorkFactory)
    clock: Clock = platform.resolve(Clock)
    retention = timedelta(hours=platform.settings.outbox_retention_hours)

    async def outbox_retention() -> None:
        while True:
            deleted = await purge_outbox_once(uow_factory, clock, retention)
            if deleted:
                log.info("purged processed outbox events", extra={"deleted": deleted})
            await asyncio.sleep(PURGE_INTERVAL_SECONDS)

    platform.background.append(outbox_retention)
