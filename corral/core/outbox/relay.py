"""The outbox relay: claims committed events and hands each to every consumer in the same transaction."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import attrs

from corral.core.errors import Unavailable
from corral.core.outbox.model import OutboxEvent
from corral.core.uow import UnitOfWork, UnitOfWorkFactory

__all__ = ["OutboxConsumer", "OutboxRelay"]

log = logging.getLogger("corral.outbox")


# A consumer reacts to one event by writing its own rows (deliveries, notifications) in the relay's unit of
# work; it must be idempotent per event id (an event is handed out at least once).
OutboxConsumer = Callable[[UnitOfWork, OutboxEvent], Awaitable[object]]


@attrs.define
class OutboxRelay:
    """Claims a batch (rows locked, other replicas skip them), fans out to every consumer, marks processed.

    A consumer that fails rolls the whole batch back: it is retried on the next
    run, so consumers dedupe by event id.
    """

    uow_factory: UnitOfWorkFactory
    consumers: list[OutboxConsumer] = attrs.field(factory=list)
    batch_size: int = 100

    async def run_once(self) -> int:
        """Handle one batch; return how many events were processed.

        Raises :class:`Unavailable` when the database is down (the loop backs off). If the batch fails
        otherwise, its events are retried one by one, and an event that still fails on its own is logged and
        set aside (marked processed) so that it cannot block every event behind it.
        """
        try:
            async with self.uow_factory() as uow:
                events = await uow.outbox.claim(self.batch_size)
                if not events:
                    return 0
                for event in events:
                    await self._fan_out(uow, event)
                await uow.outbox.mark_processed([e.id for e in events])
                await uow.commit()
            return len(events)
        except Unavailable:
            raise  # the database is down: one by one would fail the same way; the relay's loop backs off
        except Exception:
            log.warning("outbox batch failed; retrying its events one by one", exc_info=True)
        done = 0
        while done < self.batch_size:
            failed: OutboxEvent | None = None
            async with self.uow_factory() as uow:
                claimed = await uow.outbox.claim(1)
                if not claimed:
                    break
                try:
                    await self._fan_out(uow, claimed[0])
                except Exception:
                    log.exception("outbox event %s (%s) failed in a consumer; set aside", claimed[0].id,
                                  claimed[0].topic)
                    failed = claimed[0]
                else:
                    await uow.outbox.mark_processed([claimed[0].id])
                    await uow.commit()
            if failed is not None:  # the failed unit rolled back on exit; record the event as handled
                async with self.uow_factory() as uow:
                    await uow.outbox.mark_processed([failed.id])
                    await uow.commit()
            done += 1
        return done

    async def _fan_out(self, uow: UnitOfWork, event: OutboxEvent) -> None:
        for consumer in self.consumers:
            await consumer(uow, event)
