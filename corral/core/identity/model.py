"""Identity and RBAC value objects."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

import attrs

from corral.core.secrets.model import WrappedKey

__all__ = [
    "ApiToken",
    "AuthMethod",
    "AuthSession",
    "Binding",
    "Delegation",
    "Grant",
    "IssuedToken",
    "Principal",
    "Role",
    "SealedSecret",
    "TotpEnrolment",
    "User",
]


@attrs.frozen
class User:
    """A human or an agent (agents hold the ``agent`` role and authenticate with tokens only)."""

    id: uuid.UUID
    name: str
    email: str
    password_hash: str = attrs.field(repr=False)
    created_at: datetime
    updated_at: datetime
    display_name: str | None = None
    is_active: bool = True


@attrs.frozen
class Role:
    """A named bundle of permissions; system roles cannot be deleted."""

    id: uuid.UUID
    name: str
    permissions: frozenset[str]
    created_at: datetime
    description: str | None = None
    is_system: bool = False


@attrs.frozen
class Binding:
    """A user holds a role, globally (project_id None) or in one project."""

    id: uuid.UUID
    user_id: uuid.UUID
    role_id: uuid.UUID
    role_name: str
    created_at: datetime
    project_id: uuid.UUID | None = None
    granted_by: uuid.UUID | None = None


@attrs.frozen
class Delegation:
    """The delegator lends one permission they hold to the delegate, in a scope, maybe until a time."""

    id: uuid.UUID
    delegator_id: uuid.UUID
    delegate_id: uuid.UUID
    permission: str
    created_at: datetime
    project_id: uuid.UUID | None = None
    expires_at: datetime | None = None
    reason: str | None = None
    revoked_at: datetime | None = None

    def is_active(self, now: datetime) -> bool:
        """Not revoked and not expired at ``now`` (the delegator's own permission: see the resolver)."""
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    def applies_to(self, project_id: uuid.UUID | None) -> bool:
        """A global delegation applies everywhere; a project one only in its project."""
        return self.project_id is None or self.project_id == project_id


@attrs.frozen
class ApiToken:
    """An API token as stored: only the SHA-256 of the secret, never the secret itself."""

    id: uuid.UUID
    user_id: uuid.UUID
    name: str
    token_hash: str = attrs.field(repr=False)
    prefix: str  # the first characters of the token, to recognise it in a list
    scopes: frozenset[str]
    created_at: datetime
    project_id: uuid.UUID | None = None
    expires_at: datetime | None = None
    last_used_at: datetime | None = None

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@attrs.frozen
class IssuedToken:
    """A freshly created token: ``secret`` is shown once and never stored."""

    token: ApiToken
    secret: str = attrs.field(repr=False)


@attrs.frozen
class AuthSession:
    """A server-side login session; the cookie carries a random value whose SHA-256 is ``token_hash``."""

    id: uuid.UUID
    user_id: uuid.UUID
    token_hash: str = attrs.field(repr=False)
    csrf_hash: str = attrs.field(repr=False)
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime  # absolute expiry
    ip_addr: str | None = None
    user_agent: str | None = None


@attrs.frozen
class SealedSecret:
    """A value encrypted under its own data key, the data key wrapped by the master key (never plaintext)."""

    ciphertext: bytes = attrs.field(repr=False)
    wrapped_key: WrappedKey


@attrs.frozen
class TotpEnrolment:
    """A user's TOTP secret (sealed: see totp_seal), confirmed once a first code was verified, and recovery
    code hashes."""

    user_id: uuid.UUID
    secret: SealedSecret = attrs.field(repr=False)
    created_at: datetime
    confirmed_at: datetime | None = None
    recovery_hashes: frozenset[str] = attrs.field(factory=frozenset, repr=False)
    last_step: int = 0  # the last accepted time step: a code is never accepted twice


class AuthMethod(enum.StrEnum):
    TOKEN = "token"  # Authorization: Bearer
    BASIC = "basic"  # HTTP Basic, token as password (git clients)
    SESSION = "session"  # session cookie
    SYSTEM = "system"  # Corral itself (CLI, bootstrap)


@attrs.frozen
class Principal:
    """Who is calling. For a token: its scopes and project restriction; for a session: the session id."""

    user_id: uuid.UUID
    name: str
    method: AuthMethod
    is_agent: bool = False
    scopes: frozenset[str] | None = None  # None: not limited by a token
    token_project_id: uuid.UUID | None = None  # a token restricted to one project
    token_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None
    ip_addr: str | None = None
    needs_totp_enrolment: bool = False  # an admin without TOTP where the setting requires it
    # profile, cached with the credential so GET /me needs no database round trip
    email: str | None = None
    display_name: str | None = None
    roles: tuple[tuple[str, uuid.UUID | None], ...] = ()  # (role name, project id or None)

    @property
    def via_cookie(self) -> bool:
        """Cookie-authenticated: mutations must carry the CSRF token."""
        return self.method is AuthMethod.SESSION


@attrs.frozen
class Grant:
    """One step of an explanation: a role binding, or a delegation from ``delegator``."""

    kind: str  # 'role' | 'owner' | 'delegation' | 'token_scope' | 'token_project'
    description: str
    role: str | None = None
    delegation_id: uuid.UUID | None = None
    delegator: uuid.UUID | None = None
    project_id: uuid.UUID | None = None
    expires_at: datetime | None = None
