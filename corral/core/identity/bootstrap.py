"""First run: the system roles, and the first admin when no user exists yet."""

from __future__ import annotations

from corral.core.audit.model import SYSTEM_ACTOR_ID, SYSTEM_ACTOR_NAME
from corral.core.clock import Clock
from corral.core.errors import Conflict
from corral.core.identity.catalogue import PERMISSIONS, SYSTEM_ROLES
from corral.core.identity.commands import NewUser
from corral.core.identity.model import AuthMethod, Principal, Role, User
from corral.core.identity.recording import record
from corral.core.identity.users import UserService
from corral.core.ids import uuid7
from corral.core.uow import UnitOfWorkFactory

__all__ = ["SYSTEM", "ensure_first_admin", "ensure_system_roles"]

SYSTEM = Principal(user_id=SYSTEM_ACTOR_ID, name=SYSTEM_ACTOR_NAME, method=AuthMethod.SYSTEM)


async def ensure_system_roles(uow_factory: UnitOfWorkFactory, clock: Clock) -> list[str]:
    """Create missing system roles with the design's permission sets; returns the names created.

    Existing roles are left as they are (an operator may have changed a role's permissions). Replicas starting
    together may race: a role another one created meanwhile is simply skipped."""
    created: list[str] = []
    async with uow_factory() as uow:
        await uow.roles.ensure_permissions(PERMISSIONS)
        for name, (description, perms) in SYSTEM_ROLES.items():
            if await uow.roles.get_by_name(name) is None:
                role = Role(
                    id=uuid7(),
                    name=name,
                    permissions=perms,
                    created_at=clock.now(),
                    description=description,
                    is_system=True,
                )
                try:
                    await uow.roles.add(role)
                except Conflict:  # another replica created it since we looked
                    continue
                await record(
                    uow,
                    clock,
                    SYSTEM,
                    "role.create",
                    "role",
                    resource_id=role.id,
                    detail={"name": name, "permissions": sorted(perms), "system": True},
                )
                created.append(name)
        await uow.commit()
    return created


async def ensure_first_admin(
    users: UserService, *, name: str | None, password: str | None, email: str | None
) -> User | None:
    """Create the admin from the CORRAL_BOOTSTRAP_ADMIN_* settings, only when no user exists yet (when replicas
    start together, one creates it and the others find it taken)."""
    if not name:
        return None
    async with users.uow_factory() as uow:
        if await uow.users.count() > 0:
            return None
    try:
        return await users.create(
            SYSTEM, NewUser(name=name, email=email or f"{name}@localhost", password=password, admin=True)
        )
    except Conflict:
        return None
