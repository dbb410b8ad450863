"""In-memory identity stores sharing one InMemoryIdentityData that a unit of work snapshots and restores."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

import attrs

from corral.core.errors import Conflict, NotFound, Unavailable
from corral.core.identity.model import (
    ApiToken,
    AuthSession,
    Binding,
    Delegation,
    Role,
    SealedSecret,
    TotpEnrolment,
    User,
)
from corral.core.pagination import Page, cursor_str, decode_cursor, encode_cursor

__all__ = [
    "InMemoryDelegationStore",
    "InMemoryIdentityData",
    "InMemoryIdentitySettingsStore",
    "InMemoryLoginThrottleStore",
    "InMemoryRoleStore",
    "InMemorySessionStore",
    "InMemoryTokenStore",
    "InMemoryTotpStore",
    "InMemoryUserStore",
]


@attrs.define
class InMemoryIdentityData:
    users: dict[uuid.UUID, User] = attrs.field(factory=dict)
    permissions: dict[str, str] = attrs.field(factory=dict)
    roles: dict[uuid.UUID, Role] = attrs.field(factory=dict)
    bindings: dict[uuid.UUID, Binding] = attrs.field(factory=dict)
    delegations: dict[uuid.UUID, Delegation] = attrs.field(factory=dict)
    tokens: dict[uuid.UUID, ApiToken] = attrs.field(factory=dict)
    sessions: dict[uuid.UUID, AuthSession] = attrs.field(factory=dict)
    failures: list[tuple[str, datetime]] = attrs.field(factory=list)
    bans: dict[str, datetime] = attrs.field(factory=dict)
    totp: dict[uuid.UUID, TotpEnrolment] = attrs.field(factory=dict)
    # rows left in plain text by an older Corral: their ``totp`` entry's sealed secret is a placeholder
    totp_plaintext: dict[uuid.UUID, str] = attrs.field(factory=dict)
    settings: dict[str, object] = attrs.field(factory=dict)


T = TypeVar("T")


def _page(items: list[T], key: str, limit: int, cursor: str | None, value: Callable[[T], str],
          descending: bool = False) -> Page[T]:
    """Items (already sorted by ``value``) after the cursor's position."""
    mark = cursor_str(decode_cursor(cursor), key)
    if mark is not None:
        items = [i for i in items if (value(i) < mark if descending else value(i) > mark)]
    page = items[:limit]
    nxt = encode_cursor({key: value(page[-1])}) if len(items) > limit else None
    return Page(page, nxt)


@attrs.define
class InMemoryUserStore:
    data: InMemoryIdentityData

    def _check_unique(self, user: User) -> None:
        for other in self.data.users.values():
            if other.id == user.id:
                continue
            if other.name.lower() == user.name.lower():
                raise Conflict(f"a user named {user.name!r} exists", field="name")
            if other.email == user.email:
                raise Conflict(f"the email {user.email!r} is taken", field="email")

    async def add(self, user: User) -> None:
        self._check_unique(user)
        self.data.users[user.id] = user

    async def get(self, user_id: uuid.UUID) -> User | None:
        return self.data.users.get(user_id)

    async def get_by_name(self, name: str) -> User | None:
        folded = name.lower()
        return next((u for u in self.data.users.values() if u.name.lower() == folded), None)

    async def update(self, user: User) -> None:
        if user.id not in self.data.users:
            raise NotFound(f"no user {user.id}")
        self._check_unique(user)
        self.data.users[user.id] = user

    async def delete(self, user_id: uuid.UUID) -> None:
        self.data.users.pop(user_id, None)
        d = self.data
        d.bindings = {
            k: b if b.granted_by != user_id else attrs.evolve(b, granted_by=None)
            for k, b in d.bindings.items()
            if b.user_id != user_id
        }
        d.delegations = {
            k: x for k, x in d.delegations.items() if user_id not in (x.delegator_id, x.delegate_id)
        }
        d.tokens = {k: t for k, t in d.tokens.items() if t.user_id != user_id}
        d.sessions = {k: s for k, s in d.sessions.items() if s.user_id != user_id}
        d.totp.pop(user_id, None)
        d.totp_plaintext.pop(user_id, None)

    async def list_users(self, *, limit: int, cursor: str | None, q: str | None = None) -> Page[User]:
        wanted = (q or "").lower()
        users = sorted((u for u in self.data.users.values() if not wanted or any(
            (v or "").lower().startswith(wanted) for v in (u.name, u.display_name, u.email))), key=lambda u: u.name)
        return _page(users, "name", limit, cursor, lambda u: u.name)

    async def count(self) -> int:
        return len(self.data.users)


