"""The Outbox port."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Protocol

from corral.core.outbox.model import OutboxEvent

__all__ = ["Outbox"]


class Outbox(Protocol):
    """Events stored in the same transaction as the change that caused them.

    A relay loop claims unprocessed events (``claim``: oldest first, rows locked
    so concurrent relays on other replicas skip them), fans each out to its
    consumers inside the same unit of work, then ``mark_processed``. A crash
    before commit releases the claim, so every event is handled at least once.
    """

    async def add(
        self, topic: str, payload: dict[str, Any], *, project_id: uuid.UUID | None = None
    ) -> OutboxEvent:
        """Append an event to the current unit of work."""
        ...

    async def claim(self, limit: int) -> list[OutboxEvent]:
        """Lock and return up to ``limit`` unprocessed events, oldest first."""
        ...

    async def mark_processed(self, ids: list[uuid.UUID]) -> None:
        """Mark claimed events done; they are never returned by ``claim`` again."""
        ...

    async def purge_processed(self, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` events processed before ``before``; unprocessed events are never deleted.

        Returns how many were deleted (call again while it returns ``limit``).
        """
        ...
