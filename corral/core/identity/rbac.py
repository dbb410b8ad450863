"""RBAC use cases: roles, role bindings, delegations, explanations."""

from __future__ import annotations

import re
import uuid

import attrs

from corral.core.clock import Clock
from corral.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from corral.core.identity.access import Authorizer, require_account_access
from corral.core.identity.catalogue import ADMIN_ROLE, PERMISSIONS, check_permission_names
from corral.core.identity.commands import NewBinding, NewDelegation, NewRole, RolePermissions
from corral.core.identity.model import Binding, Delegation, Grant, Principal, Role, User
from corral.core.identity.ports import AuthzCache
from corral.core.identity.recording import record
from corral.core.identity.resolver import Explanation, Resolver
from corral.core.ids import uuid7
from corral.core.pagination import Page, clamp_limit
from corral.core.uow import UnitOfWork, UnitOfWorkFactory

__all__ = ["RbacService"]

_ROLE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
USERS_ADMIN = "admin:users"


async def user_named(uow: UnitOfWork, name: object, field: str) -> User:
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"{field} must be a user name", field=field)
    user = await uow.users.get_by_name(name)
    if user is None:
        raise NotFound(f"no user named {name!r}", field=field)
    return user


def _granted(role: Role) -> frozenset[str]:
    """What binding ``role`` grants (the admin role: every permission, including ones added later)."""
    return frozenset(PERMISSIONS) if role.name == ADMIN_ROLE else role.permissions


