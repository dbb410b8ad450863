"""Ports of the identity domain: stores (bound to a unit of work), password hashing, the authz cache."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Protocol

import attrs

from corral.core.identity.model import (
    ApiToken,
    AuthSession,
    Binding,
    Delegation,
    Principal,
    Role,
    SealedSecret,
    TotpEnrolment,
    User,
)
from corral.core.pagination import Page

__all__ = [
    "AuthzCache",
    "CachedCredential",
    "DelegationStore",
    "IdentitySettingsStore",
    "ImplicitRights",
    "LoginThrottleStore",
    "PasswordHasher",
    "RoleStore",
    "SessionStore",
    "TokenStore",
    "TotpStore",
    "UserStore",
]


class UserStore(Protocol):
    """Users (humans and agents). Names (ignoring case, like Gitea) and emails are unique."""

    async def add(self, user: User) -> None:
        """Insert; Conflict naming ``name`` or ``email`` when either is taken."""
        ...

    async def get(self, user_id: uuid.UUID) -> User | None:
        """The user with this id, or None."""
        ...

    async def get_by_name(self, name: str) -> User | None:
        """The user with this login name, ignoring case ("Alice" finds alice), or None."""
        ...

    async def update(self, user: User) -> None:
        """Replace the row with the same id (NotFound if gone; Conflict if the new email is taken)."""
        ...

    async def delete(self, user_id: uuid.UUID) -> None:
        """Delete the user and, by cascade, their bindings, delegations, tokens and sessions."""
        ...

    async def list_users(self, *, limit: int, cursor: str | None, q: str | None = None) -> Page[User]:
        """Users ordered by name, cursor-paginated."""
        ...

    async def count(self) -> int:
        """How many users exist (bootstrap creates the first admin only when this is 0)."""
        ...


class RoleStore(Protocol):
    """Roles with their permission sets, and role bindings (global or per project)."""

    async def ensure_permissions(self, catalogue: dict[str, str]) -> None:
        """Make every permission of the catalogue (name -> description) known to the store."""
        ...

    async def add(self, role: Role) -> None:
        """Insert a role with its permissions; Conflict naming ``name`` when taken."""
        ...

    async def get_by_name(self, name: str) -> Role | None:
        """The role with this name, or None."""
        ...

    async def list_roles(self) -> list[Role]:
        """Every role, ordered by name."""
        ...

    async def set_permissions(self, role_id: uuid.UUID, permissions: frozenset[str]) -> None:
        """Replace the role's permission set."""
        ...

    async def delete_role(self, role_id: uuid.UUID) -> int:
        """Delete the role and every binding to it; returns how many bindings went with it (0 when absent)."""
        ...

    async def add_binding(self, binding: Binding) -> None:
        """Bind; Conflict when the same user, role and project are already bound."""
        ...

    async def get_binding(self, binding_id: uuid.UUID) -> Binding | None:
        """The binding with this id, or None."""
        ...

    async def delete_binding(self, binding_id: uuid.UUID) -> None:
        """Remove the binding (no error when it is already gone)."""
        ...

    async def bindings_of(self, user_id: uuid.UUID) -> list[Binding]:
        """Every binding of the user (global and per project), oldest first."""
        ...

    async def list_bindings(
        self, *, user_id: uuid.UUID | None, project_id: uuid.UUID | None, limit: int, cursor: str | None
    ) -> Page[Binding]:
        """Bindings oldest first (by id), cursor-paginated; ``user_id`` keeps one user's, ``project_id`` keeps
        the bindings scoped to that project (global bindings are not listed under a project)."""
        ...

    async def role_grants(
        self, user_id: uuid.UUID, project_id: uuid.UUID | None
    ) -> list[tuple[Binding, frozenset[str]]]:
        """Bindings that apply in ``project_id`` (the global ones, plus that project's when it is not None),
        each with its role's current permission set. Nothing for an inactive user."""
        ...


