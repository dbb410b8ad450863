"""InMemoryAgentSessionStore: the AgentSessionStore port over dicts (rows replaced, never mutated)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import attrs

from corral.core.agents.model import AgentEvent, AgentSession, EventDraft
from corral.core.agents.ports import AgentGrant
from corral.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from corral.core.identity.model import Principal
from corral.core.pagination import Page, decode_cursor, encode_cursor
from corral.core.projects.model import Project
from corral.fakes.outbox import RowLocks

__all__ = ["AgentTables", "InMemoryAgentIdentity", "InMemoryAgentRepository", "InMemoryAgentSessionStore"]


@attrs.define
class AgentTables:
    """The committed (or a unit's private) state of the agent tables."""

    sessions: dict[uuid.UUID, AgentSession] = attrs.field(factory=dict)
    events: dict[tuple[uuid.UUID, int], AgentEvent] = attrs.field(factory=dict)
    # event numbers are allocated from the committed table (like PostgreSQL's row-locked counter)
    counters: dict[uuid.UUID, int] = attrs.field(factory=dict)


def _key(session: AgentSession) -> tuple[datetime, uuid.UUID]:
    return session.created_at, session.id


@attrs.define
class InMemoryAgentSessionStore:
    tables: AgentTables = attrs.field(factory=AgentTables)
    locks: RowLocks = attrs.field(factory=RowLocks)
    owner: object = attrs.field(factory=object)

    async def add(self, session: AgentSession) -> None:
        if session.id in self.tables.sessions:
            raise Conflict(f"agent session {session.id} exists")
        self.tables.sessions[session.id] = session

    async def get(self, session_id: uuid.UUID) -> AgentSession | None:
        return self.tables.sessions.get(session_id)

    async def update(self, session: AgentSession) -> None:
        if session.id not in self.tables.sessions:
            raise NotFound(f"no agent session {session.id}")
        self.tables.sessions[session.id] = session

    async def list_for_project(self, project_id: uuid.UUID, *, limit: int, cursor: str | None) -> Page[AgentSession]:
        raw = decode_cursor(cursor)
        rows = sorted((s for s in self.tables.sessions.values() if s.project_id == project_id), key=_key,
                      reverse=True)
        if raw is not None:
            try:
                after = (datetime.fromisoformat(str(raw["t"])), uuid.UUID(str(raw["id"])))
            except (KeyError, ValueError) as exc:
                raise InvalidInput("cursor is not a cursor returned by this API", field="cursor") from exc
            rows = [s for s in rows if _key(s) < after]
        page = rows[:limit]
        more = len(rows) > limit
        next_cursor = encode_cursor({"t": page[-1].created_at.isoformat(), "id": str(page[-1].id)}) if more else None
        return Page(page, next_cursor)

    async def for_agent_user(self, user_id: uuid.UUID) -> AgentSession | None:
        return next((s for s in self.tables.sessions.values() if s.agent_user_id == user_id), None)

    async def unfinished(self) -> list[AgentSession]:
        return sorted((s for s in self.tables.sessions.values() if not s.status.finished), key=_key)

    async def expired_workspaces(self, before: datetime, limit: int) -> list[AgentSession]:
        found = [s for s in self.tables.sessions.values() if s.status.finished and s.workspace_deleted_at is None
                 and s.finished_at is not None and s.finished_at < before]
        return sorted(found, key=lambda s: (s.finished_at, s.id))[:limit]

    async def add_events(self, session_id: uuid.UUID, drafts: Sequence[EventDraft], at: datetime) -> list[AgentEvent]:
        if session_id not in self.tables.sessions:
            raise NotFound(f"no agent session {session_id}")
        stored: list[AgentEvent] = []
        for draft in drafts:
            number = self.tables.counters.get(session_id, 0) + 1
            self.tables.counters[session_id] = number
            metadata: dict[str, Any] = json.loads(json.dumps(draft.metadata, default=str))  # the JSONB form
            event = AgentEvent(session_id=session_id, id=number, type=draft.type, role=draft.role,
                               content=draft.content, metadata=metadata, created_at=at)
            self.tables.events[(session_id, number)] = event
            stored.append(event)
        return stored

    async def events(self, session_id: uuid.UUID, *, after: int, limit: int) -> list[AgentEvent]:
        last = self.tables.counters.get(session_id, 0)
        found = [self.tables.events[(session_id, n)] for n in range(after + 1, last + 1)
                 if (session_id, n) in self.tables.events]
        return found[:limit]


@attrs.define
class InMemoryAgentIdentity:
    """AgentIdentity that records what it made and retired; ``held`` maps a requester id to the permissions it
    holds (a permission missing there is refused like the identity domain does)."""

    held: dict[uuid.UUID, set[str]] = attrs.field(factory=dict)
    grants: list[AgentGrant] = attrs.field(factory=list)
    retired: list[uuid.UUID] = attrs.field(factory=list)  # session ids
    live_tokens: set[uuid.UUID] = attrs.field(factory=set)

    async def provision(self, requester: Principal, session_id: uuid.UUID, project_id: uuid.UUID,
                        permissions: tuple[str, ...], expires_at: datetime,
                        agent_user_id: uuid.UUID | None) -> AgentGrant:
        missing = sorted(set(permissions) - self.held.get(requester.user_id, set()))
        if missing:
            raise PermissionDenied(f"you can only delegate permissions you hold in this project; missing: "
                                   f"{', '.join(missing)}")
        grant = AgentGrant(agent_user_id=agent_user_id or uuid.uuid4(), agent_user_name=f"agent-{session_id.hex[-12:]}",
                           delegation_ids=tuple(uuid.uuid4() for _ in permissions), token_id=uuid.uuid4(),
                           token_secret=f"crl_fake{uuid.uuid4().hex}")
        self.grants.append(grant)
        self.live_tokens.add(grant.token_id)
        return grant

    async def retire(self, session: AgentSession) -> None:
        self.retired.append(session.id)
        if session.token_id is not None:
            self.live_tokens.discard(session.token_id)


@attrs.define
class InMemoryAgentRepository:
    """AgentRepository over a dict of branch heads per project; ``open_merge_request`` records and numbers."""

    heads: dict[tuple[uuid.UUID, str], str] = attrs.field(factory=dict)
    merge_requests: list[tuple[uuid.UUID, str, str, str]] = attrs.field(factory=list)  # project, branch, title, body

    async def branch_head(self, project: Project, branch: str) -> str | None:
        return self.heads.get((project.id, branch))

    async def open_merge_request(self, session: AgentSession, project: Project, title: str, body: str) -> int:
        self.merge_requests.append((project.id, session.branch, title, body))
        return len(self.merge_requests)
