"""Authorisation: a principal's permissions in a scope, cached, and the check every route makes."""

from __future__ import annotations

import uuid
from datetime import timedelta

import attrs

from corral.core.clock import Clock
from corral.core.errors import PermissionDenied
from corral.core.identity.catalogue import PERMISSIONS
from corral.core.identity.model import AuthMethod, Principal
from corral.core.identity.ports import AuthzCache, ImplicitRights
from corral.core.identity.resolver import Explanation, Resolver
from corral.core.uow import UnitOfWork, UnitOfWorkFactory

__all__ = ["Authorizer", "require_account_access"]


def require_account_access(principal: Principal, what: str = "this account-level action") -> None:
    """PermissionDenied for a token restricted to one project.

    Such a token may only touch its project. Everything that belongs to the account rather than to a project
    (tokens, sessions, password, TOTP, notification preferences and the inbox, delegations, /me) needs a login
    session or a token without a project restriction (which then still needs the matching scope)."""
    if principal.token_project_id is not None:
        raise PermissionDenied(
            f"{what} belongs to the account: a token restricted to one project cannot do it; "
            "use a login session or a token without a project restriction"
        )


@attrs.define
class Authorizer:
    """Answers "may this principal do X in project P?" from the cache, resolving on a miss.

    A token's permissions are its scopes ∩ its user's permissions (a token
    never exceeds its user); a token restricted to a project holds nothing
    outside it. The SYSTEM principal (CLI, bootstrap) holds everything. ``implicit`` adds the rights a user
    holds without a binding (project ownership, provided by the wiring).
    """

    uow_factory: UnitOfWorkFactory
    cache: AuthzCache
    clock: Clock
    cache_ttl: timedelta = timedelta(minutes=5)
    implicit: ImplicitRights | None = None

    async def user_permissions(self, user_id: uuid.UUID, project_id: uuid.UUID | None) -> frozenset[str]:
        """The user's effective permissions in ``project_id`` (None: global), from the cache when warm."""
        cached = await self.cache.get_permissions(user_id, project_id)
        if cached is not None:
            return cached
        now = self.clock.now()
        generation = self.cache.generation()
        async with self.uow_factory() as uow:
            resolution = await Resolver(uow.roles, uow.delegations, now, self.implicit).effective(
                user_id, project_id
            )
        perms = resolution.permissions
        if self.implicit is not None and project_id is not None:
            perms = perms | await self.implicit.rights(user_id, project_id)
        valid_until = now + self.cache_ttl
        if resolution.valid_until is not None and resolution.valid_until < valid_until:
            valid_until = resolution.valid_until
        await self.cache.put_permissions(user_id, project_id, perms, valid_until, generation)
        return perms

    async def permissions(self, principal: Principal, project_id: uuid.UUID | None) -> frozenset[str]:
        """What ``principal`` may do in ``project_id``: for a token, scopes ∩ the user's permissions."""
        if principal.method is AuthMethod.SYSTEM:
            return frozenset(PERMISSIONS)
        if principal.needs_totp_enrolment:  # nothing (not even minting a token) before the second factor
            return frozenset()
        if principal.token_project_id is not None and project_id != principal.token_project_id:
            return frozenset()
        perms = await self.user_permissions(principal.user_id, project_id)
        if principal.scopes is not None:
            perms = perms & principal.scopes
        return perms

    async def authorize(self, principal: Principal, permission: str, project_id: uuid.UUID | None) -> None:
        """Return when allowed; raise PermissionDenied naming the permission otherwise."""
        if principal.needs_totp_enrolment:
            raise PermissionDenied(
                "this account must enrol a second factor first: POST /api/v1/auth/totp, then confirm it"
            )
        if permission in await self.permissions(principal, project_id):
            return
        where = "" if project_id is None else f" in project {project_id}"
        raise PermissionDenied(
            f"{principal.name} lacks the permission {permission}{where}"
            + (" (not in this token's scopes or project)" if principal.scopes is not None else "")
        )

    async def require_all(
        self, principal: Principal, permissions: frozenset[str], project_id: uuid.UUID | None, what: str
    ) -> None:
        """PermissionDenied unless ``principal`` holds every one of ``permissions`` in ``project_id``.

        Guards against escalation: nobody grants, takes away or takes over more than they hold themselves."""
        missing = sorted(permissions - await self.permissions(principal, project_id))
        if missing:
            where = "" if project_id is None else f" in project {project_id}"
            raise PermissionDenied(
                f"{what} needs every permission involved; you lack {', '.join(missing)}{where}"
            )

    async def require_covers(self, principal: Principal, uow: UnitOfWork, user_id: uuid.UUID, what: str) -> None:
        """PermissionDenied unless ``principal`` holds everything ``user_id`` holds (globally and in each project
        the user has a role, a delegation or implicit rights such as ownership in): changing someone's password,
        email or account is taking it over, so it needs at least their power."""
        scopes: set[uuid.UUID | None] = {None}
        scopes |= {b.project_id for b in await uow.roles.bindings_of(user_id)}
        if self.implicit is not None:
            scopes |= await self.implicit.scopes(user_id)
        cursor: str | None = None
        now = self.clock.now()
        while True:
            page = await uow.delegations.list_involving(user_id, limit=500, cursor=cursor)
            scopes |= {d.project_id for d in page.items if d.delegate_id == user_id and d.is_active(now)}
            cursor = page.next_cursor
            if cursor is None:
                break
        for scope in scopes:
            target = await self.user_permissions(user_id, scope)
            await self.require_all(principal, target, scope, what)

    async def explain(
        self, uow: UnitOfWork, user_id: uuid.UUID, permission: str, project_id: uuid.UUID | None
    ) -> Explanation:
        """Why ``user_id`` holds or lacks ``permission`` in ``project_id`` (uncached, read in ``uow``)."""
        return await Resolver(uow.roles, uow.delegations, self.clock.now(), self.implicit).explain(
            user_id, permission, project_id
        )