class DelegationStore(Protocol):
    """Delegations. At most one unrevoked delegation per (delegator, delegate, permission, project)."""

    async def add(self, delegation: Delegation) -> None:
        """Insert; Conflict when an unrevoked identical delegation exists."""
        ...

    async def get(self, delegation_id: uuid.UUID) -> Delegation | None:
        """The delegation with this id, or None."""
        ...

    async def revoke(self, delegation_id: uuid.UUID, at: datetime) -> None:
        """Set revoked_at (kept for history); no change when already revoked."""
        ...

    async def active_to(
        self, delegate_id: uuid.UUID, project_id: uuid.UUID | None, now: datetime
    ) -> list[Delegation]:
        """Unrevoked, unexpired delegations to the delegate applying in ``project_id`` (and global ones)."""
        ...

    async def delegates_in_project(self, project_id: uuid.UUID, now: datetime) -> list[uuid.UUID]:
        """The users holding an active delegation scoped to ``project_id`` (each once)."""
        ...

    async def list_involving(
        self, user_id: uuid.UUID | None, *, limit: int, cursor: str | None
    ) -> Page[Delegation]:
        """Delegations given or received by the user (every delegation when None), newest first."""
        ...


class TokenStore(Protocol):
    """API tokens, found by the SHA-256 of their secret."""

    async def add(self, token: ApiToken) -> None: ...

    async def get(self, token_id: uuid.UUID) -> ApiToken | None: ...

    async def get_by_hash(self, token_hash: str) -> ApiToken | None:
        """The token whose secret hashes to ``token_hash``, or None."""
        ...

    async def list_for_user(self, user_id: uuid.UUID, *, limit: int, cursor: str | None) -> Page[ApiToken]:
        """The user's tokens, newest first."""
        ...

    async def delete(self, token_id: uuid.UUID) -> None:
        """Revoke by deleting (no error when already gone)."""
        ...

    async def touch_many(self, last_used: dict[uuid.UUID, datetime]) -> None:
        """Batch-update last_used_at (never moves it backwards; ignores deleted tokens)."""
        ...


class SessionStore(Protocol):
    """Server-side login sessions, found by the SHA-256 of the cookie value."""

    async def add(self, session: AuthSession) -> None: ...

    async def get(self, session_id: uuid.UUID) -> AuthSession | None: ...

    async def get_by_hash(self, token_hash: str) -> AuthSession | None: ...

    async def list_for_user(self, user_id: uuid.UUID) -> list[AuthSession]:
        """The user's sessions, newest first."""
        ...

    async def delete(self, session_id: uuid.UUID) -> None:
        """End the session (no error when already gone)."""
        ...

    async def delete_for_user(self, user_id: uuid.UUID) -> int:
        """End every session of the user; returns how many there were."""
        ...

    async def touch_many(self, last_seen: dict[uuid.UUID, datetime]) -> None:
        """Batch-update last_seen_at (never backwards)."""
        ...

    async def delete_expired(self, now: datetime, idle_before: datetime) -> int:
        """Delete sessions past their absolute expiry or last seen before ``idle_before``; returns how many."""
        ...


class LoginThrottleStore(Protocol):
    """Failed login attempts and temporary bans, keyed by 'user:NAME' or 'ip:ADDR'."""

    async def record_failure(self, keys: list[str], at: datetime) -> None: ...

    async def failures_since(self, key: str, since: datetime) -> int: ...

    async def ban(self, key: str, until: datetime) -> None:
        """Ban the key until ``until`` (a longer existing ban is kept)."""
        ...

    async def banned_until(self, keys: list[str], now: datetime) -> datetime | None:
        """The latest ban end among ``keys`` still in force at ``now``, or None."""
        ...

    async def clear(self, key: str) -> None:
        """Forget the key's failures (after a successful login)."""
        ...

    async def lift(self, keys: list[str]) -> int:
        """End the bans of ``keys`` and forget their failures (an admin lifting a ban); the number of bans
        still in force or not that were removed."""
        ...

    async def prune(self, before: datetime) -> None:
        """Forget failures recorded and bans ended before ``before``."""
        ...


