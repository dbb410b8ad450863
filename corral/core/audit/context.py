"""The agent session an audited action belongs to, carried by the context (request or session task).

Set where the actor is known to act for an agent session (a request authenticated with a session's token, the
task running a session); every audit row written in that context then names the session (``detail.session_id``)
next to the agent user it is attributed to.
"""

from __future__ import annotations

import contextvars
import uuid

import attrs

from corral.core.audit.model import AuditEntry

__all__ = ["acting_session", "bind_acting_session", "reset_acting_session", "tag_entry"]

_SESSION: contextvars.ContextVar[str | None] = contextvars.ContextVar("corral_agent_session", default=None)


def bind_acting_session(session_id: uuid.UUID | None) -> contextvars.Token[str | None]:
    """Audit rows written from now on in this context (and tasks it starts) name ``session_id``."""
    return _SESSION.set(str(session_id) if session_id is not None else None)


def reset_acting_session(token: contextvars.Token[str | None]) -> None:
    _SESSION.reset(token)


def acting_session() -> str | None:
    return _SESSION.get()


def tag_entry(entry: AuditEntry) -> AuditEntry:
    """``entry`` with ``detail.session_id`` when the context acts for an agent session (an explicit one wins)."""
    session = _SESSION.get()
    if session is None or "session_id" in entry.detail:
        return entry
    return attrs.evolve(entry, detail={**entry.detail, "session_id": session})
