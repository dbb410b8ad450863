"""Authorisation: a principal's permissions in a scope, cached, and the check every route makes."""

from __future__ import annotations

import uuid
from datetime import timedelta

import attrs

from corral.core.clock import Clock
from corral.core.errors import PermissionDenied
from corral.core.identity.catalogue import PERMISSIONS
from corral.core.identity.model import AuthMethod, Principal
from corral.core.identity.ports import AuthzCache
from corral.core.identity.resolver import Explanation, Resolver
from corral.core.uow import UnitOfWork, UnitOfWorkFactory

__all__ = ["Authorizer"]


@attrs.define
class Authorizer:
    """Answers "may this principal do X in project P?" from the cache, resolving on a miss.

    A token's permissions are its scopes ∩ its user's permissions (a token
    never exceeds its user); a token restricted to a project holds nothing
    outside it. The SYSTEM principal (CLI, bootstrap) holds everything.
    """

    uow_factory: UnitOfWorkFactory
    cache: AuthzCache
    clock: Clock
    cache_ttl: timedelta = timedelta(minutes=5)

    async def user_permissions(self, user_id: uuid.UUID, project_id: uuid.UUID | None) -> frozenset[str]:
        """The user's effective permissions in ``project_id`` (None: global), from the cache when warm."""
        cached = await self.cache.get_permissions(user_id, project_id)
        if cached is not None:
            return cached
        now = self.clock.now()
        generation = self.cache.generation()
        async with self.uow_factory() as uow:
            resolution = await Resolver(uow.roles, uow.delegations, now).effective(user_id, project_id)
        valid_until = now + self.cache_ttl
        if resolution.valid_until is not None and resolution.valid_until < valid_until:
            valid_until = resolution.valid_until
        await self.cache.put_permissions(user_id, project_id, resolution.permissions, valid_until, generation)
        return resolution.permissions

    async def permissions(self, principal: Principal, project_id: uuid.UUID | None) -> frozenset[str]:
        """What ``principal`` may do in ``project_id``: for a token, scopes ∩ the user's permissions."""
        if principal.method is AuthMethod.SYSTEM:
            return frozenset(PERMISSIONS)
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

    async def explain(
        self, uow: UnitOfWork, user_id: uuid.UUID, permission: str, project_id: uuid.UUID | None
    ) -> Explanation:
        """Why ``user_id`` holds or lacks ``permission`` in ``project_id`` (uncached, read in ``uow``)."""
        return await Resolver(uow.roles, uow.delegations, self.clock.now()).explain(
            user_id, permission, project_id
        )
