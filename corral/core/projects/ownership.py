"""Project ownership as implicit rights: the owner of a project holds every project permission on it.

``ProjectOwnership`` is what the wiring hands the identity core as its ``ImplicitRights`` port, so ownership
counts wherever permissions are counted (route checks, token scopes, delegations, and "changing a user needs
everything that user holds") without the identity core knowing about projects.
"""

from __future__ import annotations

import uuid

import attrs

from corral.core.uow import UnitOfWorkFactory

__all__ = ["OWNER_PERMISSIONS", "ProjectOwnership"]

# every permission that applies to one project's own resources (project:create is platform-wide)
OWNER_PERMISSIONS = frozenset({"project:read", "project:write", "project:delete", "project:admin"})


@attrs.define
class ProjectOwnership:
    """ImplicitRights over the project store: owners hold OWNER_PERMISSIONS on their active projects."""

    uow_factory: UnitOfWorkFactory

    async def rights(self, user_id: uuid.UUID, project_id: uuid.UUID) -> frozenset[str]:
        async with self.uow_factory() as uow:
            project = await uow.projects.get(project_id)
        if project is not None and project.owner_id == user_id:
            return OWNER_PERMISSIONS
        return frozenset()

    async def scopes(self, user_id: uuid.UUID) -> set[uuid.UUID]:
        async with self.uow_factory() as uow:
            return set(await uow.projects.owned_by(user_id))
