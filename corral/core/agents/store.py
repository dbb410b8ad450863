"""The AgentSessionStore port (a store of the unit of work)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from corral.core.agents.model import AgentEvent, AgentSession, EventDraft
from corral.core.pagination import Page

__all__ = ["AgentSessionStore"]


class AgentSessionStore(Protocol):
    """Agent sessions and their events, in the unit of work's transaction.

    - ``add`` inserts a new session (Conflict for a known id); ``update`` replaces a stored one (NotFound when
      missing).
    - ``list_for_project`` pages a project's sessions newest first (``created_at``, then id).
    - ``for_agent_user`` finds the session an agent user was made for.
    - ``unfinished`` lists pending and running sessions (restart recovery).
    - ``expired_workspaces`` lists up to ``limit`` finished sessions that finished before ``before`` and whose
      workspace is not deleted yet (``workspace_deleted_at`` None), oldest first (the retention sweep).
    - ``add_events`` stores events numbered after the session's last (1, 2, ...), ``created_at`` ``at``; numbers
      never repeat, also with concurrent writers; ``events`` reads them in order after ``after``.
    """

    async def add(self, session: AgentSession) -> None: ...

    async def get(self, session_id: uuid.UUID) -> AgentSession | None: ...

    async def update(self, session: AgentSession) -> None: ...

    async def list_for_project(self, project_id: uuid.UUID, *, limit: int, cursor: str | None) -> Page[AgentSession]:
        ...

    async def for_agent_user(self, user_id: uuid.UUID) -> AgentSession | None: ...

    async def unfinished(self) -> list[AgentSession]: ...

    async def expired_workspaces(self, before: datetime, limit: int) -> list[AgentSession]: ...

    async def add_events(self, session_id: uuid.UUID, drafts: Sequence[EventDraft], at: datetime) -> list[AgentEvent]:
        ...

    async def events(self, session_id: uuid.UUID, *, after: int, limit: int) -> list[AgentEvent]: ...
