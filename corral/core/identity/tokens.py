"""API tokens: create (shown once), list, revoke, authenticate; last_used_at recorded in batches."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import attrs

from corral.core.clock import Clock
from corral.core.errors import InvalidInput, NotFound, PermissionDenied, Unauthenticated
from corral.core.identity.access import Authorizer, require_account_access
from corral.core.identity.catalogue import AGENT_ROLE, check_permission_names
from corral.core.identity.commands import NewToken
from corral.core.identity.credentials import TOKEN_PREFIX, digest, new_token_secret
from corral.core.identity.model import ApiToken, AuthMethod, IssuedToken, Principal
from corral.core.identity.ports import AuthzCache, CachedCredential
from corral.core.identity.rbac import USERS_ADMIN, user_named
from corral.core.identity.recording import record
from corral.core.ids import uuid7
from corral.core.pagination import Page, clamp_limit
from corral.core.uow import UnitOfWorkFactory

__all__ = ["TokenService", "UsageRecorder"]


@attrs.define
class UsageRecorder:
    """Remembers when tokens and sessions were last used, in memory, and writes them in one batch.

    Authentication calls ``touch_*`` (no I/O); a background loop calls ``flush`` every few seconds, so
    last_used_at costs one UPDATE per flush, not one write per request.
    """

    tokens: dict[uuid.UUID, datetime] = attrs.field(factory=dict)
    sessions: dict[uuid.UUID, datetime] = attrs.field(factory=dict)
    # last activity seen by this replica (kept after a flush: the inactivity check reads it)
    seen: dict[uuid.UUID, datetime] = attrs.field(factory=dict)

    def touch_token(self, token_id: uuid.UUID, at: datetime) -> None:
        self.tokens[token_id] = at

    def touch_session(self, session_id: uuid.UUID, at: datetime) -> None:
        self.sessions[session_id] = at
        self.seen[session_id] = at

    def last_seen(self, session_id: uuid.UUID) -> datetime | None:
        return self.seen.get(session_id)

    async def flush(self, uow_factory: UnitOfWorkFactory) -> int:
        """Write what was touched since the last flush; returns how many rows were touched."""
        tokens, self.tokens = self.tokens, {}
        sessions, self.sessions = self.sessions, {}
        if len(self.seen) > 100_000:
            self.seen.clear()
        if not tokens and not sessions:
            return 0
        try:
            async with uow_factory() as uow:
                if tokens:
                    await uow.tokens.touch_many(tokens)
                if sessions:
                    await uow.sessions.touch_many(sessions)
                await uow.commit()
        except BaseException:
            # put them back (newer touches win) so the next flush retries
            for k, v in tokens.items():
                self.tokens.setdefault(k, v)
            for k, v in sessions.items():
                self.sessions.setdefault(k, v)
            raise
        return len(tokens) + len(sessions)


@attrs.define
class TokenService:
    uow_factory: UnitOfWorkFactory
    authorizer: Authorizer
    cache: AuthzCache
    clock: Clock
    usage: UsageRecorder
    credential_ttl: timedelta = timedelta(minutes=5)

    async def create(
        self,
        actor: Principal,
        command: NewToken,
        *,
        project_id: uuid.UUID | None = None,
    ) -> IssuedToken:
        """Issue a token for the actor (or, with admin:users, for ``command.user``, e.g. an agent), restricted to
        ``project_id`` (``command.project`` resolved by the caller) when given.

        Scopes must be permissions the owner holds in the token's scope now (project ownership included), and
        a token-authenticated caller cannot mint a token beyond its own token's scopes; a project-restricted
        token cannot mint tokens at all (tokens belong to the account)."""
        require_account_access(actor, "creating a token")
        name, user, expires_at = command.name, command.user, command.expires_at
        if not name.strip() or len(name) > 100:
            raise InvalidInput("name must be a non-empty string of at most 100 characters", field="name")
        if not command.scopes:
            raise InvalidInput("scopes must be a non-empty list of permission names", field="scopes")
        perms = check_permission_names(command.scopes, "scopes")
        now = self.clock.now()
        if expires_at is not None and expires_at <= now:
            raise InvalidInput("expires_at must be in the future", field="expires_at")
        async with self.uow_factory() as uow:
            owner_id, owner_name = actor.user_id, actor.name
            if user is not None and user != actor.name:
                await self.authorizer.authorize(actor, USERS_ADMIN, None)
                owner = await user_named(uow, user, "user")
                owner_id, owner_name = owner.id, owner.name
        held = await self.authorizer.permissions(actor, project_id)
        if owner_id == actor.user_id:
            missing = sorted(perms - held)
        else:
            missing = sorted(perms - await self.authorizer.user_permissions(owner_id, project_id))
            beyond = sorted(perms - held)
            if beyond and not missing:  # minting for someone else never exceeds the minter either
                raise PermissionDenied(
                    f"you can only give {owner_name} a token within what you hold yourself; you lack "
                    f"{', '.join(beyond)}" + (" in that project" if project_id else "")
                )
        if missing:
            raise PermissionDenied(
                f"a token cannot exceed its user: {owner_name} does not hold {', '.join(missing)}"
                + (" in that project" if project_id else "")
            )
        secret = new_token_secret()
        token = ApiToken(
            id=uuid7(),
            user_id=owner_id,
            name=name.strip(),
            token_hash=digest(secret),
            prefix=secret[: len(TOKEN_PREFIX) + 6],
            scopes=perms,
            created_at=now,
            project_id=project_id,
            expires_at=expires_at,
        )
        async with self.uow_factory() as uow:
            await uow.tokens.add(token)
            await record(
                uow,
                self.clock,
                actor,
                "token.create",
                "api_token",
                resource_id=token.id,
                project_id=project_id,
                detail={
                    "name": token.name,
                    "owner": owner_name,
                    "scopes": sorted(perms),
                    "prefix": token.prefix,
                    "expires_at": expires_at.isoformat() if expires_at else None,
                },
            )
            await uow.commit()
        return IssuedToken(token=token, secret=secret)

    async def list(self, actor: Principal, *, limit: int | None, cursor: str | None) -> Page[ApiToken]:
        require_account_access(actor, "listing tokens")
        async with self.uow_factory() as uow:
            return await uow.tokens.list_for_user(actor.user_id, limit=clamp_limit(limit), cursor=cursor)

    async def revoke(self, actor: Principal, token_id: uuid.UUID) -> None:
        """Revoke one of the actor's tokens (any token with admin:users); effective on the next request."""
        require_account_access(actor, "revoking a token")
        async with self.uow_factory() as uow:
            token = await uow.tokens.get(token_id)
            if token is None:
                raise NotFound(f"no token {token_id}")
            if token.user_id != actor.user_id:
                try:
                    await self.authorizer.authorize(actor, USERS_ADMIN, None)
                except PermissionDenied:
                    raise NotFound(f"no token {token_id}") from None
            await uow.tokens.delete(token_id)
            await record(
                uow,
                self.clock,
                actor,
                "token.revoke",
                "api_token",
                resource_id=token_id,
                project_id=token.project_id,
                detail={"name": token.name, "prefix": token.prefix},
            )
            await uow.commit()
        await self.cache.invalidate("token.revoke")

    async def authenticate(
        self, secret: str, *, method: AuthMethod = AuthMethod.TOKEN, ip_addr: str | None = None
    ) -> Principal:
        """The principal a token stands for; Unauthenticated when unknown, expired or its user inactive."""
        if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
            raise Unauthenticated("not a Corral API token (they start with crl_)")
        key = "tok:" + digest(secret)
        now = self.clock.now()
        cred = await self.cache.get_credential(key)
        if cred is None:
            generation = self.cache.generation()
            cred = await self._load(key[4:], method)
            if cred is None:
                raise Unauthenticated("unknown or revoked API token")
            valid_until = now + self.credential_ttl
            if cred.expires_at is not None and cred.expires_at < valid_until:
                valid_until = cred.expires_at
            await self.cache.put_credential(key, cred, valid_until, generation)
        if cred.expires_at is not None and cred.expires_at <= now:
            raise Unauthenticated("this API token has expired; create a new one")
        assert cred.principal.token_id is not None
        self.usage.touch_token(cred.principal.token_id, now)
        p = cred.principal
        if p.method is not method or p.ip_addr != ip_addr:
            p = attrs.evolve(p, method=method, ip_addr=ip_addr)
        return p

    async def _load(self, token_hash: str, method: AuthMethod) -> CachedCredential | None:
        async with self.uow_factory() as uow:
            token = await uow.tokens.get_by_hash(token_hash)
            if token is None:
                return None
            user = await uow.users.get(token.user_id)
            if user is None or not user.is_active:
                return None
            bindings = await uow.roles.bindings_of(user.id)
        is_agent = any(b.role_name == AGENT_ROLE and b.project_id is None for b in bindings)
        principal = Principal(
            user_id=user.id,
            name=user.name,
            method=method,
            is_agent=is_agent,
            scopes=token.scopes,
            token_project_id=token.project_id,
            token_id=token.id,
            email=user.email,
            display_name=user.display_name,
            roles=tuple((b.role_name, b.project_id) for b in bindings),
        )
        return CachedCredential(principal=principal, expires_at=token.expires_at)
