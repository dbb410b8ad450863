"""Wiring of housekeeping: the retention loop over corral.entrypoints.housekeeping's purges."""

from __future__ import annotations

import asyncio
import logging

from corral.entrypoints.housekeeping import Retention, purge_old_rows_once
from corral.entrypoints.outages import LoopErrors
from corral.entrypoints.platform import Platform

__all__ = ["PURGE_INTERVAL_SECONDS", "wire_housekeeping"]

log = logging.getLogger("corral.housekeeping")
PURGE_INTERVAL_SECONDS = 3600.0


async def wire_housekeeping(platform: Platform) -> None:
    """Register the retention loop (every replica may run it: batches lock rows with SKIP LOCKED)."""
    uow_factory, clock = platform.uow_factory, platform.clock
    retention = Retention.from_settings(platform.settings)

    errors = LoopErrors("retention")

    async def retention_loop() -> None:
        while True:
            try:
                deleted = await purge_old_rows_once(uow_factory, clock, retention)
            except Exception as exc:
                await asyncio.sleep(min(errors.failed(exc), PURGE_INTERVAL_SECONDS))
                continue
            errors.succeeded()
            if any(deleted.values()):
                log.info("purged old rows", extra={"deleted": deleted})
            await asyncio.sleep(PURGE_INTERVAL_SECONDS)

    platform.background.append(retention_loop)
