"""PostgresOutbox: events in the outbox table, claimed with FOR UPDATE SKIP LOCKED."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import asyncpg

from corral.adapters.postgres.errors import translate_errors
from corral.core.clock import Clock
from corral.core.errors import InvalidInput
from corral.core.ids import uuid7
from corral.core.outbox.model import OutboxEvent

__all__ = ["PostgresOutbox"]


def _event(row: asyncpg.Record) -> OutboxEvent:
    return OutboxEvent(
        id=row["id"],
        topic=row["topic"],
        payload=row["payload"],
        project_id=row["project_id"],
        created_at=row["created_at"],
        processed_at=row["processed_at"],
    )


class PostgresOutbox:
    """Outbox bound to one connection (the unit of work's transaction)."""

    def __init__(self, conn: asyncpg.Connection, clock: Clock) -> None:
        self.conn = conn
        self.clock = clock

    async def add(
        self, topic: str, payload: dict[str, Any], *, project_id: uuid.UUID | None = None
    ) -> OutboxEvent:
        if not topic:
            raise InvalidInput("an outbox event needs a topic", field="topic")
        event = OutboxEvent(
            id=uuid7(),
            topic=topic,
            # the stored form: UUIDs and datetimes as strings, like the in-memory outbox
            payload=json.loads(json.dumps(payload, default=str)),
            project_id=project_id,
            created_at=self.clock.now(),
        )
        with translate_errors("outbox event"):
            await self.conn.execute(
                "INSERT INTO outbox (id, topic, payload, project_id, created_at) VALUES ($1, $2, $3, $4, $5)",
                event.id,
                event.topic,
                event.payload,
                event.project_id,
                event.created_at,
            )
        return event

    async def claim(self, limit: int) -> list[OutboxEvent]:
        if limit < 1:
            raise InvalidInput("claim needs a limit of at least 1", field="limit")
        with translate_errors("outbox claim"):
            rows = await self.conn.fetch(
                "SELECT id, topic, payload, project_id, created_at, processed_at FROM outbox"
                " WHERE processed_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
                limit,
            )
        return [_event(r) for r in rows]

    async def purge_processed(self, before: datetime, limit: int) -> int:
        if limit < 1:
            raise InvalidInput("purge needs a limit of at least 1", field="limit")
        with translate_errors("outbox purge"):
            status = await self.conn.execute(
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE processed_at IS NOT NULL"
                " AND processed_at < $1 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)",
                before,
                limit,
            )
        return int(status.split()[-1])

    async def mark_processed(self, ids: list[uuid.UUID]) -> None:
        if not ids:
            return
        with translate_errors("outbox event"):
            await self.conn.execute(
                "UPDATE outbox SET processed_at = $2 WHERE id = ANY($1::uuid[]) AND processed_at IS NULL",
                list(ids),
                self.clock.now(),
            )
