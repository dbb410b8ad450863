"""PostgresPushIntentStore: pushes announced before git may move a ref (table git_push_intents, migration 033)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from corral.adapters.postgres.errors import translate_errors
from corral.core.git.model import PushIntent, RefUpdate

__all__ = ["PostgresPushIntentStore"]


def _intent(r: Any) -> PushIntent:
    return PushIntent(
        id=r["id"], project_id=r["project_id"], actor_id=r["actor_id"], actor_name=r["actor_name"],
        updates=tuple(RefUpdate(u["old"], u["new"], u["ref"]) for u in r["updates"]), created_at=r["created_at"],
        bypassed=tuple((uuid.UUID(b["rule"]), b["reason"]) for b in r["bypassed"]),
    )


class PostgresPushIntentStore:
    """See corral.core.git.ports.PushIntentStore."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def add(self, intent: PushIntent) -> None:
        with translate_errors("push intent"):
            await self.conn.execute(
                "INSERT INTO git_push_intents (id, project_id, actor_id, actor_name, updates, bypassed, created_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7)",
                intent.id, intent.project_id, intent.actor_id, intent.actor_name,
                [{"ref": u.ref, "old": u.old, "new": u.new} for u in intent.updates],
                [{"rule": str(rule), "reason": reason} for rule, reason in intent.bypassed],
                intent.created_at,
            )

    async def claim(self, intent_id: uuid.UUID) -> bool:
        with translate_errors("push intent"):
            status = await self.conn.execute("DELETE FROM git_push_intents WHERE id = $1", intent_id)
        return bool(status.endswith(" 1"))

    async def older_than(self, before: datetime, limit: int) -> list[PushIntent]:
        with translate_errors("push intents"):
            rows = await self.conn.fetch(
                "SELECT * FROM git_push_intents WHERE created_at < $1 ORDER BY created_at LIMIT $2", before, limit
            )
        return [_intent(r) for r in rows]