@attrs.define
class RbacService:
    uow_factory: UnitOfWorkFactory
    authorizer: Authorizer
    cache: AuthzCache
    clock: Clock

    # --- roles -----------------------------------------------------------------
    async def list_roles(self) -> list[Role]:
        async with self.uow_factory() as uow:
            return await uow.roles.list_roles()

    async def create_role(self, actor: Principal, command: NewRole) -> Role:
        name, description = command.name, command.description
        if not _ROLE_NAME.match(name):
            raise InvalidInput(
                "name must be lowercase letters, digits, '-' or '_', starting with a letter", field="name"
            )
        perms = check_permission_names(command.permissions, "permissions")
        role = Role(
            id=uuid7(), name=name, permissions=perms, created_at=self.clock.now(), description=description
        )
        await self.authorizer.require_all(actor, perms, None, f"creating role {name}")
        async with self.uow_factory() as uow:
            if await uow.roles.get_by_name(name) is not None:
                raise Conflict(f"a role named {name!r} exists", field="name")
            await uow.roles.add(role)
            await record(
                uow,
                self.clock,
                actor,
                "role.create",
                "role",
                resource_id=role.id,
                detail={"name": name, "permissions": sorted(perms)},
            )
            await uow.commit()
        return role

    async def set_role_permissions(self, actor: Principal, name: str, command: RolePermissions) -> Role:
        perms = check_permission_names(command.permissions, "permissions")
        async with self.uow_factory() as uow:
            role = await uow.roles.get_by_name(name)
            if role is None:
                raise NotFound(f"no role named {name!r}")
            if role.name == ADMIN_ROLE:
                raise Conflict("the admin role always holds every permission; it cannot be changed")
            await self.authorizer.require_all(
                actor, perms ^ role.permissions, None, f"changing role {name}"  # what is added or taken away
            )
            await uow.roles.set_permissions(role.id, perms)
            await record(
                uow,
                self.clock,
                actor,
                "role.set_permissions",
                "role",
                resource_id=role.id,
                detail={"name": name, "before": sorted(role.permissions), "after": sorted(perms)},
            )
            await uow.commit()
        await self.cache.invalidate("role.set_permissions")
        return attrs.evolve(role, permissions=perms)

    async def delete_role(self, actor: Principal, name: str) -> None:
        """Delete a custom role and every binding to it (system roles: Conflict)."""
        async with self.uow_factory() as uow:
            role = await uow.roles.get_by_name(name)
            if role is None:
                raise NotFound(f"no role named {name!r}")
            if role.is_system:
                raise Conflict(f"{name} is a system role; system roles cannot be deleted")
            await self.authorizer.require_all(actor, role.permissions, None, f"deleting role {name}")
            removed = await uow.roles.delete_role(role.id)
            await record(
                uow,
                self.clock,
                actor,
                "role.delete",
                "role",
                resource_id=role.id,
                detail={"name": name, "permissions": sorted(role.permissions), "bindings_removed": removed},
            )
            await uow.commit()
        await self.cache.invalidate("role.delete")

    # --- bindings --------------------------------------------------------------
    async def list_bindings(
        self, *, user: str | None, project_id: uuid.UUID | None, limit: int | None, cursor: str | None
    ) -> tuple[Page[Binding], dict[uuid.UUID, str]]:
        """Bindings (of ``user`` and/or in ``project_id`` when given) and the names of the users involved."""
        async with self.uow_factory() as uow:
            user_id = None if not user else (await user_named(uow, user, "user")).id
            page = await uow.roles.list_bindings(
                user_id=user_id, project_id=project_id, limit=clamp_limit(limit), cursor=cursor
            )
            names: dict[uuid.UUID, str] = {}
            for uid in {b.user_id for b in page.items} | {b.granted_by for b in page.items if b.granted_by}:
                found = await uow.users.get(uid)
                if found is not None:
                    names[uid] = found.name
        return page, names

    async def bind(self, actor: Principal, command: NewBinding, project_id: uuid.UUID | None = None) -> Binding:
        """Bind ``command.role`` to ``command.user`` globally or in ``project_id`` (``command.project`` resolved
        by the caller)."""
        role = command.role
        async with self.uow_factory() as uow:
            target = await user_named(uow, command.user, "user")
            found = await uow.roles.get_by_name(role)
            if found is None:
                raise NotFound(f"no role named {role!r}", field="role")
            await self.authorizer.require_all(actor, _granted(found), project_id, f"binding role {found.name}")
            binding = Binding(
                id=uuid7(),
                user_id=target.id,
                role_id=found.id,
                role_name=found.name,
                created_at=self.clock.now(),
                project_id=project_id,
                granted_by=actor.user_id,
            )
            await uow.roles.add_binding(binding)
            await record(
                uow,
                self.clock,
                actor,
                "role_binding.create",
                "role_binding",
                resource_id=binding.id,
                project_id=project_id,
                detail={"user": target.name, "role": found.name},
            )
            await uow.commit()
        await self.cache.invalidate("role_binding.create")
        return binding

    async def unbind(self, actor: Principal, binding_id: uuid.UUID) -> None:
        async with self.uow_factory() as uow:
            binding = await uow.roles.get_binding(binding_id)
            if binding is None:
                raise NotFound(f"no role binding {binding_id}")
            role = await uow.roles.get_by_name(binding.role_name)
            if role is not None:
                await self.authorizer.require_all(
                    actor, _granted(role), binding.project_id, f"removing role {role.name}"
                )
            await uow.roles.delete_binding(binding_id)
            await record(
                uow,
                self.clock,
                actor,
                "role_binding.delete",
                "role_binding",
                resource_id=binding_id,
                project_id=binding.project_id,
                detail={"user_id": str(binding.user_id), "role": binding.role_name},
            )
            await uow.commit()
        await self.cache.invalidate("role_binding.delete")

    async def bindings_of(self, user_id: uuid.UUID) -> list[Binding]:
        async with self.uow_factory() as uow:
            return await uow.roles.bindings_of(user_id)

    # --- delegations -----------------------------------------------------------
    async def delegate(
        self,
        actor: Principal,
        command: NewDelegation,
        *,
        project_id: uuid.UUID | None = None,
    ) -> list[Delegation]:
        """Lend ``command.permissions`` the actor holds in the scope (``project_id``: ``command.project``
        resolved by the caller) to ``command.delegate``; one delegation per permission.

        The actor must hold every permission in that scope now (through a token: within its scopes), so
        nobody delegates beyond what they hold."""
        if not command.permissions:
            raise InvalidInput(
                "permissions must be a non-empty list of permission names", field="permissions"
            )
        require_account_access(actor, "delegating")
        perms = check_permission_names(command.permissions, "permissions")
        reason, expires_at = command.reason, command.expires_at
        if reason is not None and len(reason) > 500:
            raise InvalidInput("reason must be a string of at most 500 characters", field="reason")
        now = self.clock.now()
        if expires_at is not None and expires_at <= now:
            raise InvalidInput("expires_at must be in the future", field="expires_at")
        held = await self.authorizer.permissions(actor, project_id)
        missing = sorted(perms - held)
        if missing:
            raise PermissionDenied(
                f"you can only delegate permissions you hold in that scope; missing: {', '.join(missing)}"
            )
        created: list[Delegation] = []
        async with self.uow_factory() as uow:
            target = await user_named(uow, command.delegate, "delegate")
            if target.id == actor.user_id:
                raise InvalidInput("you cannot delegate to yourself", field="delegate")
            for perm in sorted(perms):
                d = Delegation(
                    id=uuid7(),
                    delegator_id=actor.user_id,
                    delegate_id=target.id,
                    permission=perm,
                    created_at=now,
                    project_id=project_id,
                    expires_at=expires_at,
                    reason=reason,
                )
                await uow.delegations.add(d)
                created.append(d)
                await record(
                    uow,
                    self.clock,
                    actor,
                    "delegation.create",
                    "delegation",
                    resource_id=d.id,
                    project_id=project_id,
                    detail={
                        "delegate": target.name,
                        "permission": perm,
                        "reason": d.reason,
                        "expires_at": expires_at.isoformat() if expires_at else None,
                    },
                )
            await uow.commit()
        await self.cache.invalidate("delegation.create")
        return created

    async def revoke_delegation(self, actor: Principal, delegation_id: uuid.UUID) -> None:
        """The delegator, the delegate, or a holder of admin:users may revoke."""
        require_account_access(actor, "revoking a delegation")
        async with self.uow_factory() as uow:
            d = await uow.delegations.get(delegation_id)
            if d is None:
                raise NotFound(f"no delegation {delegation_id}")
            if actor.user_id not in (d.delegator_id, d.delegate_id):
                await self.authorizer.authorize(actor, USERS_ADMIN, None)
            if d.revoked_at is None:
                await uow.delegations.revoke(delegation_id, self.clock.now())
                await record(
                    uow,
                    self.clock,
                    actor,
                    "delegation.revoke",
                    "delegation",
                    resource_id=d.id,
                    project_id=d.project_id,
                    detail={"permission": d.permission},
                )
                await uow.commit()
        await self.cache.invalidate("delegation.revoke")

    async def list_delegations(
        self, actor: Principal, *, everyone: bool, limit: int | None, cursor: str | None
    ) -> Page[Delegation]:
        async with self.uow_factory() as uow:
            return await uow.delegations.list_involving(
                None if everyone else actor.user_id, limit=clamp_limit(limit), cursor=cursor
            )

    async def explain(self, user: str, permission: str, project_id: uuid.UUID | None) -> Explanation:
        check_permission_names([permission], "permission")
        async with self.uow_factory() as uow:
            target = await user_named(uow, user, "user")
            if not target.is_active:
                return Explanation(False, [Grant(kind="user", description=f"user {user} is deactivated")])
            found = await Resolver(uow.roles, uow.delegations, self.clock.now(), self.authorizer.implicit).explain(
                target.id, permission, project_id
            )
            # show people by name: "user <id>" in the resolver's descriptions becomes "user <name>"
            names = {target.id: target.name}
            for g in found.because:
                if g.delegator is not None and g.delegator not in names:
                    other = await uow.users.get(g.delegator)
                    names[g.delegator] = other.name if other else str(g.delegator)
        because = []
        for g in found.because:
            text = g.description
            for uid, name in names.items():
                text = text.replace(f"user {uid}", f"user {name}")
            because.append(attrs.evolve(g, description=text))
        return Explanation(found.allowed, because)
