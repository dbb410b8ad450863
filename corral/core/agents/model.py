"""Agent sessions, their events, and the state machine they follow."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

import attrs

from corral.core.errors import InvalidTransition

__all__ = [
    "AgentEvent",
    "AgentSession",
    "AgentStatus",
    "EventDraft",
    "EventRole",
    "check_transition",
]


class AgentStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    STOPPED = "stopped"

    @property
    def finished(self) -> bool:
        return self in _FINISHED


_FINISHED = frozenset({AgentStatus.COMPLETED, AgentStatus.FAILED, AgentStatus.STOPPED})

# A finished session goes back to pending when a new message resumes it (the provider's resume).
_TRANSITIONS: dict[AgentStatus, frozenset[AgentStatus]] = {
    AgentStatus.PENDING: frozenset({AgentStatus.RUNNING, AgentStatus.FAILED, AgentStatus.STOPPED}),
    AgentStatus.RUNNING: frozenset({AgentStatus.COMPLETED, AgentStatus.FAILED, AgentStatus.STOPPED}),
    AgentStatus.COMPLETED: frozenset({AgentStatus.PENDING}),
    AgentStatus.FAILED: frozenset({AgentStatus.PENDING}),
    AgentStatus.STOPPED: frozenset({AgentStatus.PENDING}),
}


def check_transition(current: AgentStatus, target: AgentStatus) -> None:
    """InvalidTransition unless the state machine allows ``current`` → ``target``."""
    if target not in _TRANSITIONS[current]:
        raise InvalidTransition(f"an agent session cannot go from {current.value} to {target.value}")


class EventRole(enum.StrEnum):
    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"
    TOOL = "tool"


@attrs.frozen(kw_only=True)
class AgentSession:
    """One agent session. ``expires_at`` is the deadline of the current run (the delegation and token expire
    then); ``runs`` counts the provider processes started (a resume starts another)."""

    id: uuid.UUID
    project_id: uuid.UUID
    requester_id: uuid.UUID
    requester_name: str
    prompt: str
    provider: str
    permissions: tuple[str, ...]
    max_turns: int
    max_cost_usd: float
    timeout_seconds: int
    branch: str
    open_merge_request: bool
    status: AgentStatus
    created_at: datetime
    expires_at: datetime
    agent_user_id: uuid.UUID | None = None
    agent_user_name: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    cost_usd: float | None = None
    turns: int | None = None
    duration_ms: int | None = None
    merge_request: int | None = None
    error: str | None = None
    runs: int = 0
    owner: str | None = None  # the server process running it (for restarts)
    heartbeat_at: datetime | None = None
    delegation_ids: tuple[uuid.UUID, ...] = ()
    token_id: uuid.UUID | None = None
    workspace_deleted_at: datetime | None = None  # the retention sweep deleted its workspace: no resume

    def moved(self, target: AgentStatus, **changes: Any) -> AgentSession:
        """This session in state ``target`` (checked by the state machine) with ``changes``."""
        check_transition(self.status, target)
        return attrs.evolve(self, status=target, **changes)


@attrs.frozen(kw_only=True)
class EventDraft:
    """An event before it is stored (the store numbers it)."""

    type: str  # 'system', 'text', 'thinking', 'tool_use', 'tool_result', 'result', 'message', 'milestone', ...
    role: EventRole
    content: str
    metadata: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class AgentEvent:
    """A stored event: ``id`` numbers a session's events from 1 (a late viewer resumes after one)."""

    session_id: uuid.UUID
    id: int
    type: str
    role: EventRole
    content: str
    metadata: dict[str, Any]
    created_at: datetime
