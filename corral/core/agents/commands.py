"""What callers ask of agent sessions (the API bodies)."""

from __future__ import annotations

import attrs

__all__ = ["AgentMessage", "NewAgentSession"]


def _doc(text: str) -> dict[str, str]:
    return {"doc": text}


@attrs.frozen(kw_only=True)
class NewAgentSession:
    """Start an agent session in a project."""

    prompt: str = attrs.field(metadata=_doc("what the agent is asked to do (1 to 100000 characters)"))
    provider: str = attrs.field(default="claude-code", metadata=_doc("the agent program: claude-code"))
    permissions: list[str] = attrs.field(factory=lambda: ["project:read", "project:write"], metadata=_doc(
        "permissions delegated to the agent in this project (you must hold each there)"))
    max_turns: int = attrs.field(default=50, metadata=_doc("1 to 1000"))
    max_cost_usd: float = attrs.field(default=5.0, metadata=_doc("more than 0, at most 1000"))
    timeout_seconds: int = attrs.field(default=3600, metadata=_doc("wall clock, 10 to 86400 seconds"))
    branch: str | None = attrs.field(default=None, metadata=_doc("the branch the agent works on "
                                                                 "(default agent/<short id>)"))
    open_merge_request: bool = attrs.field(default=True, metadata=_doc(
        "open a merge request when the branch has new commits at the end"))


@attrs.frozen(kw_only=True)
class AgentMessage:
    """A message to an agent: a follow-up while it runs, or a resume once it has finished."""

    content: str = attrs.field(metadata=_doc("1 to 100000 characters"))
