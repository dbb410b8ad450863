"""User use cases: create (humans and agents), read, change, deactivate, delete."""

from __future__ import annotations

import re

import attrs

from corral.core.audit.model import SYSTEM_ACTOR_ID
from corral.core.clock import Clock
from corral.core.commands import Unset, is_set
from corral.core.errors import Conflict, InvalidInput, NotFound
from corral.core.identity.access import Authorizer
from corral.core.identity.catalogue import ADMIN_ROLE, AGENT_ROLE, PERMISSIONS
from corral.core.identity.commands import NewUser, UserChanges
from corral.core.identity.model import Binding, Principal, User
from corral.core.identity.ports import AuthzCache, PasswordHasher
from corral.core.identity.recording import record
from corral.core.identity.regulation import totp_key, user_key
from corral.core.ids import uuid7
from corral.core.pagination import Page, clamp_limit
from corral.core.uow import UnitOfWork, UnitOfWorkFactory

__all__ = ["UNUSABLE_PASSWORD", "UserService", "bind_role", "check_email", "check_name", "check_password"]

UNUSABLE_PASSWORD = "!"  # agents: no password can ever match
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
MIN_PASSWORD = 8


def check_name(name: object, field: str = "name") -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(
            f"{field} must be 1-63 characters: letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
            field=field,
        )
    return name


def check_email(email: object) -> str:
    if not isinstance(email, str) or not _EMAIL.match(email) or len(email) > 254:
        raise InvalidInput("email must be an address like someone@example.com", field="email")
    return email


def check_password(password: object, field: str = "password") -> str:
    """The password policy (also for admin-set and self-service changes)."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD or len(password) > 1024:
        raise InvalidInput(f"{field} must be a string of {MIN_PASSWORD} to 1024 characters", field=field)
    return password


async def bind_role(uow: UnitOfWork, clock: Clock, user: User, role_name: str, actor: Principal) -> Binding:
    role = await uow.roles.get_by_name(role_name)
    if role is None:
        raise NotFound(f"no role named {role_name!r}; run `corral migrate` to bootstrap the system roles")
    binding = Binding(
        id=uuid7(),
        user_id=user.id,
        role_id=role.id,
        role_name=role.name,
        created_at=clock.now(),
        granted_by=None if actor.user_id in (user.id, SYSTEM_ACTOR_ID) else actor.user_id,
    )
    await uow.roles.add_binding(binding)
    return binding


@attrs.define
class UserService:
    """Users are humans or agents; agents hold the ``agent`` role and have no usable password."""

    uow_factory: UnitOfWorkFactory
    hasher: PasswordHasher
    cache: AuthzCache
    clock: Clock
    authorizer: Authorizer

    async def create(self, actor: Principal, command: NewUser) -> User:
        """Create a user; ``admin`` binds the admin role globally, ``agent`` the agent role (tokens only)."""
        name, email = check_name(command.name), check_email(command.email)
        if name.lower() == "search":  # GET /api/v1/users/search is the user search, not this user's page
            raise InvalidInput("name 'search' is reserved; choose another name", field="name")
        display_name, admin, agent = command.display_name, command.admin, command.agent
        if agent:
            if admin:
                raise InvalidInput("an agent cannot be an admin; delegate permissions to it", field="agent")
            if command.password is not None:
                raise InvalidInput("agents authenticate with tokens only: omit password", field="password")
            password_hash = UNUSABLE_PASSWORD
        else:
            password_hash = await self.hasher.hash(check_password(command.password))
        if admin:
            await self.authorizer.require_all(actor, frozenset(PERMISSIONS), None, "creating an admin")
        now = self.clock.now()
        user = User(
            id=uuid7(),
            name=name,
            email=email,
            password_hash=password_hash,
            created_at=now,
            updated_at=now,
            display_name=display_name,
        )
        async with self.uow_factory() as uow:
            await uow.users.add(user)
            roles = [ADMIN_ROLE] if admin else [AGENT_ROLE] if agent else []
            for role in roles:
                await bind_role(uow, self.clock, user, role, actor)
            await record(
                uow,
                self.clock,
                actor,
                "user.create",
                "user",
                resource_id=user.id,
                detail={"name": name, "email": email, "roles": roles},
            )
            await uow.commit()
        return user

    async def get(self, name: str) -> User:
        async with self.uow_factory() as uow:
            return await self._get(uow, name)

    @staticmethod
    async def _get(uow: UnitOfWork, name: str) -> User:
        user = await uow.users.get_by_name(name)
        if user is None:
            raise NotFound(f"no user named {name!r}")
        return user

    async def list(self, *, limit: int | None, cursor: str | None, q: str | None = None) -> Page[User]:
        """Users by name; with ``q``, those whose name, display name or email starts with it (any case)."""
        q = (q or "").strip() or None
        if q is not None and len(q) > 100:
            raise InvalidInput("q must be at most 100 characters", field="q")
        async with self.uow_factory() as uow:
            return await uow.users.list_users(limit=clamp_limit(limit), cursor=cursor, q=q)

    async def update(self, actor: Principal, name: str, changes: UserChanges) -> User:
        """Change display_name, email, is_active or password (the fields sent); deactivating or a new password
        ends the user's sessions."""
        new: dict[str, object] = {}
        if is_set(changes.display_name):
            new["display_name"] = changes.display_name
        if not isinstance(changes.email, Unset):
            new["email"] = check_email(changes.email)
        if not isinstance(changes.is_active, Unset):
            new["is_active"] = changes.is_active
        if not isinstance(changes.password, Unset):
            new["password_hash"] = await self.hasher.hash(check_password(changes.password))
        async with self.uow_factory() as uow:
            user = await self._get(uow, name)
            if user.id != actor.user_id:
                await self.authorizer.require_covers(actor, uow, user.id, f"changing user {name}")
            updated = attrs.evolve(user, updated_at=self.clock.now(), **new)  # type: ignore[arg-type]
            await uow.users.update(updated)
            ended = 0
            if new.get("is_active") is False or "password_hash" in new:
                ended = await uow.sessions.delete_for_user(user.id)
            shown = sorted(k if k != "password_hash" else "password" for k in new)
            await record(
                uow,
                self.clock,
                actor,
                "user.update",
                "user",
                resource_id=user.id,
                detail={"name": name, "changed": shown, "sessions_ended": ended},
            )
            await uow.commit()
        await self.cache.invalidate("user.update")
        return updated

    async def lift_login_ban(self, actor: Principal, name: str) -> int:
        """End user ``name``'s login bans (password and TOTP, the daily TOTP lock included) and forget their
        failures, audited; bans of IP addresses are not touched. Returns how many bans were removed."""
        async with self.uow_factory() as uow:
            user = await self._get(uow, name)
            lifted = await uow.login_throttle.lift([user_key(user.name), totp_key(user.id)])
            await record(uow, self.clock, actor, "auth.ban_lift", "user", resource_id=user.id,
                         detail={"name": name, "bans_removed": lifted})
            await uow.commit()
        return lifted

    async def delete(self, actor: Principal, name: str) -> None:
        async with self.uow_factory() as uow:
            user = await self._get(uow, name)
            if user.id == actor.user_id:
                raise Conflict("you cannot delete yourself; ask another admin")
            await self.authorizer.require_covers(actor, uow, user.id, f"deleting user {name}")
            await uow.users.delete(user.id)
            await record(
                uow, self.clock, actor, "user.delete", "user", resource_id=user.id, detail={"name": name}
            )
            await uow.commit()
        await self.cache.invalidate("user.delete")