class TotpStore(Protocol):
    """TOTP enrolments, one per user. Secrets are stored sealed (``SealedSecret``), never in plain text.

    A row still holding a plaintext secret written by an older Corral makes ``get`` raise Unavailable (the
    start-up step ``seal_plaintext_totp`` encrypts such rows first); it is never reported as "not enrolled",
    which would skip the second factor."""

    async def get(self, user_id: uuid.UUID) -> TotpEnrolment | None:
        """The enrolment, or None; Unavailable when the row still holds a plaintext secret."""
        ...

    async def put(self, enrolment: TotpEnrolment) -> None:
        """Insert or replace the user's enrolment."""
        ...

    async def delete(self, user_id: uuid.UUID) -> None: ...

    async def claim_for_rewrap(self, current_key_id: str, limit: int) -> list[TotpEnrolment]:
        """Up to ``limit`` enrolments whose data key is wrapped under a key other than ``current_key_id``,
        locked until the unit of work ends (rows locked by another unit are skipped)."""
        ...

    async def count_by_key(self) -> dict[str, int]:
        """How many sealed TOTP secrets exist per master key id."""
        ...

    async def claim_plaintext(self, limit: int) -> list[tuple[uuid.UUID, str]]:
        """Up to ``limit`` (user id, plaintext secret) rows left by an older Corral, locked like
        ``claim_for_rewrap``."""
        ...

    async def seal_plaintext(self, user_id: uuid.UUID, sealed: SealedSecret) -> None:
        """Replace a plaintext secret with its sealed form (the plaintext is erased; other fields kept)."""
        ...


class IdentitySettingsStore(Protocol):
    """Identity settings an admin changes at run time (JSON values by key)."""

    async def get(self, key: str) -> object | None:
        """The value stored under ``key``, or None when never set."""
        ...

    async def put(self, key: str, value: object, *, by: uuid.UUID | None, at: datetime) -> None:
        """Store ``value`` (JSON-serialisable) under ``key``."""
        ...


class PasswordHasher(Protocol):
    """Slow, salted password hashing (argon2id). Runs off the event loop."""

    async def hash(self, password: str) -> str: ...

    async def verify(self, password_hash: str, password: str) -> bool:
        """True when ``password`` matches; False (never an exception) otherwise."""
        ...


@attrs.frozen
class CachedCredential:
    """What authenticating a token or session resolved to, cacheable until a change is published."""

    principal: Principal
    expires_at: datetime | None = None  # token expiry or session absolute expiry
    last_seen_at: datetime | None = None  # sessions: for the inactivity timeout
    csrf_digest: str | None = attrs.field(default=None, repr=False)  # sessions: SHA-256 of the CSRF token


class ImplicitRights(Protocol):
    """Rights a user holds without a role binding or a delegation, because of what they are to a resource:
    the owner of a project holds every project permission on it. Another domain (projects) provides it through
    the wiring; the identity core counts it wherever it counts permissions (checks, tokens, delegations, and
    "changing a user needs everything that user holds")."""

    async def rights(self, user_id: uuid.UUID, project_id: uuid.UUID) -> frozenset[str]:
        """The permissions ``user_id`` holds implicitly in ``project_id`` (empty when none)."""
        ...

    async def scopes(self, user_id: uuid.UUID) -> set[uuid.UUID]:
        """Every project in which ``user_id`` holds implicit rights."""
        ...


class AuthzCache(Protocol):
    """Cache of resolved credentials and permissions, shared by every replica.

    Entries expire after their ``valid_until`` (and a TTL). ``invalidate`` is
    called after every committed change to users, roles, bindings, delegations,
    tokens or sessions; when it returns, no replica serves an entry cached
    before the call (this is what makes a revocation effective on the very
    next request, on any replica).
    """

    def generation(self) -> int:
        """A number that changes whenever ``invalidate`` runs anywhere. Read it before loading from the
        database and pass it to ``put_*``: a value loaded before an invalidation is then not cached."""
        ...

    async def get_permissions(
        self, user_id: uuid.UUID, project_id: uuid.UUID | None
    ) -> frozenset[str] | None: ...

    async def put_permissions(
        self,
        user_id: uuid.UUID,
        project_id: uuid.UUID | None,
        permissions: frozenset[str],
        valid_until: datetime,
        generation: int,
    ) -> None: ...

    async def get_credential(self, key: str) -> CachedCredential | None: ...

    async def put_credential(
        self, key: str, credential: CachedCredential, valid_until: datetime, generation: int
    ) -> None: ...

    async def invalidate(self, reason: str) -> None:
        """Drop every entry on every replica before returning."""
        ...
