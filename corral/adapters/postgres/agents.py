"""PostgresAgentSessionStore: agent_sessions and agent_messages (migrations 005 and 062)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from corral.adapters.postgres.errors import translate_errors
from corral.core.agents.model import AgentEvent, AgentSession, AgentStatus, EventDraft, EventRole
from corral.core.errors import InvalidInput, NotFound
from corral.core.pagination import Page, decode_cursor, encode_cursor

__all__ = ["PostgresAgentSessionStore"]

_COLUMNS = (
    "id, project_id, user_id, requester_name, prompt, provider, permissions, max_turns, max_cost_usd, "
    "timeout_seconds, branch, open_merge_request, status, created_at, expires_at, agent_user_id, agent_user_name, "
    "started_at, finished_at, cost_usd, turns, duration_ms, merge_request, error, runs, owner, heartbeat_at, "
    "delegation_ids, token_id, workspace_deleted_at"
)
_PLACEHOLDERS = ", ".join(f"${i}" for i in range(1, 31))


def _session(r: Any) -> AgentSession:
    return AgentSession(
        id=r["id"], project_id=r["project_id"], requester_id=r["user_id"], requester_name=r["requester_name"],
        prompt=r["prompt"], provider=r["provider"], permissions=tuple(r["permissions"]), max_turns=r["max_turns"],
        max_cost_usd=r["max_cost_usd"], timeout_seconds=r["timeout_seconds"], branch=r["branch"] or "",
        open_merge_request=r["open_merge_request"], status=AgentStatus(r["status"]), created_at=r["created_at"],
        expires_at=r["expires_at"] or r["created_at"], agent_user_id=r["agent_user_id"],
        agent_user_name=r["agent_user_name"], started_at=r["started_at"], finished_at=r["finished_at"],
        cost_usd=r["cost_usd"], turns=r["turns"], duration_ms=r["duration_ms"], merge_request=r["merge_request"],
        error=r["error"], runs=r["runs"], owner=r["owner"], heartbeat_at=r["heartbeat_at"],
        delegation_ids=tuple(r["delegation_ids"]), token_id=r["token_id"],
        workspace_deleted_at=r["workspace_deleted_at"],
    )


def _args(s: AgentSession) -> tuple[Any, ...]:
    return (s.id, s.project_id, s.requester_id, s.requester_name, s.prompt, s.provider, list(s.permissions),
            s.max_turns, s.max_cost_usd, s.timeout_seconds, s.branch, s.open_merge_request, s.status.value,
            s.created_at, s.expires_at, s.agent_user_id, s.agent_user_name, s.started_at, s.finished_at, s.cost_usd,
            s.turns, s.duration_ms, s.merge_request, s.error, s.runs, s.owner, s.heartbeat_at,
            list(s.delegation_ids), s.token_id, s.workspace_deleted_at)


def _event(r: Any) -> AgentEvent:
    return AgentEvent(session_id=r["session_id"], id=r["seq"], type=r["type"], role=EventRole(r["role"]),
                      content=r["content"], metadata=dict(r["metadata"] or {}), created_at=r["created_at"])


class PostgresAgentSessionStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def add(self, session: AgentSession) -> None:
        with translate_errors("agent session"):
            await self.conn.execute(f"INSERT INTO agent_sessions ({_COLUMNS}) VALUES ({_PLACEHOLDERS})",
                                    *_args(session))

    async def get(self, session_id: uuid.UUID) -> AgentSession | None:
        row = await self.conn.fetchrow(f"SELECT {_COLUMNS} FROM agent_sessions WHERE id = $1", session_id)
        return _session(row) if row is not None else None

    async def update(self, session: AgentSession) -> None:
        names = [c.strip() for c in _COLUMNS.split(",")]
        sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(names, start=1) if name != "id")
        with translate_errors("agent session"):
            done = await self.conn.execute(f"UPDATE agent_sessions SET {sets} WHERE id = $1", *_args(session))
        if done.endswith(" 0"):
            raise NotFound(f"no agent session {session.id}")

    async def list_for_project(self, project_id: uuid.UUID, *, limit: int, cursor: str | None) -> Page[AgentSession]:
        raw = decode_cursor(cursor)
        args: list[Any] = [project_id, limit + 1]
        where = "project_id = $1"
        if raw is not None:
            try:
                args += [datetime.fromisoformat(str(raw["t"])), uuid.UUID(str(raw["id"]))]
            except (KeyError, ValueError) as exc:
                raise InvalidInput("cursor is not a cursor returned by this API", field="cursor") from exc
            where += " AND (created_at, id) < ($3, $4)"
        rows = await self.conn.fetch(f"SELECT {_COLUMNS} FROM agent_sessions WHERE {where} "
                                     "ORDER BY created_at DESC, id DESC LIMIT $2", *args)
        items = [_session(r) for r in rows[:limit]]
        more = len(rows) > limit
        next_cursor = encode_cursor({"t": items[-1].created_at.isoformat(), "id": str(items[-1].id)}) if more \
            else None
        return Page(items, next_cursor)

    async def for_agent_user(self, user_id: uuid.UUID) -> AgentSession | None:
        row = await self.conn.fetchrow(f"SELECT {_COLUMNS} FROM agent_sessions WHERE agent_user_id = $1", user_id)
        return _session(row) if row is not None else None

    async def unfinished(self) -> list[AgentSession]:
        rows = await self.conn.fetch(f"SELECT {_COLUMNS} FROM agent_sessions WHERE status IN ('pending', 'running') "
                                     "ORDER BY created_at, id")
        return [_session(r) for r in rows]

    async def expired_workspaces(self, before: datetime, limit: int) -> list[AgentSession]:
        rows = await self.conn.fetch(
            f"SELECT {_COLUMNS} FROM agent_sessions WHERE status IN ('completed', 'failed', 'stopped') "
            "AND workspace_deleted_at IS NULL AND finished_at < $1 ORDER BY finished_at, id LIMIT $2", before, limit)
        return [_session(r) for r in rows]

    async def add_events(self, session_id: uuid.UUID, drafts: Sequence[EventDraft], at: datetime) -> list[AgentEvent]:
        if not drafts:
            return []
        # the row lock of this UPDATE orders concurrent writers: numbers are handed out in commit order
        last = await self.conn.fetchval(
            "UPDATE agent_sessions SET event_seq = event_seq + $2 WHERE id = $1 RETURNING event_seq",
            session_id, len(drafts))
        if last is None:
            raise NotFound(f"no agent session {session_id}")
        first = last - len(drafts) + 1
        metadata = [json.loads(json.dumps(d.metadata, default=str)) for d in drafts]
        rows = [(uuid.uuid4(), session_id, first + i, d.type, d.role.value, d.content.replace("\x00", ""),
                 metadata[i], at) for i, d in enumerate(drafts)]
        with translate_errors("agent event"):
            await self.conn.executemany(
                "INSERT INTO agent_messages (id, session_id, seq, type, role, content, metadata, created_at) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)", rows)
        return [AgentEvent(session_id=session_id, id=first + i, type=d.type, role=d.role, content=row[5],
                           metadata=metadata[i], created_at=at) for i, (d, row) in enumerate(zip(drafts, rows,
                                                                                                strict=True))]

    async def events(self, session_id: uuid.UUID, *, after: int, limit: int) -> list[AgentEvent]:
        rows = await self.conn.fetch(
            "SELECT session_id, seq, type, role, content, metadata, created_at FROM agent_messages "
            "WHERE session_id = $1 AND seq > $2 ORDER BY seq LIMIT $3", session_id, after, limit)
        return [_event(r) for r in rows]
