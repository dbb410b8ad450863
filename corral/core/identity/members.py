"""A project's members and their effective roles and permissions, computed by the Authorizer (the RBAC resolver
with project ownership), never by rules of their own."""

from __future__ import annotations

import uuid

import attrs

from corral.core.clock import Clock
from corral.core.identity.access import Authorizer
from corral.core.identity.model import User
from corral.core.uow import UnitOfWorkFactory

__all__ = ["Member", "ProjectMembers"]


@attrs.frozen
class Member:
    """One member: their roles that apply in the project, their effective permissions there, and why they are
    a member (``owner``, ``binding`` (a role bound in the project), ``delegation`` (an active delegation scoped
    to it))."""

    user: User
    roles: tuple[str, ...]
    permissions: frozenset[str]
    via: tuple[str, ...]


@attrs.define
class ProjectMembers:
    """Members are the project's owner, the users with a role binding in the project and the users with an
    active delegation scoped to it. Holders of global bindings only (admins, say) are not listed: they reach
    every project. The caller has already checked project:read."""

    uow_factory: UnitOfWorkFactory
    authorizer: Authorizer
    clock: Clock

    async def members(self, project_id: uuid.UUID, owner_id: uuid.UUID) -> list[Member]:
        async with self.uow_factory() as uow:
            via: dict[uuid.UUID, list[str]] = {owner_id: ["owner"]}
            cursor: str | None = None
            while True:
                page = await uow.roles.list_bindings(user_id=None, project_id=project_id, limit=500, cursor=cursor)
                for b in page.items:
                    if "binding" not in via.setdefault(b.user_id, []):
                        via[b.user_id].append("binding")
                cursor = page.next_cursor
                if cursor is None:
                    break
            for delegate in await uow.delegations.delegates_in_project(project_id, self.clock.now()):
                via.setdefault(delegate, []).append("delegation")
            found: list[tuple[User, tuple[str, ...]]] = []
            for user_id in via:
                user = await uow.users.get(user_id)
                if user is None:
                    continue
                grants = await uow.roles.role_grants(user_id, project_id)
                found.append((user, tuple(sorted({b.role_name for b, _ in grants}))))
        members = []
        for user, roles in found:
            permissions = await self.authorizer.user_permissions(user.id, project_id)
            if not permissions:  # e.g. a delegation whose delegator no longer holds what it gave
                continue
            members.append(Member(user, roles, permissions, tuple(via[user.id])))
        return sorted(members, key=lambda m: m.user.name)