@attrs.define
class InMemoryRoleStore:
    data: InMemoryIdentityData

    async def ensure_permissions(self, catalogue: dict[str, str]) -> None:
        for name, description in catalogue.items():
            self.data.permissions.setdefault(name, description)

    def _known(self, perms: frozenset[str]) -> frozenset[str]:
        return frozenset(p for p in perms if p in self.data.permissions)

    async def add(self, role: Role) -> None:
        if any(r.name == role.name for r in self.data.roles.values()):
            raise Conflict(f"a role named {role.name!r} exists", field="name")
        self.data.roles[role.id] = attrs.evolve(role, permissions=self._known(role.permissions))

    async def get_by_name(self, name: str) -> Role | None:
        return next((r for r in self.data.roles.values() if r.name == name), None)

    async def list_roles(self) -> list[Role]:
        return sorted(self.data.roles.values(), key=lambda r: r.name)

    async def set_permissions(self, role_id: uuid.UUID, permissions: frozenset[str]) -> None:
        role = self.data.roles.get(role_id)
        if role is None:
            raise NotFound(f"no role {role_id}")
        self.data.roles[role_id] = attrs.evolve(role, permissions=self._known(permissions))

    async def delete_role(self, role_id: uuid.UUID) -> int:
        if self.data.roles.pop(role_id, None) is None:
            return 0
        gone = [k for k, b in self.data.bindings.items() if b.role_id == role_id]
        for k in gone:
            del self.data.bindings[k]
        return len(gone)

    async def list_bindings(
        self, *, user_id: uuid.UUID | None, project_id: uuid.UUID | None, limit: int, cursor: str | None
    ) -> Page[Binding]:
        found = sorted(
            (
                b
                for b in self.data.bindings.values()
                if (user_id is None or b.user_id == user_id) and (project_id is None or b.project_id == project_id)
            ),
            key=lambda b: b.id,
        )
        return _page(found, "id", limit, cursor, lambda b: str(b.id))

    async def add_binding(self, binding: Binding) -> None:
        for b in self.data.bindings.values():
            if (b.user_id, b.role_id, b.project_id) == (binding.user_id, binding.role_id, binding.project_id):
                raise Conflict("the user already holds that role in that scope")
        if binding.user_id not in self.data.users:
            raise NotFound(f"no user {binding.user_id}")
        self.data.bindings[binding.id] = binding

    async def get_binding(self, binding_id: uuid.UUID) -> Binding | None:
        return self.data.bindings.get(binding_id)

    async def delete_binding(self, binding_id: uuid.UUID) -> None:
        self.data.bindings.pop(binding_id, None)

    async def bindings_of(self, user_id: uuid.UUID) -> list[Binding]:
        found = [b for b in self.data.bindings.values() if b.user_id == user_id]
        return sorted(found, key=lambda b: (b.created_at, b.id))

    async def role_grants(
        self, user_id: uuid.UUID, project_id: uuid.UUID | None
    ) -> list[tuple[Binding, frozenset[str]]]:
        user = self.data.users.get(user_id)
        if user is None or not user.is_active:
            return []
        out = []
        for b in await self.bindings_of(user_id):
            if b.project_id is None or b.project_id == project_id:
                role = self.data.roles.get(b.role_id)
                if role is not None:
                    out.append((b, role.permissions))
        return out


