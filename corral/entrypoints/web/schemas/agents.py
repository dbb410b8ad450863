"""Response shapes of the agent session routes (the pinned interface of issue 14)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

__all__ = ["AgentEventList", "AgentEventOut", "AgentSessionCreated", "AgentSessionOut"]


@attrs.frozen
class AgentSessionCreated:
    """A session just started: its id, its state, its branch, the agent user it runs as, and its deadline."""

    id: str
    status: str
    branch: str
    agent_user: str | None
    expires_at: datetime


@attrs.frozen
class AgentSessionOut:
    """An agent session: what it was asked, how far it got, what it cost and what it opened."""

    id: str
    status: str
    project: str | None
    prompt: str
    branch: str
    agent_user: str | None
    cost_usd: float | None
    turns: int | None
    created_at: datetime
    finished_at: datetime | None
    merge_request: int | None
    error: str | None
    requester: str
    provider: str
    permissions: list[str]
    expires_at: datetime
    started_at: datetime | None
    duration_ms: int | None


@attrs.frozen
class AgentEventOut:
    """One event of a session, numbered from 1: what the agent said or did, a tool's result, a milestone..."""

    id: int
    type: str
    role: str
    content: str
    metadata: dict[str, Any]
    created_at: datetime


@attrs.frozen
class AgentEventList:
    """Events in order; ask again with ``after`` = the last id for more."""

    items: list[AgentEventOut]
