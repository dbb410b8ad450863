"""PostgresPushIntentStore: pushes announced before git may move a ref (table git_push_intents, migration 033)
and the ref moves recorded lately (git_ref_moves, migration 055)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from corral.adapters.postgres.errors import translate_errors
from corral.core.git.model import PushIntent, RefUpdate

# class of the two-key advisory locks serialising the recording of one project's ref moves (key 2: the project)
_MOVES_LOCK_CLASS = 55

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

    async def lock_moves(self, project_id: uuid.UUID) -> None:
        with translate_errors("push record lock"):
            await self.conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", _MOVES_LOCK_CLASS,
                                    str(project_id))

    async def moves_since(self, project_id: uuid.UUID, refs: list[str], since: datetime) -> list[RefUpdate]:
        with translate_errors("recorded ref moves"):
            rows = await self.conn.fetch(
                "SELECT ref, old, new FROM git_ref_moves WHERE project_id = $1 AND ref = ANY($2::text[])"
                " AND recorded_at >= $3 ORDER BY seq", project_id, refs, since,
            )
        return [RefUpdate(r["old"], r["new"], r["ref"]) for r in rows]

    async def add_moves(self, project_id: uuid.UUID, moves: list[RefUpdate], at: datetime) -> None:
        if not moves:
            return
        with translate_errors("recorded ref moves"):
            await self.conn.executemany(
                "INSERT INTO git_ref_moves (project_id, ref, old, new, recorded_at) VALUES ($1, $2, $3, $4, $5)",
                [(project_id, m.ref, m.old, m.new, at) for m in moves],
            )

    async def forget_moves(self, before: datetime) -> int:
        with translate_errors("recorded ref moves"):
            status = await self.conn.execute("DELETE FROM git_ref_moves WHERE recorded_at < $1", before)
        return int(status.split()[-1])