@attrs.define
class InMemoryDelegationStore:
    data: InMemoryIdentityData

    async def add(self, delegation: Delegation) -> None:
        key = (delegation.delegator_id, delegation.delegate_id, delegation.permission, delegation.project_id)
        for d in self.data.delegations.values():
            if d.revoked_at is None and (d.delegator_id, d.delegate_id, d.permission, d.project_id) == key:
                raise Conflict(
                    f"an unrevoked delegation of {delegation.permission} to that user in that scope "
                    f"exists ({d.id}); revoke it first"
                )
        for uid in (delegation.delegator_id, delegation.delegate_id):
            if uid not in self.data.users:
                raise NotFound(f"no user {uid}")
        if delegation.permission not in self.data.permissions:
            raise NotFound(f"no permission {delegation.permission}")
        self.data.delegations[delegation.id] = delegation

    async def get(self, delegation_id: uuid.UUID) -> Delegation | None:
        return self.data.delegations.get(delegation_id)

    async def revoke(self, delegation_id: uuid.UUID, at: datetime) -> None:
        d = self.data.delegations.get(delegation_id)
        if d is not None and d.revoked_at is None:
            self.data.delegations[delegation_id] = attrs.evolve(d, revoked_at=at)

    async def active_to(
        self, delegate_id: uuid.UUID, project_id: uuid.UUID | None, now: datetime
    ) -> list[Delegation]:
        found = [
            d
            for d in self.data.delegations.values()
            if d.delegate_id == delegate_id and d.is_active(now) and d.applies_to(project_id)
        ]
        return sorted(found, key=lambda d: d.id)

    async def delegates_in_project(self, project_id: uuid.UUID, now: datetime) -> list[uuid.UUID]:
        return sorted({d.delegate_id for d in self.data.delegations.values()
                       if d.project_id == project_id and d.is_active(now)})

    async def list_involving(
        self, user_id: uuid.UUID | None, *, limit: int, cursor: str | None
    ) -> Page[Delegation]:
        found = [
            d
            for d in self.data.delegations.values()
            if user_id is None or user_id in (d.delegator_id, d.delegate_id)
        ]
        found.sort(key=lambda d: d.id, reverse=True)
        return _page(found, "id", limit, cursor, lambda d: str(d.id), descending=True)


@attrs.define
class InMemoryTokenStore:
    data: InMemoryIdentityData

    async def add(self, token: ApiToken) -> None:
        if token.user_id not in self.data.users:
            raise NotFound(f"no user {token.user_id}")
        self.data.tokens[token.id] = token

    async def get(self, token_id: uuid.UUID) -> ApiToken | None:
        return self.data.tokens.get(token_id)

    async def get_by_hash(self, token_hash: str) -> ApiToken | None:
        return next((t for t in self.data.tokens.values() if t.token_hash == token_hash), None)

    async def list_for_user(self, user_id: uuid.UUID, *, limit: int, cursor: str | None) -> Page[ApiToken]:
        found = sorted(
            (t for t in self.data.tokens.values() if t.user_id == user_id), key=lambda t: t.id, reverse=True
        )
        return _page(found, "id", limit, cursor, lambda t: str(t.id), descending=True)

    async def delete(self, token_id: uuid.UUID) -> None:
        self.data.tokens.pop(token_id, None)

    async def touch_many(self, last_used: dict[uuid.UUID, datetime]) -> None:
        for token_id, at in last_used.items():
            t = self.data.tokens.get(token_id)
            if t is not None and (t.last_used_at is None or t.last_used_at < at):
                self.data.tokens[token_id] = attrs.evolve(t, last_used_at=at)


@attrs.define
class InMemorySessionStore:
    data: InMemoryIdentityData

    async def add(self, session: AuthSession) -> None:
        if session.user_id not in self.data.users:
            raise NotFound(f"no user {session.user_id}")
        self.data.sessions[session.id] = session

    async def get(self, session_id: uuid.UUID) -> AuthSession | None:
        return self.data.sessions.get(session_id)

    async def get_by_hash(self, token_hash: str) -> AuthSession | None:
        return next((s for s in self.data.sessions.values() if s.token_hash == token_hash), None)

    async def list_for_user(self, user_id: uuid.UUID) -> list[AuthSession]:
        return sorted(
            (s for s in self.data.sessions.values() if s.user_id == user_id), key=lambda s: s.id, reverse=True
        )

    async def delete(self, session_id: uuid.UUID) -> None:
        self.data.sessions.pop(session_id, None)

    async def delete_for_user(self, user_id: uuid.UUID) -> int:
        gone = [k for k, s in self.data.sessions.items() if s.user_id == user_id]
        for k in gone:
            del self.data.sessions[k]
        return len(gone)

    async def touch_many(self, last_seen: dict[uuid.UUID, datetime]) -> None:
        for sid, at in last_seen.items():
            s = self.data.sessions.get(sid)
            if s is not None and s.last_seen_at < at:
                self.data.sessions[sid] = attrs.evolve(s, last_seen_at=at)

    async def delete_expired(self, now: datetime, idle_before: datetime) -> int:
        gone = [k for k, s in self.data.sessions.items() if s.expires_at <= now or s.last_seen_at < idle_before]
        for k in gone:
            del self.data.sessions[k]
        return len(gone)


