"""MCP sessions: stateless signed ids, so any replica serves any session without shared session state.

``initialize`` answers an ``Mcp-Session-Id`` that is a signed value (the pagination cursor signature: HMAC-SHA256
under a key derived from the master key, so every replica verifies every other's ids and they survive restarts)
carrying the negotiated protocol revision, the id of the API token that opened it and when it was opened.
Nothing is stored when a session starts. A session id is only valid with the token that opened it, for
``SESSION_SECONDS`` at most (then the client gets 404 and initializes again, as the MCP spec prescribes).

Ending a session (``DELETE /mcp``) is the one thing that needs state: the id's digest is recorded as ended
until the id would have expired anyway, in Valkey when the platform has one (shared by all replicas), else in
this process (the memory profile, which is single-process by nature).

Verifying an id (base64, HMAC, JSON) is done once per id and application: the ids verified recently are kept
(``VerifiedIds``, bounded), so a session's later requests only compare the token and the age. The ended check is
never cached (a DELETE on any replica is seen by the next request).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Any

import attrs

from corral.core.errors import InvalidInput
from corral.core.pagination import decode_cursor, encode_cursor

__all__ = ["SESSION_SECONDS", "EndedSessions", "McpSession", "VerifiedIds", "new_session_id", "open_session"]

SESSION_SECONDS = 24 * 3600
_KIND = "mcp-session-v1"
_VERIFIED_MAX = 1024  # session ids whose signature was checked, most recent last


@attrs.frozen
class McpSession:
    """What a session id says."""

    id: str
    version: str
    token: str
    started: int

    @property
    def expires_in(self) -> int:
        return max(1, self.started + SESSION_SECONDS - int(time.time()))


def new_session_id(version: str, token_id: object) -> str:
    """A fresh signed session id for the token ``token_id`` speaking ``version``."""
    return encode_cursor({"k": _KIND, "v": version, "t": str(token_id), "s": int(time.time()),
                          "n": secrets.token_hex(8)})


class VerifiedIds:
    """The session ids whose signature was checked (at most ``size``, the oldest forgotten first); what they say
    about the token and the age is checked on every use."""

    def __init__(self, size: int = _VERIFIED_MAX) -> None:
        self.size = size
        self._sessions: dict[str, McpSession] = {}

    def get(self, session_id: str) -> McpSession | None:
        session = self._sessions.get(session_id)
        if session is None:
            session = _verify(session_id)
            if session is None:
                return None
            if len(self._sessions) >= self.size:
                del self._sessions[next(iter(self._sessions))]
            self._sessions[session_id] = session
        return session


def open_session(session_id: str, token_id: object, verified: VerifiedIds | None = None) -> McpSession | None:
    """The session of ``session_id``, or None when it is not ours, expired, or belongs to another token
    (``verified``: the ids whose signature this application already checked)."""
    session = verified.get(session_id) if verified is not None else _verify(session_id)
    if session is None or session.token != str(token_id) or time.time() - session.started > SESSION_SECONDS:
        return None
    return session


def _verify(session_id: str) -> McpSession | None:
    """The session an id says, if it is a well-formed id signed by us (not checked: its token and age)."""
    if not session_id or len(session_id) > 1024 or not session_id.isascii():
        return None
    try:
        values = decode_cursor(session_id)
    except InvalidInput:
        return None
    if not values or values.get("k") != _KIND:
        return None
    version, token, started = values.get("v"), values.get("t"), values.get("s")
    if not isinstance(version, str) or not isinstance(token, str) or not isinstance(started, int):
        return None
    return McpSession(session_id, version, token, started)


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()[:40]


class EndedSessions:
    """The sessions ended by DELETE before they expired: in Valkey (``valkey``: a redis asyncio client), else here."""

    def __init__(self, valkey: Any | None = None) -> None:
        self.valkey = valkey
        self._local: dict[str, float] = {}

    async def end(self, session: McpSession) -> None:
        key = _digest(session.id)
        if self.valkey is not None:
            await self.valkey.set(f"corral:mcp:ended:{key}", b"1", ex=session.expires_in)
            return
        now = time.time()
        self._local = {k: t for k, t in self._local.items() if t > now}
        self._local[key] = now + session.expires_in

    async def ended(self, session: McpSession) -> bool:
        key = _digest(session.id)
        if self.valkey is not None:
            return bool(await self.valkey.exists(f"corral:mcp:ended:{key}"))
        return self._local.get(key, 0) > time.time()
