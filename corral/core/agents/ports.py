"""Ports of the agents domain: the agent program (provider), the agent's identity, the project's repository."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Protocol

import attrs

from corral.core.agents.model import AgentSession
from corral.core.identity.model import Principal
from corral.core.projects.model import Project

__all__ = ["AgentGrant", "AgentIdentity", "AgentProvider", "AgentRepository", "Launch", "ProviderEvent"]


@attrs.frozen(kw_only=True)
class Launch:
    """What a provider needs to build its command line."""

    session_id: uuid.UUID
    resume: bool
    max_turns: int
    max_cost_usd: float
    mcp_config_path: str | None = None  # the MCP configuration naming Corral's endpoint (a file or JSON text)
    system_prompt: str = ""  # appended to the provider's own system prompt


@attrs.frozen(kw_only=True)
class ProviderEvent:
    """One thing the agent program reported, in provider-neutral terms.

    ``kind``: ``init``, ``text``, ``thinking``, ``tool_use``, ``tool_result``, ``result``, ``output`` (a line
    that is not an event: stderr, a crash trace) or ``other`` (an event type this parser does not know).
    """

    kind: str
    text: str = ""
    message_id: str | None = None  # the assistant message (turns are counted by distinct ids)
    tool_id: str | None = None
    tool_name: str | None = None
    tool_input: dict[str, Any] = attrs.field(factory=dict)
    is_error: bool = False
    cost_usd: float | None = None
    num_turns: int | None = None
    duration_ms: int | None = None
    subtype: str | None = None
    provider_session_id: str | None = None
    raw: dict[str, Any] = attrs.field(factory=dict)


class AgentProvider(Protocol):
    """An agent program run headless: its command, how to talk to it on stdin, how to read its output."""

    @property
    def name(self) -> str: ...

    def command(self, launch: Launch) -> tuple[str, ...]: ...

    def user_message(self, text: str) -> bytes:
        """One message to the agent, as a line of its input protocol."""
        ...

    def interrupt(self) -> bytes:
        """The input line that interrupts the agent's current turn."""
        ...

    def parse(self, line: str) -> list[ProviderEvent]:
        """The events of one output line (never raises: an unreadable line is an ``output`` event)."""
        ...


@attrs.frozen(kw_only=True)
class AgentGrant:
    """The identity an agent session runs under: its user, the delegations to it, and its token."""

    agent_user_id: uuid.UUID
    agent_user_name: str
    delegation_ids: tuple[uuid.UUID, ...]
    token_id: uuid.UUID
    token_secret: str = attrs.field(repr=False)


class AgentIdentity(Protocol):
    """Makes and retires a session's identity (through the identity domain: audited).

    - ``provision`` creates the agent user (role ``agent``) when ``agent_user_id`` is None, delegates
      ``permissions`` from the requester in ``project_id`` only (PermissionDenied when the requester does not hold
      them there), expiring at ``expires_at``, and issues a token for the agent user restricted to the project.
    - ``retire`` revokes the delegations and the token (idempotent; a missing one is fine).
    """

    async def provision(self, requester: Principal, session_id: uuid.UUID, project_id: uuid.UUID,
                        permissions: tuple[str, ...], expires_at: datetime,
                        agent_user_id: uuid.UUID | None) -> AgentGrant: ...

    async def retire(self, session: AgentSession) -> None: ...


class AgentRepository(Protocol):
    """The project's repository as the agent session sees it."""

    async def branch_head(self, project: Project, branch: str) -> str | None:
        """The commit ``branch`` points at, or None when it does not exist."""
        ...

    async def open_merge_request(self, session: AgentSession, project: Project, title: str, body: str) -> int:
        """Open a merge request from the session's branch as the agent user; its number."""
        ...