@attrs.define
class InMemoryLoginThrottleStore:
    data: InMemoryIdentityData

    async def record_failure(self, keys: list[str], at: datetime) -> None:
        self.data.failures.extend((k, at) for k in keys)

    async def failures_since(self, key: str, since: datetime) -> int:
        return sum(1 for k, at in self.data.failures if k == key and at >= since)

    async def ban(self, key: str, until: datetime) -> None:
        current = self.data.bans.get(key)
        if current is None or current < until:
            self.data.bans[key] = until

    async def banned_until(self, keys: list[str], now: datetime) -> datetime | None:
        ends = [self.data.bans[k] for k in keys if k in self.data.bans and self.data.bans[k] > now]
        return max(ends) if ends else None

    async def clear(self, key: str) -> None:
        self.data.failures = [(k, at) for k, at in self.data.failures if k != key]

    async def lift(self, keys: list[str]) -> int:
        self.data.failures = [(k, at) for k, at in self.data.failures if k not in keys]
        lifted = [k for k in keys if k in self.data.bans]
        for k in lifted:
            del self.data.bans[k]
        return len(lifted)

    async def prune(self, before: datetime) -> None:
        self.data.failures = [(k, at) for k, at in self.data.failures if at >= before]
        self.data.bans = {k: until for k, until in self.data.bans.items() if until >= before}


@attrs.define
class InMemoryTotpStore:
    data: InMemoryIdentityData

    async def get(self, user_id: uuid.UUID) -> TotpEnrolment | None:
        if user_id in self.data.totp_plaintext:
            raise Unavailable("a TOTP secret is still stored in plain text; restart Corral so it encrypts them")
        return self.data.totp.get(user_id)

    async def put(self, enrolment: TotpEnrolment) -> None:
        self.data.totp[enrolment.user_id] = enrolment
        self.data.totp_plaintext.pop(enrolment.user_id, None)

    async def delete(self, user_id: uuid.UUID) -> None:
        self.data.totp.pop(user_id, None)
        self.data.totp_plaintext.pop(user_id, None)

    async def claim_for_rewrap(self, current_key_id: str, limit: int) -> list[TotpEnrolment]:
        found = [
            e for uid, e in sorted(self.data.totp.items())
            if uid not in self.data.totp_plaintext and e.secret.wrapped_key.key_id != current_key_id
        ]
        return found[:limit]

    async def count_by_key(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for uid, e in self.data.totp.items():
            if uid not in self.data.totp_plaintext:
                out[e.secret.wrapped_key.key_id] = out.get(e.secret.wrapped_key.key_id, 0) + 1
        return out

    async def claim_plaintext(self, limit: int) -> list[tuple[uuid.UUID, str]]:
        return sorted(self.data.totp_plaintext.items())[:limit]

    async def seal_plaintext(self, user_id: uuid.UUID, sealed: SealedSecret) -> None:
        if self.data.totp_plaintext.pop(user_id, None) is not None:
            self.data.totp[user_id] = attrs.evolve(self.data.totp[user_id], secret=sealed)


@attrs.define
class InMemoryIdentitySettingsStore:
    data: InMemoryIdentityData

    async def get(self, key: str) -> object | None:
        return self.data.settings.get(key)

    async def put(self, key: str, value: object, *, by: uuid.UUID | None, at: datetime) -> None:
        self.data.settings[key] = value
