"""The outbox relay: hands committed outbox events to every registered consumer, then marks them processed.

Consumers run inside the relay's unit of work (what they write commits with the "processed" mark, so an
event is handled at least once). Any replica may run the relay: ``claim`` locks rows (SKIP LOCKED).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from corral.core.outbox.model import OutboxEvent
from corral.core.uow import UnitOfWork, UnitOfWorkFactory

__all__ = ["OutboxConsumer", "add_outbox_consumer", "relay_once"]

log = logging.getLogger("corral.outbox")
OutboxConsumer = Callable[[UnitOfWork, OutboxEvent], Awaitable[Any]]
_CONSUMERS = "outbox_consumers"  # container key of the consumer list


async def relay_once(uow_factory: UnitOfWorkFactory, consumers: list[OutboxConsumer], limit: int = 100) -> int:
    """Process one batch; returns how many events were handled."""
    async with uow_factory() as uow:
        events = await uow.outbox.claim(limit)
        for event in events:
            for consumer in consumers:
                await consumer(uow, event)
        if events:
            await uow.outbox.mark_processed([e.id for e in events])
        await uow.commit()
    return len(events)


def add_outbox_consumer(platform: Any, consumer: OutboxConsumer, *, interval: float = 0.5) -> None:
    """Register ``consumer``; the first registration also adds the relay loop to the platform's background."""
    try:
        consumers: list[OutboxConsumer] = platform.resolve(_CONSUMERS)
    except Exception:  # punq: not registered yet - this is the first consumer
        consumers = []
        platform.register(_CONSUMERS, consumers)
        uow_factory: UnitOfWorkFactory = platform.resolve(UnitOfWorkFactory)

        async def outbox_relay() -> None:
            while True:
                try:
                    handled = await relay_once(uow_factory, consumers)
                except Exception:
                    log.exception("outbox relay batch failed; retrying")
                    handled = 0
                if not handled:
                    await asyncio.sleep(interval)

        platform.background.append(outbox_relay)
        consumers.append(consumer)
        return
    consumers.append(consumer)
